package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/metrics"
	"github.com/monohook/monohook/internal/trigger"
)

// Options tune the durable queue.
type Options struct {
	Evaluators  int           // deliveries evaluated at once by this process
	Workers     int           // pipeline starts at once by this process
	MaxAttempts int           // attempts of one pipeline start before it is dead-lettered
	RetryBase   time.Duration // first retry delay; doubles each attempt, with jitter
	RetryMax    time.Duration // longest retry delay
	JobTimeout  time.Duration // one evaluation or start; a job running longer is abandoned and retried
	Retention   time.Duration // how long deliveries are kept
	DryRun      bool          // evaluate and record, start nothing
	Metrics     *metrics.Metrics
}

// Queue is the durable queue: Accept commits a delivery before it is
// acknowledged, workers evaluate it and start its pipelines as River jobs.
// Any number of processes may share one PostgreSQL database.
type Queue struct {
	db      *DB
	river   *river.Client[*sql.Tx]
	svc     *trigger.Service
	starter trigger.Starter
	opts    Options
	log     *slog.Logger

	accepts chan acceptReq
	// acking counts deliveries between arrival and their commit.
	acking atomic.Int64
	// Deliveries an evaluation of this process holds (see claim).
	claimMu sync.Mutex
	claimed map[string]bool
	mu      sync.RWMutex // guards closed and sends on accepts
	closed  bool
	written sync.WaitGroup // the committers
}

type acceptReq struct {
	d    trigger.Delivery
	done chan error
}

// maxGroup bounds the deliveries committed in one transaction.
const maxGroup = 512

// New prepares the queue on db; Start starts its workers.
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
	q := &Queue{db: db, svc: svc, starter: starter, opts: opts, log: log, accepts: make(chan acceptReq, 4*maxGroup)}
	workers := river.NewWorkers()
	river.AddWorker(workers, &evaluateWorker{q: q})
	river.AddWorker(workers, &startWorker{q: q})
	river.AddWorker(workers, &retentionWorker{q: q})
	cfg := &river.Config{
		// Evaluations are short database and CPU work: a few at once keep
		// up with any push rate and leave the database to the group commit
		// of new deliveries. Starts mostly wait on CodePipeline: many at once.
		Queues: map[string]river.QueueConfig{
			evaluateQueue:      {MaxWorkers: opts.Evaluators},
			startQueue:         {MaxWorkers: opts.Workers},
			river.QueueDefault: {MaxWorkers: 1},
		},
		Workers:     workers,
		RetryPolicy: backoff{base: opts.RetryBase, max: opts.RetryMax},
		JobTimeout:  opts.JobTimeout,
		// A job left running by a process that died is worked again after
		// this; a start repeated that way reuses its token, so CodePipeline
		// does not start a second execution.
		RescueStuckJobsAfter: opts.JobTimeout + max(opts.JobTimeout/2, time.Second),
		FetchPollInterval:    100 * time.Millisecond,
		FetchCooldown:        20 * time.Millisecond,
		Logger:               slog.New(warnOnly{log.Handler()}).With("component", "river"),
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return retentionArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true})},
	}
	var err error
	if q.river, err = river.NewClient(db.driver, cfg); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	// SQLite has one writer, so one committer. PostgreSQL commits
	// concurrent transactions together (its own group commit) and a commit
	// waits on the WAL flush, so several groups in flight go faster.
	committers := 1
	if db.postgres {
		committers = 4
	}
	for range committers {
		q.written.Add(1)
		go q.commitLoop()
	}
	return q, nil
}

// Start starts working jobs.
func (q *Queue) Start(ctx context.Context) error { return q.river.Start(ctx) }

// Accept commits d (and a job to evaluate it) and returns once it is on
// disk. A delivery id stored before returns githubhook.ErrDuplicate and is
// counted, not processed again. Concurrent calls share one commit.
func (q *Queue) Accept(ctx context.Context, d trigger.Delivery) error {
	q.acking.Add(1)
	defer q.acking.Add(-1)
	d.Payload = pack(d.Payload) // here, on the request's goroutine, not in the one committer
	req := acceptReq{d: d, done: make(chan error, 1)}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return ErrClosed
	}
	select {
	case q.accepts <- req:
		q.mu.RUnlock()
	default:
		q.mu.RUnlock()
		return githubhook.ErrBusy
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The commit may still happen; GitHub will see a failure and may
		// redeliver, which is then a duplicate: nothing is lost.
		return ctx.Err()
	}
}

