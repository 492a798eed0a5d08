package deliveries

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/monohook/monohook/internal/trigger"
)

// evaluateArgs is the job that evaluates deliveries. Without ids it
// evaluates every waiting delivery, oldest first, in batches: this is the
// job a commit's wake row queues (see wakeUpsert). With ids it evaluates
// those: a replay, or a delivery whose evaluation failed and is retried
// with backoff on its own, so that it does not hold up the others.
type evaluateArgs struct {
	DeliveryIDs []string `json:"delivery_ids,omitempty"`
	// Only, with DeliveryIDs, is the one pipeline their evaluation may
	// start: a re-run of its check (see Rerun).
	Only string `json:"only,omitempty"`
}

func (evaluateArgs) Kind() string { return "monohook_evaluate" }

func (evaluateArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: evaluateQueue} }

// evaluateEvery is how often an evaluation of waiting deliveries is queued
// whatever else happens: after a restart, and after a crash between a
// commit and the queueing of its job (PostgreSQL, see its commit).
const evaluateEvery = time.Minute

// Batches of waiting deliveries. A batch reads each repository and
// branch's rules once and records its decisions in one transaction; on
// SQLite that transaction holds the one connection that acknowledgements
// wait for, so its batches are smaller. A batch also ends at a number of
// changed paths: a push with thousands of paths matches many rules, and
// its recorded decision is that much larger (a batch of such pushes held
// SQLite's connection, and PostgreSQL's server, from acknowledgements for
// long: BENCHMARKS.md).
type batchLimit struct{ deliveries, paths int }

var (
	batchSQLite   = batchLimit{deliveries: 64, paths: 10_000}
	batchPostgres = batchLimit{deliveries: 512, paths: 20_000}
	// batchPressed is a batch taken while acknowledgements wait (see
	// yieldToIngest). On PostgreSQL, full batches under a burst evaluated
	// every delivery as it came, and the server's time went to their
	// updates instead of to commits (BENCHMARKS.md).
	batchPressed = batchLimit{deliveries: 64, paths: 10_000}
)

// sweepFor bounds one job; what still waits after it goes to a follow-up
// job queued with its last batch. A shutdown ends a sweep the same way.
const sweepFor = 10 * time.Second

// windowBatches is how many full batches a sweep's window holds.
const windowBatches = 8

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
	// starts are the plan's: each start row recorded gets a job of its
	// start.
	starts trigger.Starts
	// retry is why its evaluation failed (a GitHub API call), when it is
	// retried by a job of its own.
	retry error
	// unreadable: the stored payload no longer parses.
	unreadable bool
	// only is the one pipeline a re-run may start (see Rerun).
	only string
}

// createdStart is a start row recorded by this evaluation: it gets a job.
type createdStart struct {
	d        *pending
	pipeline string
}

// Work evaluates deliveries against the current rules (each repository
// and branch's rules read once for a window of them) and, in one
// transaction per batch, records every decision and creates one start job
// per pipeline.
// Running it again (River completes jobs after they return, so a crash in
// between repeats one) creates no second start job: a start job is created
// only with the row that records the start, and that row is inserted once.
func (w *evaluateWorker) Work(ctx context.Context, job *river.Job[evaluateArgs]) error {
	q := w.q
	if ids := job.Args.DeliveryIDs; len(ids) > 0 {
		ids = q.claim(ids)
		defer q.release(ids)
		return q.evaluate(ctx, q.svc.NewLoader(), ids, false, false, job.Args.Only)
	}
	// Wake rows deleted now: commits from here on queue a job of their
	// own, and every commit that counted on this job has finished (the
	// delete waited for their rows), so what they stored is read below.
	if _, err := q.db.sql.ExecContext(ctx, `DELETE FROM monohook_wake`); err != nil {
		return fmt.Errorf("evaluate: clear wake rows: %w", err)
	}
	limit := q.db.dialect.batch()
	began := time.Now()
	// The sweep claims a window of waiting deliveries at a time and
	// evaluates it batch by batch, all against one Loader: every delivery
	// of a window was stored before the window was read, and the Loader
	// lists the rules only after that, so each delivery still meets rules
	// at least as new as itself. Listing them for every batch cost much of
	// the CPU of evaluating large pushes (two to a batch) from the rules
	// in the data directory, and would cost a request to S3 each.
	var window []string
	var paths map[string]int
	var full bool // the window's read ended at its limit: more may wait
	var rules *trigger.Loader
	defer func() { q.release(window) }()
	for {
		batch := limit
		if q.yieldToIngest(ctx) {
			batch = batchPressed
		}
		if len(window) == 0 {
			var err error
			window, paths, full, err = q.claimWaiting(ctx, limit.deliveries*windowBatches)
			if err != nil || len(window) == 0 {
				return err
			}
			rules = q.svc.NewLoader()
		}
		n := cut(window, paths, batch)
		ids := window[:n]
		window = window[n:]
		more := len(window) > 0 || full
		last := more && (time.Since(began) > sweepFor || q.stopping.Load())
		err := q.evaluate(ctx, rules, ids, true, last, "")
		q.release(ids)
		if err != nil || !more || last {
			return err
		}
	}
}

