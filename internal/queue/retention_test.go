package queue

import (
	"context"
	"slices"
	"testing"
	"time"
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
