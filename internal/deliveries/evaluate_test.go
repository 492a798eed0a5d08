package deliveries_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/pgtest"
	"github.com/monohook/monohook/internal/trigger"
)

// gatedSource is a GitHub API that fails for one commit until opened.
type gatedSource struct {
	sha   string
	mu    sync.Mutex
	open  bool
	calls int
}

func (g *gatedSource) ChangedPaths(_ context.Context, p *trigger.Push) ([]string, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.After != g.sha {
		return nil, true, nil
	}
	g.calls++
	if !g.open {
		return nil, false, errors.New("GitHub answered 502")
	}
	return []string{"src/late.go"}, true, nil
}

func (g *gatedSource) release() (calls int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
	return g.calls
}

func forcedPush(id, sha string) trigger.Delivery {
	body := `{"ref":"refs/heads/main","before":"1111111111111111","after":"` + sha + `","forced":true,"repository":{"name":"repo","full_name":"org/repo"},"commits":[]}`
	p, err := githubhook.ParsePush([]byte(body))
	if err != nil {
		panic(err)
	}
	return trigger.Delivery{ID: id, Event: "push", Received: time.Now(), Payload: []byte(body), Push: p}
}

// A delivery whose change set cannot be fetched is retried by a job of
// its own; deliveries after it are evaluated and started meanwhile.
func TestFailedEvaluationIsRetriedOnItsOwn(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "pipe", "src/.*")
		gate := &gatedSource{sha: "f0f0f0f0f0f0f0f0"}
		e.svc.Changes = gate
		q := e.open(t, dsn, deliveries.Options{})
		ctx := context.Background()
		if err := q.Accept(ctx, forcedPush("forced", gate.sha)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"after-1", "after-2"} {
			if err := q.Accept(ctx, delivery(id, "src/a.go")); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"after-1", "after-2"} {
			if d := waitStarts(t, q, id, 1); len(d.Starts) != 1 || d.Starts[0].Status != "started" {
				t.Fatalf("%s: %+v", id, d.Starts)
			}
		}
		waitFor(t, func() bool { d, err := q.Get(ctx, "forced"); return err == nil && d.Status == "retrying" })
		if got := ids(t, q, deliveries.Filter{Status: "pending"}); !slices.Contains(got, "forced") {
			t.Errorf("the pending filter shows %v, not the delivery whose evaluation is retried", got)
		}
		waitFor(t, func() bool { gate.mu.Lock(); defer gate.mu.Unlock(); return gate.calls >= 2 })
		if calls := gate.release(); calls < 2 {
			t.Fatalf("GitHub asked %d times, want retries", calls)
		}
		d := waitStarts(t, q, "forced", 1)
		if d.Status != "evaluated" || len(d.Starts) != 1 || d.Starts[0].Status != "started" {
			t.Fatalf("forced push after the API recovered: %+v", d)
		}
		// Three executions, and no token asked for twice.
		tokens := map[string]int{}
		for _, c := range e.fake.Calls() {
			tokens[c.Token]++
		}
		if got := e.fake.Started()["pipe"]; got != 3 || len(tokens) != 3 {
			t.Errorf("%d executions, calls by token %v; want 3, once each", got, tokens)
		}
		for token, n := range tokens {
			if n != 1 {
				t.Errorf("token %s asked %d times", token, n)
			}
		}
	})
}

// A stored payload that no longer parses (a damaged row) is recorded as
// unreadable, once, and does not stop the deliveries after it.
func TestUnreadablePayloadIsRecorded(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "pipe", "src/.*")
		ctx := context.Background()
		acceptStopped(t, e, dsn, delivery("damaged", "src/a.go"), delivery("fine", "src/a.go"))
		raw, table, marks := rawDB(t, dsn)
		// The S2 tag, then bytes that are not S2.
		res, err := raw.ExecContext(ctx, `UPDATE `+table+` SET payload = `+marks+` WHERE `+payloadOf(dsn, "damaged"), []byte{0xff, 's', '2', 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2})
		if n, _ := res.RowsAffected(); err != nil || n != 1 {
			t.Fatalf("damage the payload: %d rows, %v", n, err)
		}

		q := e.open(t, dsn, deliveries.Options{})
		if d := waitStarts(t, q, "fine", 1); d.Starts[0].Status != "started" {
			t.Fatalf("fine: %+v", d.Starts)
		}
		waitFor(t, func() bool { d, err := q.Get(ctx, "damaged"); return err == nil && d.Status == "unreadable" })
		if d, _ := q.Get(ctx, "damaged"); len(d.Starts) != 0 {
			t.Errorf("damaged delivery started %+v", d.Starts)
		}
	})
}

