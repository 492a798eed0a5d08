package deliveries

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/monohook/monohook/internal/metrics"
	"github.com/monohook/monohook/internal/trigger"
)

// Options tune the durable queue.
type Options struct {
	Evaluators  int           // evaluation jobs run at once by this process
	Workers     int           // pipeline starts at once by this process
	MaxAttempts int           // attempts of one pipeline start before it is dead-lettered
	RetryBase   time.Duration // first retry delay; doubles each attempt, with jitter
	RetryMax    time.Duration // longest retry delay
	JobTimeout  time.Duration // one evaluation or start; a job running longer is abandoned and retried
	Retention   time.Duration // how long deliveries are kept
	Metrics     *metrics.Metrics
	// Parse reads a stored payload, as it was received with its event,
	// into the push it was accepted as. Evaluation and the reads of a
	// parsed delivery (Push, ChangedPaths) need it; the queue knows no
	// wire format.
	Parse func(event string, payload []byte) (*trigger.Push, error)
	// MaxPayload is the size of the largest payload accepted, as received:
	// a stored payload that would decompress to much more is damaged, and
	// is refused rather than decompressed. Required with Parse.
	MaxPayload int
	// Report, when set, reports every delivery's decisions and starts to
	// GitHub (see report.go).
	Report *ReportOptions
	// Follower follows started executions to their result; nil follows
	// nothing (a dry run): no follow job is queued, and none is worked,
	// so a live run's follows wait for a live process.
	Follower trigger.Follower
	// FollowFor bounds following one execution: after it its result is
	// timed_out (default 24 h).
	FollowFor time.Duration
	// FollowWorkers are the follows at once of this process (default 16).
	FollowWorkers int
	// FollowPoll is the wait before an execution's first poll; it doubles
	// at each poll up to FollowPollMax (defaults 10 s, 5 min).
	FollowPoll, FollowPollMax time.Duration
}

// Queue is the durable queue: Accept commits a delivery before it is
// acknowledged, workers evaluate it and start its pipelines as River jobs.
// Any number of processes may share one PostgreSQL database.
type Queue struct {
	db       *DB
	river    *river.Client[*sql.Tx]
	svc      *trigger.Service
	starter  trigger.Starter
	opts     Options
	log      *slog.Logger
	payloads *unpacker
	// wakes tells this process's producers of jobs just committed (see
	// wakingDriver).
	wakes *waker

	accepts chan acceptReq
	// acking counts deliveries between arrival and their commit.
	acking atomic.Int64
	// Deliveries an evaluation of this process holds (see claim).
	claimMu sync.Mutex
	claimed map[string]bool
	mu      sync.RWMutex // guards closed and sends on accepts
	closed  bool
	written sync.WaitGroup // the committers
	// Start outcomes to record (see outcomeLoop); closed by Close once
	// River has stopped.
	outcomes       chan outcome
	outcomesClosed bool           // outcomes is closed; guarded by mu
	recorded       sync.WaitGroup // the outcome loop
	// health is the committers' latest outcome, for Ready.
	health health
	// stopping is set by Close: a sweep ends after its batch and leaves
	// what still waits to a follow-up job, rather than hold up the
	// shutdown for up to sweepFor.
	stopping atomic.Bool
}

