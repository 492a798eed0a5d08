package trigger_test

import (
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

func TestReportFieldIsValidated(t *testing.T) {
	for doc, want := range map[string]string{
		`report: {name: "ci/api", disabled: true}`:           "name and disabled",
		`report: {name: "` + strings.Repeat("x", 101) + `"}`: "at most 100",
		`report: {name: "a\u0007b"}`:                         "control character",
		`report: {name: " api"}`:                             "space",
		`report: {naem: "api"}`:                              `unknown field "naem"`,
	} {
		s, err := trigger.ParseSpec([]byte("repository: acme/mono\ntarget: {type: codepipeline, pipeline: api}\n" + doc))
		if err == nil {
			_, err = trigger.NewV2Rule("k", s, targets.Registry{})
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
	r := v2rule(t, "k", "repository: acme/mono\ntarget: {type: codepipeline, pipeline: api}\nreport: {name: ci/api}")
	if r.CheckName() != "ci/api" {
		t.Errorf("name %q", r.CheckName())
	}
	r = v2rule(t, "k", "repository: acme/mono\ntarget: {type: codepipeline, pipeline: api}")
	if r.CheckName() != "monohook/api" {
		t.Errorf("default name %q", r.CheckName())
	}
}

// A merge group is decided on its base branch, by the rules that take
// merge_group events; the others say why they do not run.
func TestMergeGroupIsDecidedOnItsBaseBranch(t *testing.T) {
	queue := v2rule(t, "a", "repository: acme/mono\nevents: [push, merge_group]\nbranches: [main]\npaths: [\"api/**\"]\ntarget: {type: codepipeline, pipeline: api}")
	pushOnly := v2rule(t, "b", "repository: acme/mono\npaths: [\"api/**\"]\ntarget: {type: codepipeline, pipeline: web}")
	p := &trigger.Push{Event: "merge_group", Repo: "mono", FullName: "acme/mono", Ref: "refs/heads/gh-readonly-queue/main/pr-7-bbb",
		BaseBranch: "main", Before: "bbb", After: "hhh", Paths: []string{"api/x.go"}}
	plan := trigger.NewPlan(trigger.PlanInput{Event: p, Rules: trigger.Rules{V2: trigger.NewV2Set([]trigger.Rule{queue, pushOnly}, nil)}, Report: true})
	if len(plan.Starts) != 1 || plan.Starts[0].Name != "api" || plan.Starts[0].Data.Branch != "main" {
		t.Fatalf("starts %+v", plan.Starts)
	}
	var why string
	for _, d := range plan.Result.Unselected {
		if d.Pipeline == "web" {
			why = d.Reason
		}
	}
	if why != "the rule is not for merge_group events" {
		t.Errorf("push-only rule: %q (%+v)", why, plan.Result.Decisions)
	}
	p.BaseBranch = "dev"
	plan = trigger.NewPlan(trigger.PlanInput{Event: p, Rules: trigger.Rules{V2: trigger.NewV2Set([]trigger.Rule{queue}, nil)}, Report: true})
	if len(plan.Starts) != 0 || len(plan.Result.Decisions) != 0 || len(plan.Result.Unselected) != 1 || !strings.Contains(plan.Result.Unselected[0].Reason, `base branch "dev"`) {
		t.Errorf("merge group into dev: %+v", plan.Result)
	}
}