// commitLoop is the group commit: every delivery that arrived while a
// committer was busy goes into its next transaction, so one disk flush
// serves many deliveries.
func (q *Queue) commitLoop() {
	defer q.written.Done()
	for req := range q.accepts {
		group := []acceptReq{req}
	fill:
		for len(group) < maxGroup {
			select {
			case r, ok := <-q.accepts:
				if !ok {
					break fill
				}
				group = append(group, r)
			default:
				break fill
			}
		}
		results, err := q.commit(group)
		for i, r := range group {
			if err != nil {
				r.done <- err
			} else {
				r.done <- results[i]
			}
		}
	}
}

func (q *Queue) commit(group []acceptReq) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	// One statement for the whole group: a round trip per delivery would
	// cost more than the flush the group shares. The ids it returns are
	// the new deliveries; the others were stored before.
	rows, err := q.insertGroup(ctx, tx, group)
	if err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	inserted := make(map[string]bool, len(group))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store deliveries: %w", err)
		}
		inserted[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	results := make([]error, len(group))
	var fresh []string
	dup := q.db.q(`UPDATE monohook_delivery SET duplicates = duplicates + 1 WHERE id = ?`)
	for i, r := range group {
		if inserted[r.d.ID] {
			delete(inserted, r.d.ID) // a second copy in the group is a duplicate
			fresh = append(fresh, r.d.ID)
			continue
		}
		if _, err := tx.ExecContext(ctx, dup, r.d.ID); err != nil {
			return nil, fmt.Errorf("count duplicate %s: %w", r.d.ID, err)
		}
		results[i] = githubhook.ErrDuplicate
	}
	if len(fresh) > 0 {
		if _, err := q.river.InsertTx(ctx, tx, evaluateArgs{DeliveryIDs: fresh}, nil); err != nil {
			return nil, fmt.Errorf("queue evaluation: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit deliveries: %w", err)
	}
	return results, nil
}

// insertGroup inserts the deliveries of a group that are not stored yet
// and returns the ids it inserted.
func (q *Queue) insertGroup(ctx context.Context, tx *sql.Tx, group []acceptReq) (*sql.Rows, error) {
	n := len(group)
	ids, events, repos, refs, shas := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	received, paths := make([]int64, 0, n), make([]int64, 0, n)
	payloads := make([][]byte, 0, n)
	seen := make(map[string]bool, n)
	for _, r := range group {
		d := r.d
		if seen[d.ID] {
			continue // the same id twice in one group: the second is a duplicate
		}
		seen[d.ID] = true
		ids, events, payloads = append(ids, d.ID), append(events, d.Event), append(payloads, d.Payload)
		received = append(received, d.Received.UnixMilli())
		var repo, ref, sha string
		var np int
		if d.Push != nil {
			repo, ref, sha, np = d.Push.Repo, d.Push.Ref, d.Push.After, len(d.Push.Paths)
		}
		repos, refs, shas, paths = append(repos, repo), append(refs, ref), append(shas, sha), append(paths, int64(np))
	}
	if q.db.postgres {
		// Arrays keep the statement text the same for every group size, so
		// it is prepared once per connection and its values sent in binary.
		return tx.QueryContext(ctx, `INSERT INTO monohook_delivery (id, event, received_at, payload, repo, ref, sha, paths, status)
			SELECT *, 'received' FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::text[], $6::text[], $7::text[], $8::bigint[])
			ON CONFLICT (id) DO NOTHING RETURNING id`, ids, events, received, payloads, repos, refs, shas, paths)
	}
	var text strings.Builder
	text.WriteString(`INSERT INTO monohook_delivery (id, event, received_at, payload, repo, ref, sha, paths, status) VALUES `)
	args := make([]any, 0, 8*len(ids))
	for i := range ids {
		if i > 0 {
			text.WriteString(", ")
		}
		text.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, 'received')")
		args = append(args, ids[i], events[i], received[i], payloads[i], repos[i], refs[i], shas[i], paths[i])
	}
	text.WriteString(" ON CONFLICT (id) DO NOTHING RETURNING id")
	return tx.QueryContext(ctx, text.String(), args...)
}