// claimWaiting returns up to n of the oldest waiting deliveries that no
// other evaluation of this process holds, with their changed paths, and
// holds them until release; full reports that n were found, so more may
// wait. Another replica may take the same ones: whichever records a
// delivery first wins (see the conditional update), the other skips it.
func (q *Queue) claimWaiting(ctx context.Context, n int) (ids []string, paths map[string]int, full bool, err error) {
	q.claimMu.Lock()
	held := len(q.claimed)
	q.claimMu.Unlock()
	// The oldest n + held: at most held of them are held, so this finds n
	// others if there are n.
	rows, err := q.db.read.QueryContext(ctx, q.db.q(`SELECT id, paths FROM monohook_delivery WHERE status = 'received' ORDER BY received_at LIMIT ?`), n+held)
	if err != nil {
		return nil, nil, false, fmt.Errorf("read waiting deliveries: %w", err)
	}
	defer rows.Close()
	paths = map[string]int{}
	var waiting []string
	for rows.Next() {
		var id string
		var p int
		if err := rows.Scan(&id, &p); err != nil {
			return nil, nil, false, fmt.Errorf("read waiting deliveries: %w", err)
		}
		waiting, paths[id] = append(waiting, id), p
	}
	if err := rows.Err(); err != nil {
		return nil, nil, false, fmt.Errorf("read waiting deliveries: %w", err)
	}
	ids = q.claim(waiting)
	if len(ids) > n {
		q.release(ids[n:])
		ids = ids[:n]
	}
	return ids, paths, len(ids) == n, nil
}

// cut is how many deliveries from the front of window make the next batch:
// up to limit's deliveries and, past the first, its changed paths.
func cut(window []string, paths map[string]int, limit batchLimit) int {
	total := 0
	for i, id := range window {
		if total += paths[id]; i == limit.deliveries || (i > 0 && total > limit.paths) {
			return i
		}
	}
	return len(window)
}

