package deliveries

import (
	"context"
	"database/sql"
	"fmt"

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
// (see reportWorker): its monohook_report row says whether a job waits
// for it (queued) — then this change is seen by that job, and nothing is
// queued — or not, and a job is queued. Redundant updates thus collapse
// into the job that waits, however many changes happen meanwhile.
func (q *Queue) startsChanged(ctx context.Context, tx *sql.Tx, keys ...startKey) error {
	if q.opts.Report == nil {
		return nil
	}
	seen := map[[2]any]bool{}
	var jobs []river.InsertManyParams
	mark := q.db.q(`UPDATE monohook_report SET queued = 1 WHERE delivery_id = ? AND round = ? AND queued = 0`)
	insert := q.db.q(`INSERT INTO monohook_report (delivery_id, round, queued) VALUES (?, ?, 1) ON CONFLICT (delivery_id, round) DO NOTHING`)
	for _, k := range keys {
		round := [2]any{k.DeliveryID, k.Round}
		if seen[round] {
			continue
		}
		seen[round] = true
		res, err := tx.ExecContext(ctx, mark, k.DeliveryID, k.Round)
		if err != nil {
			return fmt.Errorf("queue the report of %s: %w", k.DeliveryID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if res, err = tx.ExecContext(ctx, insert, k.DeliveryID, k.Round); err != nil {
				return fmt.Errorf("queue the report of %s: %w", k.DeliveryID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // a job waits for this round already
			}
		}
		jobs = append(jobs, river.InsertManyParams{Args: reportArgs{DeliveryID: k.DeliveryID, Round: k.Round}})
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := q.river.InsertManyFastTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("queue report jobs: %w", err)
	}
	return nil
}

// wakeReports tells this process's report workers of jobs just committed.
func (q *Queue) wakeReports() {
	if q.opts.Report != nil {
		q.wakes.wake(reportQueue)
	}
}
