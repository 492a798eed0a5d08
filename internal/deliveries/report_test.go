package deliveries_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/pgtest"
	"github.com/monohook/monohook/internal/trigger"
)

func reportingTo(t *testing.T, g *fakegithub.GitHub, statuses bool) *deliveries.ReportOptions {
	t.Helper()
	c, err := githubapi.New(githubapi.Config{URL: g.URL, Token: "gh-token", MaxWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &deliveries.ReportOptions{GitHub: c, Statuses: statuses}
}

func runNamed(g *fakegithub.GitHub, name string) (fakegithub.CheckRun, bool) {
	for _, r := range g.CheckRuns() {
		if r.Name == name {
			return r, true
		}
	}
	return fakegithub.CheckRun{}, false
}

func waitRun(t *testing.T, g *fakegithub.GitHub, name string, cond func(fakegithub.CheckRun) bool) fakegithub.CheckRun {
	t.Helper()
	var got fakegithub.CheckRun
	waitFor(t, func() bool {
		r, ok := runNamed(g, name)
		got = r
		return ok && cond(r)
	})
	return got
}

func creates(g *fakegithub.GitHub) map[string]int {
	n := map[string]int{}
	for _, e := range g.CheckEvents() {
		if e.Op == "create" {
			n[e.Run.Name]++
		}
	}
	return n
}

// A push selecting api and not web: web's check completes skipped with its
// reason at once, api's goes queued or in progress and then completes
// with the result; a crash that lost the record of the check runs
// updates them, never creates them twice.
func TestChecksFollowTheStarts(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "src/api/.*")
		e.rule(t, "web", "src/web/.*")
		g := fakegithub.New("gh-token")
		defer g.Close()
		q := e.open(t, dsn, deliveries.Options{Report: reportingTo(t, g, false)})
		ctx := context.Background()
		if err := q.Accept(ctx, delivery("d1", "src/api/a.go")); err != nil {
			t.Fatal(err)
		}
		web := waitRun(t, g, "monohook/web", func(r fakegithub.CheckRun) bool { return true })
		if web.Status != "completed" || web.Conclusion != "skipped" || !strings.Contains(web.Title, "No watched path changed") || web.HeadSHA != "0123456789abcdef" {
			t.Errorf("web: %+v", web)
		}
		api := waitRun(t, g, "monohook/api", func(r fakegithub.CheckRun) bool { return r.Status == "in_progress" })
		if !strings.Contains(api.Summary, "`src/api/a.go` matched `src/api/.*`") {
			t.Errorf("api summary: %s", api.Summary)
		}
		if err := deliveries.ForgetChecks(ctx, q); err != nil {
			t.Fatal(err)
		}
		if err := deliveries.SetResult(ctx, q, "d1", 0, "api", trigger.Failure, "stage Build failed", "https://console.example/x"); err != nil {
			t.Fatal(err)
		}
		api = waitRun(t, g, "monohook/api", func(r fakegithub.CheckRun) bool { return r.Status == "completed" })
		if api.Conclusion != "failure" || api.DetailsURL != "https://console.example/x" || !strings.Contains(api.Summary, "stage Build failed") {
			t.Errorf("api completed: %+v", api)
		}
		if n := creates(g); n["monohook/api"] != 1 || n["monohook/web"] != 1 {
			t.Errorf("check runs created %v, want each once", n)
		}
		d, err := q.Get(ctx, "d1")
		if err != nil || len(d.Starts) != 1 || d.Starts[0].CheckID != api.ID {
			t.Errorf("the start row's check id: %+v %v, want %d", d.Starts, err, api.ID)
		}
	})
}

