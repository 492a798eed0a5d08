package deliveries

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

// TestReposAndLastStartedStepThroughIndexes: the queries that step from
// one repository (pipeline) to the next answer what a plain DISTINCT
// (GROUP BY) answers, on an empty database and on one with empty
// repositories, pipelines that never started, dry runs and names that sort
// next to each other.
func TestReposAndLastStartedStepThroughIndexes(t *testing.T) {
	for name, dsn := range testDSNs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, q := bareQueue(t, dsn)
			check := func(when string) {
				t.Helper()
				repos, err := q.Repos(ctx)
				if err != nil {
					t.Fatal(err)
				}
				want := plainRepos(t, db)
				if !slices.Equal(repos, want) {
					t.Errorf("%s: repositories %v, want %v", when, repos, want)
				}
				last, err := q.LastStarted(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if wantLast := plainLastStarted(t, db); !maps.Equal(last, wantLast) {
					t.Errorf("%s: last started %v, want %v", when, last, wantLast)
				}
			}
			check("empty")

			if err := seedDeliveries(ctx, db, 2000); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UnixMilli()
			for i, row := range []struct{ id, repo, pipeline, status string }{
				{"ping-1", "", "", ""}, // not a push: no repository
				{"x-1", "a", "a", "dry-run"},
				{"x-2", "a-b", "a-b", "failed"}, // never started
				{"x-3", "a-b", "a-b", "pending"},
				{"x-4", "ab", "ab", "started"},
				{"x-5", "ab", "ab", "dry-run"}, // later than its start, and no start
				{"x-6", "zz", "zz", "retrying"},
			} {
				if _, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO monohook_delivery (id, event, received_at, payload, repo, status) VALUES (?, 'push', ?, ?, ?, 'evaluated')`),
					row.id, now+int64(i), []byte("{}"), row.repo); err != nil {
					t.Fatal(err)
				}
				if row.pipeline == "" {
					continue
				}
				if _, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO monohook_start (delivery_id, round, pipeline, token, status, updated_at) VALUES (?, 0, ?, ?, ?, ?)`),
					row.id, row.pipeline, "tok-"+row.id, row.status, now+int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			check("seeded")
			// The plain answers, as the seeded rows make them.
			last, _ := q.LastStarted(ctx)
			_, a := last["a"] // a dry run alone starts nothing
			_, aB := last["a-b"]
			_, zz := last["zz"]
			if a || last["ab"].UnixMilli() != now+4 || aB || zz {
				t.Errorf("last started %v", last)
			}
			if repos, _ := q.Repos(ctx); len(repos) != 20+4 || repos[0] != "a" {
				t.Errorf("repositories %v", repos)
			}
		})
	}
}

// plainRepos is what Repos answers, the plain way.
func plainRepos(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.sql.Query(`SELECT DISTINCT repo FROM monohook_delivery WHERE repo <> '' ORDER BY repo`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := scanStrings(rows)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// plainLastStarted is what LastStarted answers, the plain way.
func plainLastStarted(t *testing.T, db *DB) map[string]time.Time {
	t.Helper()
	rows, err := db.sql.Query(`SELECT pipeline, MAX(updated_at) FROM monohook_start WHERE status = 'started' GROUP BY pipeline`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := scanLastStarted(rows)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPendingFilterIsThePlainOne: the "pending" filter, two queries each
// through its own index, pages through what the plain condition (status
// OR start, in the latest round) selects: deliveries not evaluated,
// retrying, or with starts pending or retrying (several to a delivery, in
// the latest round only), among others, with and without a repository.
func TestPendingFilterIsThePlainOne(t *testing.T) {
	for name, dsn := range testDSNs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, q := bareQueue(t, dsn)
			if err := seedDeliveries(ctx, db, 300); err != nil { // evaluated, started or failed, one ms apart
				t.Fatal(err)
			}
			now := time.Now().UnixMilli()
			for i := range 60 {
				id, repo, at := fmt.Sprintf("w-%02d", i), fmt.Sprintf("repo-%d", i%2), now-int64(i*7)
				status, round, starts := "evaluated", 1, []string(nil)
				switch i % 6 {
				case 0:
					status = "received"
				case 1:
					status = "retrying"
				case 2:
					starts = []string{"pending", "pending", "pending"} // one delivery, three pipelines
				case 3:
					starts = []string{"retrying", "started"}
				case 4:
					starts = []string{"started", "failed"} // done
				case 5:
					round = 2 // pending in an earlier round only
					starts = []string{"pending"}
				}
				if _, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO monohook_delivery (id, event, received_at, payload, repo, status, round) VALUES (?, 'push', ?, ?, ?, ?, ?)`),
					id, at, []byte("{}"), repo, status, round); err != nil {
					t.Fatal(err)
				}
				for j, st := range starts {
					r := round
					if i%6 == 5 {
						r = 1
					}
					if _, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO monohook_start (delivery_id, round, pipeline, token, status, updated_at) VALUES (?, ?, ?, ?, ?, ?)`),
						id, r, fmt.Sprintf("p%d", j), fmt.Sprintf("tok-%s-%d", id, j), st, at); err != nil {
						t.Fatal(err)
					}
				}
			}
			// A repository whose deliveries in progress are all of one kind:
			// a page then comes from one of the two queries alone.
			for i := range 10 {
				if _, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO monohook_delivery (id, event, received_at, payload, repo, status) VALUES (?, 'push', ?, ?, 'waiting-only', 'received')`),
					fmt.Sprintf("only-%d", i), now-int64(i*5), []byte("{}")); err != nil {
					t.Fatal(err)
				}
			}
			for repo, n := range map[string]int{"": 50, "repo-1": 20, "waiting-only": 10} {
				want := plainPending(t, db, repo)
				if len(want) != n {
					t.Fatalf("%q: the plain query selects %d deliveries, want %d", repo, len(want), n)
				}
				for _, limit := range []int{3, 7, 50} {
					var got []string
					f := Filter{Status: "pending", Repo: repo, Limit: limit}
					for {
						page, err := q.Find(ctx, f)
						if err != nil {
							t.Fatal(err)
						}
						for _, d := range page.Deliveries {
							got = append(got, d.ID)
						}
						if page.Next == "" {
							break
						}
						f.Before = page.Next
					}
					if !slices.Equal(got, want) {
						t.Errorf("repository %q, pages of %d: %v, want %v", repo, limit, got, want)
					}
				}
			}
		})
	}
}

// plainPending is what the "pending" filter selects, the plain way.
func plainPending(t *testing.T, db *DB, repo string) []string {
	t.Helper()
	rows, err := db.sql.Query(db.q(`SELECT id FROM monohook_delivery d
		WHERE (d.status IN ('received', 'retrying') OR (d.id, d.round) IN (SELECT s.delivery_id, s.round FROM monohook_start s WHERE s.status IN ('pending', 'retrying')))
		AND (? = '' OR d.repo = ?) ORDER BY d.received_at DESC, d.id DESC`), repo, repo)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := scanStrings(rows)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