// Close stops accepting, commits what was accepted, lets running jobs
// finish until ctx ends, then cancels them. Unfinished jobs stay in the
// database and are worked after the next start.
func (q *Queue) Close(ctx context.Context) error {
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
	return err
}

// ErrClosed is returned by Accept after Close.
var ErrClosed = errors.New("queue is shutting down")

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

// River queues: one per kind of work.
const (
	evaluateQueue = "monohook_evaluate"
	startQueue    = "monohook_start"
)

// evaluateArgs is the job that evaluates deliveries: the ones committed
// together, or one being replayed. Batches grow with the load, like the
// commit groups, so evaluation keeps up however fast deliveries come.
type evaluateArgs struct {
	DeliveryIDs []string `json:"delivery_ids"`
}

func (evaluateArgs) Kind() string { return "monohook_evaluate" }

func (evaluateArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: evaluateQueue} }

type evaluateWorker struct {
	river.WorkerDefaults[evaluateArgs]
	q *Queue
}

// pending is a delivery read back for evaluation.
type pending struct {
	id    string
	round int
	push  *trigger.Push
	res   trigger.Result
}

// Work evaluates deliveries against the current rules (each repository
// and branch's rules read once for the batch) and, in one transaction,
// records every decision and creates one start job per pipeline. Running
// it again (River completes jobs after they return, so a crash in between
// repeats one) creates no second start job: a start job is created only
// with the row that records the start, and that row is inserted once.
func (w *evaluateWorker) Work(ctx context.Context, job *river.Job[evaluateArgs]) error {
	err := w.work(ctx, job)
	if err != nil {
		// One line per delivery, so a search for a delivery id finds why it
		// waits.
		for _, id := range job.Args.DeliveryIDs {
			w.q.log.Warn("evaluation failed; it will be retried", "delivery", id, "attempt", job.Attempt, "err", err)
		}
	}
	return err
}

func (w *evaluateWorker) work(ctx context.Context, job *river.Job[evaluateArgs]) error {
	q, db := w.q, w.q.db
	q.yieldToIngest(ctx)
	ids, err := q.claim(ctx, job.Args.DeliveryIDs)
	defer q.release(ids)
	if err != nil {
		return err
	}
	batch, err := q.readBatch(ctx, ids)
	if err != nil {
		return err
	}
	// Each repository and branch's seed rules, and the v2 rules, are read
	// once for the batch.
	rules := q.svc.NewLoader()
	for _, d := range batch {
		r, err := rules.Load(ctx, d.push)
		if err != nil {
			return err // River retries
		}
		fetched, err := q.svc.Complete(ctx, d.push)
		if err != nil {
			return fmt.Errorf("changed paths of %s: %w", d.id, err) // River retries
		}
		began := time.Now()
		d.res = trigger.EvaluateRules(d.push, r, false)
		d.res.Fetched = fetched
		q.opts.Metrics.Evaluation(time.Since(began))
	}

	status := "pending"
	if q.opts.DryRun {
		status = "dry-run"
	}
	now := time.Now().UnixMilli()
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record decisions: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	record := q.recordRows
	if db.postgres {
		record = q.recordArrays
	}
	recorded, created, err := record(ctx, tx, batch, status, now)
	if err != nil {
		return err
	}
	var jobs []river.InsertManyParams
	for _, c := range created {
		if q.opts.DryRun {
			break
		}
		d := c.d
		args := startArgs{DeliveryID: d.id, Round: d.round, Pipeline: c.pipeline, Token: trigger.StartToken(d.push.DeliveryID, c.pipeline)}
		if t, ok := d.res.Targets[c.pipeline]; ok {
			data := trigger.NewTemplateData(d.push)
			args.Target, args.Data = &t, &data
		}
		jobs = append(jobs, river.InsertManyParams{
			Args:       args,
			InsertOpts: &river.InsertOpts{Queue: startQueue, MaxAttempts: q.opts.MaxAttempts},
		})
	}
	if len(jobs) > 0 {
		if _, err := q.river.InsertManyFastTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("queue starts: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record decisions: %w", err)
	}
	for _, d := range recorded {
		q.svc.LogDecision(d.push, d.res)
	}
	return nil
}

