package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

// Delivery is a stored delivery as the operations commands show it.
type Delivery struct {
	ID          string          `json:"id"`
	Event       string          `json:"event"`
	Received    time.Time       `json:"received"`
	Repo        string          `json:"repo,omitempty"`
	Ref         string          `json:"ref,omitempty"`
	SHA         string          `json:"sha,omitempty"`
	Paths       int             `json:"paths"`
	Status      string          `json:"status"` // received, evaluated
	Duplicates  int             `json:"duplicates"`
	Round       int             `json:"round"` // evaluations so far beyond the first (replays)
	EvaluatedAt *time.Time      `json:"evaluated_at,omitempty"`
	Result      *trigger.Result `json:"result,omitempty"`
	Starts      []Start         `json:"starts,omitempty"`
}

// Start is one pipeline start of a delivery and what the target answered.
type Start struct {
	Round       int       `json:"round"`
	Pipeline    string    `json:"pipeline"`
	Token       string    `json:"token"`
	Status      string    `json:"status"` // pending, retrying, started, failed, dry-run
	Attempts    int       `json:"attempts"`
	ExecutionID string    `json:"execution_id,omitempty"`
	Error       string    `json:"error,omitempty"`
	Updated     time.Time `json:"updated"`
}

// List returns the newest deliveries first, at most limit.
func (q *Queue) List(ctx context.Context, limit int) ([]Delivery, error) {
	rows, err := q.db.sql.QueryContext(ctx, q.db.q(`SELECT id, event, received_at, repo, ref, sha, paths, status, duplicates, round
		FROM monohook_delivery ORDER BY received_at DESC, id LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var received int64
		if err := rows.Scan(&d.ID, &d.Event, &received, &d.Repo, &d.Ref, &d.SHA, &d.Paths, &d.Status, &d.Duplicates, &d.Round); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.Received = time.UnixMilli(received)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Get returns one delivery with its decision and starts, read together in
// one transaction: read separately, a delivery could show starts that
// happened after the moment its status was read.
func (q *Queue) Get(ctx context.Context, id string) (Delivery, error) {
	opts := &sql.TxOptions{}
	if q.db.postgres {
		opts.Isolation = sql.LevelRepeatableRead // one snapshot for both reads
	}
	tx, err := q.db.sql.BeginTx(ctx, opts)
	if err != nil {
		return Delivery{}, fmt.Errorf("read delivery %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to commit
	d := Delivery{ID: id}
	var received int64
	var evaluated sql.NullInt64
	var result sql.NullString
	err = tx.QueryRowContext(ctx, q.db.q(`SELECT event, received_at, repo, ref, sha, paths, status, duplicates, round, evaluated_at, result
		FROM monohook_delivery WHERE id = ?`), id).
		Scan(&d.Event, &received, &d.Repo, &d.Ref, &d.SHA, &d.Paths, &d.Status, &d.Duplicates, &d.Round, &evaluated, &result)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("read delivery %s: %w", id, err)
	}
	d.Received = time.UnixMilli(received)
	if evaluated.Valid {
		t := time.UnixMilli(evaluated.Int64)
		d.EvaluatedAt = &t
	}
	if result.Valid {
		d.Result = &trigger.Result{}
		if err := json.Unmarshal([]byte(result.String), d.Result); err != nil {
			return Delivery{}, fmt.Errorf("delivery %s: decision: %w", id, err)
		}
	}
	rows, err := tx.QueryContext(ctx, q.db.q(`SELECT round, pipeline, token, status, attempts, execution_id, error, updated_at
		FROM monohook_start WHERE delivery_id = ? ORDER BY round, pipeline`), id)
	if err != nil {
		return Delivery{}, fmt.Errorf("read starts of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s Start
		var updated int64
		if err := rows.Scan(&s.Round, &s.Pipeline, &s.Token, &s.Status, &s.Attempts, &s.ExecutionID, &s.Error, &updated); err != nil {
			return Delivery{}, fmt.Errorf("read starts of %s: %w", id, err)
		}
		s.Updated = time.UnixMilli(updated)
		d.Starts = append(d.Starts, s)
	}
	return d, rows.Err()
}

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
	return round, nil
}

// DeleteBefore deletes the deliveries received before t, with their starts.
func (q *Queue) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("delete old deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	cut := t.UnixMilli()
	if _, err := tx.ExecContext(ctx, q.db.q(`DELETE FROM monohook_start WHERE delivery_id IN (SELECT id FROM monohook_delivery WHERE received_at < ?)`), cut); err != nil {
		return 0, fmt.Errorf("delete old starts: %w", err)
	}
	res, err := tx.ExecContext(ctx, q.db.q(`DELETE FROM monohook_delivery WHERE received_at < ?`), cut)
	if err != nil {
		return 0, fmt.Errorf("delete old deliveries: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}
