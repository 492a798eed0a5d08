package deliveries

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/monohook/monohook/internal/metrics"
	"github.com/monohook/monohook/internal/trigger"
)

// RecoverOptions configure the reconciliation with GitHub's list of the
// webhook's deliveries.
type RecoverOptions struct {
	// Window is how far back GitHub keeps deliveries: 3 days on
	// github.com. No reconciliation looks further.
	Window time.Duration
	// Overlap is how far before the newest delivery the last
	// reconciliation listed the next one starts, for deliveries GitHub
	// lists late (its attempt took a while, or its clock and ours differ).
	Overlap time.Duration
	// Handles tells, from the list, whether a delivery's event and action
	// may start pipelines: only those are fetched.
	Handles func(event, action string) bool
	// Admit turns a fetched request into the delivery the webhook would
	// have accepted (the same checks and parsing); ignored says why it
	// would have started nothing.
	Admit   func(guid string, req trigger.HookRequest, received time.Time) (d trigger.Delivery, ignored string, err error)
	Metrics *metrics.Recovery
}

// Reconciler finds the deliveries of the webhook GitHub recorded that the
// database does not hold, fetches them and accepts them as the webhook
// would have. One runs at a time over every process sharing the database
// (a lease in monohook_reconcile).
type Reconciler struct {
	q      *Queue
	gh     trigger.HookDeliveries
	opts   RecoverOptions
	log    *slog.Logger
	holder string
	// renewed is when the lease was last taken or renewed (see renew);
	// one Run at a time uses it.
	renewed time.Time
}

// NewReconciler returns a reconciler of q's deliveries with gh's.
func NewReconciler(q *Queue, gh trigger.HookDeliveries, opts RecoverOptions, log *slog.Logger) (*Reconciler, error) {
	if opts.Handles == nil || opts.Admit == nil {
		return nil, errors.New("reconciler: RecoverOptions.Handles and Admit are required")
	}
	if opts.Window <= 0 {
		opts.Window = 72 * time.Hour
	}
	if opts.Overlap <= 0 {
		opts.Overlap = 10 * time.Minute
	}
	return &Reconciler{q: q, gh: gh, opts: opts, log: log.With("component", "recover"), holder: rand.Text()}, nil
}

// Reconciliation is one reconciliation's account.
type Reconciliation struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Succeeded is when the last reconciliation that went through its
	// whole window ended (in LastReconciliation).
	Succeeded time.Time `json:"succeeded,omitzero"`
	Since     time.Time `json:"since,omitzero"`
	// Listed is the deliveries GitHub listed in the window (redeliveries
	// included); Missing those of events monohook acts on whose GUID the
	// database did not hold; Recovered those then accepted; Arrived those
	// that came as webhooks meanwhile; Ignored those the webhook would have
	// ignored or refused too.
	Listed    int    `json:"listed"`
	Missing   int    `json:"missing"`
	Recovered int    `json:"recovered"`
	Arrived   int    `json:"arrived_meanwhile,omitempty"`
	Ignored   int    `json:"ignored,omitempty"`
	Error     string `json:"error,omitempty"`
	// Missed is, in a dry run, the missing deliveries, oldest first.
	Missed []trigger.HookDelivery `json:"missed,omitempty"`
	newest time.Time
}

// RunOptions are one reconciliation's.
type RunOptions struct {
	// Since, when set, looks back this far (at most the window) instead of
	// to the newest delivery the last reconciliation listed.
	Since time.Duration
	// DryRun lists what is missing and changes nothing (no lease either).
	DryRun bool
	// Fresh, when set, skips the run if a reconciliation ended less than
	// this long ago (another replica's): replicas then take turns.
	Fresh time.Duration
	// Progress, when set, is told of the reconciliation as it goes.
	Progress func(Reconciliation)
}

// ErrReconciling is returned when another process holds the lease (or,
// with Fresh, reconciled a moment ago).
var ErrReconciling = errors.New("another process is reconciling, or just did")

// reconcileLease is how long a reconciler holds the lease without renewing it: a
// process that died frees it after this.
const reconcileLease = 2 * time.Minute