// sweep is how many more waiting deliveries, oldest first, an evaluation
// on PostgreSQL takes besides those of its own job. Under a burst, groups
// are small and many; evaluating the backlog in larger batches reads the
// rules and commits once for many deliveries, so evaluation keeps pace
// (about six times as many evaluated during the load test, at the same
// ingest rate). On SQLite evaluation shares the one connection with
// ingest, and larger batches cost acknowledgements more than they gain:
// there each job evaluates its own group, and the backlog after a burst.
const sweep = 100

// claim returns own and up to sweep other waiting deliveries that no other
// evaluation of this process holds, and holds them until release. Another
// replica may take the same ones: whichever records a delivery first wins
// (see the conditional update), the other skips it.
func (q *Queue) claim(ctx context.Context, own []string) ([]string, error) {
	var waiting []string
	if q.db.postgres {
		rows, err := q.db.sql.QueryContext(ctx, `SELECT id FROM monohook_delivery WHERE status = 'received' ORDER BY received_at LIMIT $1`, sweep)
		if err != nil {
			return nil, fmt.Errorf("read waiting deliveries: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read waiting deliveries: %w", err)
			}
			waiting = append(waiting, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read waiting deliveries: %w", err)
		}
	}
	q.claimMu.Lock()
	defer q.claimMu.Unlock()
	if q.claimed == nil {
		q.claimed = map[string]bool{}
	}
	var ids []string
	take := func(id string) {
		if !q.claimed[id] {
			q.claimed[id] = true
			ids = append(ids, id)
		}
	}
	for _, id := range own {
		take(id)
	}
	for _, id := range waiting {
		take(id)
	}
	return ids, nil
}

func (q *Queue) release(ids []string) {
	q.claimMu.Lock()
	defer q.claimMu.Unlock()
	for _, id := range ids {
		delete(q.claimed, id)
	}
}

// createdStart is a start row recorded by this evaluation: it gets a job.
type createdStart struct {
	d        *pending
	pipeline string
}

// recordRows records decisions and start rows one statement each, through
// statements prepared once for the batch (SQLite parses an unprepared
// statement anew at every call, which cost more than running it). Only a
// delivery still waiting for this round is recorded: another evaluation
// may have done it. A start row that exists already (an earlier run of
// this job) gets no second job.
func (q *Queue) recordRows(ctx context.Context, tx *sql.Tx, batch []*pending, status string, now int64) ([]*pending, []createdStart, error) {
	update, err := tx.PrepareContext(ctx, q.db.q(`UPDATE monohook_delivery SET status = 'evaluated', evaluated_at = ?, result = ?
		WHERE id = ? AND status = 'received' AND round = ?`))
	if err != nil {
		return nil, nil, fmt.Errorf("record decisions: %w", err)
	}
	defer update.Close()
	insert, err := tx.PrepareContext(ctx, q.db.q(`INSERT INTO monohook_start (delivery_id, round, pipeline, token, status, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, round, pipeline) DO NOTHING RETURNING pipeline`))
	if err != nil {
		return nil, nil, fmt.Errorf("record decisions: %w", err)
	}
	defer insert.Close()
	var recorded []*pending
	var created []createdStart
	for _, d := range batch {
		result, err := json.Marshal(d.res)
		if err != nil {
			return nil, nil, fmt.Errorf("encode decision: %w", err)
		}
		res, err := update.ExecContext(ctx, now, string(result), d.id, d.round)
		if err != nil {
			return nil, nil, fmt.Errorf("record decision: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue // evaluated meanwhile by another evaluation
		}
		recorded = append(recorded, d)
		for _, pipeline := range d.res.Start {
			var got string
			err := insert.QueryRowContext(ctx, d.id, d.round, pipeline, trigger.StartToken(d.push.DeliveryID, pipeline), status, now).Scan(&got)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("record start: %w", err)
			}
			created = append(created, createdStart{d, pipeline})
		}
	}
	return recorded, created, nil
}

