package deliveries

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/trigger"
)

// ReportOptions turn reporting to GitHub on: every evaluated delivery's
// checks (internal/report) are posted and kept up to date by report jobs
// on a queue of their own, never by an evaluation or a start.
type ReportOptions struct {
	GitHub *githubapi.Client
	// Statuses posts commit statuses instead of check runs (a token
	// cannot write check runs; a GitHub App can).
	Statuses bool
	// Workers is how many report jobs this process runs at once
	// (default 4).
	Workers int
}

// reportQueue is the report jobs' River queue.
const reportQueue = "monohook_report"

// roundKey names a delivery's round.
type roundKey struct {
	DeliveryID string `json:"delivery_id"`
	Round      int    `json:"round"`
}

// reportArgs is the job that brings a delivery round's checks up to date.
type reportArgs roundKey

func (reportArgs) Kind() string { return "monohook_report" }

func (reportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: reportQueue, MaxAttempts: 25}
}

// maxCallsPerRun bounds the GitHub calls of one run of a report job: a
// round with more checks continues in the job's next run, so that no run
// outlasts its lease (and rounds of other deliveries get their turn).
const maxCallsPerRun = 40

type reportWorker struct {
	river.WorkerDefaults[reportArgs]
	q *Queue
}

// posted is what was posted of one check: its id (check runs) and a
// digest of its content, so that an unchanged check is not posted again.
type posted struct {
	id     int64
	digest string
}

// Work posts what changed of the round's checks. One job at a time works
// a round: it holds the round's lease (monohook_report.lease_until), and
// a job that finds it held waits a second. Taking the lease also clears
// queued, so a change from then on queues a job of its own, which runs
// after this one.
func (w *reportWorker) Work(ctx context.Context, job *river.Job[reportArgs]) error {
	q, a := w.q, job.Args
	log := q.log.With("delivery", a.DeliveryID, "round", a.Round)
	if q.opts.Report == nil {
		// Queued by a replica that reports: it or another takes the job
		// up (a process without GitHub credentials cannot).
		return river.JobSnooze(time.Minute)
	}
	held, err := q.takeLease(ctx, a)
	if err != nil || held == leaseGone {
		return err
	}
	if held == leaseBusy {
		return river.JobSnooze(time.Second)
	}
	more, err := q.report(ctx, a, log)
	_, limited := githubapi.RetryAt(err)
	// A job that gives up (its last attempt failed) leaves queued clear:
	// the next change of the round's starts queues a job again.
	last := err != nil && !limited && job.Attempt >= job.MaxAttempts
	again := more || (err != nil && !last)
	if last {
		log.Error("reporting to GitHub failed on the last attempt; the next change of these starts reports again", "err", err)
	}
	if rerr := q.releaseLease(a, again); rerr != nil && err == nil {
		err = rerr
	}
	if at, ok := githubapi.RetryAt(err); ok {
		log.Warn("GitHub rate limit: the checks are reported after its reset", "until", at)
		q.opts.Metrics.Report(q.reportKind(), "rate_limited")
		return river.JobSnooze(time.Until(at))
	}
	if err != nil {
		log.Warn("reporting to GitHub failed; will retry", "err", err)
		return err
	}
	if more {
		return river.JobSnooze(0)
	}
	return nil
}

type lease int

const (
	leaseTaken lease = iota
	leaseBusy
	leaseGone // the delivery was deleted meanwhile: nothing to report
)

func (q *Queue) leaseFor() time.Duration {
	return q.opts.JobTimeout + max(q.opts.JobTimeout/2, time.Second)
}

func (q *Queue) takeLease(ctx context.Context, a reportArgs) (lease, error) {
	now := time.Now().UnixMilli()
	res, err := q.db.sql.ExecContext(ctx, q.db.q(`UPDATE monohook_report SET queued = 0, lease_until = ?
		WHERE delivery_id = ? AND round = ? AND lease_until < ?`), now+q.leaseFor().Milliseconds(), a.DeliveryID, a.Round, now)
	if err != nil {
		return 0, fmt.Errorf("report %s: take the lease: %w", a.DeliveryID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return leaseTaken, nil
	}
	var one int
	err = q.db.sql.QueryRowContext(ctx, q.db.q(`SELECT 1 FROM monohook_report WHERE delivery_id = ? AND round = ?`), a.DeliveryID, a.Round).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return leaseGone, nil
	}
	if err != nil {
		return 0, fmt.Errorf("report %s: %w", a.DeliveryID, err)
	}
	return leaseBusy, nil
}

// releaseLease ends the lease; again says this job runs again, so no
// other job needs queueing for what changes meanwhile.
func (q *Queue) releaseLease(a reportArgs, again bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	queued := 0
	if again {
		queued = 1
	}
	_, err := q.db.sql.ExecContext(ctx, q.db.q(`UPDATE monohook_report SET lease_until = 0, queued = CASE WHEN ? = 1 THEN 1 ELSE queued END
		WHERE delivery_id = ? AND round = ?`), queued, a.DeliveryID, a.Round)
	if err != nil {
		return fmt.Errorf("report %s: release the lease: %w", a.DeliveryID, err)
	}
	return nil
}

