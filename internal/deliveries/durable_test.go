package deliveries_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/pgtest"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/trigger"
)

// env is a durable queue on a real database, a real rule store and the
// real CodePipeline client talking to the fake over HTTP.
type env struct {
	store *rulestore.Store
	fake  *fakeaws.CodePipeline
	svc   *trigger.Service
	start trigger.Starter
	log   *slog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{fake: fakeaws.NewCodePipeline(), log: slog.New(slog.DiscardHandler)}
	t.Cleanup(e.fake.Close)
	var err error
	if e.store, err = rulestore.Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir())+"?metadata=skip", rulestore.DefaultPrefix, e.log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.fake.Setenv(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.start = codepipeline.New(cfg)
	e.svc = &trigger.Service{Rules: e.store, Log: e.log}
	return e
}

func (e *env) rule(t *testing.T, pipeline, match string) {
	t.Helper()
	if _, _, err := e.store.Put(context.Background(), rulestore.Document{GitHubRepo: "repo", GitHubBranch: "main", CodePipelineName: pipeline, ChangeMatchExpressions: match}); err != nil {
		t.Fatal(err)
	}
}

// open starts a queue ("a replica") on the database at dsn.
func (e *env) open(t *testing.T, dsn string, opts deliveries.Options) *deliveries.Queue {
	t.Helper()
	return e.openWith(t, dsn, e.start, opts)
}

// openDryRun starts a queue as serve --dry-run does: its starter starts
// nothing.
func (e *env) openDryRun(t *testing.T, dsn string, opts deliveries.Options) *deliveries.Queue {
	t.Helper()
	return e.openWith(t, dsn, trigger.DryRun{}, opts)
}

// openWith starts a queue on the database at dsn with starter.
func (e *env) openWith(t *testing.T, dsn string, starter trigger.Starter, opts deliveries.Options) *deliveries.Queue {
	t.Helper()
	db, err := deliveries.OpenDB(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if opts.RetryBase == 0 {
		opts.RetryBase, opts.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	}
	opts.Parse, opts.MaxPayload = githubhook.ParseEvent, githubhook.MaxBody
	q, err := deliveries.New(db, e.svc, starter, opts, e.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Close(ctx)
		db.Close()
	})
	return q
}

func sqliteDSN(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "monohook.db")
}

// eachDB runs test on SQLite and, when MONOHOOK_TEST_DATABASE_URL names a
// PostgreSQL server, on a fresh database there too.
func eachDB(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, sqliteDSN(t)) })
	if os.Getenv(pgtest.EnvVar) != "" {
		t.Run("postgres", func(t *testing.T) { test(t, pgtest.FreshDatabase(t)) })
	}
}

func delivery(id string, paths ...string) trigger.Delivery {
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = `"` + p + `"`
	}
	body := `{"ref":"refs/heads/main","after":"0123456789abcdef","repository":{"name":"repo","full_name":"org/repo"},"commits":[{"added":[` + strings.Join(quoted, ",") + `],"removed":[],"modified":[]}]}`
	p, err := githubhook.ParsePush([]byte(body))
	if err != nil {
		panic(err)
	}
	return trigger.Delivery{ID: id, Event: "push", Received: time.Now(), Payload: []byte(body), Push: p}
}

// acceptMany stores the n deliveries made by d through q from 32 senders
// at once, so that they are committed in groups, as under load.
func acceptMany(t *testing.T, q *deliveries.Queue, n int, d func(i int) trigger.Delivery) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				if err := q.Accept(context.Background(), d(i)); err != nil {
					t.Errorf("Accept: %v", err)
				}
			}
		}()
	}
	wg.Wait()
}

