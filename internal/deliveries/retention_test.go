package deliveries

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/pgtest"
)

// TestDeleteOldestTakesTheOldestFirst: one transaction of a retention
// deletes the oldest deliveries due, by (received, id), and no more than
// its share; what is not due stays, however many are due.
func TestDeleteOldestTakesTheOldestFirst(t *testing.T) {
	for name, dsn := range testDSNs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, q := bareQueue(t, dsn)
			if err := seedDeliveries(ctx, db, 250); err != nil { // received 1 ms apart, up to now
				t.Fatal(err)
			}
			all, err := q.List(ctx, 1000)
			if err != nil {
				t.Fatal(err)
			}
			slices.Reverse(all)                  // oldest first
			cut := all[200].Received.UnixMilli() // the 200 oldest are due
			for _, want := range []int64{90, 90, 20, 0} {
				n, err := q.deleteOldest(ctx, cut, 90)
				if err != nil || n != want {
					t.Fatalf("deleteOldest = %d, %v; want %d", n, err, want)
				}
			}
			left, err := q.List(ctx, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 50 || left[len(left)-1].ID != all[200].ID {
				t.Errorf("left %d deliveries, the oldest %s; want 50 from %s", len(left), left[len(left)-1].ID, all[200].ID)
			}
			var starts int
			if err := db.sql.QueryRow(db.q(`SELECT count(*) FROM monohook_start WHERE delivery_id NOT IN (SELECT id FROM monohook_delivery)`)).Scan(&starts); err != nil || starts != 0 {
				t.Errorf("%d starts of deleted deliveries left (%v)", starts, err)
			}
			if n, err := q.DeleteBefore(ctx, time.UnixMilli(cut)); err != nil || n != 0 {
				t.Errorf("DeleteBefore after = %d, %v", n, err)
			}
		})
	}
}

// TestRetentionLeavesNoStartBehind: on PostgreSQL an evaluation may record
// a start for a delivery (a replay of an old one) while retention deletes
// it. Whichever commits first, no start row may outlive its delivery.
func TestRetentionLeavesNoStartBehind(t *testing.T) {
	if os.Getenv(pgtest.EnvVar) == "" {
		t.Skip("PostgreSQL only (SQLite has one writer, so the two never overlap); set " + pgtest.EnvVar)
	}
	ctx := context.Background()
	db, q := bareQueue(t, pgtest.FreshDatabase(t))
	if err := seedDeliveries(ctx, db, 10); err != nil {
		t.Fatal(err)
	}
	var oldest string
	if err := db.sql.QueryRow(`SELECT id FROM monohook_delivery ORDER BY received_at LIMIT 1`).Scan(&oldest); err != nil {
		t.Fatal(err)
	}
	// What record does: update the delivery's row, insert its start; not
	// committed yet.
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(`UPDATE monohook_delivery SET round = round + 1 WHERE id = $1`, oldest); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO monohook_start (delivery_id, round, pipeline, token, status, updated_at) VALUES ($1, 1, 'late', 'tok', 'pending', 0)`, oldest); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() {
		_, err := q.deleteOldest(ctx, time.Now().Add(time.Hour).UnixMilli(), 500)
		deleted <- err
	}()
	// Retention now waits for the delivery's row.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := db.sql.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("retention never waited for the delivery's row")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	var deliveries, starts int
	if err := db.sql.QueryRow(`SELECT (SELECT count(*) FROM monohook_delivery), (SELECT count(*) FROM monohook_start)`).Scan(&deliveries, &starts); err != nil {
		t.Fatal(err)
	}
	if deliveries != 0 || starts != 0 {
		t.Errorf("left %d deliveries and %d starts; want none", deliveries, starts)
	}
}