func (q *Queue) reportKind() string {
	if q.opts.Report.Statuses {
		return "status"
	}
	return "check_run"
}

// Ids a check's row holds before its check run's: unknownID, a check run
// a report job set out to create and whose id it did not record (a
// crash, an answer lost): the commit's check runs are listed to find it
// before anything is created again; toCreate, a check to create, which
// the commit had no check of its name to keep when the round was listed.
const (
	unknownID = -1
	toCreate  = -2
)

// report posts the round's checks that differ from what was posted last;
// more says it stopped at maxCallsPerRun with checks left.
func (q *Queue) report(ctx context.Context, a reportArgs, log *slog.Logger) (more bool, err error) {
	in, done, err := q.reportInput(ctx, a)
	if err != nil || in == nil {
		return false, err
	}
	var todo []postedCheck
	for _, c := range report.Checks(*in) {
		if digest := digestOf(c); done[c.Name].digest != digest {
			todo = append(todo, postedCheck{c, posted{done[c.Name].id, digest}})
		}
	}
	todo, more, err = q.prepare(ctx, a, in.Event, todo)
	if err != nil {
		return false, err
	}
	var wrote []postedCheck
	defer func() {
		if serr := q.storePosted(a, wrote); serr != nil && err == nil {
			err = serr
		}
	}()
	for _, t := range todo {
		id, err := q.post(ctx, in.Event, t.c, max(t.id, 0))
		switch {
		case errors.Is(err, trigger.ErrPermanent):
			// GitHub refuses it (no access, a validation): asking again
			// cannot help, and the other checks still go.
			log.Error("GitHub refused a check; not retried", "check", t.c.Name, "err", err)
			q.opts.Metrics.Report(q.reportKind(), "refused")
		case err != nil:
			return false, err
		case q.opts.Report.Statuses || (t.id <= 0 && id != 0):
			// Every commit status posted is a new one.
			q.opts.Metrics.Report(q.reportKind(), "created")
		default:
			q.opts.Metrics.Report(q.reportKind(), "updated")
		}
		wrote = append(wrote, postedCheck{t.c, posted{max(id, 0), t.digest}})
	}
	return more, nil
}

// prepare readies todo for posting and returns what this run posts (at
// most maxCallsPerRun; more: the rest is for the next run). When a check
// is new to the round and not selected, or an earlier creation's id went
// unrecorded, it lists what the commit has (one call per 100 checks): a
// new check of a pipeline not selected is not posted over another
// delivery's check of its name (report.Check.Posts: it is recorded as
// posted), and a check run whose id is unknown is updated under the id
// found. Each new check is recorded as toCreate, and before its creation
// as unknownID, so that a crash in between is seen by the next run.
func (q *Queue) prepare(ctx context.Context, a reportArgs, p *trigger.Push, todo []postedCheck) (post []postedCheck, more bool, err error) {
	need := false
	for _, t := range todo {
		need = need || t.id == unknownID || (t.id == 0 && t.c.Conclusion == report.Skipped)
	}
	listed := githubapi.Listed{}
	if need {
		if listed, err = q.listed(ctx, p); err != nil {
			return nil, false, err
		}
	}
	var marks []postedCheck
	for _, t := range todo {
		switch ext, exists := listed.Names[t.c.Name]; {
		case t.id == unknownID:
			t.id = listed.IDs[t.c.ExternalID]
		case t.id == 0 && !t.c.Posts(ext, exists):
			marks = append(marks, postedCheck{t.c, posted{0, t.digest}})
			continue
		case t.id == 0:
			t.id = toCreate
			marks = append(marks, postedCheck{t.c, posted{toCreate, ""}})
		}
		post = append(post, t)
	}
	if len(post) > maxCallsPerRun {
		post, more = post[:maxCallsPerRun], true
	}
	if !q.opts.Report.Statuses {
		for _, t := range post {
			if t.id == toCreate {
				marks = append(marks, postedCheck{t.c, posted{unknownID, ""}})
			}
		}
	}
	return post, more, q.storePosted(a, marks)
}

// listed is what commit p.After has of monohook's: its check runs, or the
// contexts of its statuses (their external ids unknown).
func (q *Queue) listed(ctx context.Context, p *trigger.Push) (githubapi.Listed, error) {
	gh := q.opts.Report.GitHub
	if !q.opts.Report.Statuses {
		return gh.CheckRuns(ctx, p.FullName, p.After)
	}
	contexts, err := gh.StatusContexts(ctx, p.FullName, p.After)
	l := githubapi.Listed{Names: map[string]string{}}
	for c := range contexts {
		l.Names[c] = ""
	}
	return l, err
}

// post posts c: a commit status, or a check run created (id 0) or
// updated.
func (q *Queue) post(ctx context.Context, p *trigger.Push, c report.Check, id int64) (int64, error) {
	return q.opts.Report.GitHub.PostCheck(ctx, p, c, q.opts.Report.Statuses, id)
}

