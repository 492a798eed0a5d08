package trigger

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/monohook/monohook/internal/rules"
)

// Rule is a stored rule that passed validation: the rest of the code trusts it.
type Rule struct {
	Key         string // where it is stored, e.g. mono-repo/config/repo-main-p-1A2B3C4D.json
	Repo        string // repository.name, as the predecessor's GitHubRepo
	Branch      string // full branch name
	Pipeline    string
	Expressions string // as stored: comma-separated regular expressions
	// Patterns are what the index matches: every expression of a seed
	// rule; the including patterns of a v2 rule (the index is given its
	// whole filter when it has excludes).
	Patterns []*rules.Pattern
	// V2 is set for rules of format v2; Repo is then owner/name and
	// Pipeline the target's name.
	V2 *V2
}

// Problem is a stored rule that cannot be used, and why. A problem never
// stops the other rules of the same repository and branch.
type Problem struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

// SeedTarget is the target type a seed rule starts: the predecessor's
// documents name a CodePipeline pipeline (CodePipelineName), so this one
// kind is the seed format's own. A start without a Target is one of it.
const SeedTarget = "codepipeline"

// pipelineName is CodePipeline's pattern for pipeline names, which the
// seed format's CodePipelineName keeps to.
var pipelineName = regexp.MustCompile(`^[A-Za-z0-9.@\-_]{1,100}$`)

// ValidPipelineName reports whether name is a CodePipeline pipeline name
// (the seed format's, and a codepipeline target's).
func ValidPipelineName(name string) bool { return pipelineName.MatchString(name) }

// NewSeedRule checks the four fields of a seed document and compiles its
// expressions. Every error names the field or the expression at fault.
func NewSeedRule(key, repo, branch, pipeline, expressions string) (Rule, error) {
	var errs []error
	if repo == "" {
		errs = append(errs, errors.New("GitHubRepo is empty"))
	}
	if branch == "" {
		errs = append(errs, errors.New("GitHubBranch is empty"))
	}
	// GitHub allows no control characters in repository names, nor git in
	// branch names: a document with one never matched a push, and carried
	// into another format (rules convert, logs, the dashboard) it could
	// forge lines.
	if strings.ContainsFunc(repo, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("GitHubRepo %q has a control character", repo))
	}
	if strings.ContainsFunc(branch, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("GitHubBranch %q has a control character", branch))
	}
	if !pipelineName.MatchString(pipeline) {
		errs = append(errs, fmt.Errorf("CodePipelineName %q is not a valid pipeline name (1-100 of A-Z a-z 0-9 . @ - _)", pipeline))
	}
	r := Rule{Key: key, Repo: repo, Branch: branch, Pipeline: pipeline, Expressions: expressions}
	for _, src := range rules.SplitSeed(expressions) {
		p, err := rules.CompileSeed(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("ChangeMatchExpressions: %w", err))
			continue
		}
		r.Patterns = append(r.Patterns, p)
	}
	if err := errors.Join(errs...); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// Warnings lists what is legal in a rule but probably not meant.
func (r *Rule) Warnings() []string {
	var w []string
	for _, src := range rules.SplitSeed(r.Expressions) {
		if src == "" {
			w = append(w, "ChangeMatchExpressions has an empty expression (a stray comma?); it matches every path, so the pipeline starts on every push")
			break
		}
	}
	if strings.TrimSpace(r.Expressions) == "" {
		w = append(w[:0], "ChangeMatchExpressions is empty; it matches every path, so the pipeline starts on every push")
	}
	return w
}

// RuleSet is the usable rules for one repository and branch, indexed for
// matching, plus the stored rules that could not be used.
type RuleSet struct {
	Repo     string
	Branch   string
	Rules    []Rule
	Problems []Problem
	index    *rules.Index
}

// NewRuleSet indexes rs. Build it once per change of the stored rules: the
// index is what makes evaluation fast. A v2 rule with excludes is indexed
// as its whole filter, so that the index decides its excludes too.
func NewRuleSet(repo, branch string, rs []Rule, problems []Problem) *RuleSet {
	filters := make([][]rules.Term, len(rs))
	for i := range rs {
		if rs[i].V2 != nil && hasExclude(rs[i].V2.paths) {
			for _, fp := range rs[i].V2.paths {
				filters[i] = append(filters[i], rules.Term{Pattern: fp.p, Exclude: fp.exclude})
			}
			continue
		}
		for _, p := range rs[i].Patterns {
			filters[i] = append(filters[i], rules.Term{Pattern: p})
		}
	}
	return &RuleSet{Repo: repo, Branch: branch, Rules: rs, Problems: problems, index: rules.NewFilterIndex(filters)}
}
