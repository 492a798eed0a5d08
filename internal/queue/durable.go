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
	Evaluators  int           // evaluation jobs run at once by this process
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
	stmts   *sqliteStmts // SQLite: the committer's prepared statements
	// acking counts deliveries between arrival and their commit.
	acking atomic.Int64
	// Deliveries an evaluation of this process holds (see claim).
	claimMu sync.Mutex
	claimed map[string]bool
	mu      sync.RWMutex // guards closed and sends on accepts
	closed  bool
	written sync.WaitGroup // the committers
	// health is the committers' latest outcome, for Ready.
	health health
	// stopping is set by Close: a sweep ends after its batch and leaves
	// what still waits to a follow-up job, rather than hold up the
	// shutdown for up to sweepFor.
	stopping atomic.Bool
}

type acceptReq struct {
	d    trigger.Delivery
	done chan error
}

// maxGroup bounds the deliveries committed in one transaction.
const maxGroup = 512

// A committer that has just committed a group of gatherAfter or more waits
// up to gatherFor for the next group to reach 3/4 of that size. Without
// it, under 32 senders, commits alternated between ~31 deliveries and the
// one or two that arrived during the previous commit, and each of those
// small commits cost a full WAL flush: SQLite at 8 KB went from about
// 6,500 to 7,500 pushes a second with it (PostgreSQL: no change). Under
// light load groups are small and nothing waits.
const (
	gatherAfter = 8
	gatherFor   = time.Millisecond
)

// slowCommit is a commit long enough to be told in the log. A commit
// takes a millisecond or so; one that takes a second means the disk (or
// the database server) stalled, every delivery in it waited as long for
// its answer, and GitHub gives up on a delivery after 10 seconds.
const slowCommit = time.Second

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
	if db.read != db.sql {
		// SQLite: a read connection for each evaluation job, and two for
		// the dashboard and metrics, so that neither waits for the other.
		db.read.SetMaxOpenConns(opts.Evaluators + 2)
		db.read.SetMaxIdleConns(opts.Evaluators + 2)
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
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return retentionArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(evaluateEvery),
				func() (river.JobArgs, *river.InsertOpts) { return evaluateArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}),
		},
	}
	var err error
	if q.river, err = river.NewClient(db.driver, cfg); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if !db.postgres {
		if q.stmts, err = prepareSQLite(context.Background(), db.sql); err != nil {
			return nil, fmt.Errorf("queue: prepare statements: %w", err)
		}
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
	// This committer's wake row (see commit). Keys are random so that
	// committers of several processes seldom share one; sharing would be
	// correct, only slower.
	wake := rand.Int64() //nolint:gosec // a key, not a secret
	commit := q.commit
	if q.db.postgres {
		commit = q.commitPostgres
	}
	// last is the size of the previous group.
	last := 0
	for req := range q.accepts {
		group := []acceptReq{req}
		// After a large group, its senders come back together a moment
		// later: wait briefly for them rather than commit the first few
		// on their own (see gatherFor).
		var gather <-chan time.Time
		want := 0
		if last >= gatherAfter {
			gather, want = time.After(gatherFor), last*3/4
		}
	fill:
		for len(group) < maxGroup {
			select {
			case r, ok := <-q.accepts:
				if !ok {
					break fill
				}
				group = append(group, r)
				continue
			default:
			}
			if gather == nil || len(group) >= want {
				break
			}
			select {
			case r, ok := <-q.accepts:
				if !ok {
					break fill
				}
				group = append(group, r)
			case <-gather:
				gather = nil
			}
		}
		last = len(group)
		began := time.Now()
		results := q.commitApart(commit, group, wake)
		took := time.Since(began)
		q.opts.Metrics.Commit(len(group), took)
		if took > slowCommit {
			q.log.Warn("slow commit: its deliveries waited that long for their answer", "deliveries", len(group), "took", took, "database", q.db.Where)
		}
		for i, r := range group {
			r.done <- results[i]
		}
	}
}