// claim holds the ids no other evaluation of this process holds, and
// returns them.
func (q *Queue) claim(ids []string) []string {
	q.claimMu.Lock()
	defer q.claimMu.Unlock()
	if q.claimed == nil {
		q.claimed = map[string]bool{}
	}
	var out []string
	for _, id := range ids {
		if !q.claimed[id] {
			q.claimed[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (q *Queue) release(ids []string) {
	q.claimMu.Lock()
	defer q.claimMu.Unlock()
	for _, id := range ids {
		delete(q.claimed, id)
	}
}

// evaluate evaluates and records the deliveries ids. In a sweep, a
// delivery whose changed paths could not be fetched is handed to a job of
// its own, retried with backoff; otherwise that failure fails the job.
// followUp queues a job for what still waits after this batch; only,
// when set, is the one pipeline the deliveries may start.
func (q *Queue) evaluate(ctx context.Context, rules *trigger.Loader, ids []string, sweep, followUp bool, only string) error {
	t0 := time.Now()
	batch, err := q.readBatch(ctx, ids)
	for _, d := range batch {
		d.only = only
	}
	t1 := time.Now()
	if err == nil {
		err = q.decide(ctx, rules, batch, sweep)
	}
	t2 := time.Now()
	if err == nil {
		err = q.record(ctx, batch, followUp)
	}
	q.log.Debug("evaluation batch", "deliveries", len(batch), "sweep", sweep, "read", t1.Sub(t0), "decide", t2.Sub(t1), "record", time.Since(t2), "err", err)
	if err != nil {
		// One line per delivery, so a search for a delivery id finds why it
		// waits.
		for _, id := range ids {
			q.log.Warn("evaluation failed; it will be retried", "delivery", id, "err", err)
		}
	}
	return err
}

// decide evaluates each readable delivery of batch against the rules.
func (q *Queue) decide(ctx context.Context, rules *trigger.Loader, batch []*pending, sweep bool) error {
	for _, d := range batch {
		if d.unreadable {
			continue
		}
		r, err := rules.Load(ctx, d.push)
		if err != nil {
			return err // the rules are unreadable for every delivery: River retries
		}
		cs, err := q.svc.ChangeSet(ctx, d.push)
		if err != nil {
			if !sweep {
				return fmt.Errorf("changed paths of %s: %w", d.id, err) // River retries
			}
			d.retry = err
			q.log.Warn("changed paths unavailable; the delivery is retried on its own", "delivery", d.id, "err", err)
			continue
		}
		began := time.Now()
		plan := trigger.NewPlan(trigger.PlanInput{Event: d.push, Round: d.round, Rules: r, Changes: cs, Report: q.opts.Report != nil, Only: d.only})
		d.push, d.res, d.starts = plan.Event, plan.Result, plan.Starts
		q.opts.Metrics.Evaluation(time.Since(began))
	}
	return nil
}

// record records a batch's decisions and queues its jobs in one
// transaction: a start job for each start row it inserts (whatever the
// starter: a dry run's records that it started nothing), an evaluation of
// its own for each delivery to retry.
func (q *Queue) record(ctx context.Context, batch []*pending, followUp bool) error {
	db := q.db
	var decided, retry, unreadable []*pending
	for _, d := range batch {
		switch {
		case d.unreadable:
			unreadable = append(unreadable, d)
		case d.retry != nil:
			retry = append(retry, d)
		default:
			decided = append(decided, d)
		}
	}
	now := time.Now().UnixMilli()
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record decisions: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	recorded, created, err := db.dialect.record(ctx, tx, decided, now)
	if err != nil {
		return err
	}
	var jobs []river.InsertManyParams
	for _, c := range created {
		start, _ := c.d.starts.Named(c.pipeline)
		jobs = append(jobs, river.InsertManyParams{
			Args:       startArgs{start},
			InsertOpts: &river.InsertOpts{Queue: startQueue, MaxAttempts: q.opts.MaxAttempts},
		})
	}
	mark := db.q(`UPDATE monohook_delivery SET status = ? WHERE id = ? AND status IN ('received', 'retrying') AND round = ?`)
	for _, d := range retry {
		res, err := tx.ExecContext(ctx, mark, "retrying", d.id, d.round)
		if err != nil {
			return fmt.Errorf("record %s for retry: %w", d.id, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			jobs = append(jobs, river.InsertManyParams{Args: evaluateArgs{DeliveryIDs: []string{d.id}}})
		}
	}
	for _, d := range unreadable {
		if _, err := tx.ExecContext(ctx, mark, "unreadable", d.id, d.round); err != nil {
			return fmt.Errorf("record %s as unreadable: %w", d.id, err)
		}
	}
	if followUp {
		jobs = append(jobs, river.InsertManyParams{Args: evaluateArgs{}})
	}
	if len(jobs) > 0 {
		if _, err := q.river.InsertManyFastTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("queue jobs: %w", err)
		}
	}
	// Every recorded round has checks to post, whether it starts anything
	// or not.
	keys := make([]startKey, len(recorded))
	for i, d := range recorded {
		keys[i] = startKey{DeliveryID: d.id, Round: d.round}
	}
	if err := q.startsChanged(ctx, tx, keys...); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record decisions: %w", err)
	}
	q.wakeReports()
	if len(created) > 0 {
		q.wakes.wake(startQueue)
	}
	if len(jobs) > len(created) {
		q.wakes.wake(evaluateQueue)
	}
	for _, d := range recorded {
		q.svc.LogDecision(d.push, d.res)
	}
	return nil
}

// maxYield bounds how long an evaluation waits for deliveries to be
// committed first, so evaluation slows under a burst but never stops.
const maxYield = 100 * time.Millisecond

// yieldToIngest lets deliveries being acknowledged go first: an
// acknowledgement has a deadline (GitHub gives up after 10 s), an
// evaluation has none, and what waits here is evaluated after the burst.
// Each batch waits until no delivery is between arrival and commit, or
// maxYield; pressed reports the latter, and the batch is then the small
// one (batchPressed): under a burst each evaluator takes 64 deliveries at
// least every 100 ms, in the gaps between acknowledgements it runs freely.
// On SQLite evaluation and ingest share the one writer; on PostgreSQL, the
// server's CPU and WAL.
func (q *Queue) yieldToIngest(ctx context.Context) (pressed bool) {
	deadline := time.Now().Add(maxYield)
	for q.acking.Load() > 0 {
		if !time.Now().Before(deadline) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
	return false
}

// readBatch reads the stored payloads of ids and parses them. A delivery
// that is gone (deleted by retention) or evaluated already is skipped.
func (q *Queue) readBatch(ctx context.Context, ids []string) ([]*pending, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	type row struct {
		d             *pending
		event, status string
		stored        []byte
	}
	// Rows are read first and parsed after: the connection is free the
	// sooner. The status is filtered here, not in SQL: with a backlog, a
	// planner may pick the status index and read every waiting delivery.
	expr, joins, _ := q.db.dialect.payload()
	rows, err := q.db.read.QueryContext(ctx, q.db.q(`SELECT d.id, d.event, `+expr+`, d.round, d.status
		FROM monohook_delivery d `+joins+` WHERE d.id IN (`+marks(len(ids))+`)`), args...)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	var read []row
	for rows.Next() {
		r := row{d: &pending{}}
		if err := rows.Scan(&r.d.id, &r.event, &r.stored, &r.d.round, &r.status); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read deliveries: %w", err)
		}
		read = append(read, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	out := make([]*pending, 0, len(read))
	for _, r := range read {
		if r.status != "received" && r.status != "retrying" {
			continue // evaluated already
		}
		d := r.d
		if d.push, err = q.parse(d.id, r.event, r.stored); err != nil {
			// It was parsed before it was acknowledged, so the stored row
			// is damaged: recorded as unreadable, not retried forever.
			q.log.Error("stored delivery does not parse; marked unreadable", "delivery", d.id, "err", err)
			d.unreadable = true
		}
		out = append(out, d)
	}
	return out, nil
}