// waitStarts waits until delivery id has n starts in a final state.
func waitStarts(t *testing.T, q *deliveries.Queue, id string, n int) deliveries.Delivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := q.Get(context.Background(), id)
		final := 0
		for _, s := range d.Starts {
			if s.Status == "started" || s.Status == "failed" {
				final++
			}
		}
		if err == nil && final >= n {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: %d of %d starts final: %+v (%v)", id, final, n, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeliveryIsEvaluatedAndStarted(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "services/api/.*")
		e.rule(t, "web", "services/web/.*")
		q := e.open(t, dsn, deliveries.Options{})
		if err := q.Accept(context.Background(), delivery("d1", "services/api/x.go", "services/web/y.go", "docs/z.md")); err != nil {
			t.Fatal(err)
		}
		d := waitStarts(t, q, "d1", 2)
		if d.Status != "evaluated" || d.Result == nil || len(d.Result.Start) != 2 {
			t.Fatalf("stored %+v", d)
		}
		for _, s := range d.Starts {
			if s.Status != "started" || s.ExecutionID == "" || s.Attempts != 1 || s.Token != trigger.StartToken("d1", 0, s.Pipeline) {
				t.Errorf("start %+v", s)
			}
		}
		if got := e.fake.Started(); got["api"] != 1 || got["web"] != 1 {
			t.Errorf("started %v", got)
		}
	})
}

func TestThrottlingIsRetriedUntilItStarts(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "busy", ".*")
		// More throttling than the SDK's own retries absorb: the queue retries.
		e.fake.FailNext("busy", "ThrottlingException", "ThrottlingException", "ThrottlingException",
			"ThrottlingException", "ThrottlingException", "ThrottlingException", "ThrottlingException")
		q := e.open(t, dsn, deliveries.Options{})
		if err := q.Accept(context.Background(), delivery("d1", "x")); err != nil {
			t.Fatal(err)
		}
		d := waitStarts(t, q, "d1", 1)
		if s := d.Starts[0]; s.Status != "started" || s.Attempts < 2 {
			t.Errorf("start %+v: want started after retries", s)
		}
		if got := e.fake.Started(); got["busy"] != 1 {
			t.Errorf("started %v", got)
		}
	})
}

func TestPermanentErrorIsDeadLetteredAtOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "missing", ".*")
		e.rule(t, "exists", ".*")
		e.fake.OnlyPipelines("exists")
		q := e.open(t, dsn, deliveries.Options{})
		if err := q.Accept(context.Background(), delivery("d1", "x")); err != nil {
			t.Fatal(err)
		}
		d := waitStarts(t, q, "d1", 2)
		for _, s := range d.Starts {
			switch s.Pipeline {
			case "missing":
				if s.Status != "failed" || s.Attempts != 1 || !strings.Contains(s.Error, "PipelineNotFoundException") {
					t.Errorf("missing: %+v", s)
				}
			case "exists":
				if s.Status != "started" {
					t.Errorf("exists: %+v", s)
				}
			}
		}
		calls := 0
		for _, c := range e.fake.Calls() {
			if c.Name == "missing" {
				calls++
			}
		}
		if calls != 1 {
			t.Errorf("the permanent error was tried %d times", calls)
		}
	})
}

func TestAttemptsAreBounded(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "flaky", ".*")
	var codes []string
	for range 40 {
		codes = append(codes, "ServiceUnavailable")
	}
	e.fake.FailNext("flaky", codes...)
	q := e.open(t, sqliteDSN(t), deliveries.Options{MaxAttempts: 2})
	if err := q.Accept(context.Background(), delivery("d1", "x")); err != nil {
		t.Fatal(err)
	}
	d := waitStarts(t, q, "d1", 1)
	if s := d.Starts[0]; s.Status != "failed" || s.Attempts != 2 {
		t.Errorf("start %+v: want failed after 2 attempts", s)
	}
}

func TestDuplicateAcceptsAreOneDelivery(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "p", ".*")
		q := e.open(t, dsn, deliveries.Options{})
		var wg sync.WaitGroup
		errs := make([]error, 5)
		for i := range errs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = q.Accept(context.Background(), delivery("same", "x")) }()
		}
		wg.Wait()
		accepted := 0
		for _, err := range errs {
			switch {
			case err == nil:
				accepted++
			case err != githubhook.ErrDuplicate: //nolint:errorlint // the queue returns the sentinel itself
				t.Errorf("Accept: %v", err)
			}
		}
		if accepted != 1 {
			t.Errorf("%d of 5 accepted", accepted)
		}
		d := waitStarts(t, q, "same", 1)
		if d.Duplicates != 4 || len(d.Starts) != 1 {
			t.Errorf("stored %+v", d)
		}
		time.Sleep(200 * time.Millisecond)
		if n := len(e.fake.Calls()); n != 1 {
			t.Errorf("%d start calls, want 1", n)
		}
	})
}