// commitApart commits group and returns each delivery's result. When the
// database refuses a row's values, one row would fail every delivery
// committed with it: the halves are then committed apart, down to the
// deliveries it really refuses, which get ErrUnstorable (no redelivery can
// store them). Any other failure is the database's, and fails the group.
func (q *Queue) commitApart(commit func([]acceptReq, int64) ([]error, error), group []acceptReq, wake int64) []error {
	results, err := commit(group, wake)
	switch {
	case err == nil:
		q.health.committed()
		return results
	case !q.db.refusesRow(err):
		q.health.failed(err)
		results = make([]error, len(group))
		for i := range results {
			results[i] = err
		}
		return results
	case len(group) == 1:
		return []error{fmt.Errorf("%w: %w", githubhook.ErrUnstorable, err)}
	}
	half := len(group) / 2
	return append(q.commitApart(commit, group[:half], wake), q.commitApart(commit, group[half:], wake)...)
}

// Evaluation is woken through a "wake row" per committer, not a job per
// commit group: a job insert cost more than the deliveries it woke for.
//
// A commit upserts its wake row in the same transaction as its deliveries.
// If the row was new (n = 1), nothing is pending to evaluate them, and the
// commit queues an evaluation job. If it was there, a job queued before
// has not yet begun: a job's first step deletes every wake row, and only
// then reads what waits. The upsert holds the row until the commit, so
// that delete waits for the commit, and the job then sees its deliveries;
// a delete that came first leaves no row, and the commit queues a job.
const wakeUpsert = `INSERT INTO monohook_wake (k, n) VALUES (?, 1) ON CONFLICT (k) DO UPDATE SET n = monohook_wake.n + 1 RETURNING n`

// commit stores a group in one SQLite transaction.
func (q *Queue) commit(group []acceptReq, wake int64) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	// Many rows per statement: a statement per delivery would cost more
	// than the flush the group shares. The ids returned are the new
	// deliveries; the others were stored before.
	c := groupColumns(group)
	inserted, first, err := q.stmts.insertGroup(ctx, tx, c)
	if err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	if err := q.stmts.insertPayloads(ctx, tx, c, inserted, first); err != nil {
		return nil, fmt.Errorf("store payloads: %w", err)
	}
	results, dups := duplicates(group, inserted)
	for _, id := range dups {
		if _, err := tx.ExecContext(ctx, `UPDATE monohook_delivery SET duplicates = duplicates + 1 WHERE id = ?`, id); err != nil {
			return nil, fmt.Errorf("count duplicate %s: %w", id, err)
		}
	}
	var n int
	if err := tx.StmtContext(ctx, q.stmts.wake).QueryRowContext(ctx, wake).Scan(&n); err != nil {
		return nil, fmt.Errorf("wake evaluation: %w", err)
	}
	if n == 1 {
		if _, err := q.river.InsertTx(ctx, tx, evaluateArgs{}, nil); err != nil {
			return nil, fmt.Errorf("queue evaluation: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit deliveries: %w", err)
	}
	return results, nil
}

