package report_test

import (
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/trigger"
)

// A record that keeps only the first paths still says how many changed.
func TestPathCountOfAShortenedEvent(t *testing.T) {
	plan := trigger.NewPlan(trigger.PlanInput{Event: push("api/a.go", "api/b.go"), Rules: rules(t), Report: true})
	for _, c := range report.Checks(report.Input{Event: plan.Event, Result: plan.Result, PathCount: 5000}) {
		if !strings.Contains(c.Summary, "**Changed paths** (5000)") || !strings.Contains(c.Summary, "- and 4998 more") {
			t.Errorf("%s: %s", c.Name, c.Summary)
		}
	}
}
