package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

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
	// synchronize, reopened, and closed when merged) and/or merge_group
	// (a merge queue's checks_requested).
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
	// Report says how the rule's decisions are reported to GitHub (a
	// check run or a commit status); nil: under the default name.
	Report *ReportSpec `json:"report,omitempty"`
	Target Target      `json:"target"`
}

// Target is what a rule starts: a kind of target (Type) and the kind's
// own fields, which only the kind reads (TargetKinds). It is stored flat,
// as rule documents write it and start jobs hold it: {"type":
// "codepipeline", "pipeline": "api"}.
type Target struct {
	Type string
	// Fields are the target's other fields, a JSON object; empty in the
	// zero Target (a seed rule's start).
	Fields json.RawMessage
}

// NewTarget is the Target of kind typ with fields, a kind's own struct
// (strings, flags, lists and maps: its JSON cannot fail).
func NewTarget(typ string, fields any) Target {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(fmt.Sprintf("target fields of %s: %v", typ, err))
	}
	return Target{Type: typ, Fields: b}
}

// MarshalJSON writes the type and the fields as one object.
func (t Target) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(struct {
		Type string `json:"type"`
	}{t.Type})
	if err != nil {
		return nil, err
	}
	f := bytes.TrimSpace(t.Fields)
	if len(f) == 0 {
		return b, nil
	}
	if f[0] != '{' {
		return nil, fmt.Errorf("the fields of target %s are not a JSON object", t.Type)
	}
	if inner := bytes.TrimSpace(f[1:]); len(inner) > 0 && inner[0] == '}' {
		return b, nil // {}
	}
	return append(append(b[:len(b)-1], ','), f[1:]...), nil
}

// UnmarshalJSON reads the type as encoding/json reads a struct field (its
// name in any case), and keeps every other field for the kind to read.
func (t *Target) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var typ struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &typ); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	for k := range fields {
		if strings.EqualFold(k, "type") {
			delete(fields, k)
		}
	}
	f, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	*t = Target{Type: typ.Type, Fields: f}
	return nil
}

// DecodeStrict reads t's fields into v, a kind's struct, refusing a field
// v does not have, as ParseSpec refuses one of the rule's: a misspelt
// field must not silently mean its default. Rules are read so.
func (t Target) DecodeStrict(v any) error {
	if len(t.Fields) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(t.Fields))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("rule document: %w", err)
	}
	return nil
}

// Decode reads t's fields into v, ignoring fields v does not have. Starts
// read targets so: a start job holds the target of a rule that passed
// when it was decided, perhaps by a version that let a target carry
// another kind's fields, and what was decided is carried out.
func (t Target) Decode(v any) error {
	if len(t.Fields) == 0 {
		return nil
	}
	if err := json.Unmarshal(t.Fields, v); err != nil {
		return fmt.Errorf("target %s: %w (%w)", t.Type, err, ErrPermanent)
	}
	return nil
}

// TargetKinds knows the kinds of target a rule may start (the registry,
// internal/targets, is it); the domain knows none of them.
type TargetKinds interface {
	// Check reads t's fields strictly (DecodeStrict) and validates them,
	// its templates included. It returns t as its kind writes it, and the
	// name its starts go by (Rule.Pipeline, StartRequest.Name). Each
	// error names its field: target.pipeline, target.url.
	Check(t Target) (Target, string, error)
}

// TemplateData is what target templates see.
type TemplateData struct {
	Event             string // push, pull_request or merge_group
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

var repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// ValidRepository reports whether name is owner/name as GitHub allows.
func ValidRepository(name string) bool { return repoName.MatchString(name) }

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
	mg       bool   // merge_group
	branches filter // nil: not given
	tags     filter
	paths    filter // globs, in order, excludes included; nil with PathRegex or no paths
	skip     bool   // on_incomplete: skip
}

// NewV2Rule validates a v2 document and compiles it; kinds validates its
// target. Every error names the field, the pattern and the reason.
func NewV2Rule(key string, s Spec, kinds TargetKinds) (Rule, error) {
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
		case "merge_group":
			v.mg = true
		default:
			add(fmt.Errorf("events: %q is not push, pull_request or merge_group", e))
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
	v.Spec.Target, r.Pipeline, err = kinds.Check(s.Target)
	add(err)
	add(s.Report.validate())
	if err := errors.Join(errs...); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// refMatches reports whether the rule's event, branch and tag filters let
// p through, and says why not.
func (v *V2) refMatches(p *Push) (bool, string) {
	if p.Event == "pull_request" || p.Event == "merge_group" {
		if (p.Event == "pull_request" && !v.pr) || (p.Event == "merge_group" && !v.mg) {
			return false, "the rule is not for " + p.Event + " events"
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