// Deliveries stored without an evaluation job (PostgreSQL queues the job
// just after the commit, and a process may die in between) are evaluated
// when a process starts, and later deliveries are not held up by the wake
// rows the dead process left.
func TestWaitingWithoutJobIsEvaluatedAtStart(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "pipe", "src/.*")
		ctx := context.Background()
		acceptStopped(t, e, dsn, delivery("orphan", "src/a.go"))
		raw, _, _ := rawDB(t, dsn)
		var wakes int
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM monohook_wake`).Scan(&wakes); err != nil || wakes != 1 {
			t.Fatalf("wake rows %d, %v", wakes, err)
		}
		if _, err := raw.ExecContext(ctx, `DELETE FROM river_job`); err != nil {
			t.Fatal(err)
		}

		q := e.open(t, dsn, deliveries.Options{})
		waitStarts(t, q, "orphan", 1)
		if err := q.Accept(ctx, delivery("next", "src/b.go")); err != nil {
			t.Fatal(err)
		}
		waitStarts(t, q, "next", 1)
	})
}

// SQLite: a delivery stored by an earlier version, its payload in
// monohook_payload by delivery id, is still read (evaluated, shown) and
// deleted with its delivery by retention.
func TestPayloadOfEarlierVersionOnSQLite(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "pipe", "src/.*")
	dsn := sqliteDSN(t)
	ctx := context.Background()
	acceptStopped(t, e, dsn, delivery("earlier", "src/a.go"))
	raw, _, _ := rawDB(t, dsn)
	for _, stmt := range []string{
		`INSERT INTO monohook_payload (id, payload) SELECT 'earlier', payload FROM monohook_body WHERE ` + payloadOf(dsn, "earlier"),
		`DELETE FROM monohook_body`,
		`UPDATE monohook_delivery SET body = NULL`,
	} {
		if _, err := raw.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	q := e.open(t, dsn, deliveries.Options{})
	waitStarts(t, q, "earlier", 1)
	if d, err := q.Get(ctx, "earlier"); err != nil || d.Repo != "repo" {
		t.Fatalf("Get = %+v, %v", d, err)
	}
	if n, err := q.DeleteBefore(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteBefore = %d, %v", n, err)
	}
	var left int
	if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM monohook_payload`).Scan(&left); err != nil || left != 0 {
		t.Errorf("monohook_payload: %d rows left, %v", left, err)
	}
}

// On PostgreSQL payloads stay in the delivery's row (they are compressed
// already); opening the database again changes nothing.
func TestPayloadStorageOnPostgreSQL(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	ctx := context.Background()
	for range 2 {
		db, err := deliveries.OpenDB(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var storage, options string
	if err := raw.QueryRowContext(ctx, `SELECT a.attstorage::text, array_to_string(c.reloptions, ',') FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE c.relname = 'monohook_delivery' AND a.attname = 'payload'`).Scan(&storage, &options); err != nil {
		t.Fatal(err)
	}
	if storage != "e" || options != "toast_tuple_target=8160" {
		t.Errorf("payload storage %q, table options %q", storage, options)
	}
}

// rawDB opens the database at dsn directly, and names the table holding
// payloads (SQLite keeps them apart) and the placeholder of one argument.
func rawDB(t *testing.T, dsn string) (db *sql.DB, payloads, mark string) {
	t.Helper()
	driver, name, payloads, mark := "sqlite", strings.TrimPrefix(dsn, "sqlite://"), "monohook_body", "?"
	if strings.HasPrefix(dsn, "postgres") {
		driver, name, payloads, mark = "pgx", dsn, "monohook_delivery", "$1"
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, payloads, mark
}

// payloadOf selects the payload row of delivery id in rawDB's payloads.
func payloadOf(dsn, id string) string {
	if strings.HasPrefix(dsn, "postgres") {
		return "id = '" + id + "'"
	}
	return "k = (SELECT body FROM monohook_delivery WHERE id = '" + id + "')"
}

// stoppedQueue opens a queue on dsn without starting it: what it accepts
// waits. closeQueue closes it and its database.
func stoppedQueue(t *testing.T, e *env, dsn string) (q *deliveries.Queue, closeQueue func()) {
	t.Helper()
	db, err := deliveries.OpenDB(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if q, err = deliveries.New(db, e.svc, e.start, deliveries.Options{}, e.log); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return q, func() {
		if err := q.Close(context.Background()); err != nil {
			t.Error(err)
		}
		db.Close()
	}
}

// acceptStopped stores deliveries through a queue that is not started, so
// nothing evaluates them until a queue is.
func acceptStopped(t *testing.T, e *env, dsn string, ds ...trigger.Delivery) {
	t.Helper()
	q, closeQueue := stoppedQueue(t, e, dsn)
	defer closeQueue()
	for _, d := range ds {
		if err := q.Accept(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
}

// A sweep lists the rules once for a window of deliveries, not once per
// batch: on S3 every list is a request, and a burst of large pushes (two
// to a batch) listed for every second push.
func TestASweepListsTheRulesOncePerWindow(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "p", "x")
		// Three batches' worth, stored before the workers start, so that one
		// sweep finds them all.
		n := 3 * 64
		if strings.HasPrefix(dsn, "postgres") {
			n = 3 * 512
		}
		stopped, closeStopped := stoppedQueue(t, e, dsn)
		acceptMany(t, stopped, n, func(i int) trigger.Delivery { return delivery(fmt.Sprintf("window-%04d", i), "x") })
		closeStopped()
		before := e.store.Lists()
		q := e.openDryRun(t, dsn, deliveries.Options{Evaluators: 1})
		waitFor(t, func() bool {
			ds, err := q.List(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.Status == "received" {
					return false
				}
			}
			return len(ds) == n
		})
		// One list of the repository's rules and one of the v2 rules.
		if lists := e.store.Lists() - before; lists != 2 {
			t.Errorf("the rules were listed %d times for %d deliveries, want 2", lists, n)
		}
	})
}
