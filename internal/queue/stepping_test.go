package queue

import (
	"context"
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
				{"x-5", "ab", "ab", "dry-run"}, // later than its start
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
			_, aB := last["a-b"]
			_, zz := last["zz"]
			if last["a"].UnixMilli() != now+1 || last["ab"].UnixMilli() != now+5 || aB || zz {
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
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// plainLastStarted is what LastStarted answers, the plain way.
func plainLastStarted(t *testing.T, db *DB) map[string]time.Time {
	t.Helper()
	rows, err := db.sql.Query(`SELECT pipeline, MAX(updated_at) FROM monohook_start WHERE status IN ('started', 'dry-run') GROUP BY pipeline`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := scanLastStarted(rows)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
