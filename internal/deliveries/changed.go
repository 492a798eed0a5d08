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
	seen := map[[2]any]bool{}
	var jobs []river.InsertManyParams
	count := q.db.q(`INSERT INTO monohook_report (delivery_id, round, queued) VALUES (?, ?, 1)
		ON CONFLICT (delivery_id, round) DO UPDATE SET queued = monohook_report.queued + 1 RETURNING queued`)
	for _, k := range keys {
		round := [2]any{k.DeliveryID, k.Round}
		if seen[round] {
			continue
		}
		seen[round] = true
		var queued int
		if err := tx.QueryRowContext(ctx, count, k.DeliveryID, k.Round).Scan(&queued); err != nil {
			return fmt.Errorf("queue the report of %s: %w", k.DeliveryID, err)
		}
		if queued == 1 {
			jobs = append(jobs, river.InsertManyParams{Args: reportArgs{DeliveryID: k.DeliveryID, Round: k.Round}})
		}
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
