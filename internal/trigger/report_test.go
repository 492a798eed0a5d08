package trigger_test

import (
	"strings"
	"testing"
	"unicode/utf8"

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

// The default check name of a target named by a URL shows no path, user
// information or query (a secret may be in them), tells two URLs of one
// host apart, and no default name is longer than a report.name may be.
func TestDefaultCheckNameHidesURLs(t *testing.T) {
	slack := trigger.DefaultCheckName("http:https://hooks.slack.com/services/T000/B000/SECRETTOKEN")
	other := trigger.DefaultCheckName("http:https://hooks.slack.com/services/T111/B111/OTHER")
	userinfo := trigger.DefaultCheckName("http:https://user:pa55@ci.example.com/build")
	for _, n := range []string{slack, other, userinfo} {
		if strings.Contains(n, "SECRETTOKEN") || strings.Contains(n, "services") || strings.Contains(n, "pa55") || strings.Contains(n, "user") {
			t.Errorf("%q shows more of its URL than the host", n)
		}
	}
	if !strings.HasPrefix(slack, "monohook/http:https://hooks.slack.com/") || slack == other {
		t.Errorf("%q, %q: want the host, and two URLs told apart", slack, other)
	}
	if !strings.HasPrefix(userinfo, "monohook/http:https://ci.example.com/") {
		t.Errorf("%q: want the host without its user information", userinfo)
	}
	if got := trigger.DefaultCheckName("api"); got != "monohook/api" {
		t.Errorf("a pipeline's: %q", got)
	}
	long := trigger.DefaultCheckName(strings.Repeat("é", 200))
	if len(long) > len("monohook/")+100 || !utf8.ValidString(long) {
		t.Errorf("a long name: %d bytes, valid %v", len(long), utf8.ValidString(long))
	}
}