func digestOf(c report.Check) string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

type postedCheck struct {
	c report.Check
	posted
}

// storePosted records what was posted, in one transaction: the check's
// row, and the check run's id on its start's row.
func (q *Queue) storePosted(a reportArgs, wrote []postedCheck) error {
	if len(wrote) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record checks of %s: %w", a.DeliveryID, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	upsert := q.db.q(`INSERT INTO monohook_check (delivery_id, round, name, check_id, digest) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (delivery_id, round, name) DO UPDATE SET check_id = excluded.check_id, digest = excluded.digest`)
	start := q.db.q(`UPDATE monohook_start SET check_id = ? WHERE delivery_id = ? AND round = ? AND pipeline = ? AND check_id = 0`)
	for _, w := range wrote {
		if _, err := tx.ExecContext(ctx, upsert, a.DeliveryID, a.Round, w.c.Name, w.id, w.digest); err != nil {
			return fmt.Errorf("record check %s of %s: %w", w.c.Name, a.DeliveryID, err)
		}
		if w.id <= 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, start, w.id, a.DeliveryID, a.Round, w.c.Pipeline); err != nil {
			return fmt.Errorf("record check %s of %s: %w", w.c.Name, a.DeliveryID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record checks of %s: %w", a.DeliveryID, err)
	}
	return nil
}

// reportInput reads what the round's checks are made of, and what was
// posted of them; nil when there is nothing to report (not evaluated, or
// the delivery is gone).
func (q *Queue) reportInput(ctx context.Context, a reportArgs) (*report.Input, map[string]posted, error) {
	p, result, err := q.stored(ctx, a.DeliveryID)
	if errors.Is(err, ErrNotFound) || (err == nil && !result.Valid) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var res trigger.Result
	if err := json.Unmarshal([]byte(result.String), &res); err != nil {
		return nil, nil, fmt.Errorf("delivery %s: decision: %w", a.DeliveryID, err)
	}
	in := &report.Input{Event: res.Recorded().Apply(p), Round: a.Round, Result: res, Starts: map[string]report.Start{}}
	rows, err := q.db.read.QueryContext(ctx, q.db.q(`SELECT pipeline, status, execution_id, error, url, result, result_detail
		FROM monohook_start WHERE delivery_id = ? AND round = ?`), a.DeliveryID, a.Round)
	if err != nil {
		return nil, nil, fmt.Errorf("read starts of %s: %w", a.DeliveryID, err)
	}
	defer rows.Close()
	var started []string
	for rows.Next() {
		var name string
		var s report.Start
		if err := rows.Scan(&name, &s.Status, &s.ExecutionID, &s.Error, &s.URL, &s.Result, &s.ResultDetail); err != nil {
			return nil, nil, fmt.Errorf("read starts of %s: %w", a.DeliveryID, err)
		}
		in.Starts[name], started = s, append(started, name)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read starts of %s: %w", a.DeliveryID, err)
	}
	done, err := q.postedChecks(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	var round int
	if err := q.db.read.QueryRowContext(ctx, q.db.q(`SELECT round FROM monohook_delivery WHERE id = ?`), a.DeliveryID).Scan(&round); err != nil {
		return nil, nil, fmt.Errorf("read delivery %s: %w", a.DeliveryID, err)
	}
	if round != a.Round && q.opts.Report.Statuses {
		// A commit status has no round: the one posted last is the one
		// GitHub shows, and the later round (a replay decides every check
		// again) owns every context; this one's result would cover it.
		return nil, nil, nil
	}
	if round != a.Round {
		// An earlier round (its execution ended after a replay): the
		// recorded decision is the latest round's, so only the checks
		// posted for this round are brought up to date, as its starts say.
		in.Result.Start, in.Result.Only = started, ""
		posted := func(d trigger.Decision) bool { _, ok := done[d.Check]; return ok }
		in.Result.Decisions = slices.DeleteFunc(in.Result.Decisions, func(d trigger.Decision) bool { return !posted(d) })
		in.Result.Unselected = slices.DeleteFunc(in.Result.Unselected, func(d trigger.Decision) bool { return !posted(d) })
	}
	return in, done, nil
}

func (q *Queue) postedChecks(ctx context.Context, a reportArgs) (map[string]posted, error) {
	rows, err := q.db.read.QueryContext(ctx, q.db.q(`SELECT name, check_id, digest FROM monohook_check WHERE delivery_id = ? AND round = ?`), a.DeliveryID, a.Round)
	if err != nil {
		return nil, fmt.Errorf("read checks of %s: %w", a.DeliveryID, err)
	}
	defer rows.Close()
	done := map[string]posted{}
	for rows.Next() {
		var name string
		var p posted
		if err := rows.Scan(&name, &p.id, &p.digest); err != nil {
			return nil, fmt.Errorf("read checks of %s: %w", a.DeliveryID, err)
		}
		done[name] = p
	}
	return done, rows.Err()
}
