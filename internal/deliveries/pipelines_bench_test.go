package deliveries

import (
	"context"
	"testing"
)

// BenchmarkRuns measures a pipeline's page and the pipelines index with
// 100,000 deliveries stored (seedDeliveries: 80 pipelines, pipe-7 with
// 1,600 runs), then the page again without
// monohook_start_runs, as before it.
func BenchmarkRuns(b *testing.B) {
	for name, dsn := range testDSNs(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, q := bareQueue(b, dsn)
			if err := seedDeliveries(ctx, db, 100_000); err != nil {
				b.Fatal(err)
			}
			first, err := q.Runs(ctx, "pipe-7", "", 100)
			if err != nil || first.Next == "" {
				b.Fatal(first, err)
			}
			deep := first
			for range 8 {
				if deep, err = q.Runs(ctx, "pipe-7", deep.Next, 100); err != nil {
					b.Fatal(err)
				}
			}
			pages := func(b *testing.B) {
				for _, c := range []struct{ name, before string }{{"newest-100", ""}, {"page-9", deep.Next}} {
					b.Run(c.name, func(b *testing.B) {
						for b.Loop() {
							if _, err := q.Runs(ctx, "pipe-7", c.before, 100); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			}
			pages(b)
			b.Run("pipelines", func(b *testing.B) {
				for b.Loop() {
					ps, err := q.Pipelines(ctx)
					if err != nil || len(ps) != 80 {
						b.Fatal(len(ps), err)
					}
				}
			})
			if _, err := db.sql.ExecContext(ctx, `DROP INDEX monohook_start_runs`); err != nil {
				b.Fatal(err)
			}
			if isPostgres(db) {
				if _, err := db.sql.ExecContext(ctx, `ANALYZE`); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("without-index", pages)
		})
	}
}