// recordArrays is recordRows in two statements for the whole batch, the
// rows passed as arrays: on PostgreSQL a statement is a round trip, and
// the server's time per statement is what evaluation costs.
func (q *Queue) recordArrays(ctx context.Context, tx *sql.Tx, batch []*pending, status string, now int64) ([]*pending, []createdStart, error) {
	ids, results, rounds := make([]string, len(batch)), make([]string, len(batch)), make([]int64, len(batch))
	byID := make(map[string]*pending, len(batch))
	for i, d := range batch {
		result, err := json.Marshal(d.res)
		if err != nil {
			return nil, nil, fmt.Errorf("encode decision: %w", err)
		}
		ids[i], results[i], rounds[i] = d.id, string(result), int64(d.round)
		byID[d.id] = d
	}
	rows, err := tx.QueryContext(ctx, `UPDATE monohook_delivery d SET status = 'evaluated', evaluated_at = $1, result = u.result
		FROM unnest($2::text[], $3::text[], $4::bigint[]) AS u(id, result, round)
		WHERE d.id = u.id AND d.status = 'received' AND d.round = u.round RETURNING d.id`, now, ids, results, rounds)
	if err != nil {
		return nil, nil, fmt.Errorf("record decisions: %w", err)
	}
	var recorded []*pending
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("record decisions: %w", err)
		}
		recorded = append(recorded, byID[id])
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("record decisions: %w", err)
	}
	var sIDs, sPipelines, sTokens []string
	var sRounds []int64
	for _, d := range recorded {
		for _, pipeline := range d.res.Start {
			sIDs, sPipelines = append(sIDs, d.id), append(sPipelines, pipeline)
			sTokens, sRounds = append(sTokens, trigger.StartToken(d.push.DeliveryID, pipeline)), append(sRounds, int64(d.round))
		}
	}
	if len(sIDs) == 0 {
		return recorded, nil, nil
	}
	rows, err = tx.QueryContext(ctx, `INSERT INTO monohook_start (delivery_id, round, pipeline, token, status, updated_at)
		SELECT u.d, u.r, u.p, u.t, $5, $6 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS u(d, r, p, t)
		ON CONFLICT (delivery_id, round, pipeline) DO NOTHING RETURNING delivery_id, pipeline`, sIDs, sRounds, sPipelines, sTokens, status, now)
	if err != nil {
		return nil, nil, fmt.Errorf("record starts: %w", err)
	}
	defer rows.Close()
	var created []createdStart
	for rows.Next() {
		var id, pipeline string
		if err := rows.Scan(&id, &pipeline); err != nil {
			return nil, nil, fmt.Errorf("record starts: %w", err)
		}
		created = append(created, createdStart{byID[id], pipeline})
	}
	return recorded, created, rows.Err()
}

// maxYield bounds how long an evaluation waits for deliveries to be
// committed first, so evaluation slows under a burst but never stops.
const maxYield = 100 * time.Millisecond