// Run reconciles once.
func (r *Reconciler) Run(ctx context.Context, ro RunOptions) (Reconciliation, error) {
	rec := Reconciliation{Started: time.Now()}
	if !ro.DryRun {
		ok, err := r.acquire(ctx, rec.Started, ro.Fresh)
		if err != nil {
			return rec, err
		}
		if !ok {
			return rec, ErrReconciling
		}
	}
	err := r.reconcile(ctx, &rec, ro)
	rec.Finished = time.Now()
	if err != nil {
		rec.Error = err.Error()
	}
	if ro.DryRun {
		return rec, err
	}
	r.opts.Metrics.Reconciled(rec.Missing, rec.Recovered, err == nil)
	// Recorded even when ctx ended: the lease is freed for the next.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ferr := r.finish(fctx, rec, err == nil); ferr != nil && err == nil {
		err = ferr
	}
	return rec, err
}

// reconcile lists the window's deliveries, then fetches and accepts the
// missing ones, oldest first (the order GitHub sent them).
func (r *Reconciler) reconcile(ctx context.Context, rec *Reconciliation, ro RunOptions) error {
	since, err := r.since(ctx, rec.Started, ro.Since)
	if err != nil {
		return err
	}
	rec.Since = since
	missed, err := r.missing(ctx, rec, ro)
	if err != nil {
		return err
	}
	if ro.DryRun {
		rec.Missed = missed
		return nil
	}
	return r.recoverAll(ctx, missed, rec, ro)
}

// fetchers is how many missing deliveries are fetched and accepted at
// once: each fetch waits on GitHub, and accepts made together share a
// commit.
const fetchers = 8

// recoverAll fetches and accepts missed, fetchers at a time, in order.
func (r *Reconciler) recoverAll(ctx context.Context, missed []trigger.HookDelivery, rec *Reconciliation, ro RunOptions) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchers)
	var mu sync.Mutex
	for _, m := range missed {
		if gctx.Err() != nil {
			break
		}
		if err := r.renew(gctx); err != nil {
			g.Go(func() error { return err })
			break
		}
		g.Go(func() error {
			o, err := r.recover(gctx, m)
			mu.Lock()
			defer mu.Unlock()
			switch o {
			case recovered:
				rec.Recovered++
			case arrived:
				rec.Arrived++
			case ignored:
				rec.Ignored++
			}
			if ro.Progress != nil {
				ro.Progress(*rec)
			}
			return err
		})
	}
	return g.Wait()
}

// What became of one missing delivery.
type outcomeOfMissing int

const (
	failed    outcomeOfMissing = iota // not fetched or not accepted: the reconciliation fails
	recovered                         // accepted, marked recovered
	arrived                           // arrived as a webhook meanwhile
	ignored                           // gone, or the webhook would have ignored or refused it
)

