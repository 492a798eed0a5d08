package deliveries

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/riverqueue/river"
)

// retentionArgs is the periodic job that deletes old deliveries.
type retentionArgs struct{}

func (retentionArgs) Kind() string { return "monohook_retention" }

type retentionWorker struct {
	river.WorkerDefaults[retentionArgs]
	q *Queue
}

func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[retentionArgs]) error {
	if w.q.opts.Retention <= 0 {
		return nil
	}
	n, err := w.q.DeleteBefore(ctx, time.Now().Add(-w.q.opts.Retention))
	if err != nil {
		return err
	}
	if n > 0 {
		w.q.log.Info("old deliveries deleted", "deliveries", n, "retention", w.q.opts.Retention)
	}
	return nil
}

// retentionBatch is how many deliveries one transaction of DeleteBefore
// deletes. Deleting all that is due in one transaction held SQLite's write
// lock, and with it every acknowledgement, for as long as it took: seconds
// for a day of a busy organisation's deliveries, more than the job's
// timeout once the retention is shortened, and then the deletion was
// rolled back and tried again, each time holding the lock.
const retentionBatch = 500

// DeleteBefore deletes the deliveries received before t, with their starts
// and payloads, oldest first, retentionBatch at a time; what it deleted
// stays deleted when ctx ends before it is done.
func (q *Queue) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		n, err := q.deleteOldest(ctx, t.UnixMilli(), retentionBatch)
		// PostgreSQL may end a deletion in a deadlock with start
		// outcomes being recorded for the same rows (their group commit
		// updates several start rows in one transaction): the deletion
		// was rolled back whole, so it is run again.
		for try := 0; deadlocked(err) && try < 3; try++ {
			n, err = q.deleteOldest(ctx, t.UnixMilli(), retentionBatch)
		}
		total += n
		if err != nil || n < retentionBatch {
			return total, err
		}
	}
}

// deleteOldest deletes, in one transaction, the oldest limit deliveries
// received before cut (Unix milliseconds), with their starts and payloads.
//
// The deliveries go first, their starts after. On PostgreSQL an evaluation
// may be recording a start for one of them (a replay of an old delivery):
// deleting its row waits for that evaluation's commit, and the starts'
// deletion, a later statement, then sees the start it recorded. The other
// way round, a start committed between the two statements outlived its
// delivery. If the deletion comes first, the evaluation's update finds no
// row and records nothing.
func (q *Queue) deleteOldest(ctx context.Context, cut int64, limit int) (int64, error) {
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("delete old deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	// Ordered by the unique (received_at, id), read through its index.
	_, _, key := q.db.dialect.payload()
	rows, err := tx.QueryContext(ctx, q.db.q(`DELETE FROM monohook_delivery WHERE id IN (
		SELECT id FROM monohook_delivery WHERE received_at < ? ORDER BY received_at, id LIMIT ?) RETURNING id, `+key), cut, limit)
	if err != nil {
		return 0, fmt.Errorf("delete old deliveries: %w", err)
	}
	var ids, keys []any
	for rows.Next() {
		var id string
		var k sql.NullInt64
		if err := rows.Scan(&id, &k); err != nil {
			rows.Close()
			return 0, fmt.Errorf("delete old deliveries: %w", err)
		}
		ids = append(ids, id)
		if k.Valid {
			keys = append(keys, k.Int64)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("delete old deliveries: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, q.db.q(`DELETE FROM monohook_start WHERE delivery_id IN (`+marks(len(ids))+`)`), ids...); err != nil {
		return 0, fmt.Errorf("delete old starts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, q.db.q(`DELETE FROM monohook_rerun WHERE received_at < ?`), cut); err != nil {
		return 0, fmt.Errorf("delete old re-run requests: %w", err)
	}
	for _, table := range []string{"monohook_report", "monohook_check"} {
		if _, err := tx.ExecContext(ctx, q.db.q(`DELETE FROM `+table+` WHERE delivery_id IN (`+marks(len(ids))+`)`), ids...); err != nil {
			return 0, fmt.Errorf("delete old checks: %w", err)
		}
	}
	if err := q.db.dialect.deletePayloads(ctx, tx, ids, keys); err != nil {
		return 0, fmt.Errorf("delete old payloads: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("delete old deliveries: %w", err)
	}
	return int64(len(ids)), nil
}

// deadlocked reports whether PostgreSQL ended the transaction to break a
// deadlock (SQLSTATE 40P01).
func deadlocked(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "40P01"
}
