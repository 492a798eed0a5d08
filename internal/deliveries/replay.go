package deliveries

import (
	"context"
	"fmt"
)

// Replay evaluates a stored delivery again against the current rules; the
// pipelines it selects are started again (with new tokens). It returns the
// replay's round number.
func (q *Queue) Replay(ctx context.Context, id string) (int, error) {
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	res, err := tx.ExecContext(ctx, q.db.q(`UPDATE monohook_delivery SET round = round + 1, status = 'received' WHERE id = ?`), id)
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, fmt.Errorf("replay %s: %w", id, ErrNotFound)
	}
	var round int
	if err := tx.QueryRowContext(ctx, q.db.q(`SELECT round FROM monohook_delivery WHERE id = ?`), id).Scan(&round); err != nil {
		return 0, fmt.Errorf("replay %s: %w", id, err)
	}
	if _, err := q.river.InsertTx(ctx, tx, evaluateArgs{DeliveryIDs: []string{id}}, nil); err != nil {
		return 0, fmt.Errorf("replay %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("replay %s: %w", id, err)
	}
	q.wakes.wake(evaluateQueue)
	return round, nil
}
