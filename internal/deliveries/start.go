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
	o := outcome{key: startKey{a.DeliveryID, a.Round, a.Name}, target: target, attempts: job.Attempt, output: got.Output, at: time.Now().UnixMilli()}
	if startErr == nil && got.DryRun {
		o.status = "dry-run"
		if err := q.recordOutcome(ctx, o); err != nil {
			return fmt.Errorf("record dry run: %w", err)
		}
		log.Info("dry run: pipeline not started")
		return nil
	}
	if startErr == nil {
		// Should this not be recorded (a crash now), the job runs again,
		// and the same token gets the same execution from CodePipeline.
		o.status, o.executionID, o.progress = "started", got.ID, got.Progress
		if !got.Progress.Done && q.opts.Follower != nil {
			o.follow = &followArgs{Key: o.key, Start: a.Start, Target: target, ExecutionID: got.ID, URL: got.Progress.URL, StartedAt: o.at}
		}
		if err := q.recordOutcome(ctx, o); err != nil {
			return fmt.Errorf("record start: %w", err)
		}
		log.Info("pipeline started", "execution_id", got.ID, "result", got.Progress.Conclusion)
		q.opts.Metrics.Start(target, "started")
		return nil
	}
	status, permanent := "retrying", errors.Is(startErr, trigger.ErrPermanent)
	if permanent || job.Attempt >= job.MaxAttempts {
		status = "failed"
		// A start that failed for good ended: its result is a failure,
		// so that every start that ends has one.
		o.progress = trigger.Progress{Done: true, Conclusion: trigger.Failure, Detail: startErr.Error()}
	}
	o.status, o.err = status, startErr.Error()
	if err := q.recordOutcome(ctx, o); err != nil {
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