// GitHub rate limiting the reports delays them, not the starts.
func TestRateLimitedGitHubDelaysReportsNotStarts(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "src/api/.*")
		g := fakegithub.New("gh-token")
		defer g.Close()
		g.RateLimitNext(1, 4*time.Second)
		q := e.open(t, dsn, deliveries.Options{Report: reportingTo(t, g, false)})
		if err := q.Accept(context.Background(), delivery("d1", "src/api/a.go")); err != nil {
			t.Fatal(err)
		}
		waitStarts(t, q, "d1", 1)
		if runs := g.CheckRuns(); len(runs) != 0 {
			t.Fatalf("check runs %+v while the rate limit lasts", runs)
		}
		waitRun(t, g, "monohook/api", func(r fakegithub.CheckRun) bool { return r.Status == "in_progress" })
		if n := creates(g)["monohook/api"]; n != 1 {
			t.Errorf("%d check runs created", n)
		}
	})
}

// With a token: commit statuses, with the same meaning.
func TestStatusesWithAToken(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "src/api/.*")
		e.rule(t, "web", "src/web/.*")
		g := fakegithub.New("gh-token")
		defer g.Close()
		q := e.open(t, dsn, deliveries.Options{Report: reportingTo(t, g, true)})
		ctx := context.Background()
		if err := q.Accept(ctx, delivery("d1", "src/api/a.go")); err != nil {
			t.Fatal(err)
		}
		waitStarts(t, q, "d1", 1)
		if err := deliveries.SetResult(ctx, q, "d1", 0, "api", trigger.Success, "", "https://console.example/x"); err != nil {
			t.Fatal(err)
		}
		last := map[string]fakegithub.Status{}
		waitFor(t, func() bool {
			for _, s := range g.Statuses() {
				last[s.Context] = s
			}
			return last["monohook/api"].State == "success"
		})
		if w := last["monohook/web"]; w.State != "success" || !strings.Contains(w.Description, "No watched path changed") {
			t.Errorf("web: %+v", w)
		}
		if a := last["monohook/api"]; a.TargetURL != "https://console.example/x" || a.SHA != "0123456789abcdef" {
			t.Errorf("api: %+v", a)
		}
		if len(g.CheckRuns()) != 0 {
			t.Error("check runs in statuses mode")
		}
	})
}

// A check run's re-run replays its delivery for its pipeline only, with a
// new token, once however often GitHub delivers the request.
func TestRerunOfOneCheck(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "src/.*")
		e.rule(t, "web", "src/.*")
		g := fakegithub.New("gh-token")
		defer g.Close()
		q := e.open(t, dsn, deliveries.Options{Report: reportingTo(t, g, false)})
		ctx := context.Background()
		if err := q.Accept(ctx, delivery("d1", "src/a.go")); err != nil {
			t.Fatal(err)
		}
		waitStarts(t, q, "d1", 2)
		// GitHub sends a re-run request for a check it shows: the first
		// round's checks are posted first.
		waitFor(t, func() bool { return creates(g)["monohook/api"] == 1 && creates(g)["monohook/web"] == 1 })
		// The same commit in another repository (a copy of the repository,
		// its commits pushed there too): a check run there whose
		// external id names d1 re-runs nothing of d1's.
		forged := trigger.Rerun{DeliveryID: "d1", Pipeline: "api", RepoName: "copy", HeadSHA: "0123456789abcdef"}
		if n, err := q.Rerun(ctx, "request-0", forged); err != nil || n != 0 {
			t.Fatalf("re-run from another repository: %d %v, want nothing replayed", n, err)
		}
		req := trigger.Rerun{DeliveryID: "d1", Pipeline: "api", RepoName: "repo", HeadSHA: "0123456789abcdef"}
		if n, err := q.Rerun(ctx, "request-1", req); err != nil || n != 1 {
			t.Fatalf("re-run: %d %v", n, err)
		}
		if _, err := q.Rerun(ctx, "request-1", req); !errors.Is(err, trigger.ErrDuplicate) {
			t.Errorf("the same request again: %v", err)
		}
		waitStarts(t, q, "d1", 3)
		d, _ := q.Get(ctx, "d1")
		var round1 []string
		for _, s := range d.Starts {
			if s.Round == 1 {
				round1 = append(round1, s.Pipeline)
			}
		}
		if d.Round != 1 || len(round1) != 1 || round1[0] != "api" {
			t.Errorf("round %d starts %v, want api alone in round 1", d.Round, round1)
		}
		if got := e.fake.Started()["api"]; got != 2 {
			t.Errorf("api started %d times, want 2 (a new token)", got)
		}
		waitFor(t, func() bool { return creates(g)["monohook/api"] == 2 })
		if n := creates(g)["monohook/web"]; n != 1 {
			t.Errorf("web's check created %d times; the re-run is api's only", n)
		}
	})
}

