package deliveries

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/pgtest"
)

// bareQueue opens the database at dsn and a queue on it that is not
// started and has no rules (it stores and reads deliveries), both closed
// when tb ends.
func bareQueue(tb testing.TB, dsn string) (*DB, *Queue) {
	tb.Helper()
	db, err := OpenDB(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	q, err := New(db, nil, nil, Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { q.Close(context.Background()) }) //nolint:errcheck // test cleanup
	return db, q
}

func isPostgres(db *DB) bool {
	_, ok := db.dialect.(*postgresDialect)
	return ok
}

// testDSNs names a fresh SQLite database and, when MONOHOOK_TEST_DATABASE_URL
// names a PostgreSQL server, a fresh database there too.
func testDSNs(tb testing.TB) map[string]string {
	dsns := map[string]string{"sqlite": "sqlite://" + filepath.Join(tb.TempDir(), "monohook.db")}
	if os.Getenv(pgtest.EnvVar) != "" {
		dsns["postgres"] = pgtest.FreshDatabase(tb)
	}
	return dsns
}

// BenchmarkFind measures the dashboard's queries with 100,000 deliveries
// stored: 20 repositories, 1.2 starts per delivery, 1 in 500 failed.
func BenchmarkFind(b *testing.B) {
	for name, dsn := range testDSNs(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, q := bareQueue(b, dsn)
			const n = 100_000
			if err := seedDeliveries(ctx, db, n); err != nil {
				b.Fatal(err)
			}
			page, err := q.Find(ctx, Filter{})
			if err != nil {
				b.Fatal(err)
			}
			middle := fmt.Sprintf("%d:%s", page.Deliveries[0].Received.UnixMilli()-n/2, "")
			for _, c := range []struct {
				name string
				f    Filter
			}{
				{"newest", Filter{}},
				{"repo", Filter{Repo: "repo-7"}},
				{"failed", Filter{Status: "failed"}},
				{"pending", Filter{Status: "pending"}},
				{"search", Filter{Text: "deadbeef"}},
				{"deep-page", Filter{Before: middle}},
			} {
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						if _, err := q.Find(ctx, c.f); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run("repos", func(b *testing.B) {
				for b.Loop() {
					if _, err := q.Repos(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("last-started", func(b *testing.B) {
				for b.Loop() {
					if _, err := q.LastStarted(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			// Last, as it changes the rows: a backlog, half the deliveries
			// waiting and a third of the starts pending.
			if _, err := db.sql.ExecContext(ctx, `UPDATE monohook_delivery SET status = 'received' WHERE received_at % 2 = 0`); err != nil {
				b.Fatal(err)
			}
			if _, err := db.sql.ExecContext(ctx, `UPDATE monohook_start SET status = 'pending' WHERE updated_at % 3 = 0`); err != nil {
				b.Fatal(err)
			}
			if isPostgres(db) {
				if _, err := db.sql.ExecContext(ctx, `VACUUM ANALYZE`); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("pending-backlog", func(b *testing.B) {
				for b.Loop() {
					if _, err := q.Find(ctx, Filter{Status: "pending"}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// seedDeliveries stores n evaluated deliveries, one millisecond apart.
func seedDeliveries(ctx context.Context, db *DB, n int) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	now := time.Now().UnixMilli()
	payload := []byte(`{"ref":"refs/heads/main"}`)
	insD := db.q(`INSERT INTO monohook_delivery (id, event, received_at, payload, repo, ref, sha, paths, status, evaluated_at, result)
		VALUES (?, 'push', ?, ?, ?, 'refs/heads/main', ?, 12, 'evaluated', ?, ?)`)
	insS := db.q(`INSERT INTO monohook_start (delivery_id, round, pipeline, token, status, attempts, execution_id, updated_at)
		VALUES (?, 0, ?, ?, ?, 1, 'exec', ?)`)
	for i := range n {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		at := now - int64(n-i)
		sha := fmt.Sprintf("%040x", i*7919)
		repo := fmt.Sprintf("repo-%d", i%20)
		pipeline := fmt.Sprintf("pipe-%d", i%50)
		result := `{"repo":"` + repo + `","branch":"main","rules":40,"decisions":[{"rule":"mono-repo/config/` + repo + `-main-` + pipeline + `.json","pipeline":"` + pipeline + `","matched":true,"path":"services/x/main.go","expression":"services/x/.*"}],"start":["` + pipeline + `"]}`
		if _, err := tx.ExecContext(ctx, insD, id, at, payload, repo, sha, at, result); err != nil {
			return err
		}
		if i%5 == 4 {
			continue // started nothing
		}
		status := "started"
		if i%500 == 0 {
			status = "failed"
		}
		if _, err := tx.ExecContext(ctx, insS, id, pipeline, "tok-"+id, status, at); err != nil {
			return err
		}
		if i%3 == 0 {
			if _, err := tx.ExecContext(ctx, insS, id, pipeline+"-b", "tok-b-"+id, "started", at); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// As autovacuum would soon after: without statistics PostgreSQL's
	// planner guesses table sizes.
	if isPostgres(db) {
		_, err = db.sql.ExecContext(ctx, "ANALYZE")
	}
	return err
}

// BenchmarkRetention deletes 200,000 due deliveries while another
// goroutine writes a row every millisecond, as the committer would, and
// reports how long those writes waited: retention must not hold up
// acknowledgements. One iteration is the whole deletion (-benchtime 1x).
func BenchmarkRetention(b *testing.B) {
	for name, dsn := range testDSNs(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, q := bareQueue(b, dsn)
			const n = 200_000
			var waits []time.Duration
			for b.Loop() {
				b.StopTimer()
				if err := seedDeliveries(ctx, db, n); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				done := make(chan error, 1)
				go func() {
					_, err := q.DeleteBefore(ctx, time.Now().Add(time.Hour))
					done <- err
				}()
				for i := 0; ; i++ {
					select {
					case err := <-done:
						if err != nil {
							b.Fatal(err)
						}
					default:
						began := time.Now()
						if _, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO monohook_delivery (id, event, received_at, payload, status) VALUES (?, 'push', ?, ?, 'evaluated')`),
							fmt.Sprintf("write-%d-%d", len(waits), i), time.Now().Add(2*time.Hour).UnixMilli(), []byte("{}")); err != nil {
							b.Fatal(err)
						}
						waits = append(waits, time.Since(began))
						time.Sleep(time.Millisecond)
						continue
					}
					break
				}
			}
			slices.Sort(waits)
			ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
			b.ReportMetric(float64(len(waits)), "writes")
			b.ReportMetric(ms(waits[len(waits)/2]), "wait-p50-ms")
			b.ReportMetric(ms(waits[len(waits)*99/100]), "wait-p99-ms")
			b.ReportMetric(ms(waits[len(waits)-1]), "wait-max-ms")
		})
	}
}
