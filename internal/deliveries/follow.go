package deliveries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"

	"github.com/monohook/monohook/internal/trigger"
)

// ResultUnknown is the result of a start that cannot be followed: the
// target's API says there is no such execution, or refuses monohook the
// permission to ask (a GitHub Enterprise Server that does not say which
// run a dispatch started). It is neither a success nor a failure: what
// the pipeline did is not known.
const ResultUnknown = "unknown"

// followArgs is the job that follows one started execution to its
// result. It is the record of the follow: a restart resumes it. Only one
// is queued per start (Key is unique), however often the start job runs.
type followArgs struct {
	Key         startKey      `json:"key" river:"unique"`
	Start       trigger.Start `json:"start"`
	Target      string        `json:"target"`
	ExecutionID string        `json:"execution_id"`
	URL         string        `json:"url,omitempty"`
	StartedAt   int64         `json:"started_at"` // Unix milliseconds
}

func (followArgs) Kind() string { return "monohook_follow" }

func (followArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: followQueue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// insert is a's job, first worked after first.
func (a *followArgs) insert(first time.Duration) river.InsertManyParams {
	opts := a.InsertOpts()
	opts.ScheduledAt = time.UnixMilli(a.StartedAt).Add(first)
	return river.InsertManyParams{Args: *a, InsertOpts: &opts}
}

type followWorker struct {
	river.WorkerDefaults[followArgs]
	q *Queue
}

// Work asks the target how the execution is doing. Still running, or the
// target's API failing in a way that may pass (throttling, 5xx, the
// network): the job snoozes, longer each time, and asks again; a snooze
// is not an attempt, so following lasts as long as FollowFor, whatever
// the API does meanwhile. Ended: its result is recorded. An error asking
// cannot fix: the result is unknown. Past FollowFor: timed out.
func (w *followWorker) Work(ctx context.Context, job *river.Job[followArgs]) error {
	q, a := w.q, job.Args
	log := q.log.With("delivery", a.Key.DeliveryID, "pipeline", a.Key.Pipeline, "target", a.Target, "execution_id", a.ExecutionID)
	p, err := q.opts.Follower.Follow(ctx, a.Start.Request(nil), trigger.Started{ID: a.ExecutionID, Progress: trigger.Progress{URL: a.URL}})
	deadline := time.UnixMilli(a.StartedAt).Add(q.opts.FollowFor)
	switch {
	case err == nil && p.Done:
	case errors.Is(err, trigger.ErrPermanent):
		log.Warn("execution cannot be followed; its result is unknown", "err", err)
		p = trigger.Progress{Done: true, Conclusion: ResultUnknown, Detail: "monohook cannot follow it: " + err.Error()}
	case !time.Now().Before(deadline):
		p = trigger.Progress{Done: true, Conclusion: trigger.TimedOut, URL: p.URL,
			Detail: fmt.Sprintf("monohook stopped following it after %s; the pipeline itself may still be running", q.opts.FollowFor)}
	default:
		if err != nil {
			log.Warn("could not ask how the execution is doing; asking again later", "err", err)
		}
		return river.JobSnooze(q.followDelay(job.Metadata, time.Until(deadline)))
	}
	if p.URL == "" {
		p.URL = a.URL
	}
	// Recorded even when the job's context has ended (the shutdown): the
	// answer is in hand.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	o := outcome{key: a.Key, result: true, target: a.Target, at: time.Now().UnixMilli(), progress: p}
	if err := q.recordOutcome(ctx, o); err != nil {
		return fmt.Errorf("record result: %w", err)
	}
	log.Info("pipeline finished", "result", p.Conclusion, "detail", p.Detail)
	return nil
}

// followDelay is the wait before the next poll of a job snoozed before
// (River counts its snoozes in the metadata): FollowPoll doubled at each
// snooze up to FollowPollMax, with jitter so that executions started
// together do not poll together, and never past the deadline (left).
func (q *Queue) followDelay(metadata []byte, left time.Duration) time.Duration {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(metadata, &m) // none yet: the first delay
	d := q.opts.FollowPollMax
	if m.Snoozes < 30 {
		d = min(q.opts.FollowPoll<<m.Snoozes, q.opts.FollowPollMax)
	}
	d = d/2 + rand.N(d/2+1) //nolint:gosec // jitter, not security
	return max(min(d, left), 0)
}