// commitPostgres stores a group in one statement, which PostgreSQL runs as
// its own transaction: a single round trip where BEGIN, INSERT and COMMIT
// took three (each waited on by the deliveries of the group).
//
// When the wake row was new, the evaluation job is queued after the
// commit, not with it. Should this process die in between, the deliveries
// wait for the next evaluation of any replica, or at the latest for the
// periodic one (evaluateEvery).
func (q *Queue) commitPostgres(group []acceptReq, wake int64) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := q.insertGroupPostgres(ctx, wake, group)
	if err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	var inserted []string
	n := 0
	for rows.Next() {
		var id string
		var w int
		if err := rows.Scan(&id, &w); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store deliveries: %w", err)
		}
		if id != "" {
			inserted = append(inserted, id)
		} else {
			n = w
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	if n == 1 {
		if _, err := q.river.Insert(ctx, evaluateArgs{}, nil); err != nil {
			// The deliveries are stored; drop the wake row so that the next
			// commit queues a job rather than count on this one.
			q.log.Error("could not queue an evaluation; stored deliveries wait for the next one", "err", err)
			if _, err := q.db.sql.ExecContext(ctx, `DELETE FROM monohook_wake WHERE k = $1`, wake); err != nil {
				q.log.Error("could not clear the wake row", "err", err)
			}
		}
	}
	// The new deliveries are committed: a counter that fails to count
	// their repeats is logged, not answered with an error.
	results, dups := duplicates(group, inserted)
	if len(dups) > 0 {
		if _, err := q.db.sql.ExecContext(ctx, `UPDATE monohook_delivery d SET duplicates = d.duplicates + u.n
			FROM (SELECT id, count(*) AS n FROM unnest($1::text[]) AS id GROUP BY id) u WHERE d.id = u.id`, dups); err != nil {
			q.log.Warn("could not count duplicate deliveries", "deliveries", dups, "err", err)
		}
	}
	return results, nil
}

// duplicates returns the result of each delivery of a group (nil, or
// ErrDuplicate for an id stored before or seen earlier in the group) and
// the duplicates' ids.
func duplicates(group []acceptReq, inserted []string) (results []error, dups []string) {
	fresh := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		fresh[id] = true
	}
	results = make([]error, len(group))
	for i, r := range group {
		if fresh[r.d.ID] {
			delete(fresh, r.d.ID) // a second copy in the group is a duplicate
			continue
		}
		dups = append(dups, r.d.ID)
		results[i] = githubhook.ErrDuplicate
	}
	return results, dups
}

// scanStrings reads rows of one text column and closes them.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// columns are a group's deliveries as columns, each id once (the same id
// twice in one group: the second is a duplicate); index is each id's row.
type columns struct {
	ids, events, repos, refs, shas []string
	received, paths                []int64
	payloads                       [][]byte
	index                          map[string]int
}

func groupColumns(group []acceptReq) columns {
	n := len(group)
	c := columns{
		ids: make([]string, 0, n), events: make([]string, 0, n), repos: make([]string, 0, n), refs: make([]string, 0, n), shas: make([]string, 0, n),
		received: make([]int64, 0, n), paths: make([]int64, 0, n), payloads: make([][]byte, 0, n),
		index: make(map[string]int, n),
	}
	for _, r := range group {
		d := r.d
		if _, seen := c.index[d.ID]; seen {
			continue
		}
		c.index[d.ID] = len(c.ids)
		c.ids, c.events, c.payloads = append(c.ids, d.ID), append(c.events, d.Event), append(c.payloads, d.Payload)
		c.received = append(c.received, d.Received.UnixMilli())
		var repo, ref, sha string
		var np int
		if d.Push != nil {
			repo, ref, sha, np = d.Push.Repo, d.Push.Ref, d.Push.After, len(d.Push.Paths)
		}
		c.repos, c.refs, c.shas, c.paths = append(c.repos, repo), append(c.refs, ref), append(c.shas, sha), append(c.paths, int64(np))
	}
	return c
}

// sqliteStmts are the committer's statements, prepared once on SQLite's
// writer connection: SQLite parses an unprepared statement anew at every
// call, and that was a tenth of the committer's time. A group is inserted
// in chunks of power-of-two sizes, so a few texts serve every group size.
type sqliteStmts struct {
	deliveries, payloads map[int]*sql.Stmt // by rows per statement
	wake, lastBody       *sql.Stmt
}

// maxChunk is the most rows one insert statement takes.
const maxChunk = 256