// acceptHeld starts accepting delivery "held" through q while another
// connection holds the lock its commit needs, as a stalled disk would hold
// the commit. waiting tells whether the Accept still waits; release gives
// the lock back and checks that the delivery was accepted and is stored.
func acceptHeld(t *testing.T, q *deliveries.Queue, dsn string) (waiting func() bool, release func()) {
	t.Helper()
	lock := "BEGIN IMMEDIATE"
	if strings.HasPrefix(dsn, "postgres") {
		lock = "BEGIN; LOCK TABLE monohook_delivery IN SHARE MODE"
	}
	other, _, _ := rawDB(t, dsn)
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(context.Background(), lock); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() { accepted <- q.Accept(context.Background(), delivery("held", "x")) }()
	waiting = func() bool { return len(accepted) == 0 }
	release = func() {
		t.Helper()
		if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
			t.Fatal(err)
		}
		if err := <-accepted; err != nil {
			t.Fatalf("Accept: %v", err)
		}
		if _, err := q.Get(context.Background(), "held"); err != nil {
			t.Errorf("the delivery held, read after its commit: %v", err)
		}
	}
	return waiting, release
}

// TestSlowCommitIsLogged: a commit held up (here by a lock another
// connection holds, as a stalled disk would) is told in the log with the
// deliveries that waited for it, and the delivery is still stored.
func TestSlowCommitIsLogged(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		logs := &syncBuffer{}
		e.log = slog.New(slog.NewTextHandler(logs, nil))
		q := e.openDryRun(t, dsn, deliveries.Options{})

		_, release := acceptHeld(t, q, dsn)
		time.Sleep(1200 * time.Millisecond)
		release()
		if log := logs.String(); !strings.Contains(log, "slow commit") || !strings.Contains(log, "deliveries=1") {
			t.Errorf("no slow commit in the log:\n%s", log)
		}
	})
}

// TestReadsDoNotWaitForCommits: the dashboard's, CLI's and metrics' reads
// answer while a commit is held up (here by a lock another connection
// holds, as a stalled disk would hold the commit), and a read never holds
// up a commit. On SQLite they went through the writer's one connection,
// and a page's read transaction began IMMEDIATE there.
func TestReadsDoNotWaitForCommits(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "p", ".*")
		q := e.openDryRun(t, dsn, deliveries.Options{})
		if err := q.Accept(context.Background(), delivery("seen", "x")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			d, err := q.Get(context.Background(), "seen")
			return err == nil && len(d.Starts) == 1 && d.Starts[0].Status == "dry-run"
		})

		waiting, release := acceptHeld(t, q, dsn)
		time.Sleep(100 * time.Millisecond) // the commit waits for the lock

		// Well under the commit's wait for the lock (SQLite's busy timeout
		// is 10 s), so that a read waiting for it fails.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		reads := map[string]func() error{
			"List": func() error { _, err := q.List(ctx, 10); return err },
			"Get":  func() error { _, err := q.Get(ctx, "seen"); return err },
			"Find": func() error {
				p, err := q.Find(ctx, deliveries.Filter{})
				if err == nil && (len(p.Deliveries) != 1 || p.Deliveries[0].DryRun != 1) {
					err = fmt.Errorf("found %+v", p.Deliveries)
				}
				return err
			},
			"Repos":        func() error { _, err := q.Repos(ctx); return err },
			"LastStarted":  func() error { _, err := q.LastStarted(ctx); return err },
			"Push":         func() error { _, err := q.Push(ctx, "seen"); return err },
			"ChangedPaths": func() error { _, err := q.ChangedPaths(ctx, "seen"); return err },
			"metrics": func() error {
				reg := prometheus.NewRegistry()
				reg.MustRegister(q.Collector())
				_, err := reg.Gather()
				return err
			},
		}
		for name, read := range reads {
			if err := read(); err != nil {
				t.Errorf("%s while a commit waits: %v", name, err)
			}
		}
		if !waiting() {
			t.Fatal("the commit did not wait for the lock")
		}
		release()
	})
}

