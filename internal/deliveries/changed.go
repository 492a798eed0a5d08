package deliveries

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/riverqueue/river"
)

// A startKey names one start: a delivery's round's pipeline. A key
// without a pipeline names the round's decision itself (a round that
// starts nothing still has checks to report).
type startKey struct {
	DeliveryID string `json:"delivery_id"`
	Round      int    `json:"round"`
	Pipeline   string `json:"pipeline"`
}

// startsChanged queues, in tx, what follows a change of those starts'
// state (evaluated, started, failed, a result): their GitHub checks.
// Every change of a start row calls it in the transaction that makes it.
//
// A round's checks are brought up to date by one report job at a time
// (see reportWorker). Its monohook_report row counts the changes since a
// job last took it up (queued): the change that finds none queues a job;
// the others are seen by that job, which has not begun (taking the row
// up, it sets queued to 0). Redundant updates thus collapse into the job
// that waits. The row is written, and so locked, in tx whatever it held:
// a job taking it up waits for tx, and then reads what tx changed.
func (q *Queue) startsChanged(ctx context.Context, tx *sql.Tx, keys ...startKey) error {
	if q.opts.Report == nil {
		return nil
	}
	// In one order, so that two transactions counting changes of the same
	// rounds (start outcomes on two replicas) lock their rows alike and
	// never deadlock.
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b startKey) int {
		return cmp.Or(strings.Compare(a.DeliveryID, b.DeliveryID), cmp.Compare(a.Round, b.Round))
	})
	keys = slices.CompactFunc(keys, func(a, b startKey) bool { return a.DeliveryID == b.DeliveryID && a.Round == b.Round })
	var jobs []river.InsertManyParams
	// One statement for many rounds: on PostgreSQL each statement is a
	// round trip, and an evaluation batch records up to 512 deliveries.
	for len(keys) > 0 {
		n := min(len(keys), 500)
		queued, err := q.countChanges(ctx, tx, keys[:n])
		if err != nil {
			return err
		}
		for _, k := range queued {
			jobs = append(jobs, river.InsertManyParams{Args: reportArgs(k)})
		}
		keys = keys[n:]
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := q.river.InsertManyFastTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("queue report jobs: %w", err)
	}
	return nil
}

// countChanges counts a change of each round of keys (distinct, sorted)
// and returns those that no job waits for.
func (q *Queue) countChanges(ctx context.Context, tx *sql.Tx, keys []startKey) ([]roundKey, error) {
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k.DeliveryID, k.Round)
	}
	rows, err := tx.QueryContext(ctx, q.db.q(`INSERT INTO monohook_report (delivery_id, round, queued) VALUES `+
		strings.TrimSuffix(strings.Repeat("(?, ?, 1), ", len(keys)), ", ")+`
		ON CONFLICT (delivery_id, round) DO UPDATE SET queued = monohook_report.queued + 1 RETURNING delivery_id, round, queued`), args...)
	if err != nil {
		return nil, fmt.Errorf("queue reports: %w", err)
	}
	defer rows.Close()
	var out []roundKey
	for rows.Next() {
		var k roundKey
		var queued int
		if err := rows.Scan(&k.DeliveryID, &k.Round, &queued); err != nil {
			return nil, fmt.Errorf("queue reports: %w", err)
		}
		if queued == 1 {
			out = append(out, k)
		}
	}
	return out, rows.Err()
}

// wakeReports tells this process's report workers of jobs just committed.
func (q *Queue) wakeReports() {
	if q.opts.Report != nil {
		q.wakes.wake(reportQueue)
	}
}
