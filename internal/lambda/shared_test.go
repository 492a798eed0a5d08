package lambda

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

// A check two pipelines share (rules naming one report.name) follows both
// executions: it stays pending while either runs and fails when either
// fails. Only the first pipeline's execution was recorded, so the other's
// failure was never seen and the check passed with the first's success.
func TestACheckSharedByTwoExecutionsFollowsBoth(t *testing.T) {
	f := newStatusFixture(t)
	var rs []trigger.Rule
	for _, name := range []string{"api", "web"} {
		s, err := trigger.ParseSpec([]byte("repository: acme/mono\npaths: [\"src/**\"]\nreport: {name: ci/required}\ntarget: {type: codepipeline, pipeline: " + name + "}"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := trigger.NewV2Rule("monohook/rules/"+name+".yaml", s, targets.Registry{})
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	p := push("src/a.go")
	plan := trigger.NewPlan(trigger.PlanInput{Event: p, Rules: trigger.Rules{V2: trigger.NewV2Set(rs, nil)}, Report: true})
	out := trigger.Outcome{Result: plan.Result, Starts: []trigger.StartResult{{Pipeline: "api", ExecutionID: "e-1"}, {Pipeline: "web", ExecutionID: "e-2"}}}
	f.eval.postChecks(context.Background(), p, out)
	change := func(pipeline, id, state string, at int64) {
		detail, _ := json.Marshal(events.CodePipelineEventDetail{Pipeline: pipeline, ExecutionID: id, State: events.CodePipelineState(state), Version: 1})
		if err := f.status.Handle(context.Background(), events.CloudWatchEvent{Source: PipelineSource, DetailType: PipelineDetailType, Region: "eu-west-1", Time: time.Unix(at, 0), ID: "ev", Detail: detail}); err != nil {
			t.Fatal(err)
		}
	}
	last := func() string { all := f.gh.Statuses(); return all[len(all)-1].State }
	change("api", "e-1", "SUCCEEDED", 100)
	if got := last(); got != "pending" {
		t.Errorf("ci/required %s with web still running", got)
	}
	change("web", "e-2", "FAILED", 200)
	if got := last(); got != "failure" {
		t.Errorf("ci/required %s after web failed", got)
	}
	change("api", "e-1", "SUCCEEDED", 300) // redelivered
	if got := last(); got != "failure" {
		t.Errorf("ci/required %s after api's success again (web failed)", got)
	}
}
