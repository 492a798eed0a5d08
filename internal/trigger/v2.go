package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/rules"
)

// Spec is a rule document of format v2, as stored in JSON or YAML.
type Spec struct {
	Description string `json:"description,omitempty"`
	Owner       string `json:"owner,omitempty"`
	// Repository is owner/name; matched without regard to case, as GitHub
	// does.
	Repository string `json:"repository"`
	// Events is push (the default) and/or pull_request (opened,
	// synchronize, reopened, and closed when merged).
	Events []string `json:"events,omitempty"`
	// Branches and Tags are filter patterns (globs; a leading "!" excludes,
	// and a later pattern overrides an earlier one). Without either, every
	// branch and no tag; with only Tags, no branch. For pull_request,
	// Branches filters the base branch.
	Branches []string `json:"branches,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	// Paths are filter patterns over the changed paths; PathRegex are
	// regular expressions as in the seed format (matched at the start of a
	// path). At most one of the two; with neither, every change matches.
	Paths     []string `json:"paths,omitempty"`
	PathRegex []string `json:"path_regex,omitempty"`
	// OnIncomplete decides a rule whose paths match none of the known
	// changed paths when the change set may be incomplete: "run" (the
	// default: a watched path may be among the unknown ones) or "skip".
	OnIncomplete string `json:"on_incomplete,omitempty"`
	Target       Target `json:"target"`
}

// Target is what a rule starts.
type Target struct {
	// Type is codepipeline, codebuild, github-actions, http or exec.
	Type string `json:"type"`

	// codepipeline: Pipeline; with SourceRevision, the run builds the pushed
	// commit (V2 sourceRevisions for the source action SourceAction).
	// Variables are pipeline variables (V2), each a template.
	Pipeline       string            `json:"pipeline,omitempty"`
	SourceRevision bool              `json:"source_revision,omitempty"`
	SourceAction   string            `json:"source_action,omitempty"`
	Variables      map[string]string `json:"variables,omitempty"`

	// codebuild: Project, built at the pushed commit; Variables (above)
	// become environment variables of the build.
	Project string `json:"project,omitempty"`

	// github-actions: a workflow_dispatch of Workflow (file name or id) in
	// Repository (owner/name) at Ref (a template; default the pushed ref),
	// with Inputs (templates).
	Repository string            `json:"repository,omitempty"`
	Workflow   string            `json:"workflow,omitempty"`
	Ref        string            `json:"ref,omitempty"`
	Inputs     map[string]string `json:"inputs,omitempty"`

	// http: a POST (or Method) of Body (a template, JSON) to URL with
	// Headers (templates). Secrets come from {{secret "NAME"}}, read from
	// the environment (MONOHOOK_SECRET_NAME) or the secrets directory,
	// never from the rule.
	URL     string            `json:"url,omitempty"`
	Method  string            `json:"method,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`

	// exec: Command (argv; each argument a template) run with MONOHOOK_*
	// environment variables, for at most Timeout (default 10m).
	Command []string `json:"command,omitempty"`
	Timeout string   `json:"timeout,omitempty"`
}

// Targets are the target types a rule may name.
var Targets = []string{"codepipeline", "codebuild", "github-actions", "http", "exec"}

// Name is how a start of the target is named in decisions, jobs and
// tokens: a CodePipeline pipeline keeps its plain name, so a seed rule and
// a v2 rule naming one pipeline start it once per push.
func (t *Target) Name() string {
	switch t.Type {
	case "codepipeline":
		return t.Pipeline
	case "codebuild":
		return "codebuild:" + t.Project
	case "github-actions":
		return "github-actions:" + t.Repository + "/" + t.Workflow
	case "http":
		u := t.URL
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			u = u[:i] // the query may hold a token
		}
		return "http:" + u
	case "exec":
		if len(t.Command) > 0 {
			return "exec:" + t.Command[0]
		}
	}
	return t.Type
}

// TemplateData is what target templates see.
type TemplateData struct {
	Event             string // push or pull_request
	Repo              string // owner/name
	RepoName          string
	Ref               string
	Branch            string // the pushed branch, or a pull request's base branch
	Tag               string
	SHA               string // the pushed commit, or the pull request's head
	Before            string
	ChangedPathsCount int
	PullRequest       int
	DeliveryID        string
	Rule              string
}

// ParseSpec reads a v2 document, JSON or YAML, refusing unknown fields
// (a misspelt "branch" must not silently mean "every branch").
func ParseSpec(b []byte) (Spec, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return Spec{}, fmt.Errorf("not JSON or YAML: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("rule document: %w", err)
	}
	return s, nil
}