// A pipeline not selected by a later push of the same commit (a branch
// created at it, a tag) does not cover the check of the push that
// selected it; a selected one does post over a skipped one.
func TestASkippedCheckNeverCoversAnotherDeliverysCheck(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "api", "src/api/.*")
	e.rule(t, "web", "src/web/.*")
	g := fakegithub.New("gh-token")
	defer g.Close()
	q := e.open(t, sqliteDSN(t), deliveries.Options{Report: reportingTo(t, g, false)})
	ctx := context.Background()
	if err := q.Accept(ctx, delivery("d1", "src/api/a.go")); err != nil {
		t.Fatal(err)
	}
	waitRun(t, g, "monohook/api", func(r fakegithub.CheckRun) bool { return r.Status == "in_progress" })
	if err := q.Accept(ctx, delivery("d2", "src/web/a.ts")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return creates(g)["monohook/web"] == 2 })
	waitStarts(t, q, "d2", 1)
	var apis []fakegithub.CheckRun
	for _, r := range g.CheckRuns() {
		if r.Name == "monohook/api" {
			apis = append(apis, r)
		}
	}
	if len(apis) != 1 || apis[0].Status != "in_progress" {
		t.Errorf("api's checks %+v: d2's skipped check covered d1's", apis)
	}
}

// The same past the first run of a round's report: a round of more checks
// than one run posts still keeps its skipped checks off another delivery's.
func TestASkippedCheckPastTheFirstRunNeverCovers(t *testing.T) {
	e := newEnv(t)
	for i := range 45 {
		e.rule(t, fmt.Sprintf("p%03d", i), fmt.Sprintf("src/%03d/.*", i))
	}
	g := fakegithub.New("gh-token")
	defer g.Close()
	q := e.open(t, sqliteDSN(t), deliveries.Options{Report: reportingTo(t, g, false)})
	ctx := context.Background()
	if err := q.Accept(ctx, delivery("d1", "src/044/a.go")); err != nil {
		t.Fatal(err)
	}
	waitRun(t, g, "monohook/p044", func(r fakegithub.CheckRun) bool { return r.Status == "in_progress" })
	var paths []string
	for i := range 40 {
		paths = append(paths, fmt.Sprintf("src/%03d/a.go", i))
	}
	if err := q.Accept(ctx, delivery("d2", paths...)); err != nil {
		t.Fatal(err)
	}
	waitStarts(t, q, "d2", 40)
	waitFor(t, func() bool { return deliveries.ChecksDone(ctx, q, "d2") == 45 })
	if n := creates(g)["monohook/p044"]; n != 1 {
		t.Errorf("p044's check created %d times: d2's skipped one covered d1's", n)
	}
}

// Two replicas on one PostgreSQL database report every check once, and
// every change: a round's report jobs take turns by its lease, whichever
// replica runs them, and a job taking the round up waits for the
// transaction of a change it is to see (a change counted while a job
// waited, and committed after that job read the starts, was lost).
func TestReplicasReportOnceOnPostgreSQL(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	e := newEnv(t)
	e.rule(t, "api", "src/api/.*")
	e.rule(t, "web", "src/web/.*")
	g := fakegithub.New("gh-token")
	defer g.Close()
	replicas := []*deliveries.Queue{
		e.open(t, dsn, deliveries.Options{Report: reportingTo(t, g, false)}),
		e.open(t, dsn, deliveries.Options{Report: reportingTo(t, g, false)}),
	}
	const n = 40
	for i := range n {
		// Each delivery its own commit, so that no check covers another's.
		d := deliveryIn("repo", fmt.Sprintf("d%02d", i), fmt.Sprintf("%040d", i), "src/api/a.go")
		if err := replicas[i%2].Accept(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		running := 0
		for _, r := range g.CheckRuns() {
			if r.Name == "monohook/api" && r.Status == "in_progress" {
				running++
			}
		}
		return running == n
	})
	created := map[string]int{}
	for _, ev := range g.CheckEvents() {
		if ev.Op == "create" {
			created[ev.Run.ExternalID]++
		}
	}
	if len(created) != 2*n {
		t.Errorf("%d check runs, want %d", len(created), 2*n)
	}
	for ext, k := range created {
		if k != 1 {
			t.Errorf("%s created %d times", ext, k)
		}
	}
}

