package report_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

func rule(t *testing.T, key, doc string) trigger.Rule {
	t.Helper()
	s, err := trigger.ParseSpec([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	r, err := trigger.NewV2Rule(key, s, targets.Registry{})
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return r
}

func rules(t *testing.T) trigger.Rules {
	api := rule(t, "monohook/rules/api.yaml", `repository: acme/mono
paths: ["api/**"]
target: {type: codepipeline, pipeline: api}`)
	web := rule(t, "monohook/rules/web.yaml", `repository: acme/mono
paths: ["web/**"]
report: {name: "ci/web"}
target: {type: codepipeline, pipeline: web}`)
	rel := rule(t, "monohook/rules/release.yaml", `repository: acme/mono
branches: ["release/**"]
target: {type: codepipeline, pipeline: release}`)
	quiet := rule(t, "monohook/rules/quiet.yaml", `repository: acme/mono
report: {disabled: true}
target: {type: codepipeline, pipeline: quiet}`)
	other := rule(t, "monohook/rules/other.yaml", `repository: acme/other
target: {type: codepipeline, pipeline: other}`)
	seed, err := trigger.NewSeedRule("mono-repo/config/seed.json", "mono", "main", "seed", "docs/.*")
	if err != nil {
		t.Fatal(err)
	}
	return trigger.Rules{Seed: trigger.NewRuleSet("mono", "main", []trigger.Rule{seed}, nil),
		V2: trigger.NewV2Set([]trigger.Rule{api, web, rel, quiet, other}, nil)}
}

func push(paths ...string) *trigger.Push {
	return &trigger.Push{DeliveryID: "d-1", Repo: "mono", FullName: "acme/mono", Ref: "refs/heads/main", After: "abc123", Paths: paths}
}

func checksOf(t *testing.T, p *trigger.Push, starts map[string]report.Start, cs trigger.ChangeSet) map[string]report.Check {
	t.Helper()
	plan := trigger.NewPlan(trigger.PlanInput{Event: p, Rules: rules(t), Changes: cs, Report: true})
	out := map[string]report.Check{}
	for _, c := range report.Checks(report.Input{Event: plan.Event, Result: plan.Result, Starts: starts}) {
		out[c.Name] = c
	}
	return out
}

func TestEveryRuleOfTheRepositoryGetsACheckSayingWhy(t *testing.T) {
	got := checksOf(t, push("api/main.go"), nil, trigger.ChangeSet{})
	if len(got) != 4 {
		t.Fatalf("checks %v, want api, ci/web, release, seed (quiet is disabled, other is another repository)", got)
	}
	api := got["monohook/api"]
	if api.Status != report.Queued || api.Conclusion != "" || !strings.Contains(api.Summary, "`api/main.go` matched `api/**`") {
		t.Errorf("api: %+v", api)
	}
	web := got["ci/web"]
	if web.Status != report.Completed || web.Conclusion != report.Skipped || !strings.Contains(web.Title, "No watched path changed") {
		t.Errorf("web: %+v", web)
	}
	rel := got["monohook/release"]
	if rel.Conclusion != report.Skipped || !strings.Contains(rel.Summary, `branch "main" is not in branches`) {
		t.Errorf("release: %+v", rel)
	}
	if s := got["monohook/seed"]; s.Conclusion != report.Skipped {
		t.Errorf("seed rule: %+v", s)
	}
	d, round, pipeline, ok := report.ParseExternalID(api.ExternalID)
	if !ok || d != "d-1" || round != 0 || pipeline != "api" {
		t.Errorf("external id %q: %q %d %q %v", api.ExternalID, d, round, pipeline, ok)
	}
}

func TestASelectedCheckFollowsItsStart(t *testing.T) {
	for _, c := range []struct {
		start                 report.Start
		status, concl, inText string
		state                 string
	}{
		{report.Start{Status: "retrying", Error: "throttled"}, report.Queued, "", "Changed paths", "pending"},
		{report.Start{Status: "started", ExecutionID: "exec-1", URL: "https://console/x"}, report.InProgress, "", "exec-1", "pending"},
		{report.Start{Status: "started", ExecutionID: "exec-1", URL: "https://console/x", Result: trigger.Failure, ResultDetail: "stage Build failed"}, report.Completed, trigger.Failure, "stage Build failed", "failure"},
		{report.Start{Status: "started", Result: trigger.Success}, report.Completed, trigger.Success, "Changed paths", "success"},
		{report.Start{Status: "started", Result: trigger.TimedOut}, report.Completed, trigger.TimedOut, "", "failure"},
		{report.Start{Status: "failed", Error: "PipelineNotFoundException: no such pipeline"}, report.Completed, trigger.Failure, "PipelineNotFoundException", "error"},
	} {
		got := checksOf(t, push("api/x.go"), map[string]report.Start{"api": c.start}, trigger.ChangeSet{})["monohook/api"]
		if got.Status != c.status || got.Conclusion != c.concl || !strings.Contains(got.Summary, c.inText) || got.DetailsURL != c.start.URL {
			t.Errorf("%+v: %+v", c.start, got)
		}
		if state, _, _ := got.CommitStatus(); state != c.state {
			t.Errorf("%+v: commit status %s, want %s", c.start, state, c.state)
		}
	}
	// A skipped check is a passing commit status.
	if state, _, _ := checksOf(t, push("api/x.go"), nil, trigger.ChangeSet{})["ci/web"].CommitStatus(); state != "success" {
		t.Errorf("skipped as a status: %s", state)
	}
}

func TestSummaryIsBoundedAndSaysHowCompleteTheChangeSetWas(t *testing.T) {
	paths := make([]string, 500)
	for i := range paths {
		paths[i] = fmt.Sprintf("api/%03d.go", i)
	}
	got := checksOf(t, push(paths[:400]...), nil, trigger.ChangeSet{Fetched: paths[400:], Incomplete: "a forced push; the GitHub API lists only part of the changed files"})["monohook/api"]
	if !strings.Contains(got.Summary, "**Changed paths** (500)") || !strings.Contains(got.Summary, "- and 480 more") || strings.Contains(got.Summary, "api/020.go") {
		t.Errorf("paths not bounded:\n%s", got.Summary)
	}
	if !strings.Contains(got.Summary, "may be incomplete:** a forced push") {
		t.Errorf("incomplete change set not said:\n%s", got.Summary)
	}
	got = checksOf(t, push("api/x.go"), nil, trigger.ChangeSet{Fetched: []string{"web/y.ts"}})["ci/web"]
	if got.Conclusion != "" || !strings.Contains(got.Summary, "complete (1 paths from the GitHub API") {
		t.Errorf("fetched path selects web and is counted: %+v", got)
	}
	long := strings.Repeat("é", 200)
	_, desc, _ := report.Check{Title: long}.CommitStatus()
	if n := len([]rune(desc)); n > 140 {
		t.Errorf("description of %d characters", n)
	}
}

func TestOnIncompleteSkipAndReRunsOfOnePipeline(t *testing.T) {
	skip := rule(t, "monohook/rules/skip.yaml", `repository: acme/mono
paths: ["lib/**"]
on_incomplete: skip
target: {type: codepipeline, pipeline: lib}`)
	api := rule(t, "monohook/rules/api.yaml", `repository: acme/mono
paths: ["api/**"]
target: {type: codepipeline, pipeline: api}`)
	rs := trigger.Rules{V2: trigger.NewV2Set([]trigger.Rule{skip, api}, nil)}
	p := push("api/x.go")
	plan := trigger.NewPlan(trigger.PlanInput{Event: p, Rules: rs, Changes: trigger.ChangeSet{Incomplete: "a forced push"}, Report: true})
	cs := report.Checks(report.Input{Event: plan.Event, Result: plan.Result})
	if len(cs) != 2 || cs[1].Name != "monohook/lib" || cs[1].Conclusion != report.Skipped || !strings.Contains(cs[1].Summary, "on_incomplete is skip") {
		t.Errorf("%+v", cs)
	}
	plan = trigger.NewPlan(trigger.PlanInput{Event: p, Round: 1, Rules: rs, Report: true, Only: "lib"})
	cs = report.Checks(report.Input{Event: plan.Event, Round: 1, Result: plan.Result})
	if len(plan.Starts) != 0 || len(cs) != 1 || cs[0].Name != "monohook/lib" {
		t.Errorf("re-run of lib: starts %v, checks %+v", plan.Starts, cs)
	}
}

func TestASkippedCheckCoversOnlyItsOwnDelivery(t *testing.T) {
	c := report.Check{Conclusion: report.Skipped, ExternalID: report.ExternalID("d-1", 1, "api")}
	for _, x := range []struct {
		ext    string
		exists bool
		want   bool
	}{
		{"", false, true},
		{report.ExternalID("d-1", 0, "api"), true, true}, // an earlier round of its delivery
		{report.ExternalID("d-2", 0, "api"), true, false},
		{"", true, false}, // a commit status (no external id), or another App's check
	} {
		if got := c.Posts(x.ext, x.exists); got != x.want {
			t.Errorf("Posts(%q, %v) = %v", x.ext, x.exists, got)
		}
	}
	c.Conclusion = ""
	if !c.Posts(report.ExternalID("d-2", 0, "api"), true) {
		t.Error("a selected check did not post over another delivery's")
	}
}
