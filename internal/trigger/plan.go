package trigger

import (
	"context"
	"slices"
	"strings"
)

// ChangeSet is what is known of an event's changed paths beyond its
// payload: the plan reads the event's paths together with these facts.
type ChangeSet struct {
	// Fetched are the changed paths the GitHub API gave that the payload
	// did not list.
	Fetched []string
	// Incomplete says why the paths (the payload's and Fetched) may still
	// not be all that changed; "" when they are.
	Incomplete string
}

// Unasked is the change set of p when the GitHub API is not asked: the
// payload's paths only, and why they may be incomplete, with why nothing
// was asked added to the reason.
func Unasked(p *Push, why string) ChangeSet {
	reason := IncompleteReason(p)
	if reason != "" && why != "" {
		reason += "; " + why
	}
	return ChangeSet{Incomplete: reason}
}

// Recorded is the change set a recorded decision was made with, so that
// an explanation sees the paths its evaluation saw.
func (r *Result) Recorded() ChangeSet {
	return ChangeSet{Fetched: r.Fetched, Incomplete: r.Incomplete}
}

// Apply returns a copy of p whose paths are the payload's and the
// fetched ones, and whose Incomplete is the change set's: the event as a
// plan evaluates it. p itself is not changed.
func (c ChangeSet) Apply(p *Push) *Push {
	q := *p
	if len(c.Fetched) > 0 {
		// A fresh slice: p.Paths may share the payload parser's arena.
		q.Paths = append(append(make([]string, 0, len(p.Paths)+len(c.Fetched)), p.Paths...), c.Fetched...)
	}
	q.Incomplete = c.Incomplete
	return &q
}

// PlanInput is everything a plan is made of.
type PlanInput struct {
	// Event is the verified delivery: a push or a pull request.
	Event *Push
	// Round is which evaluation of the delivery this is: 0, then one more
	// per replay. Each start's token depends on it.
	Round int
	// Rules are the rules loaded for Event (see Loader).
	Rules   Rules
	Changes ChangeSet
	// Explain gives every rule a Decision, matched or not; otherwise only
	// matched rules get one.
	Explain bool
	// Report makes the plan's decisions those its GitHub checks show:
	// every rule of the repository gets one, those whose event, branch or
	// tag filters leave the event out too, each with the name of its
	// check (Decision.Check); the unmatched ones are Result.Unselected
	// (in Decisions with Explain).
	Report bool
	// Only, when set, is the one pipeline the plan may start: a re-run
	// of that pipeline's check. The other rules are still decided, and
	// start nothing.
	Only string
}

// Plan is what one evaluation of a delivery decided and what it starts.
type Plan struct {
	// Event is the delivery as evaluated: its paths with those fetched
	// (see ChangeSet.Apply).
	Event *Push
	// Result is the decision with its why: it is what is recorded.
	Result Result
	// Starts are the starts to make, one per name of Result.Start, in its
	// order (sorted by name).
	Starts Starts
}

// NewPlan decides what in.Event starts under in.Rules. It is pure: it
// loads nothing, asks nothing, starts nothing.
func NewPlan(in PlanInput) Plan {
	p := in.Changes.Apply(in.Event)
	res := EvaluateRules(p, in.Rules, in.Explain || in.Report)
	res.Fetched = in.Changes.Fetched
	if in.Report {
		reported(&res, p, in.Rules, in.Explain)
	}
	if in.Only != "" {
		res.Only = in.Only
		res.Start = slices.DeleteFunc(res.Start, func(name string) bool { return name != in.Only })
	}
	plan := Plan{Event: p, Result: res, Starts: make(Starts, len(res.Start))}
	var data *TemplateData
	for i, name := range res.Start {
		s := Start{DeliveryID: p.DeliveryID, Round: in.Round, Name: name, Token: StartToken(p.DeliveryID, in.Round, name)}
		if t, ok := res.Targets[name]; ok {
			if data == nil {
				d := NewTemplateData(p)
				data = &d
			}
			s.Target, s.Data = &t, data
		}
		plan.Starts[i] = s
	}
	return plan
}

// Start is one start a plan decided: plain data, so that a job can carry
// it until it is made. Its JSON is that of the start jobs queued before
// the plan existed (delivery_id, round, pipeline, token, target, data):
// jobs already in a database still read.
type Start struct {
	DeliveryID string `json:"delivery_id"`
	Round      int    `json:"round"`
	// Name is the pipeline of a seed rule, or the v2 target's Name.
	Name  string `json:"pipeline"`
	Token string `json:"token"`
	// Target and Data are set for v2 rules: the target as the rule said
	// when the delivery was evaluated (a later edit of the rule does not
	// change a start already decided), and what its templates see. A seed
	// rule's start has neither: a plain CodePipeline start of Name.
	Target *Target       `json:"target,omitempty"`
	Data   *TemplateData `json:"data,omitempty"`
}

// Request is the StartRequest that makes s; paths gives the changed paths
// to the targets that read them.
func (s Start) Request(paths func(context.Context) ([]string, error)) StartRequest {
	req := StartRequest{Name: s.Name, Token: s.Token, Paths: paths}
	if s.Target != nil {
		req.Target = *s.Target
	}
	if s.Data != nil {
		req.Data = *s.Data
	}
	return req
}

// Starts are a plan's starts, sorted by name.
type Starts []Start

// Named returns the start called name.
func (s Starts) Named(name string) (Start, bool) {
	i, ok := slices.BinarySearchFunc(s, name, func(st Start, name string) int { return strings.Compare(st.Name, name) })
	if !ok {
		return Start{}, false
	}
	return s[i], true
}