func prepareSQLite(ctx context.Context, db *sql.DB) (*sqliteStmts, error) {
	s := &sqliteStmts{deliveries: map[int]*sql.Stmt{}, payloads: map[int]*sql.Stmt{}}
	var err error
	if s.wake, err = db.PrepareContext(ctx, wakeUpsert); err != nil {
		return nil, err
	}
	if s.lastBody, err = db.PrepareContext(ctx, `SELECT COALESCE(max(k), 0) FROM monohook_body`); err != nil {
		s.close()
		return nil, err
	}
	// Only placeholders are repeated: no value is in the texts.
	for n := 1; n <= maxChunk; n *= 2 {
		if s.deliveries[n], err = db.PrepareContext(ctx, `INSERT INTO monohook_delivery (id, event, received_at, payload, repo, ref, sha, paths, status, body) VALUES `+ //nolint:gosec // placeholders only
			strings.Repeat("(?, ?, ?, x'', ?, ?, ?, ?, 'received', ?), ", n-1)+"(?, ?, ?, x'', ?, ?, ?, ?, 'received', ?) ON CONFLICT (id) DO NOTHING RETURNING id"); err != nil {
			s.close()
			return nil, err
		}
		if s.payloads[n], err = db.PrepareContext(ctx, `INSERT INTO monohook_body (k, payload) VALUES `+strings.Repeat("(?, ?), ", n-1)+"(?, ?)"); err != nil { //nolint:gosec // placeholders only
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *sqliteStmts) close() {
	for _, m := range []map[int]*sql.Stmt{s.deliveries, s.payloads} {
		for _, st := range m {
			st.Close() //nolint:errcheck // closing on shutdown
		}
	}
	for _, st := range []*sql.Stmt{s.wake, s.lastBody} {
		if st != nil {
			st.Close() //nolint:errcheck // closing on shutdown
		}
	}
}

// chunk is the rows of the next statement for n rows left.
func chunk(n int) int {
	c := maxChunk
	for c > n {
		c /= 2
	}
	return c
}

// inChunks calls f for rows [i, i+n) of total rows, chunk by chunk.
func inChunks(total int, f func(i, n int) error) error {
	for i := 0; i < total; {
		n := chunk(total - i)
		if err := f(i, n); err != nil {
			return err
		}
		i += n
	}
	return nil
}

// insertGroup inserts the deliveries of a group that are not stored yet,
// each with the key of its payload, and returns the ids it inserted. The
// delivery in row j of c gets key first+j, after the largest stored: the
// transaction holds SQLite's write lock, so no other writer takes them.
func (s *sqliteStmts) insertGroup(ctx context.Context, tx *sql.Tx, c columns) (inserted []string, first int64, err error) {
	if err := tx.StmtContext(ctx, s.lastBody).QueryRowContext(ctx).Scan(&first); err != nil {
		return nil, 0, err
	}
	first++
	err = inChunks(len(c.ids), func(i, n int) error {
		args := make([]any, 0, 8*n)
		for j := i; j < i+n; j++ {
			args = append(args, c.ids[j], c.events[j], c.received[j], c.repos[j], c.refs[j], c.shas[j], c.paths[j], first+int64(j))
		}
		rows, err := tx.StmtContext(ctx, s.deliveries[n]).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		ids, err := scanStrings(rows)
		inserted = append(inserted, ids...)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return inserted, first, nil
}

// insertPayloads stores the payloads of the deliveries inserted under
// their keys (see insertGroup and monohook_body).
func (s *sqliteStmts) insertPayloads(ctx context.Context, tx *sql.Tx, c columns, inserted []string, first int64) error {
	return inChunks(len(inserted), func(i, n int) error {
		args := make([]any, 0, 2*n)
		for _, id := range inserted[i : i+n] {
			j := c.index[id]
			args = append(args, first+int64(j), c.payloads[j])
		}
		_, err := tx.StmtContext(ctx, s.payloads[n]).ExecContext(ctx, args...)
		return err
	})
}

// insertGroupPostgres inserts a group's new deliveries and upserts the
// committer's wake row in one statement. It returns a row (id, 0) per
// delivery inserted, and one with an empty id and n for the wake row.
// Arrays keep the statement text the same for every group size, so it is
// prepared once per connection and its values sent in binary.
func (q *Queue) insertGroupPostgres(ctx context.Context, wake int64, group []acceptReq) (*sql.Rows, error) {
	c := groupColumns(group)
	return q.db.sql.QueryContext(ctx, `WITH new AS (
			INSERT INTO monohook_delivery (id, event, received_at, payload, repo, ref, sha, paths, status)
			SELECT *, 'received' FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::text[], $6::text[], $7::text[], $8::bigint[])
			ON CONFLICT (id) DO NOTHING RETURNING id
		), wake AS (
			INSERT INTO monohook_wake (k, n) VALUES ($9, 1) ON CONFLICT (k) DO UPDATE SET n = monohook_wake.n + 1 RETURNING n
		)
		SELECT id, 0 FROM new UNION ALL SELECT '', n FROM wake`,
		c.ids, c.events, c.received, c.payloads, c.repos, c.refs, c.shas, c.paths, wake)
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
	if q.stmts != nil {
		q.stmts.close()
	}
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

// evaluateArgs is the job that evaluates deliveries. Without ids it
// evaluates every waiting delivery, oldest first, in batches: this is the
// job a commit's wake row queues (see wakeUpsert). With ids it evaluates
// those: a replay, or a delivery whose evaluation failed and is retried
// with backoff on its own, so that it does not hold up the others.
type evaluateArgs struct {
	DeliveryIDs []string `json:"delivery_ids,omitempty"`
}

func (evaluateArgs) Kind() string { return "monohook_evaluate" }

func (evaluateArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: evaluateQueue} }

// evaluateEvery is how often an evaluation of waiting deliveries is queued
// whatever else happens: after a restart, and after a crash between a
// commit and the queueing of its job (PostgreSQL, see commitPostgres).
const evaluateEvery = time.Minute

// Batches of waiting deliveries. A batch reads each repository and
// branch's rules once and records its decisions in one transaction; on
// SQLite that transaction holds the one connection that acknowledgements
// wait for, so its batches are smaller. A batch also ends at a number of
// changed paths: a push with thousands of paths matches many rules, and
// its recorded decision is that much larger (64 such pushes on SQLite held
// the connection for up to 300 ms; on PostgreSQL, 59 took the server from
// acknowledgements: 700 instead of 890 200 KB pushes a second).
type batchLimit struct{ deliveries, paths int }

var (
	batchSQLite   = batchLimit{deliveries: 64, paths: 10_000}
	batchPostgres = batchLimit{deliveries: 512, paths: 20_000}
	// batchPressed is a batch taken while acknowledgements wait (see
	// yieldToIngest). On PostgreSQL, 512-delivery batches under an 8 KB
	// burst evaluated every delivery as it came, and the server's time
	// went to their updates: 5,200 and 4,700 pushes a second at p99
	// 23-25 ms, against 6,200 and 7,200 at 14-17 ms with these.
	batchPressed = batchLimit{deliveries: 64, paths: 10_000}
)

// sweepFor bounds one job; what still waits after it goes to a follow-up
// job queued with its last batch. A shutdown ends a sweep the same way.
const sweepFor = 10 * time.Second

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
		return q.evaluate(ctx, q.svc.NewLoader(), ids, false, false)
	}
	// Wake rows deleted now: commits from here on queue a job of their
	// own, and every commit that counted on this job has finished (the
	// delete waited for their rows), so what they stored is read below.
	if _, err := q.db.sql.ExecContext(ctx, `DELETE FROM monohook_wake`); err != nil {
		return fmt.Errorf("evaluate: clear wake rows: %w", err)
	}
	limit := batchSQLite
	if q.db.postgres {
		limit = batchPostgres
	}
	began := time.Now()
	// The sweep claims a window of waiting deliveries at a time and
	// evaluates it batch by batch, all against one Loader: every delivery
	// of a window was stored before the window was read, and the Loader
	// lists the rules only after that, so each delivery still meets rules
	// at least as new as itself. Listing them for every batch cost a fifth
	// of the CPU of evaluating 200 KB pushes (two to a batch) from the
	// rules in the data directory, and would cost a request to S3 each.
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
		err := q.evaluate(ctx, rules, ids, true, last)
		q.release(ids)
		if err != nil || !more || last {
			return err
		}
	}
}

// windowBatches is how many full batches a sweep's window holds.
const windowBatches = 8

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
// followUp queues a job for what still waits after this batch.
func (q *Queue) evaluate(ctx context.Context, rules *trigger.Loader, ids []string, sweep, followUp bool) error {
	t0 := time.Now()
	batch, err := q.readBatch(ctx, ids)
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
		plan := trigger.NewPlan(trigger.PlanInput{Event: d.push, Round: d.round, Rules: r, Changes: cs})
		d.push, d.res, d.starts = plan.Event, plan.Result, plan.Starts
		q.opts.Metrics.Evaluation(time.Since(began))
	}
	return nil
}