// since is where the listing stops: the newest delivery the last
// reconciliation listed, less the overlap (or back), never before the
// window, nor before the oldest deliveries retention keeps (older ones
// would look missing).
func (r *Reconciler) since(ctx context.Context, now time.Time, back time.Duration) (time.Time, error) {
	edge := now.Add(-r.opts.Window)
	if ret := r.q.opts.Retention; ret > 0 && now.Add(-ret).After(edge) {
		edge = now.Add(-ret)
	}
	if back > 0 {
		return later(edge, now.Add(-back)), nil
	}
	last, err := r.q.LastReconciliation(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if last.newest.IsZero() {
		return edge, nil
	}
	return later(edge, last.newest.Add(-r.opts.Overlap)), nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// missing lists the deliveries since rec.Since, page by page, and returns
// the ones to fetch, oldest first: of events monohook acts on, each GUID
// once (a redelivery is listed with its original's GUID; the original's
// time is kept), and not in the database.
func (r *Reconciler) missing(ctx context.Context, rec *Reconciliation, ro RunOptions) ([]trigger.HookDelivery, error) {
	// The first attempt of each GUID handled: a redelivery is listed
	// before (newer than) its original.
	first := map[string]time.Time{}
	var missed []trigger.HookDelivery
	var lookupErr error
	err := r.gh.List(ctx, func(page []trigger.HookDelivery) bool {
		var candidates []trigger.HookDelivery
		done := false
		for _, d := range page {
			if d.DeliveredAt.Before(rec.Since) {
				done = true
				continue
			}
			rec.Listed++
			// Never past now: a time ahead (a wrong clock) would start
			// the next reconciliations after every delivery until then.
			at := d.DeliveredAt
			if at.After(rec.Started) {
				at = rec.Started
			}
			if rec.newest.Before(at) {
				rec.newest = at
			}
			if !r.opts.Handles(d.Event, d.Action) {
				continue
			}
			if t, seen := first[d.GUID]; seen {
				if d.DeliveredAt.Before(t) {
					first[d.GUID] = d.DeliveredAt
				}
				continue
			}
			first[d.GUID] = d.DeliveredAt
			candidates = append(candidates, d)
		}
		absent, err := r.q.absent(ctx, candidates)
		if err != nil {
			lookupErr = err
			return false
		}
		missed = append(missed, absent...)
		rec.Missing = len(missed)
		if ro.Progress != nil {
			ro.Progress(*rec)
		}
		if !ro.DryRun {
			if lookupErr = r.renew(ctx); lookupErr != nil {
				return false
			}
		}
		return !done
	})
	if err == nil {
		err = lookupErr
	}
	if err != nil {
		return nil, err
	}
	for i := range missed {
		missed[i].DeliveredAt = first[missed[i].GUID]
	}
	slices.SortStableFunc(missed, func(a, b trigger.HookDelivery) int { return a.DeliveredAt.Compare(b.DeliveredAt) })
	return missed, nil
}

// recover fetches one missing delivery and accepts it.
func (r *Reconciler) recover(ctx context.Context, m trigger.HookDelivery) (outcomeOfMissing, error) {
	log := r.log.With("delivery", m.GUID, "github_id", m.ID, "event", m.Event, "github_status", m.Status)
	req, err := r.gh.Get(ctx, m.ID)
	if req.Done != nil {
		defer req.Done()
	}
	if errors.Is(err, trigger.ErrDeliveryGone) {
		// Gone since it was listed (past GitHub's 3 days), or its payload is.
		log.Warn("missing delivery not recovered: GitHub no longer has it", "err", err)
		return ignored, nil
	}
	if err != nil {
		return failed, err
	}
	d, why, err := r.opts.Admit(m.GUID, req, m.DeliveredAt)
	switch {
	case err != nil:
		log.Warn("missing delivery not recovered: the webhook would have refused it", "err", err)
		return ignored, nil
	case why != "":
		log.Info("missing delivery starts nothing", "why", why)
		return ignored, nil
	}
	switch err := r.accept(ctx, d); {
	case errors.Is(err, trigger.ErrDuplicate):
		log.Info("missing delivery arrived as a webhook meanwhile; processed once")
		return arrived, nil
	case err != nil:
		return failed, fmt.Errorf("accept recovered delivery %s: %w", m.GUID, err)
	}
	log.Info("delivery recovered", "repo", d.Push.Repo, "ref", d.Push.Ref, "sha", d.Push.ShortSHA())
	return recovered, nil
}

// accept accepts d through the webhook's own path (Accept: the same
// deduplication by GUID), then marks it recovered. A crash between the two
// leaves a delivery processed once, only not marked.
func (r *Reconciler) accept(ctx context.Context, d trigger.Delivery) error {
	for {
		err := r.q.Accept(ctx, d)
		if !errors.Is(err, trigger.ErrBusy) {
			if err != nil {
				return err
			}
			break
		}
		select { // the webhook's deliveries first
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Accepted is stored, and will be started: it is marked even when the
	// reconciliation is ending (another fetch failed, shutdown), so that
	// what was recovered says so.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := r.q.db.sql.ExecContext(ctx, r.q.db.q(`UPDATE monohook_delivery SET recovered_at = ? WHERE id = ?`), time.Now().UnixMilli(), d.ID)
	if err != nil {
		return fmt.Errorf("mark %s recovered: %w", d.ID, err)
	}
	return nil
}

// absent returns the deliveries of ds whose GUID the database does not hold.
func (q *Queue) absent(ctx context.Context, ds []trigger.HookDelivery) ([]trigger.HookDelivery, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	args := make([]any, len(ds))
	for i, d := range ds {
		args[i] = d.GUID
	}
	query := `SELECT id FROM monohook_delivery WHERE id IN (?` + strings.Repeat(", ?", len(ds)-1) + `)`
	rows, err := q.db.read.QueryContext(ctx, q.db.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("look up listed deliveries: %w", err)
	}
	held, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("look up listed deliveries: %w", err)
	}
	var out []trigger.HookDelivery
	for _, d := range ds {
		if !slices.Contains(held, d.GUID) {
			out = append(out, d)
		}
	}
	return out, nil
}

// acquire takes the lease unless another holds it, or (fresh) a
// reconciliation ended less than fresh ago.
func (r *Reconciler) acquire(ctx context.Context, now time.Time, fresh time.Duration) (bool, error) {
	db := r.q.db
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO monohook_reconcile (k) VALUES (1) ON CONFLICT (k) DO NOTHING`); err != nil {
		return false, fmt.Errorf("reconciliation lease: %w", err)
	}
	ms := now.UnixMilli()
	r.renewed = now
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE monohook_reconcile SET holder = ?, lease_until = ?, started_at = ?
		WHERE k = 1 AND (lease_until < ? OR holder = ?) AND finished_at <= ?`),
		r.holder, now.Add(reconcileLease).UnixMilli(), ms, ms, r.holder, now.Add(-fresh).UnixMilli())
	if err != nil {
		return false, fmt.Errorf("reconciliation lease: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// renew extends the lease once a quarter of it has passed (each renewal
// is a commit); it fails when the lease was lost (this process stalled
// past it, and another took it).
func (r *Reconciler) renew(ctx context.Context) error {
	now := time.Now()
	if now.Sub(r.renewed) < reconcileLease/4 {
		return nil
	}
	db := r.q.db
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE monohook_reconcile SET lease_until = ? WHERE k = 1 AND holder = ?`),
		now.Add(reconcileLease).UnixMilli(), r.holder)
	if err != nil {
		return fmt.Errorf("renew the reconciliation lease: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("the reconciliation lease was lost to another process (%w)", ErrReconciling)
	}
	r.renewed = now
	return nil
}

// finish records rec and frees the lease. The newest delivery listed
// moves forward only when the whole window was gone through.
func (r *Reconciler) finish(ctx context.Context, rec Reconciliation, ok bool) error {
	db := r.q.db
	var newest, succeeded any = sql.NullInt64{}, sql.NullInt64{}
	if ok {
		succeeded = rec.Finished.UnixMilli()
		if !rec.newest.IsZero() {
			newest = rec.newest.UnixMilli()
		}
	}
	_, err := db.sql.ExecContext(ctx, db.q(`UPDATE monohook_reconcile SET holder = '', lease_until = 0, finished_at = ?,
		succeeded_at = COALESCE(?, succeeded_at), newest_at = COALESCE(?, newest_at),
		listed = ?, missing = ?, recovered = ?, error = ? WHERE k = 1 AND holder = ?`),
		rec.Finished.UnixMilli(), succeeded, newest, rec.Listed, rec.Missing, rec.Recovered, clipError(rec.Error), r.holder)
	if err != nil {
		return fmt.Errorf("record the reconciliation: %w", err)
	}
	return nil
}

// clipError bounds an error kept in the database.
func clipError(s string) string {
	if len(s) > 1000 {
		return strings.ToValidUTF8(s[:1000], "") + "…"
	}
	return s
}

// LastSucceeded is when the last reconciliation that went through its
// whole window ended (zero: none yet), for the metrics.
func (q *Queue) LastSucceeded(ctx context.Context) (time.Time, error) {
	rec, err := q.LastReconciliation(ctx)
	return rec.Succeeded, err
}

// LastReconciliation returns the last reconciliation recorded (zero when
// none ran yet); Finished is zero while one runs.
func (q *Queue) LastReconciliation(ctx context.Context) (Reconciliation, error) {
	var rec Reconciliation
	var started, finished, succeeded, newest, leaseUntil int64
	err := q.db.read.QueryRowContext(ctx, `SELECT started_at, finished_at, succeeded_at, newest_at, lease_until, listed, missing, recovered, error
		FROM monohook_reconcile WHERE k = 1`).Scan(&started, &finished, &succeeded, &newest, &leaseUntil, &rec.Listed, &rec.Missing, &rec.Recovered, &rec.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, nil
	}
	if err != nil {
		return rec, fmt.Errorf("read the last reconciliation: %w", err)
	}
	ms := func(v int64) time.Time {
		if v == 0 {
			return time.Time{}
		}
		return time.UnixMilli(v)
	}
	rec.Started, rec.Succeeded, rec.newest = ms(started), ms(succeeded), ms(newest)
	if leaseUntil == 0 {
		rec.Finished = ms(finished)
	}
	return rec, nil
}
