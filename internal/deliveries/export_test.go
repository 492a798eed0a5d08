package deliveries

import (
	"context"
	"fmt"
	"time"
)

// SetFull makes SQLite's writer connection treat db as full at its
// current size, or lifts that: every write that needs a new page then
// fails with SQLITE_FULL, the error a full disk gives.
func SetFull(ctx context.Context, db *DB, full bool) error {
	pages := int64(1<<32 - 2) // SQLite's largest
	if full {
		if err := db.sql.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			return err
		}
	}
	_, err := db.sql.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages))
	return err
}

// PollsFor is how many times a follow job with opts's backoff asks about
// an execution that ends after d: the first poll FollowPoll after the
// start, then one after each followDelay, jitter included.
func PollsFor(opts Options, d time.Duration) int {
	q := &Queue{opts: followDefaults(opts)}
	at, polls := q.opts.FollowPoll, 0
	for snoozes := 0; ; snoozes++ {
		polls++
		if at >= d || at >= q.opts.FollowFor {
			return polls
		}
		at += q.followDelay(fmt.Appendf(nil, `{"snoozes": %d}`, snoozes), q.opts.FollowFor-at)
	}
}