// record records a batch's decisions and queues its jobs in one
// transaction.
func (q *Queue) record(ctx context.Context, batch []*pending, followUp bool) error {
	db := q.db
	status := "pending"
	if q.opts.DryRun {
		status = "dry-run"
	}
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
	recordFn := q.recordRows
	if db.postgres {
		recordFn = q.recordArrays
	}
	recorded, created, err := recordFn(ctx, tx, decided, status, now)
	if err != nil {
		return err
	}
	var jobs []river.InsertManyParams
	for _, c := range created {
		if q.opts.DryRun {
			break
		}
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
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record decisions: %w", err)
	}
	for _, d := range recorded {
		q.svc.LogDecision(d.push, d.res)
	}
	return nil
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
		WHERE id = ? AND status IN ('received', 'retrying') AND round = ?`))
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
			err := insert.QueryRowContext(ctx, d.id, d.round, pipeline, trigger.StartToken(d.id, d.round, pipeline), status, now).Scan(&got)
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
		WHERE d.id = u.id AND d.status IN ('received', 'retrying') AND d.round = u.round RETURNING d.id`, now, ids, results, rounds)
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
			sTokens, sRounds = append(sTokens, trigger.StartToken(d.id, d.round, pipeline)), append(sRounds, int64(d.round))
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
	expr, joins := q.db.payloadSQL()
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
		payload, err := unpack(r.stored)
		if err == nil {
			d.push, err = githubhook.ParseEvent(r.event, payload)
		}
		if err != nil {
			// It was parsed before it was acknowledged, so the stored row
			// is damaged: recorded as unreadable, not retried forever.
			q.log.Error("stored delivery does not parse; marked unreadable", "delivery", d.id, "err", err)
			d.unreadable = true
		} else {
			d.push.DeliveryID = d.id
		}
		out = append(out, d)
	}
	return out, nil
}

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
func (w *startWorker) Work(ctx context.Context, job *river.Job[startArgs]) error {
	q, db, a := w.q, w.q.db, job.Args
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
	update := db.q(`UPDATE monohook_start SET status = ?, attempts = ?, execution_id = ?, output = ?, error = ?, updated_at = ?
		WHERE delivery_id = ? AND round = ? AND pipeline = ?`)
	if startErr == nil {
		// Should this not be recorded (a crash now), the job runs again,
		// and the same token gets the same execution from CodePipeline.
		if _, err := db.sql.ExecContext(ctx, update, "started", job.Attempt, got.ID, got.Output, "", now, a.DeliveryID, a.Round, a.Name); err != nil {
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
	if _, err := db.sql.ExecContext(ctx, update, status, job.Attempt, "", got.Output, startErr.Error(), now, a.DeliveryID, a.Round, a.Name); err != nil {
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
