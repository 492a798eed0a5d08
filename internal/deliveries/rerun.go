package deliveries

import (
	"context"
	"fmt"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

// maxSuiteReruns bounds the deliveries one check suite's re-run replays.
const maxSuiteReruns = 10

// Rerun replays what GitHub asks to run again, with new tokens (a new
// round): one delivery for one pipeline (a check run's re-run), or every
// delivery of a commit (a check suite's), at most maxSuiteReruns. request
// is the webhook delivery that asked: a request seen before is
// trigger.ErrDuplicate, and re-runs nothing. It returns how many
// deliveries it replays; 0 when none of them is stored.
func (q *Queue) Rerun(ctx context.Context, request string, r trigger.Rerun) (int, error) {
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("re-run: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	res, err := tx.ExecContext(ctx, q.db.q(`INSERT INTO monohook_rerun (id, received_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`), request, time.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("re-run: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, trigger.ErrDuplicate
	}
	var ids []string
	if r.DeliveryID != "" {
		// The check run's repository and commit, not only its external id:
		// the same commit may be in another repository, and a check run
		// there must not replay this one's delivery.
		rows, err := tx.QueryContext(ctx, q.db.q(`SELECT id FROM monohook_delivery WHERE id = ? AND repo = ? AND sha = ?`), r.DeliveryID, r.RepoName, r.HeadSHA)
		if err != nil {
			return 0, fmt.Errorf("re-run: %w", err)
		}
		ids, err = scanStrings(rows)
		if err != nil {
			return 0, fmt.Errorf("re-run: %w", err)
		}
	} else {
		rows, err := tx.QueryContext(ctx, q.db.q(`SELECT id FROM monohook_delivery WHERE repo = ? AND sha = ? AND status = 'evaluated'
			ORDER BY received_at DESC LIMIT ?`), r.RepoName, r.HeadSHA, maxSuiteReruns)
		if err != nil {
			return 0, fmt.Errorf("re-run: %w", err)
		}
		if ids, err = scanStrings(rows); err != nil {
			return 0, fmt.Errorf("re-run: %w", err)
		}
	}
	// A re-run of one pipeline is evaluated by its own job only (status
	// retrying: sweeps take received deliveries), so that its Only holds.
	status := "received"
	if r.Pipeline != "" {
		status = "retrying"
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, q.db.q(`UPDATE monohook_delivery SET round = round + 1, status = ? WHERE id = ?`), status, id); err != nil {
			return 0, fmt.Errorf("re-run %s: %w", id, err)
		}
		if _, err := q.river.InsertTx(ctx, tx, evaluateArgs{DeliveryIDs: []string{id}, Only: r.Pipeline}, nil); err != nil {
			return 0, fmt.Errorf("re-run %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("re-run: %w", err)
	}
	if len(ids) > 0 {
		q.wakes.wake(evaluateQueue)
	}
	return len(ids), nil
}
