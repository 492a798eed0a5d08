package trigger

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
)

// Decision explains the outcome of one rule for one push.
type Decision struct {
	Rule     string `json:"rule"`
	Pipeline string `json:"pipeline"`
	Matched  bool   `json:"matched"`
	// Path and Expression say why a rule matched: the first changed path it
	// matched, and the rule's first expression that matches that path.
	Path       string `json:"path,omitempty"`
	Expression string `json:"expression,omitempty"`
	// Vetoed is set on an unmatched v2 rule whose including pattern
	// matched Path but whose exclude Expression ("!…") removed it.
	Vetoed bool `json:"vetoed,omitempty"`
	// Reason says why a rule matched without a path (a tag push; an
	// incomplete change set under on_incomplete: run) or did not match
	// although a path did (on_incomplete: skip).
	Reason string `json:"reason,omitempty"`
	// Check is the name of the GitHub check that reports the decision;
	// set when the plan is reported (PlanInput.Report), empty when the
	// rule's report is off.
	Check string `json:"check,omitempty"`
}

// Result is what evaluation decided for one push.
type Result struct {
	Repo   string `json:"repo"`
	Branch string `json:"branch,omitempty"`
	// Skipped says why the push was not evaluated at all (a tag, a deleted
	// branch); empty when it was.
	Skipped string `json:"skipped,omitempty"`
	// Rules is how many usable rules were evaluated.
	Rules int `json:"rules"`
	// Decisions has the matched rules in rule order; from Explain, every rule.
	Decisions []Decision `json:"decisions"`
	// Start lists the pipelines to start: every matched rule's pipeline,
	// each once, sorted.
	Start    []string  `json:"start"`
	Problems []Problem `json:"problems,omitempty"`
	// Targets holds the target of every started name that a v2 rule
	// chose; a name without one is a CodePipeline pipeline started plainly.
	Targets map[string]Target `json:"targets,omitempty"`
	// Incomplete says why the changed paths may be incomplete.
	Incomplete string `json:"incomplete,omitempty"`
	// Fetched are the changed paths the GitHub API added to the payload's.
	Fetched []string `json:"fetched,omitempty"`
	// Unselected are, in a plan made for reporting (PlanInput.Report),
	// the decisions of the repository's rules that did not match, each
	// with why (the Decisions stay the matched ones, as without it).
	Unselected []Decision `json:"unselected,omitempty"`
	// Only, when set, is the one pipeline this round may start: a re-run
	// of its check (PlanInput.Only).
	Only string `json:"only,omitempty"`
}

// Skip reasons for pushes that start nothing whatever the rules say.
const (
	SkipDeleted   = "the ref was deleted"
	SkipTag       = "tag pushes never match branch rules"
	SkipNotBranch = "the ref is not a branch"
	// Seed rules never see pull requests.
	SkipPullRequest = "no v2 rule of this repository takes pull_request events for its base branch"
	SkipMergeGroup  = "no v2 rule of this repository takes merge_group events for its base branch"
)

// SkipReason says why p is not evaluated against branch rules, or "" when
// it is.
func SkipReason(p *Push) string {
	switch {
	case p.Deleted:
		return SkipDeleted
	case len(p.Ref) > len("refs/tags/") && p.Ref[:len("refs/tags/")] == "refs/tags/":
		return SkipTag
	}
	if _, ok := p.Branch(); !ok {
		return SkipNotBranch
	}
	return ""
}

// Evaluate decides which pipelines p starts under set, the rules stored for
// p's repository and branch. It is pure and fast: rules are matched through
// their index, and only matched rules get a Decision.
func Evaluate(p *Push, set *RuleSet) Result { return evaluate(p, set, false) }

// Explain is Evaluate with a Decision for every rule, matched or not.
func Explain(p *Push, set *RuleSet) Result { return evaluate(p, set, true) }

func evaluate(p *Push, set *RuleSet, all bool) Result {
	branch, _ := p.Branch()
	res := Result{Repo: p.Repo, Branch: branch, Start: []string{}, Decisions: []Decision{}}
	if reason := SkipReason(p); reason != "" {
		res.Skipped = reason
		return res
	}
	res.Problems = set.Problems
	res.Rules = len(set.Rules)
	hits := set.index.Match(p.Paths)
	if all {
		res.Decisions = make([]Decision, len(set.Rules))
		for i, r := range set.Rules {
			res.Decisions[i] = Decision{Rule: r.Key, Pipeline: r.Pipeline}
		}
	} else {
		res.Decisions = make([]Decision, len(hits))
	}
	for i, h := range hits {
		r := &set.Rules[h.Rule]
		d := &res.Decisions[i]
		if all {
			d = &res.Decisions[h.Rule]
		}
		*d = Decision{Rule: r.Key, Pipeline: r.Pipeline, Matched: true, Path: h.Path, Expression: r.Patterns[h.Pattern].Source}
		res.Start = append(res.Start, r.Pipeline)
	}
	// Two rules may name one pipeline: it starts once per push.
	slices.Sort(res.Start)
	res.Start = slices.Compact(res.Start)
	return res
}

// Rules is everything a push is evaluated against: the seed rules of its
// repository and branch, and the v2 rules.
type Rules struct {
	Seed *RuleSet
	V2   *V2Set
}

