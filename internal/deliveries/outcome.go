package deliveries

import (
	"fmt"
	"strings"
)

// Outcome says in a few words what became of a delivery's latest round:
// skipped (a tag, a deleted branch), not evaluated yet, nothing to start,
// or how its starts went. Replays and duplicates follow.
func (s Summary) Outcome() string {
	var out string
	switch {
	case strings.HasPrefix(s.Ref, "refs/tags/"):
		out = "skipped: tag"
	case s.SHA != "" && strings.Trim(s.SHA, "0") == "":
		out = "skipped: branch deleted"
	case s.Status == "received":
		out = "waiting"
	case s.Status == "retrying":
		out = "evaluation retrying"
	case s.Status == "unreadable":
		out = "unreadable payload"
	case s.Failed > 0:
		out = "failed"
	case s.Pending > 0:
		out = "starting"
	case s.Started > 0:
		out = "started"
	case s.DryRun > 0:
		out = "dry run"
	default:
		out = "nothing to start"
	}
	if s.Round > 0 {
		out += fmt.Sprintf(" · replayed %d×", s.Round)
	}
	switch {
	case s.Duplicates == 1:
		out += " · 1 duplicate"
	case s.Duplicates > 1:
		out += fmt.Sprintf(" · %d duplicates", s.Duplicates)
	}
	return out
}

// Summarize counts the starts of d's latest round by state, as Find does
// for each delivery of a page.
func Summarize(d Delivery) Summary {
	s := Summary{Delivery: d}
	for _, st := range d.Starts {
		if st.Round != d.Round {
			continue
		}
		switch st.Status {
		case "started":
			s.Started++
		case "failed":
			s.Failed++
		case "dry-run":
			s.DryRun++
		default:
			s.Pending++
		}
	}
	return s
}
