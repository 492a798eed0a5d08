package report_test

import (
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/trigger"
)

// Two pipelines whose rules name one check (report: {name: ci/required}),
// both selected: the check passes only when both pipelines did. It showed
// the first one's result alone, so the other's failure passed the
// required check.
func TestACheckSharedByTwoPipelinesFailsWhenEitherFails(t *testing.T) {
	api := rule(t, "monohook/rules/api.yaml", `repository: acme/mono
paths: ["src/**"]
report: {name: "ci/required"}
target: {type: codepipeline, pipeline: api}`)
	web := rule(t, "monohook/rules/web.yaml", `repository: acme/mono
paths: ["src/**"]
report: {name: "ci/required"}
target: {type: codepipeline, pipeline: web}`)
	rs := trigger.Rules{V2: trigger.NewV2Set([]trigger.Rule{api, web}, nil)}
	plan := trigger.NewPlan(trigger.PlanInput{Event: push("src/a.go"), Rules: rs, Report: true})
	for _, failed := range []string{"api", "web"} {
		starts := map[string]report.Start{"api": {Status: "started", Result: trigger.Success}, "web": {Status: "started", Result: trigger.Success}}
		starts[failed] = report.Start{Status: "started", Result: trigger.Failure, ResultDetail: "stage Build failed"}
		cs := report.Checks(report.Input{Event: plan.Event, Result: plan.Result, Starts: starts})
		if len(cs) != 1 || cs[0].Name != "ci/required" {
			t.Fatalf("checks %+v", cs)
		}
		if c := cs[0]; c.Conclusion != trigger.Failure {
			t.Errorf("%s failed: the shared check is %s %s (%q)", failed, c.Status, c.Conclusion, c.Title)
		} else if c.Pipeline != failed || !strings.Contains(c.ExternalID, `"`+failed+`"`) {
			t.Errorf("%s failed: the check reports %s (%s); a re-run is to run the one that failed", failed, c.Pipeline, c.ExternalID)
		}
	}
	starts := map[string]report.Start{"api": {Status: "started", Result: trigger.Success}, "web": {Status: "started"}}
	if c := report.Checks(report.Input{Event: plan.Event, Result: plan.Result, Starts: starts})[0]; c.Status != report.InProgress || c.Pipeline != "web" {
		t.Errorf("web still running: the shared check is %s %s (%q)", c.Status, c.Conclusion, c.Title)
	}
}
