package deliveries_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/metrics"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/trigger"
)

// follow is Options that follow CodePipeline executions through the fake,
// polling at once.
func (e *env) follow(t *testing.T, opts deliveries.Options) deliveries.Options {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	opts.Follower = codepipeline.NewFollower(cfg)
	if opts.FollowPoll == 0 {
		opts.FollowPoll, opts.FollowPollMax = time.Millisecond, 5*time.Millisecond
	}
	return opts
}

// startOf waits until delivery id's start of pipeline has a result.
func startOf(t *testing.T, q *deliveries.Queue, id, pipeline string) deliveries.Start {
	t.Helper()
	var got deliveries.Start
	waitFor(t, func() bool {
		d, err := q.Get(context.Background(), id)
		for _, s := range d.Starts {
			if s.Pipeline == pipeline && err == nil {
				got = s
			}
		}
		return got.Result != ""
	})
	return got
}

// resultsCounted is monohook_pipeline_results_total's line for a
// codepipeline conclusion, as scraped.
func resultsCounted(m *metrics.Metrics, conclusion string) string {
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	prefix := `monohook_pipeline_results_total{conclusion="` + conclusion + `",target="codepipeline"} `
	for _, l := range strings.Split(w.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			return v
		}
	}
	return "none"
}

// A started execution is polled until it ends, and its result recorded:
// one InProgress → Succeeded, the other → Failed with CodePipeline's
// summary; no poll after the end.
func TestStartIsFollowedToItsResult(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "api/.*")
		e.rule(t, "web", "web/.*")
		e.fake.Script("api", fakeaws.Outcome{InProgress: 2, Status: "Succeeded"})
		e.fake.Script("web", fakeaws.Outcome{InProgress: 1, Status: "Failed", Summary: "Action Build failed"})
		m := metrics.New()
		q := e.open(t, dsn, e.follow(t, deliveries.Options{Metrics: m}))
		if err := q.Accept(context.Background(), delivery("d1", "api/x.go", "web/y.go")); err != nil {
			t.Fatal(err)
		}
		api, web := startOf(t, q, "d1", "api"), startOf(t, q, "d1", "web")
		if api.Result != trigger.Success || api.ResultDetail != "Succeeded" || api.Finished == nil ||
			!strings.Contains(api.URL, "/pipelines/api/executions/"+api.ExecutionID+"/") {
			t.Errorf("api: %+v", api)
		}
		if web.Result != trigger.Failure || web.ResultDetail != "Failed: Action Build failed" || web.Finished == nil {
			t.Errorf("web: %+v", web)
		}
		if n := e.fake.Gets(); n != 5 {
			t.Errorf("%d polls; want 3 for api and 2 for web", n)
		}
		// Counted just after the commit that a reader sees the result by.
		waitFor(t, func() bool { return resultsCounted(m, "success") != "none" })
		if got := resultsCounted(m, "success"); got != "1" {
			t.Errorf("success counted %s", got)
		}
	})
}

// A process stopped while it follows an execution leaves its follow job;
// the next process resumes it and records the result once.
func TestRestartWhileFollowingResumes(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", ".*")
		m := metrics.New()
		first := e.open(t, dsn, e.follow(t, deliveries.Options{Metrics: m}))
		if err := first.Accept(context.Background(), delivery("d1", "x")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return e.fake.Gets() >= 2 }) // followed, still in progress
		if err := first.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		polled := e.fake.Gets()
		e.fake.Script("api", fakeaws.Outcome{Status: "Succeeded"})
		second := e.open(t, dsn, e.follow(t, deliveries.Options{Metrics: m}))
		s := startOf(t, second, "d1", "api")
		if s.Result != trigger.Success || e.fake.Gets() <= polled {
			t.Errorf("%+v after %d polls", s, e.fake.Gets())
		}
		waitFor(t, func() bool { return resultsCounted(m, "success") != "none" })
		if got := resultsCounted(m, "success"); got != "1" {
			t.Errorf("success counted %s times", got)
		}
		if n := len(e.fake.Calls()); n != 1 {
			t.Errorf("%d starts", n)
		}
	})
}

