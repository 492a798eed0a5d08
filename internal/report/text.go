package report

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/monohook/monohook/internal/trigger"
)

// Bounds of a summary: GitHub takes at most 65,535 characters.
const (
	maxPaths   = 20
	maxSummary = 60_000
)

// decisionText says in a sentence or two why d decided as it did.
func decisionText(in Input, d trigger.Decision) string {
	switch {
	case d.Matched && d.Path != "":
		s := fmt.Sprintf("`%s` matched `%s`.", code(d.Path), code(d.Expression))
		if d.Reason != "" {
			s += " " + d.Reason
		}
		if !slices.Contains(in.Result.Start, d.Pipeline) {
			s += "\nThis re-run of the delivery did not select it."
		}
		return s
	case d.Matched:
		return d.Reason
	case d.Vetoed:
		return fmt.Sprintf("No watched path changed: `%s` matched, and the exclude `%s` removed it.", code(d.Path), code(d.Expression))
	case d.Reason != "":
		return d.Reason
	}
	return "No watched path changed."
}

// code keeps s from closing its inline code span.
func code(s string) string { return strings.ReplaceAll(bounded(s, 300), "`", "'") }

// summary is a check's markdown: why, the start's state, the changed
// paths that were evaluated (the first maxPaths), and whether they were
// all that changed.
func summary(in Input, why, state string) string {
	var b strings.Builder
	b.WriteString(why)
	if state != "" {
		b.WriteString("\n\n" + state)
	}
	paths := uniq(in.Event.Paths)
	fmt.Fprintf(&b, "\n\n**Changed paths** (%d):\n", max(len(paths), in.PathCount))
	for _, p := range paths[:min(len(paths), maxPaths)] {
		b.WriteString("- `" + code(p) + "`\n")
	}
	if n := max(len(paths), in.PathCount); n > maxPaths {
		fmt.Fprintf(&b, "- and %d more\n", n-min(len(paths), maxPaths))
	}
	switch {
	case in.Result.Incomplete != "":
		b.WriteString("\n**Change set may be incomplete:** " + bounded(in.Result.Incomplete, 1000))
	default:
		b.WriteString("\nThe change set is complete")
		if n := len(in.Result.Fetched); n > 0 {
			fmt.Fprintf(&b, " (%d paths from the GitHub API added to the payload's)", n)
		}
		b.WriteString(".")
	}
	fmt.Fprintf(&b, "\n\nDelivery `%s`, round %d.", code(in.Event.DeliveryID), in.Round)
	return bounded(b.String(), maxSummary)
}

func uniq(paths []string) []string {
	seen := make(map[string]bool, len(paths))
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// maxDescription is GitHub's limit of a commit status's description.
const maxDescription = 140

// CommitStatus is c as a commit status (where check runs are not
// possible): state pending, success (also for a skipped or neutral
// check, as GitHub counts those as passing), failure or error (the start
// failed), and the title as its description.
func (c Check) CommitStatus() (state, description, targetURL string) {
	switch {
	case c.Status != Completed:
		state = "pending"
	case c.StartFailed:
		state = "error"
	case c.Conclusion == trigger.Success || c.Conclusion == Skipped || c.Conclusion == Neutral:
		state = "success"
	default:
		state = "failure"
	}
	description = c.Title
	if utf8.RuneCountInString(description) > maxDescription {
		r := []rune(description)
		description = string(r[:maxDescription-1]) + "…"
	}
	return state, description, c.DetailsURL
}
