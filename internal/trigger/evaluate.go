package trigger

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
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
}

// Skip reasons for pushes that start nothing whatever the rules say.
const (
	SkipDeleted   = "the ref was deleted"
	SkipTag       = "tag pushes never match branch rules"
	SkipNotBranch = "the ref is not a branch"
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

// StartToken is the idempotency token of starting pipeline for a delivery:
// the same delivery and pipeline always give the same token, so a retried
// start does not start a second execution. It fits CodePipeline's
// clientRequestToken (at most 128 of [a-zA-Z0-9-]).
func StartToken(deliveryID, pipeline string) string {
	sum := sha256.Sum256([]byte(deliveryID + "\x00" + pipeline))
	return "monohook-" + hex.EncodeToString(sum[:20])
}
