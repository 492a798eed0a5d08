// Package report owns what monohook tells GitHub about a delivery: for
// every rule of the repository, the check (a check run, or a commit
// status) that shows whether its pipeline was selected and why, and how
// the start and the execution went. It is pure: the deliveries package
// stores and posts what it builds.
package report

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/monohook/monohook/internal/trigger"
)

// Check statuses and the conclusion of a pipeline that was not selected:
// GitHub counts a skipped check run as passing a required check.
const (
	Queued     = "queued"
	InProgress = "in_progress"
	Completed  = "completed"
	Skipped    = "skipped"
	Neutral    = "neutral"
)

// Input is what a delivery's round decided and how its starts went.
type Input struct {
	Event *trigger.Push // the delivery as evaluated
	Round int
	// Result is the recorded decision, made with PlanInput.Report.
	Result trigger.Result
	// Starts are the round's starts, by pipeline.
	Starts map[string]Start
	// PathCount, when more than Event.Paths holds, is how many distinct
	// paths changed: Event.Paths may keep only the first of them (the
	// Lambda eval function's record of a start is bounded in size).
	PathCount int `json:",omitempty"`
}

// Start is how one start of the round is doing, as its row says.
type Start struct {
	Status       string // pending, retrying, started, failed, dry-run
	ExecutionID  string
	Error        string
	URL          string
	Result       string // a trigger conclusion once the execution ended
	ResultDetail string
}

// Check is one check as GitHub is to show it.
type Check struct {
	Name string
	// Pipeline is the start the check reports; its ExternalID names the
	// delivery, round and pipeline (see ParseExternalID).
	Pipeline   string
	ExternalID string
	Status     string
	Conclusion string // with Completed
	Title      string
	Summary    string // markdown
	DetailsURL string
	// StartFailed: the start failed for good (a commit status says error).
	StartFailed bool
}

// Checks are the checks of in, one per check name, sorted by name. Two
// rules with one check name (two rules naming one pipeline) share it: it
// reports the pipeline selected, if either is.
func Checks(in Input) []Check {
	byName := map[string][]trigger.Decision{}
	for _, d := range slices.Concat(in.Result.Decisions, in.Result.Unselected) {
		if d.Check == "" || (in.Result.Only != "" && d.Pipeline != in.Result.Only) {
			continue
		}
		byName[d.Check] = append(byName[d.Check], d)
	}
	out := make([]Check, 0, len(byName))
	for name, ds := range byName {
		out = append(out, check(in, name, ds))
	}
	slices.SortFunc(out, func(a, b Check) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// check is the check name of the decisions ds. Of the pipelines it
// reports that were selected, it shows the one furthest from passing (see
// rank): a check two pipelines share passes only when both did.
func check(in Input, name string, ds []trigger.Decision) Check {
	var shown *Check
	for _, d := range ds {
		if d.Matched && slices.Contains(in.Result.Start, d.Pipeline) {
			if c := selected(in, name, d); shown == nil || rank(c) > rank(*shown) {
				shown = &c
			}
		}
	}
	if shown != nil {
		return *shown
	}
	d := ds[0]
	c := Check{Name: name, Pipeline: d.Pipeline, ExternalID: ExternalID(in.Event.DeliveryID, in.Round, d.Pipeline)}
	why := decisionText(in, d)
	c.Status, c.Conclusion = Completed, Skipped
	c.Title = "Not selected: " + firstLine(why)
	c.Summary = summary(in, why, "")
	return c
}

// rank orders a selected pipeline's checks from passing (0: success, or
// a dry run) through not done yet (1) to failed (2).
func rank(c Check) int {
	switch {
	case c.Status != Completed:
		return 1
	case c.Conclusion == trigger.Success || c.Conclusion == Neutral:
		return 0
	}
	return 2
}

// selected is the check of d, a decision that selected its pipeline.
func selected(in Input, name string, d trigger.Decision) Check {
	c := Check{Name: name, Pipeline: d.Pipeline, ExternalID: ExternalID(in.Event.DeliveryID, in.Round, d.Pipeline)}
	why := decisionText(in, d)
	st, ok := in.Starts[d.Pipeline]
	c.DetailsURL = st.URL
	switch {
	case !ok || st.Status == "pending" || st.Status == "retrying":
		c.Status, c.Title = Queued, "Selected: starting "+d.Pipeline
	case st.Status == "failed":
		c.Status, c.Conclusion, c.Title, c.StartFailed = Completed, trigger.Failure, "The start of "+d.Pipeline+" failed", true
		return withSummary(c, in, why, "**Start failed:** "+bounded(st.Error, 2000))
	case st.Status == "dry-run":
		c.Status, c.Conclusion, c.Title = Completed, Neutral, "Dry run: "+d.Pipeline+" was not started"
	case st.Result != "":
		c.Status, c.Conclusion = Completed, conclusion(st.Result)
		c.Title = d.Pipeline + ": " + strings.ReplaceAll(st.Result, "_", " ")
		if c.Conclusion != st.Result {
			c.Title = d.Pipeline + ": result unknown"
		}
		return withSummary(c, in, why, executionLine(st)+"\n\n"+bounded(st.ResultDetail, 2000))
	default:
		c.Status, c.Title = InProgress, d.Pipeline+" is running"
	}
	return withSummary(c, in, why, executionLine(st))
}

func withSummary(c Check, in Input, why, state string) Check {
	c.Summary = summary(in, why, state)
	return c
}

func executionLine(st Start) string {
	if st.ExecutionID == "" {
		return ""
	}
	return "Execution: `" + bounded(st.ExecutionID, 200) + "`"
}

// conclusion is a result as GitHub's conclusions name it. Any other
// (unknown: monohook could not follow the execution; a value this version
// does not know) is a failure: neutral would pass a required check whose
// pipeline may well have failed.
func conclusion(result string) string {
	switch result {
	case trigger.Success, trigger.Failure, trigger.Cancelled, trigger.TimedOut:
		return result
	}
	return trigger.Failure
}

// ExternalID names a check's delivery, round and pipeline, as its
// external_id: a re-run request of the check comes back with it.
func ExternalID(delivery string, round int, pipeline string) string {
	b, _ := json.Marshal([]any{delivery, round, pipeline})
	return string(b)
}

// ParseExternalID reads an ExternalID back; ok is false for any other
// string (another App's, or damaged).
func ParseExternalID(s string) (delivery string, round int, pipeline string, ok bool) {
	var v []json.RawMessage
	if len(s) > 1024 || json.Unmarshal([]byte(s), &v) != nil || len(v) != 3 {
		return "", 0, "", false
	}
	if json.Unmarshal(v[0], &delivery) != nil || json.Unmarshal(v[1], &round) != nil || json.Unmarshal(v[2], &pipeline) != nil {
		return "", 0, "", false
	}
	return delivery, round, pipeline, delivery != "" && pipeline != "" && round >= 0
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return bounded(s, 200)
}

// bounded cuts s to at most n bytes, on a rune boundary.
func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Posts reports whether c may be posted on a commit that has a check of
// its name already (exists), written for externalID: a check of a
// pipeline that was not selected never covers another delivery's check of
// that name (a branch created at a commit that main's push is building, a
// tag pushed on it), whose own result it is. A later round of the same
// delivery (a replay, a re-run) does.
func (c Check) Posts(externalID string, exists bool) bool {
	if !exists || c.Conclusion != Skipped {
		return true
	}
	theirs, _, _, ok := ParseExternalID(externalID)
	ours, _, _, _ := ParseExternalID(c.ExternalID)
	return ok && theirs == ours
}