// New prepares the queue on db; Start starts its workers. svc loads the
// rules and completes change sets; starter starts what evaluation decided
// (trigger.DryRun in a dry run). A queue that only stores and reads
// deliveries (the CLI, the dashboard's tests) may have neither, nor a
// parser.
func New(db *DB, svc *trigger.Service, starter trigger.Starter, opts Options, log *slog.Logger) (*Queue, error) {
	if opts.Evaluators <= 0 {
		opts.Evaluators = 2
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	if opts.JobTimeout <= 0 {
		opts.JobTimeout = time.Minute
	}
	opts = followDefaults(opts)
	if opts.Parse != nil && opts.MaxPayload <= 0 {
		return nil, errors.New("queue: Options.MaxPayload is required with Options.Parse")
	}
	if db.read != db.sql {
		// SQLite: a read connection for each evaluation job, and two for
		// the dashboard and metrics, so that neither waits for the other.
		db.read.SetMaxOpenConns(opts.Evaluators + 2)
		db.read.SetMaxIdleConns(opts.Evaluators + 2)
	}
	q := &Queue{db: db, svc: svc, starter: starter, opts: opts, log: log, payloads: newUnpacker(opts.MaxPayload), accepts: make(chan acceptReq, 4*maxGroup), wakes: newWaker(), outcomes: make(chan outcome, maxGroup)}
	workers := river.NewWorkers()
	river.AddWorker(workers, &evaluateWorker{q: q})
	river.AddWorker(workers, &startWorker{q: q})
	river.AddWorker(workers, &retentionWorker{q: q})
	river.AddWorker(workers, &reportWorker{q: q})
	river.AddWorker(workers, &followWorker{q: q})
	cfg := &river.Config{
		// Evaluations are short database and CPU work: a few at once keep
		// up with any push rate and leave the database to the group commit
		// of new deliveries. Starts mostly wait on CodePipeline: many at once.
		Queues: map[string]river.QueueConfig{
			evaluateQueue:      {MaxWorkers: opts.Evaluators},
			startQueue:         {MaxWorkers: opts.Workers},
			river.QueueDefault: {MaxWorkers: 1},
			// GitHub calls wait on GitHub: workers of their own, so that no
			// evaluation or start waits for them.
			reportQueue: {MaxWorkers: reportWorkers(opts.Report)},
		},
		Workers:     workers,
		RetryPolicy: backoff{base: opts.RetryBase, max: opts.RetryMax},
		JobTimeout:  opts.JobTimeout,
		// A job left running by a process that died is worked again after
		// this; a start repeated that way reuses its token, so CodePipeline
		// does not start a second execution.
		RescueStuckJobsAfter: opts.JobTimeout + max(opts.JobTimeout/2, time.Second),
		// Jobs are fetched when a commit wakes their queue (see
		// wakingDriver); polling is for other processes' jobs and retries.
		// The cooldown spaces fetches of one queue: each is a transaction
		// on the database ingest commits to, and a job woken within it
		// waits for its end.
		FetchPollInterval: 100 * time.Millisecond,
		FetchCooldown:     2 * time.Millisecond,
		Logger:            slog.New(warnOnly{log.Handler()}).With("component", "river"),
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return retentionArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(evaluateEvery),
				func() (river.JobArgs, *river.InsertOpts) { return evaluateArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}),
		},
	}
	if opts.Follower != nil {
		// Following waits on the targets' APIs: on a queue of its own, it
		// never holds up an evaluation or a start.
		cfg.Queues[followQueue] = river.QueueConfig{MaxWorkers: opts.FollowWorkers}
	}
	var err error
	if q.river, err = river.NewClient[*sql.Tx](wakingDriver{Driver: db.driver, w: q.wakes}, cfg); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	for range db.dialect.committers() {
		q.written.Add(1)
		go q.commitLoop()
	}
	q.recorded.Add(1)
	go q.outcomeLoop()
	return q, nil
}

// Start starts working jobs. It needs what New may go without: the rules,
// a starter and a parser.
func (q *Queue) Start(ctx context.Context) error {
	if q.svc == nil || q.starter == nil || q.opts.Parse == nil {
		return errors.New("queue: working jobs needs the rules, a starter (trigger.DryRun in a dry run) and Options.Parse")
	}
	return q.river.Start(ctx)
}

// Close stops accepting, commits what was accepted, lets running jobs
// finish until ctx ends, then cancels them. Unfinished jobs stay in the
// database and are worked after the next start.
func (q *Queue) Close(ctx context.Context) error {
	q.stopping.Store(true)
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.accepts)
	}
	q.mu.Unlock()
	q.written.Wait()
	err := q.river.Stop(ctx)
	if err != nil {
		q.log.Warn("jobs still running at the shutdown deadline; they are cancelled and will run again after a restart", "err", err)
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = q.river.StopAndCancel(cctx)
	}
	q.mu.Lock()
	if !q.outcomesClosed {
		q.outcomesClosed = true
		close(q.outcomes)
	}
	q.mu.Unlock()
	q.recorded.Wait()
	return err
}

func reportWorkers(r *ReportOptions) int {
	if r == nil || r.Workers <= 0 {
		return 4
	}
	return r.Workers
}

// ErrClosed is returned by Accept after Close.
var ErrClosed = errors.New("queue is shutting down")

// River queues: one per kind of work.
const (
	evaluateQueue = "monohook_evaluate"
	startQueue    = "monohook_start"
	followQueue   = "monohook_follow"
)

// followDefaults fills in the follow options left unset.
func followDefaults(opts Options) Options {
	if opts.FollowFor <= 0 {
		opts.FollowFor = 24 * time.Hour
	}
	if opts.FollowWorkers <= 0 {
		opts.FollowWorkers = 16
	}
	if opts.FollowPoll <= 0 {
		opts.FollowPoll = 10 * time.Second
	}
	if opts.FollowPollMax <= 0 {
		opts.FollowPollMax = 5 * time.Minute
	}
	opts.FollowPollMax = max(opts.FollowPollMax, opts.FollowPoll)
	return opts
}

// backoff is the retry policy: exponential from base, capped at max, with
// "equal jitter" (half fixed, half random) so that many starts throttled
// together do not retry together.
type backoff struct{ base, max time.Duration }

func (b backoff) NextRetry(job *rivertype.JobRow) time.Time {
	d := b.max
	if shift := job.Attempt - 1; shift < 30 {
		d = min(b.base<<shift, b.max)
	}
	return time.Now().Add(d/2 + rand.N(d/2+1)) //nolint:gosec // jitter, not security
}

// warnOnly passes on River's warnings and errors; its informational lines
// are about its own machinery and would drown the deliveries' lines.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnOnly{h.Handler.WithAttrs(attrs)}
}

func (h warnOnly) WithGroup(name string) slog.Handler { return warnOnly{h.Handler.WithGroup(name)} }
