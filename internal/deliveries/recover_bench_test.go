package deliveries_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/pgtest"
	"github.com/monohook/monohook/internal/trigger"
)

// perDay is the organization's deliveries a day in BenchmarkReconcile.
const perDay = 10_000

// BenchmarkReconcile is one reconciliation of an organization webhook
// with 10,000 deliveries a day, against the fake GitHub over HTTP, on
// SQLite (MONOHOOK_BENCH_POSTGRES=1: a fresh database on the server of
// MONOHOOK_TEST_DATABASE_URL). Cases: monohook
// was down the last hour, or the last 3 days; it was up and holds all 3
// days (a first reconciliation, nothing recorded of an earlier one); the
// steady state, 5 minutes after the last. requests/op counts the API
// requests; the time is monohook's (the fake answers at once; GitHub's
// latency is not in it).
func BenchmarkReconcile(b *testing.B) {
	for _, c := range []struct {
		name       string
		down, last time.Duration // missing the newest down; the last reconciliation listed up to last ago (0: none)
	}{
		{"down-1h", time.Hour, time.Hour},
		{"down-3d", 72 * time.Hour, 0},
		{"held-3d", 0, 0},
		{"steady-5min", 0, 5 * time.Minute},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				q, h, g := reconcileSetup(b, c.down, c.last)
				before := len(g.Requests())
				b.StartTimer()
				rec, err := h.Run(context.Background(), deliveries.RunOptions{})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(g.Requests())-before), "requests/op")
				b.ReportMetric(float64(rec.Listed), "listed/op")
				b.ReportMetric(float64(rec.Recovered), "recovered/op")
				_ = q
			}
		})
	}
}

// reconcileSetup fills a fake with 3 days of deliveries (the oldest a
// minute inside GitHub's edge), the database with all but the newest
// down, and, when last is set, records a reconciliation that listed up to
// last ago.
func reconcileSetup(b *testing.B, down, last time.Duration) (*deliveries.Queue, *deliveries.Reconciler, *fakegithub.GitHub) {
	b.Helper()
	g := fakegithub.New("gh-token")
	b.Cleanup(g.Close)
	dsn := benchDSN(b)
	db, err := deliveries.OpenDB(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	q, err := deliveries.New(db, nil, nil, deliveries.Options{Retention: 30 * 24 * time.Hour}, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = q.Close(context.Background()); db.Close() })
	now := time.Now()
	step := 24 * time.Hour / perDay
	n := int((fakegithub.Kept - time.Minute) / step)
	all := make([]fakegithub.HookDelivery, n)
	var held []trigger.Delivery
	for i := range all {
		guid := fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)
		body := recoverPush(fmt.Sprintf("%040x", i))
		at := now.Add(-time.Duration(i) * step)
		code := 202
		if time.Duration(i)*step < down {
			code = 0
		} else {
			p, _ := githubhook.ParsePush([]byte(body))
			held = append(held, trigger.Delivery{ID: guid, Event: "push", Received: at, Payload: []byte(body), Push: p})
		}
		all[i] = fakegithub.HookDelivery{GUID: guid, Event: "push", StatusCode: code, DeliveredAt: at,
			Headers: map[string]string{"X-GitHub-Delivery": guid, "X-GitHub-Event": "push", "Content-Type": "application/json"}, Payload: json.RawMessage(body)}
	}
	acceptAll(b, q, held)
	hooks := newBenchHooks(b, g)
	r, err := deliveries.NewReconciler(q, hooks, deliveries.RecoverOptions{Handles: githubhook.Handles, Admit: githubhook.Recovered}, log)
	if err != nil {
		b.Fatal(err)
	}
	if last > 0 {
		// What the fake held then: the deliveries up to last ago.
		var older []fakegithub.HookDelivery
		for _, d := range all {
			if now.Sub(d.DeliveredAt) >= last {
				older = append(older, d)
			}
		}
		g.AddHookDelivery("acme", 42, older...)
		if _, err := r.Run(context.Background(), deliveries.RunOptions{}); err != nil {
			b.Fatal(err)
		}
		fresh := make([]fakegithub.HookDelivery, 0, len(all)-len(older))
		for _, d := range all {
			if now.Sub(d.DeliveredAt) < last {
				fresh = append(fresh, d)
			}
		}
		g.AddHookDelivery("acme", 42, fresh...)
	} else {
		g.AddHookDelivery("acme", 42, all...)
	}
	return q, r, g
}

func benchDSN(b *testing.B) string {
	if os.Getenv("MONOHOOK_BENCH_POSTGRES") == "1" {
		return pgtest.FreshDatabase(b)
	}
	return "sqlite://" + filepath.Join(b.TempDir(), "monohook.db")
}

// acceptAll stores ds from 32 senders at once.
func acceptAll(b *testing.B, q *deliveries.Queue, ds []trigger.Delivery) {
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ds); i += 32 {
				if err := q.Accept(context.Background(), ds[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func newBenchHooks(b *testing.B, g *fakegithub.GitHub) *githubapi.Hooks {
	h, err := githubapi.NewHooks(githubapi.Config{URL: g.URL, Token: "gh-token"}, githubapi.Hook{Org: "acme", ID: 42})
	if err != nil {
		b.Fatal(err)
	}
	return h
}
