package lambda

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/trigger"
)

type statusFixture struct {
	gh     *fakegithub.GitHub
	bucket *blob.Bucket
	eval   *Eval
	status *Status
}

// newStatusFixture reports with a token: commit statuses.
func newStatusFixture(t *testing.T) *statusFixture {
	t.Helper()
	f := &statusFixture{gh: fakegithub.New("gh-token")}
	t.Cleanup(f.gh.Close)
	var err error
	if f.bucket, err = fileblob.OpenBucket(t.TempDir(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.bucket.Close() })
	c, err := githubapi.New(githubapi.Config{URL: f.gh.URL, Token: "gh-token"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	f.eval = &Eval{Checks: &Checks{GitHub: c, Statuses: true}, Bucket: f.bucket, Log: log}
	f.status = &Status{Checks: &Checks{GitHub: c}, Bucket: f.bucket, Log: log}
	return f
}

// evaluate plans p against two seed rules (api: services/api/, docs:
// docs/) as the eval function does, api started as execution e-1, and
// reports it.
func (f *statusFixture) evaluate(t *testing.T, p *trigger.Push) {
	t.Helper()
	var rs []trigger.Rule
	for _, name := range []string{"api", "docs"} {
		expr := map[string]string{"api": "services/api/.*", "docs": "docs/.*"}[name]
		r, err := trigger.NewSeedRule("mono-repo/config/"+name+".json", "mono", "main", name, expr)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	plan := trigger.NewPlan(trigger.PlanInput{Event: p, Rules: trigger.Rules{Seed: trigger.NewRuleSet("mono", "main", rs, nil)}, Report: true})
	out := trigger.Outcome{Result: plan.Result, Starts: []trigger.StartResult{{Pipeline: "api", ExecutionID: "e-1", URL: "https://console/e-1"}}}
	f.eval.postChecks(context.Background(), p, out)
}

func push(paths ...string) *trigger.Push {
	return &trigger.Push{DeliveryID: "d-1", Repo: "mono", FullName: "acme/mono", Ref: "refs/heads/main", After: "abc123", Commits: 1, Paths: paths}
}

func pipelineChange(t *testing.T, state string, at time.Time) events.CloudWatchEvent {
	t.Helper()
	detail, _ := json.Marshal(events.CodePipelineEventDetail{Pipeline: "api", ExecutionID: "e-1", State: events.CodePipelineState(state), Version: 1})
	return events.CloudWatchEvent{Source: PipelineSource, DetailType: PipelineDetailType, Region: "eu-west-1", Time: at, ID: "ev", Detail: detail}
}

// With a token, the eval function posts commit statuses (pending for the
// started pipeline, success for the one not selected) and the status
// function posts the result as the execution's record says.
func TestStatusesWithAToken(t *testing.T) {
	f := newStatusFixture(t)
	f.evaluate(t, push("services/api/x.go"))
	got := map[string]string{}
	for _, s := range f.gh.Statuses() {
		got[s.Context] = s.State
	}
	if got["monohook/api"] != "pending" || got["monohook/docs"] != "success" || len(f.gh.CheckRuns()) != 0 {
		t.Fatalf("statuses %v, check runs %d", got, len(f.gh.CheckRuns()))
	}
	if err := f.status.Handle(context.Background(), pipelineChange(t, "FAILED", time.Unix(100, 0))); err != nil {
		t.Fatal(err)
	}
	all := f.gh.Statuses()
	last := all[len(all)-1]
	if last.Context != "monohook/api" || last.State != "failure" || last.TargetURL != "https://console/e-1" || last.SHA != "abc123" {
		t.Errorf("after FAILED: %+v", last)
	}
	// The eval function retried leaves the recorded execution's status
	// to the status function.
	f.evaluate(t, push("services/api/x.go"))
	for _, st := range f.gh.Statuses()[len(all):] {
		if st.Context == "monohook/api" {
			t.Errorf("the retried eval function posted %+v", st)
		}
	}
}

// A push of more paths than a record holds keeps the paths its check
// shows and how many changed: the record stays under its bound and the
// check still counts every path.
func TestRecordIsBounded(t *testing.T) {
	f := newStatusFixture(t)
	paths := make([]string, 20_000)
	for i := range paths {
		paths[i] = fmt.Sprintf("services/api/%s/%05d.go", strings.Repeat("d", 30), i)
	}
	f.evaluate(t, push(paths...))
	attrs, err := f.bucket.Attributes(context.Background(), ExecutionPrefix+"codepipeline/api/e-1.json")
	if err != nil || attrs.Size > maxRecord {
		t.Fatalf("record: %v, %d bytes (at most %d)", err, attrs.Size, maxRecord)
	}
	if err := f.status.Handle(context.Background(), pipelineChange(t, "SUCCEEDED", time.Unix(100, 0))); err != nil {
		t.Fatal(err)
	}
	rec, err := readRecord(context.Background(), f.bucket, ExecutionPrefix+"codepipeline/api/e-1.json")
	if err != nil || rec.Input.PathCount != 20_000 || len(rec.Input.Event.Paths) != 20 || !rec.Ended {
		t.Errorf("record %v: %d paths kept of %d, ended %v", err, len(rec.Input.Event.Paths), rec.Input.PathCount, rec.Ended)
	}
}

// A state change older than the applied one, or a STARTED after the
// end, is stale; a RESUMED later than a FAILED is not (a retried stage).
func TestStale(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ended := &execRecord{AppliedAt: t0, Ended: true}
	running := &execRecord{AppliedAt: t0}
	for _, c := range []struct {
		rec   *execRecord
		state string
		done  bool
		at    time.Time
		want  bool
	}{
		{ended, "STARTED", false, t0.Add(time.Second), true},
		{ended, "IN_PROGRESS", false, t0.Add(time.Second), true},
		{ended, "RESUMED", false, t0, true},
		{ended, "RESUMED", false, t0.Add(time.Second), false},
		{ended, "SUCCEEDED", true, t0, false}, // a repeated delivery: posted again, the same
		{running, "SUCCEEDED", true, t0.Add(-time.Second), true},
		{running, "FAILED", true, t0, false},
		{&execRecord{}, "STARTED", false, t0, false},
	} {
		sc := stateChange{state: c.state, at: c.at, progress: trigger.Progress{Done: c.done}}
		if got := stale(c.rec, sc); got != c.want {
			t.Errorf("%+v, %s at %v: stale %v, want %v", c.rec, c.state, c.at, got, c.want)
		}
	}
}

// A deleted branch has no commit to post on: nothing is asked of GitHub.
func TestNoChecksForADeletedBranch(t *testing.T) {
	f := newStatusFixture(t)
	f.eval.Checks.Statuses = false
	p := push()
	p.Deleted, p.After = true, "0000000000000000000000000000000000000000"
	f.evaluate(t, p)
	if r := f.gh.Requests(); len(r) != 0 {
		t.Errorf("requests %v", r)
	}
}

// A v2 codepipeline target's execution is recorded under its pipeline;
// kinds EventBridge does not tell of have no record.
func TestRecordKey(t *testing.T) {
	s := trigger.StartResult{Pipeline: "deploy", ExecutionID: "e-1"}
	v2 := trigger.NewTarget("codepipeline", map[string]any{"pipeline": "deploy"})
	for _, c := range []struct {
		kind   string
		target trigger.Target
		want   string
	}{
		{"codepipeline", trigger.Target{}, ExecutionPrefix + "codepipeline/deploy/e-1.json"},
		{"codepipeline", v2, ExecutionPrefix + "codepipeline/deploy/e-1.json"},
		{"http", trigger.Target{}, ""},
		{"github-actions", trigger.Target{}, ""},
	} {
		if got := recordKey(c.kind, s, c.target); got != c.want {
			t.Errorf("%s %+v: %q, want %q", c.kind, c.target, got, c.want)
		}
	}
	if got := recordKey("codebuild", trigger.StartResult{Pipeline: "codebuild:web", ExecutionID: "web:b-1"}, trigger.Target{}); got != ExecutionPrefix+"codebuild/web:b-1.json" {
		t.Errorf("codebuild: %q", got)
	}
}

// GitHub down while the eval function reports: the records are written
// all the same, and the status function creates the check when the
// execution ends.
func TestCheckCreatedAtTheEndWhenGitHubWasDown(t *testing.T) {
	f := newStatusFixture(t)
	f.eval.Checks.Statuses = false
	f.eval.Checks.Timeout = time.Second
	f.gh.FailNext(1 << 20)
	f.evaluate(t, push("services/api/x.go"))
	f.gh.FailNext(0)
	if n := len(f.gh.CheckRuns()); n != 0 {
		t.Fatalf("%d check runs while GitHub was down", n)
	}
	if err := f.status.Handle(context.Background(), pipelineChange(t, "STARTED", time.Unix(50, 0))); err != nil {
		t.Fatal(err)
	}
	if n := len(f.gh.CheckRuns()); n != 0 {
		t.Errorf("a STARTED created %d check runs: the eval function's to create", n)
	}
	if err := f.status.Handle(context.Background(), pipelineChange(t, "SUCCEEDED", time.Unix(100, 0))); err != nil {
		t.Fatal(err)
	}
	runs := f.gh.CheckRuns()
	if len(runs) != 1 || runs[0].Name != "monohook/api" || runs[0].Conclusion != "success" || runs[0].HeadSHA != "abc123" {
		t.Errorf("check runs %+v", runs)
	}
}
