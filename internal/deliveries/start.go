package deliveries

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/monohook/monohook/internal/trigger"
)

// startArgs is the job that starts one pipeline for one delivery: the
// start its plan decided (whose JSON is that of jobs queued before).
type startArgs struct{ trigger.Start }

func (startArgs) Kind() string { return "monohook_start" }

func (startArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: startQueue} }

type startWorker struct {
	river.WorkerDefaults[startArgs]
	q *Queue
}

// Work starts the pipeline. Throttling, 5xx and network errors are retried
// with backoff; a permanent error (no such pipeline, access denied) is not,
// and the start is marked failed at once: the dead letter a person sees.
// A start the starter answered without starting anything (trigger.DryRun)
// is recorded as a dry run, whoever queued the job: a dry run on a
// database holding a live run's start jobs records them, and they stay
// visible and replayable.
func (w *startWorker) Work(ctx context.Context, job *river.Job[startArgs]) error {
	q, a := w.q, job.Args
	log := q.log.With("delivery", a.DeliveryID, "pipeline", a.Name, "token", a.Token, "attempt", job.Attempt)
	req := a.Request(func(ctx context.Context) ([]string, error) { return q.ChangedPaths(ctx, a.DeliveryID) })
	target := req.Type()
	log = log.With("target", target)
	got, startErr := q.starter.Start(ctx, req)
	// The outcome is recorded even when the job's context has ended (the
	// shutdown deadline, the job timeout): what the target answered, or
	// that the attempt was cut short, is what the dashboard must show.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := time.Now().UnixMilli()
	if startErr == nil && got.DryRun {
		if err := q.recordOutcome(ctx, "dry-run", job.Attempt, "", got.Output, "", now, a.DeliveryID, a.Round, a.Name); err != nil {
			return fmt.Errorf("record dry run: %w", err)
		}
		log.Info("dry run: pipeline not started")
		return nil
	}
	if startErr == nil {
		// Should this not be recorded (a crash now), the job runs again,
		// and the same token gets the same execution from CodePipeline.
		if err := q.recordOutcome(ctx, "started", job.Attempt, got.ID, got.Output, "", now, a.DeliveryID, a.Round, a.Name); err != nil {
			return fmt.Errorf("record start: %w", err)
		}
		log.Info("pipeline started", "execution_id", got.ID)
		q.opts.Metrics.Start(target, "started")
		return nil
	}
	status, permanent := "retrying", errors.Is(startErr, trigger.ErrPermanent)
	if permanent || job.Attempt >= job.MaxAttempts {
		status = "failed"
	}
	if err := q.recordOutcome(ctx, status, job.Attempt, "", got.Output, startErr.Error(), now, a.DeliveryID, a.Round, a.Name); err != nil {
		log.Error("could not record a failed start", "err", err)
	}
	q.opts.Metrics.Start(target, status)
	if permanent {
		log.Error("pipeline start failed; not retried", "err", startErr)
		return river.JobCancel(startErr)
	}
	if status == "failed" {
		log.Error("pipeline start failed; attempts exhausted", "err", startErr)
	} else {
		log.Warn("pipeline start failed; will retry", "err", startErr)
	}
	return startErr
}

// An outcome is one start's row update, recorded with those of the starts
// that finished meanwhile: on SQLite a transaction of its own for each
// start cost a flush of the one writer each, and under 300 pushes/s the
// starts fell behind the pushes (BENCHMARKS.md, "Push to start").
type outcome struct {
	args []any
	done chan error
}

// recordOutcome records a start's outcome (the columns of outcomeUpdate)
// and returns once it is committed.
func (q *Queue) recordOutcome(ctx context.Context, args ...any) error {
	o := outcome{args: args, done: make(chan error, 1)}
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

const outcomeUpdate = `UPDATE monohook_start SET status = ?, attempts = ?, execution_id = ?, output = ?, error = ?, updated_at = ?
	WHERE delivery_id = ? AND round = ? AND pipeline = ?`

// outcomeLoop commits the outcomes that arrived while it was committing
// the previous ones, in one transaction. It ends when Close closes
// outcomes, after the start jobs have stopped.
func (q *Queue) outcomeLoop() {
	defer q.recorded.Done()
	update := q.db.q(outcomeUpdate)
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
		err := q.commitOutcomes(update, group)
		for _, o := range group {
			o.done <- err
		}
	}
}

func (q *Queue) commitOutcomes(update string, group []outcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	keys := make([]startKey, len(group))
	for i, o := range group {
		if _, err := tx.ExecContext(ctx, update, o.args...); err != nil {
			return fmt.Errorf("record outcome: %w", err)
		}
		// The key's columns end outcomeUpdate's arguments.
		keys[i] = startKey{DeliveryID: o.args[6].(string), Round: o.args[7].(int), Pipeline: o.args[8].(string)}
	}
	if err := q.startsChanged(ctx, tx, keys...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	q.wakeReports()
	return nil
}