// EvaluateRules decides p against both kinds of rules; with all, every
// rule gets a Decision (as Explain). Seed rules come first, then v2 rules,
// each in key order; a pipeline named by both starts once, as the v2 rule
// says.
func EvaluateRules(p *Push, r Rules, all bool) Result {
	seed := r.Seed
	if seed == nil {
		seed = &RuleSet{}
	}
	res := evaluate(p, seed, all)
	if p.Deleted {
		return res
	}
	v2 := r.V2.For(p)
	if len(v2.Rules) == 0 {
		switch p.Event {
		case "pull_request":
			res.Skipped = SkipPullRequest
		case "merge_group":
			res.Skipped = SkipMergeGroup
		}
		return res
	}
	if res.Skipped == SkipTag || res.Skipped == SkipNotBranch {
		res.Skipped = "" // a v2 rule may take tags or pull requests
		branch, _ := p.Branch()
		res.Branch = branch
		res.Problems = seed.Problems
	}
	res.Rules += len(v2.Rules)
	res.Incomplete = p.Incomplete
	for _, d := range evaluateV2(p, v2, all) {
		res.Decisions = append(res.Decisions, d.Decision)
		if !d.Matched {
			continue
		}
		if res.Targets == nil {
			res.Targets = map[string]Target{}
		}
		if _, dup := res.Targets[d.Pipeline]; !dup {
			res.Targets[d.Pipeline] = d.rule.V2.Spec.Target
			res.Start = append(res.Start, d.Pipeline)
		}
	}
	slices.Sort(res.Start)
	res.Start = slices.Compact(res.Start)
	return res
}

type v2Decision struct {
	Decision
	rule *Rule
}

// evaluateV2 decides the v2 rules of set (already filtered by repository,
// event and ref) for p's paths, in rule order: the index finds, for each
// rule, the first path that its including patterns match and its
// excludes do not veto.
func evaluateV2(p *Push, set *RuleSet, all bool) []v2Decision {
	var out []v2Decision
	if strings.HasPrefix(p.Ref, "refs/tags/") {
		// As GitHub Actions does, paths are not evaluated for tag pushes:
		// a tag names a commit, it changes no file.
		for i := range set.Rules {
			r := &set.Rules[i]
			out = append(out, v2Decision{Decision{Rule: r.Key, Pipeline: r.Pipeline, Matched: true, Reason: "tag push: paths are not evaluated for tags"}, r})
		}
		return out
	}
	hits := set.index.Match(p.Paths)
	for i := range set.Rules {
		r := &set.Rules[i]
		d := Decision{Rule: r.Key, Pipeline: r.Pipeline}
		f := r.V2.paths
		switch {
		case len(hits) > 0 && hits[0].Rule == i:
			h := hits[0]
			hits = hits[1:]
			d.Matched, d.Path, d.Expression = true, h.Path, r.Patterns[h.Pattern].Source
			if hasExclude(f) {
				d.Expression = f[f.decide(h.Path)].p.Source // the pattern that decided
			}
		case all && hasExclude(f):
			d = vetoOf(r, f, p.Paths)
		}
		if !d.Matched && p.Incomplete != "" {
			if r.V2.skip {
				d.Reason = "no known path matched; the change set may be incomplete (" + p.Incomplete + "), and on_incomplete is skip"
			} else {
				d.Matched = true
				d.Reason = "no known path matched, but the change set may be incomplete (" + p.Incomplete + "); on_incomplete: run"
			}
		}
		if d.Matched || all {
			out = append(out, v2Decision{d, r})
		}
	}
	return out
}

func hasExclude(f filter) bool {
	for _, fp := range f {
		if fp.exclude {
			return true
		}
	}
	return false
}

// vetoOf explains an unmatched rule with excludes: the first path that an
// including pattern matched and an exclude removed.
func vetoOf(r *Rule, f filter, paths []string) Decision {
	d := Decision{Rule: r.Key, Pipeline: r.Pipeline}
	for _, path := range paths {
		i := f.decide(path)
		if i < 0 || !f[i].exclude {
			continue
		}
		for _, earlier := range f[:i] {
			if !earlier.exclude && earlier.p.Match(path) {
				d.Vetoed, d.Path, d.Expression = true, path, "!"+f[i].p.Source
				return d
			}
		}
	}
	return d
}

// StartToken is the idempotency token of one start: the target (a
// pipeline's name, a v2 target's Name) started for a delivery's
// evaluation round (0, then one more per replay). The same triple always
// gives the same token, so a retried start does not start a second
// execution; each field is length-prefixed before hashing, so no two
// triples share an encoding (delivery "d#replay-1" round 0 and delivery
// "d" round 1 differ). It fits CodePipeline's clientRequestToken and
// CodeBuild's idempotencyToken (at most 128 of [a-zA-Z0-9-]).
func StartToken(deliveryID string, round int, target string) string {
	// Written out rather than with fmt: every start of every plan makes
	// one, and fmt's allocations were most of a plan's (BENCHMARKS.md,
	// "The plan").
	var stack [256]byte
	var r [20]byte
	b := tokenField(stack[:0], deliveryID)
	b = tokenField(b, strconv.AppendInt(r[:0], int64(round), 10))
	b = tokenField(b, target)
	sum := sha256.Sum256(b)
	var hexed [40]byte
	hex.Encode(hexed[:], sum[:20])
	var out strings.Builder
	out.Grow(len("monohook-") + len(hexed))
	out.WriteString("monohook-")
	out.Write(hexed[:])
	return out.String()
}

// tokenField appends f, length-prefixed, to b.
func tokenField[T string | []byte](b []byte, f T) []byte {
	b = strconv.AppendInt(b, int64(len(f)), 10)
	return append(append(b, ':'), f...)
}
