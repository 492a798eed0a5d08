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

// SetResult writes a start's result columns as following its execution
// does, and reports the change, in one transaction.
func SetResult(ctx context.Context, q *Queue, id string, round int, pipeline, result, detail, url string) error {
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, q.db.q(`UPDATE monohook_start SET result = ?, result_detail = ?, url = ?, finished_at = 1
		WHERE delivery_id = ? AND round = ? AND pipeline = ?`), result, detail, url, id, round, pipeline); err != nil {
		return err
	}
	if err := q.startsChanged(ctx, tx, startKey{id, round, pipeline}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	q.wakeReports()
	return nil
}

// ForgetChecks leaves the record of the checks posted as a crash between
// the creation of their check runs and the record of their ids would: an
// intent to create each, nothing more.
func ForgetChecks(ctx context.Context, q *Queue) error {
	_, err := q.db.sql.ExecContext(ctx, `UPDATE monohook_check SET check_id = -1, digest = ''`)
	return err
}

// ChecksDone counts the checks of a delivery's rounds recorded as posted
// (or kept), the ones still to create not counted.
func ChecksDone(ctx context.Context, q *Queue, id string) int {
	var n int
	_ = q.db.sql.QueryRowContext(ctx, q.db.q(`SELECT COUNT(*) FROM monohook_check WHERE delivery_id = ? AND digest <> ''`), id).Scan(&n)
	return n
}

// ReportsPending counts the report jobs not done yet.
func ReportsPending(ctx context.Context, q *Queue) int {
	var n int
	_ = q.db.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = 'monohook_report' AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&n)
	return n
}