// yieldToIngest lets deliveries waiting to be committed go first: an
// acknowledgement has a deadline (GitHub gives up after 10 s), an
// evaluation has none, and what waits here is evaluated after the burst.
// On SQLite they share its one connection; on PostgreSQL, the server's
// CPU and WAL flushes.
func (q *Queue) yieldToIngest(ctx context.Context) {
	deadline := time.Now().Add(maxYield)
	for q.ingestWaiting() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// ingestWaiting reports whether deliveries wait to be committed. On
// SQLite, those queued for the committer: one that is being committed
// holds the connection anyway. On PostgreSQL, any delivery between arrival
// and commit: there several commits run at once, so the queue is rarely
// long, but each shares the server with evaluation.
func (q *Queue) ingestWaiting() bool {
	if q.db.postgres {
		return q.acking.Load() > 0
	}
	return len(q.accepts) > 0
}

// readBatch reads the stored payloads of ids and parses them. A delivery
// that is gone (deleted by retention) or evaluated already is skipped.
func (q *Queue) readBatch(ctx context.Context, ids []string) ([]*pending, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	marks := strings.Repeat(", ?", len(ids))[2:]
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// The status is filtered here, not in SQL: with a backlog, a planner
	// may pick the status index and read every waiting delivery.
	rows, err := q.db.sql.QueryContext(ctx, q.db.q(`SELECT id, event, payload, round, status FROM monohook_delivery WHERE id IN (`+marks+`)`), args...)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	defer rows.Close()
	var out []*pending
	for rows.Next() {
		d := &pending{}
		var stored []byte
		var event, status string
		if err := rows.Scan(&d.id, &event, &stored, &d.round, &status); err != nil {
			return nil, fmt.Errorf("read deliveries: %w", err)
		}
		if status != "received" {
			continue // evaluated already
		}
		payload, err := unpack(stored)
		if err == nil {
			d.push, err = githubhook.ParseEvent(event, payload)
		}
		if err != nil {
			// It was parsed before it was acknowledged; a payload that no
			// longer parses is logged and left, not retried forever.
			q.log.Error("stored delivery does not parse", "delivery", d.id, "err", err)
			continue
		}
		d.push.DeliveryID = tokenBase(d.id, d.round)
		out = append(out, d)
	}
	return out, rows.Err()
}

// tokenBase is what a delivery's start tokens derive from: the delivery id
// for its first evaluation, and a distinct value for each replay, which is
// meant to start the pipelines again.
func tokenBase(id string, round int) string {
	if round == 0 {
		return id
	}
	return fmt.Sprintf("%s#replay-%d", id, round)
}

// startArgs is the job that starts one pipeline for one delivery.
type startArgs struct {
	DeliveryID string `json:"delivery_id"`
	Round      int    `json:"round"`
	Pipeline   string `json:"pipeline"`
	Token      string `json:"token"`
	// Target and Data are set for v2 rules: the target as the rule said
	// when the delivery was evaluated (a later edit of the rule does not
	// change a start already decided), and what its templates see.
	Target *trigger.Target       `json:"target,omitempty"`
	Data   *trigger.TemplateData `json:"data,omitempty"`
}

func (startArgs) Kind() string { return "monohook_start" }

func (startArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: startQueue} }

type startWorker struct {
	river.WorkerDefaults[startArgs]
	q *Queue
}

// Work starts the pipeline. Throttling, 5xx and network errors are retried
// with backoff; a permanent error (no such pipeline, access denied) is not,
// and the start is marked failed at once: the dead letter a person sees.
func (w *startWorker) Work(ctx context.Context, job *river.Job[startArgs]) error {
	q, db, a := w.q, w.q.db, job.Args
	log := q.log.With("delivery", a.DeliveryID, "pipeline", a.Pipeline, "token", a.Token, "attempt", job.Attempt)
	req := trigger.StartRequest{Name: a.Pipeline, Token: a.Token}
	if a.Target != nil {
		req.Target = *a.Target
	}
	if a.Data != nil {
		req.Data = *a.Data
	}
	req.Paths = func(ctx context.Context) ([]string, error) { return q.ChangedPaths(ctx, a.DeliveryID) }
	target := req.Type()
	log = log.With("target", target)
	got, startErr := q.starter.Start(ctx, req)
	now := time.Now().UnixMilli()
	update := db.q(`UPDATE monohook_start SET status = ?, attempts = ?, execution_id = ?, output = ?, error = ?, updated_at = ?
		WHERE delivery_id = ? AND round = ? AND pipeline = ?`)
	if startErr == nil {
		// Should this not be recorded (a crash now), the job runs again,
		// and the same token gets the same execution from CodePipeline.
		if _, err := db.sql.ExecContext(ctx, update, "started", job.Attempt, got.ID, got.Output, "", now, a.DeliveryID, a.Round, a.Pipeline); err != nil {
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
	if _, err := db.sql.ExecContext(ctx, update, status, job.Attempt, "", got.Output, startErr.Error(), now, a.DeliveryID, a.Round, a.Pipeline); err != nil {
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

// retentionArgs is the periodic job that deletes old deliveries.
type retentionArgs struct{}

func (retentionArgs) Kind() string { return "monohook_retention" }

type retentionWorker struct {
	river.WorkerDefaults[retentionArgs]
	q *Queue
}

func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[retentionArgs]) error {
	if w.q.opts.Retention <= 0 {
		return nil
	}
	n, err := w.q.DeleteBefore(ctx, time.Now().Add(-w.q.opts.Retention))
	if err != nil {
		return err
	}
	if n > 0 {
		w.q.log.Info("old deliveries deleted", "deliveries", n, "retention", w.q.opts.Retention)
	}
	return nil
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