// TestShutdownEndsASweep: a shutdown while a sweep has thousands of
// deliveries before it does not wait for their evaluation (the sweep ends
// after its batch); they are evaluated after the restart, nothing lost.
func TestShutdownEndsASweep(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "p", ".*")
		stopped, closeStopped := stoppedQueue(t, e, dsn)
		// Stored before the workers start, so that the sweeps below have all
		// of them before them, however fast or slow this machine is: more
		// than two sweeps (two evaluators) take in two batches each.
		n := 2000
		if strings.HasPrefix(dsn, "postgres") {
			n = 6000 // batches of 512
		}
		acceptMany(t, stopped, n, func(i int) trigger.Delivery { return delivery(fmt.Sprintf("sweep-%04d", i), "x") })
		closeStopped()
		waiting := func(q *deliveries.Queue) int {
			ds, err := q.List(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != n {
				t.Fatalf("%d deliveries stored, want %d", len(ds), n)
			}
			w := 0
			for _, d := range ds {
				if d.Status == "received" {
					w++
				}
			}
			return w
		}
		q := e.openDryRun(t, dsn, deliveries.Options{})
		waitFor(t, func() bool { return waiting(q) < n }) // a sweep has begun
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := q.Close(ctx); err != nil {
			t.Fatal(err)
		}
		left := waiting(q)
		if left == 0 {
			t.Fatal("every delivery was evaluated before the shutdown ended: the sweep held it up")
		}
		t.Logf("%d of %d deliveries left for after the restart", left, n)
		// One start at a time: a dry run's starts are jobs too, and on SQLite
		// sixteen of them took the writer from the evaluation being waited
		// for (under -race on a loaded machine, past waitFor's bound).
		again := e.openDryRun(t, dsn, deliveries.Options{Workers: 1})
		waitFor(t, func() bool { return waiting(again) == 0 }) // the rest, evaluated after the restart
	})
}

func TestReplayStartsAgainWithNewTokens(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "p", ".*")
		q := e.open(t, dsn, deliveries.Options{})
		if err := q.Accept(context.Background(), delivery("d1", "x")); err != nil {
			t.Fatal(err)
		}
		waitStarts(t, q, "d1", 1)
		e.rule(t, "q", ".*") // a rule added since counts for the replay
		round, err := q.Replay(context.Background(), "d1")
		if err != nil || round != 1 {
			t.Fatalf("Replay = %d, %v", round, err)
		}
		d := waitStarts(t, q, "d1", 3)
		if got := e.fake.Started(); got["p"] != 2 || got["q"] != 1 {
			t.Errorf("started %v: want p twice (first and replay), q once", got)
		}
		if d.Round != 1 {
			t.Errorf("round %d", d.Round)
		}
		if _, err := q.Replay(context.Background(), "nope"); err == nil {
			t.Error("replay of an unknown delivery succeeded")
		}
	})
}