// A start whose result is unknown (monohook cannot follow it: access
// denied) never passes its required check: neutral and a status of
// success both let a pull request merge whose pipeline may have failed.
func TestAnUnknownResultNeverPassesItsCheck(t *testing.T) {
	for _, statuses := range []bool{false, true} {
		t.Run(fmt.Sprint("statuses=", statuses), func(t *testing.T) {
			e := newEnv(t)
			e.rule(t, "denied", "denied/.*")
			e.fake.FailNextGets("denied", "AccessDeniedException")
			g := fakegithub.New("gh-token")
			defer g.Close()
			q := e.open(t, sqliteDSN(t), e.follow(t, deliveries.Options{Report: reportingTo(t, g, statuses)}))
			if err := q.Accept(context.Background(), delivery("d1", "denied/x")); err != nil {
				t.Fatal(err)
			}
			if s := startOf(t, q, "d1", "denied"); s.Result != deliveries.ResultUnknown {
				t.Fatalf("start %+v", s)
			}
			if !statuses {
				r := waitRun(t, g, "monohook/denied", func(r fakegithub.CheckRun) bool { return r.Status == "completed" })
				if r.Conclusion != "failure" || !strings.Contains(r.Title, "result unknown") || !strings.Contains(r.Summary, "AccessDeniedException") {
					t.Errorf("check run %+v", r)
				}
				return
			}
			var last fakegithub.Status
			waitFor(t, func() bool {
				for _, s := range g.Statuses() {
					if s.Context == "monohook/denied" {
						last = s
					}
				}
				return last.State != "" && last.State != "pending"
			})
			if last.State != "failure" || !strings.Contains(last.Description, "result unknown") {
				t.Errorf("status %+v", last)
			}
		})
	}
}

// A commit status has no round: the one posted last is the one GitHub
// shows. An earlier round's execution ending after a replay's (which
// failed) never shows its success over the replay's failure.
func TestAnEarlierRoundNeverCoversTheLatestStatus(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "api", "src/api/.*")
	g := fakegithub.New("gh-token")
	defer g.Close()
	q := e.open(t, sqliteDSN(t), deliveries.Options{Report: reportingTo(t, g, true)})
	ctx := context.Background()
	if err := q.Accept(ctx, delivery("d1", "src/api/a.go")); err != nil {
		t.Fatal(err)
	}
	waitStarts(t, q, "d1", 1)
	if _, err := q.Replay(ctx, "d1"); err != nil {
		t.Fatal(err)
	}
	waitStarts(t, q, "d1", 2)
	last := func() fakegithub.Status {
		var s fakegithub.Status
		for _, st := range g.Statuses() {
			if st.Context == "monohook/api" {
				s = st
			}
		}
		return s
	}
	if err := deliveries.SetResult(ctx, q, "d1", 1, "api", trigger.Failure, "stage Build failed", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return last().State == "failure" })
	if err := deliveries.SetResult(ctx, q, "d1", 0, "api", trigger.Success, "", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return deliveries.ReportsPending(ctx, q) == 0 })
	if s := last(); s.State != "failure" {
		t.Errorf("monohook/api shows %+v: round 0's success covered the replay's failure", s)
	}
}