// Following is bounded: past FollowFor the result is timed_out, saying
// monohook stopped following. An execution that cannot be followed (the
// permission to ask refused) has an unknown result at once.
func TestFollowingIsBounded(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "forever", "forever/.*")
		e.rule(t, "denied", "denied/.*")
		e.fake.FailNextGets("denied", "AccessDeniedException")
		q := e.open(t, dsn, e.follow(t, deliveries.Options{FollowFor: 50 * time.Millisecond}))
		if err := q.Accept(context.Background(), delivery("d1", "forever/x", "denied/x")); err != nil {
			t.Fatal(err)
		}
		s := startOf(t, q, "d1", "forever")
		if s.Result != trigger.TimedOut || !strings.Contains(s.ResultDetail, "monohook stopped following it after 50ms") || s.URL == "" {
			t.Errorf("forever: %+v", s)
		}
		s = startOf(t, q, "d1", "denied")
		if s.Result != deliveries.ResultUnknown || !strings.Contains(s.ResultDetail, "AccessDeniedException") {
			t.Errorf("denied: %+v", s)
		}
	})
}

// Throttling while following is asked again, and is no attempt: the
// execution is still followed to its end.
func TestThrottledFollowIsAskedAgain(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "api", ".*")
	var codes []string
	for range 4 { // one more than the SDK's own three attempts: a poll fails
		codes = append(codes, "ThrottlingException")
	}
	e.fake.FailNextGets("api", codes...)
	e.fake.Script("api", fakeaws.Outcome{Status: "Succeeded"})
	q := e.open(t, sqliteDSN(t), e.follow(t, deliveries.Options{}))
	if err := q.Accept(context.Background(), delivery("d1", "x")); err != nil {
		t.Fatal(err)
	}
	if s := startOf(t, q, "d1", "api"); s.Result != trigger.Success {
		t.Errorf("%+v", s)
	}
}

// CodeBuild builds are followed through the same jobs, each to its own
// result, and those polled together are asked about in shared calls.
func TestBuildsAreFollowed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	builds := fakeaws.NewCodeBuild()
	t.Cleanup(builds.Close)
	builds.Setenv(t)
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 12 {
		project := fmt.Sprintf("p%02d", i)
		status, conclusion := "SUCCEEDED", trigger.Success
		if i%3 == 0 {
			status, conclusion = "FAILED", trigger.Failure
		}
		builds.Script(project, fakeaws.Outcome{InProgress: 1, Status: status, Phase: "BUILD", Summary: "exit status 2"})
		want["codebuild:"+project] = conclusion
		rule := "repository: org/repo\npaths: [\"**\"]\ntarget: {type: codebuild, project: " + project + "}\n"
		if _, err := e.store.PutV2(ctx, project, []byte(rule)); err != nil {
			t.Fatal(err)
		}
	}
	aws := targets.Config{AWS: &cfg}
	q := e.openWith(t, sqliteDSN(t), targets.Starters(aws), deliveries.Options{Follower: targets.Followers(aws),
		FollowPoll: time.Millisecond, FollowPollMax: 5 * time.Millisecond})
	if err := q.Accept(ctx, delivery("d1", "x")); err != nil {
		t.Fatal(err)
	}
	for name, conclusion := range want {
		if s := startOf(t, q, "d1", name); s.Result != conclusion || !strings.Contains(s.URL, "/codebuild/projects/") {
			t.Errorf("%s: %+v, want %s", name, s, conclusion)
		}
	}
	asked := 0
	for _, b := range builds.Batches() {
		asked += len(b)
	}
	t.Logf("%d builds asked about %d times in %d calls", len(want), asked, len(builds.Batches()))
}