func TestDryRunRecordsButStartsNothing(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "p", ".*")
	q := e.openDryRun(t, sqliteDSN(t), deliveries.Options{})
	if err := q.Accept(context.Background(), delivery("d1", "x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, _ := q.Get(context.Background(), "d1")
		// The start row is pending until its job has run.
		if len(d.Starts) == 1 && d.Starts[0].Status != "pending" {
			if d.Starts[0].Status != "dry-run" {
				t.Errorf("start %+v", d.Starts[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not evaluated")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("%d start calls in a dry run", n)
	}
}

func TestRetention(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "p", ".*")
		q := e.openDryRun(t, dsn, deliveries.Options{})
		// Several transactions of deletions (500 each), received within
		// the same few milliseconds as each other.
		const n = 2500
		base := time.Now().Add(-48 * time.Hour)
		acceptMany(t, q, n, func(i int) trigger.Delivery {
			d := delivery(fmt.Sprintf("old-%04d", i), "x")
			d.Received = base.Add(time.Duration(i%7) * time.Millisecond)
			return d
		})
		if err := q.Accept(context.Background(), delivery("new", "x")); err != nil {
			t.Fatal(err)
		}
		raw, payloads, _ := rawDB(t, dsn)
		count := func(table string) int {
			var c int
			if err := raw.QueryRow(`SELECT count(*) FROM ` + table).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		waitFor(t, func() bool { return count("monohook_start") == n+1 }) // every delivery evaluated

		deleted, err := q.DeleteBefore(context.Background(), time.Now().Add(-24*time.Hour))
		if err != nil || deleted != n {
			t.Fatalf("DeleteBefore = %d, %v; want %d", deleted, err, n)
		}
		ds, _ := q.List(context.Background(), 10)
		if len(ds) != 1 || ds[0].ID != "new" {
			t.Errorf("left %+v", ds)
		}
		if left := count(payloads); left != 1 {
			t.Errorf("payloads left: %d rows; want the new delivery's only", left)
		}
		if left := count("monohook_start"); left != 1 {
			t.Errorf("starts left: %d rows; want the new delivery's only", left)
		}
		if deleted, err := q.DeleteBefore(context.Background(), time.Now().Add(-24*time.Hour)); err != nil || deleted != 0 {
			t.Errorf("DeleteBefore again = %d, %v", deleted, err)
		}
	})
}

// TestReplicasOnPostgreSQL runs two replicas on one PostgreSQL database and
// spreads 500 deliveries across them: every start happens exactly once.
func TestReplicasOnPostgreSQL(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	e := newEnv(t)
	e.rule(t, "api", "services/api/.*")
	e.rule(t, "web", "services/web/.*")
	replicas := []*deliveries.Queue{e.open(t, dsn, deliveries.Options{Workers: 8}), e.open(t, dsn, deliveries.Options{Workers: 8})}
	const n = 500
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := replicas[i%2].Accept(context.Background(), delivery(fmt.Sprintf("d%03d", i), "services/api/x", "services/web/y")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for len(e.fake.Calls()) < 2*n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // any duplicate would arrive now
	perToken := map[string]int{}
	for _, c := range e.fake.Calls() {
		perToken[c.Token]++
	}
	if len(perToken) != 2*n {
		t.Errorf("%d distinct starts, want %d", len(perToken), 2*n)
	}
	for tok, c := range perToken {
		if c != 1 {
			t.Errorf("token %s called %d times", tok, c)
		}
	}
}

// BenchmarkAccept is the durable part of acknowledging: committing a
// delivery and its evaluation job, from 32 concurrent callers (GitHub's
// deliveries arrive in parallel; the group commit shares one flush).
// Workers are running, as in serve, evaluating what was accepted.
func BenchmarkAccept(b *testing.B) {
	body, err := os.ReadFile("../../testdata/bench/push-8k.json")
	if err != nil {
		b.Fatal(err)
	}
	push, err := githubhook.ParsePush(body)
	if err != nil {
		b.Fatal(err)
	}
	dbs := map[string]func(t *testing.T) string{"sqlite": sqliteDSN}
	if os.Getenv(pgtest.EnvVar) != "" {
		dbs["postgres"] = func(t *testing.T) string { return pgtest.FreshDatabase(t) }
	}
	for name, dsn := range dbs {
		b.Run(name, func(b *testing.B) {
			t := &testing.T{}
			e := newEnv(t)
			q := e.openDryRun(t, dsn(t), deliveries.Options{})
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = q.Close(ctx)
			}()
			var n atomic.Int64
			b.SetParallelism(16) // 32 callers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("bench-%d", n.Add(1))
					d := trigger.Delivery{ID: id, Event: "push", Received: time.Now(), Payload: body, Push: push}
					if err := q.Accept(context.Background(), d); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func TestQueueDepthCollector(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		q, closeQueue := stoppedQueue(t, e, dsn) // what is accepted waits
		defer closeQueue()
		for _, id := range []string{"a", "b"} {
			if err := q.Accept(context.Background(), delivery(id, "x")); err != nil {
				t.Fatal(err)
			}
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(q.Collector())
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range families {
			got[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
		}
		// Two deliveries wait; an evaluation job for them (one per
		// committer whose wake row was new: one on SQLite, which has one).
		jobs := got["monohook_queue_jobs_waiting"]
		if got["monohook_deliveries_waiting"] != 2 || got["monohook_deliveries_oldest_waiting_seconds"] < 0 ||
			jobs < 1 || jobs > 2 || (!strings.HasPrefix(dsn, "postgres") && jobs != 1) || got["monohook_queue_oldest_job_age_seconds"] < 0 {
			t.Errorf("metrics %v", got)
		}
	})
}