var (
	repoName     = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	codebuildPrj = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9\-_]{1,254}$`)
	variableName = regexp.MustCompile(`^[A-Za-z0-9@\-_]{1,128}$`)
	headerName   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
)

// filter is a compiled list of filter patterns: the last pattern that
// matches decides, and a name no pattern matches is excluded.
type filter []filterPattern

type filterPattern struct {
	p       *rules.Pattern
	exclude bool
}

func compileFilter(field string, srcs []string) (filter, error) {
	var f filter
	var errs []error
	positive := false
	for i, src := range srcs {
		exclude := strings.HasPrefix(src, "!")
		p, err := rules.CompileGlob(strings.TrimPrefix(src, "!"))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
			continue
		}
		positive = positive || !exclude
		f = append(f, filterPattern{p: p, exclude: exclude})
	}
	if len(errs) == 0 && len(srcs) > 0 && !positive {
		errs = append(errs, fmt.Errorf("%s: only \"!\" patterns, so nothing is included; add a pattern that includes, e.g. \"**\"", field))
	}
	return f, errors.Join(errs...)
}

// decide returns the pattern that decides s (the last one matching it),
// or -1 when none does.
func (f filter) decide(s string) int {
	for i := len(f) - 1; i >= 0; i-- {
		if f[i].p.Match(s) {
			return i
		}
	}
	return -1
}

func (f filter) includes(s string) bool {
	i := f.decide(s)
	return i >= 0 && !f[i].exclude
}

// V2 is the compiled part of a v2 rule.
type V2 struct {
	Spec     Spec
	push, pr bool
	branches filter // nil: not given
	tags     filter
	paths    filter // globs, in order, excludes included; nil with PathRegex or no paths
	skip     bool   // on_incomplete: skip
}

// NewV2Rule validates a v2 document and compiles it. Every error names the
// field, the pattern and the reason.
func NewV2Rule(key string, s Spec) (Rule, error) {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	v := &V2{Spec: s}
	if !repoName.MatchString(s.Repository) {
		add(fmt.Errorf("repository %q: want owner/name", s.Repository))
	}
	events := s.Events
	if len(events) == 0 {
		events = []string{"push"}
	}
	for _, e := range events {
		switch e {
		case "push":
			v.push = true
		case "pull_request":
			v.pr = true
		default:
			add(fmt.Errorf("events: %q is not push or pull_request", e))
		}
	}
	var err error
	if s.Branches != nil {
		v.branches, err = compileFilter("branches", s.Branches)
		add(err)
	}
	if s.Tags != nil {
		v.tags, err = compileFilter("tags", s.Tags)
		add(err)
	}
	r := Rule{Key: key, Repo: s.Repository, V2: v}
	switch {
	case len(s.Paths) > 0 && len(s.PathRegex) > 0:
		add(errors.New("paths and path_regex: give one or the other"))
	case len(s.Paths) > 0:
		v.paths, err = compileFilter("paths", s.Paths)
		add(err)
		for _, fp := range v.paths {
			if !fp.exclude {
				r.Patterns = append(r.Patterns, fp.p)
			}
		}
		r.Expressions = strings.Join(s.Paths, ", ")
	case len(s.PathRegex) > 0:
		for i, src := range s.PathRegex {
			p, err := rules.CompileSeed(src)
			if err != nil {
				add(fmt.Errorf("path_regex[%d]: %w", i, err))
				continue
			}
			r.Patterns = append(r.Patterns, p)
		}
		r.Expressions = strings.Join(s.PathRegex, ", ")
	default:
		p, _ := rules.CompileGlob("**")
		r.Patterns = []*rules.Pattern{p}
		r.Expressions = "(every path)"
	}
	switch s.OnIncomplete {
	case "", "run":
	case "skip":
		v.skip = true
	default:
		add(fmt.Errorf("on_incomplete: %q is not run or skip", s.OnIncomplete))
	}
	add(validateTarget(&s.Target))
	r.Pipeline = s.Target.Name()
	if err := errors.Join(errs...); err != nil {
		return Rule{}, err
	}
	return r, nil
}

func validateTarget(t *Target) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("target."+format, args...)) }
	// A template is checked as it is before every rendering (what could
	// make its work unbounded is refused) and run once against empty
	// data, so a misspelt field ({{.Sha}}) is refused when the rule is
	// written, not when it fires. Only http targets may use {{secret}}:
	// the others would show it in a pipeline variable, a command line or
	// a workflow input.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	check := func(field, text string, isURL bool, limit int) (string, bool) {
		secret := func(string) (string, error) { return "", errors.New("secrets are only available to http targets") }
		if t.Type == "http" {
			secret = func(string) (string, error) { return "", nil }
		}
		out, err := render(ctx, field, text, isURL, limit, TemplateData{}, secret)
		if err != nil {
			errs = append(errs, fmt.Errorf("target.%w", err)) // err names the field
		}
		return out, err == nil
	}
	tmpl := func(field, text string) { check(field, text, false, MaxValue) }
	for k, v := range t.Variables {
		if !variableName.MatchString(k) {
			add("variables: %q is not a valid variable name", k)
		}
		tmpl("variables."+k, v)
	}
	switch t.Type {
	case "codepipeline":
		if !pipelineName.MatchString(t.Pipeline) {
			add("pipeline %q: 1-100 of A-Z a-z 0-9 . @ - _", t.Pipeline)
		}
		if t.SourceRevision && t.SourceAction == "" {
			add("source_action: source_revision needs the name of the pipeline's source action")
		}
	case "codebuild":
		if !codebuildPrj.MatchString(t.Project) {
			add("project %q: 2-255 of A-Z a-z 0-9 - _, starting with a letter or digit", t.Project)
		}
	case "github-actions":
		if !repoName.MatchString(t.Repository) {
			add("repository %q: want owner/name", t.Repository)
		}
		if t.Workflow == "" {
			add("workflow: the workflow file name (deploy.yml) or id")
		}
		tmpl("ref", t.Ref)
		for k, v := range t.Inputs {
			tmpl("inputs."+k, v)
		}
	case "http":
		if !strings.HasPrefix(t.URL, "https://") && !strings.HasPrefix(t.URL, "http://") {
			add("url %q: want an http:// or https:// URL", t.URL)
		}
		switch t.Method {
		case "", http.MethodPost, http.MethodPut, http.MethodPatch:
		default:
			add("method %q: POST, PUT or PATCH", t.Method)
		}
		// The host is literal (RenderURL refuses a templated one), so an
		// address that is never allowed is refused now.
		if rendered, ok := check("url", t.URL, true, MaxValue); ok {
			u, err := url.Parse(rendered)
			switch {
			case err != nil:
				add("url: %v", err)
			case u.Hostname() == "":
				add("url: no host")
			default:
				if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
					if err := netguard.Always(ip); err != nil {
						add("url: %v", err)
					}
				}
			}
		}
		for k, v := range t.Headers {
			if !headerName.MatchString(k) {
				add("headers: %q is not a valid header name", k)
			}
			tmpl("headers."+k, v)
		}
		check("body", t.Body, false, MaxBody)
	case "exec":
		if len(t.Command) == 0 || t.Command[0] == "" {
			add("command: the program and its arguments")
		}
		for i, a := range t.Command {
			tmpl(fmt.Sprintf("command[%d]", i), a)
		}
		if t.Timeout != "" {
			if d, err := time.ParseDuration(t.Timeout); err != nil || d <= 0 {
				add("timeout %q: a duration such as 10m", t.Timeout)
			}
		}
	default:
		add("type %q: one of %s", t.Type, strings.Join(Targets, ", "))
	}
	return errors.Join(errs...)
}

// refMatches reports whether the rule's event, branch and tag filters let
// p through, and says why not.
func (v *V2) refMatches(p *Push) (bool, string) {
	if p.Event == "pull_request" {
		if !v.pr {
			return false, "the rule is not for pull_request events"
		}
		if v.branches != nil && !v.branches.includes(p.BaseBranch) {
			return false, fmt.Sprintf("base branch %q is not in branches", p.BaseBranch)
		}
		return true, ""
	}
	if !v.push {
		return false, "the rule is not for push events"
	}
	if tag, ok := strings.CutPrefix(p.Ref, "refs/tags/"); ok {
		if v.tags == nil {
			return false, "tag pushes need a tags filter"
		}
		if !v.tags.includes(tag) {
			return false, fmt.Sprintf("tag %q is not in tags", tag)
		}
		return true, ""
	}
	branch, ok := p.Branch()
	if !ok {
		return false, "the ref is not a branch or a tag"
	}
	switch {
	case v.branches == nil && v.tags != nil:
		return false, "the rule lists only tags"
	case v.branches != nil && !v.branches.includes(branch):
		return false, fmt.Sprintf("branch %q is not in branches", branch)
	}
	return true, ""
}

// V2Set is every v2 rule in the store, with the subsets that apply to
// one repository, event and ref indexed on first use.
type V2Set struct {
	Rules    []Rule
	Problems []Problem

	mu    sync.Mutex
	cache map[string]*RuleSet
}

// maxCachedSubsets bounds the indexed subsets one V2Set keeps.
const maxCachedSubsets = 1024

// For returns the rules whose repository, event and ref filters let p
// through, indexed for its paths.
func (s *V2Set) For(p *Push) *RuleSet {
	if s == nil {
		return &RuleSet{}
	}
	key := strings.ToLower(p.FullName) + "\x00" + p.Event + "\x00" + p.Ref + "\x00" + p.BaseBranch
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs, ok := s.cache[key]; ok {
		return rs
	}
	var selected []Rule
	for _, r := range s.Rules {
		if !strings.EqualFold(r.Repo, p.FullName) {
			continue
		}
		if ok, _ := r.V2.refMatches(p); ok {
			selected = append(selected, r)
		}
	}
	rs := NewRuleSet(p.FullName, p.Ref, selected, nil)
	if s.cache == nil || len(s.cache) >= maxCachedSubsets {
		s.cache = map[string]*RuleSet{}
	}
	s.cache[key] = rs
	return rs
}

// NewV2Set holds the compiled v2 rules, sorted by key.
func NewV2Set(rs []Rule, problems []Problem) *V2Set {
	slices.SortFunc(rs, func(a, b Rule) int { return strings.Compare(a.Key, b.Key) })
	return &V2Set{Rules: rs, Problems: problems}
}
