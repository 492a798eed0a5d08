package deliveries

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"

	"github.com/monohook/monohook/internal/trigger"
)

// An outcome is one start's row update (a start job's outcome, or a
// follow job's result), recorded with those of the starts that finished
// meanwhile: on SQLite a transaction of its own for each start cost a
// flush of the one writer each, and under 300 pushes/s the starts fell
// behind the pushes (BENCHMARKS.md, "Push to start").
type outcome struct {
	key startKey
	// result: a followed execution's result (resultUpdate), not a start
	// job's outcome (outcomeUpdate).
	result      bool
	target      string // the target type, for the metrics
	status      string
	attempts    int
	executionID string
	output, err string
	at          int64 // Unix milliseconds
	// progress is what the start or the follow told of the execution: its
	// URL, and its result once done (an http or exec answer, a start that
	// failed for good, a followed execution that ended).
	progress trigger.Progress
	// follow is the follow job queued with the row, if any.
	follow *followArgs
	done   chan error
}

// maxDetail bounds a result's detail, a URL and an execution id, and
// maxText a target's answer and an error (the targets keep at most 16
// KiB of an answer): they are the target's words.
const (
	maxDetail = 1 << 10
	maxText   = 64 << 10
)

// A start whose result is recorded has ended: no later word on it (a
// start job worked again after a crash, a follow job rescued) changes it.
const (
	outcomeUpdate = `UPDATE monohook_start SET status = ?, attempts = ?, execution_id = ?, output = ?, error = ?, updated_at = ?,
	url = ?, result = ?, result_detail = ?, finished_at = ?
	WHERE delivery_id = ? AND round = ? AND pipeline = ? AND result = ''`
	// A result leaves updated_at as the start job left it: when the
	// execution started (Start.Duration, LastStarted).
	resultUpdate = `UPDATE monohook_start SET url = ?, result = ?, result_detail = ?, finished_at = ?
	WHERE delivery_id = ? AND round = ? AND pipeline = ? AND result = ''`
)

// args are o's statement and its values.
func (o outcome) args() (string, []any) {
	var finished int64
	if o.progress.Done {
		finished = o.at
	}
	p, k := o.progress, o.key
	url, detail := text(p.URL, maxDetail), text(p.Detail, maxDetail)
	if o.result {
		return resultUpdate, []any{url, p.Conclusion, detail, finished, k.DeliveryID, k.Round, k.Pipeline}
	}
	return outcomeUpdate, []any{o.status, o.attempts, text(o.executionID, maxDetail), text(o.output, maxText), text(o.err, maxText), o.at,
		url, p.Conclusion, detail, finished, k.DeliveryID, k.Round, k.Pipeline}
}

// text is what a target said (its answer, its error, a URL, a detail),
// storable in both databases' text: PostgreSQL refuses NUL and bytes that
// are not UTF-8, and one such value failed the commit of every outcome
// with it, so the starts were never recorded and ran again. It keeps at
// most limit bytes, cut between characters.
func text(s string, limit int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// recordOutcome records a start's outcome and returns once it is
// committed.
func (q *Queue) recordOutcome(ctx context.Context, o outcome) error {
	o.done = make(chan error, 1)
	// Under mu, as Close closes outcomes: a start job cut off at the
	// shutdown deadline may still be finishing.
	q.mu.RLock()
	if q.outcomesClosed {
		q.mu.RUnlock()
		return ErrClosed
	}
	select {
	case q.outcomes <- o:
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	q.mu.RUnlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcomeLoop commits the outcomes that arrived while it was committing
// the previous ones, in one transaction. It ends when Close closes
// outcomes, after the start and follow jobs have stopped.
func (q *Queue) outcomeLoop() {
	defer q.recorded.Done()
	for o := range q.outcomes {
		group := []outcome{o}
	gather:
		for len(group) < maxGroup {
			select {
			case o, ok := <-q.outcomes:
				if !ok {
					break gather
				}
				group = append(group, o)
			default:
				break gather
			}
		}
		err := q.commitOutcomes(group)
		for _, o := range group {
			o.done <- err
		}
	}
}

// ended is a result written, for the metrics once committed.
type ended struct {
	target, conclusion string
	sincePush          time.Duration
}

func (q *Queue) commitOutcomes(group []outcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var keys []startKey
	var jobs []river.InsertManyParams
	var results []ended
	for _, o := range group {
		query, args := o.args()
		res, err := tx.ExecContext(ctx, q.db.q(query), args...)
		if err != nil {
			return fmt.Errorf("record outcome: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue // no such start any more, or its result is in
		}
		keys = append(keys, o.key)
		if o.follow != nil {
			jobs = append(jobs, o.follow.insert(q.opts.FollowPoll))
		}
		if o.progress.Done {
			e, err := q.ended(ctx, tx, o)
			if err != nil {
				return err
			}
			results = append(results, e)
		}
	}
	if len(jobs) > 0 {
		if _, err := q.river.InsertManyTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("queue follow jobs: %w", err)
		}
	}
	if err := q.startsChanged(ctx, tx, keys...); err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	q.wakeReports()
	for _, e := range results {
		q.opts.Metrics.Result(e.target, e.conclusion, e.sincePush)
	}
	return nil
}

// ended is o's result with the time since its delivery arrived.
func (q *Queue) ended(ctx context.Context, tx *sql.Tx, o outcome) (ended, error) {
	var received int64
	err := tx.QueryRowContext(ctx, q.db.q(`SELECT received_at FROM monohook_delivery WHERE id = ?`), o.key.DeliveryID).Scan(&received)
	if err != nil {
		return ended{}, fmt.Errorf("record result of %s: %w", o.key.DeliveryID, err)
	}
	return ended{o.target, o.progress.Conclusion, time.Duration(o.at-received) * time.Millisecond}, nil
}
