package deliveries

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

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
// small commits cost a full WAL flush (on SQLite; PostgreSQL gained
// nothing: BENCHMARKS.md). Under light load groups are small and nothing
// waits.
const (
	gatherAfter = 8
	gatherFor   = time.Millisecond
)

// slowCommit is a commit long enough to be told in the log. A commit
// takes a millisecond or so; one that takes a second means the disk (or
// the database server) stalled, every delivery in it waited as long for
// its answer, and GitHub gives up on a delivery after 10 seconds.
const slowCommit = time.Second

// Accept commits d (and a job to evaluate it) and returns once it is on
// disk. A delivery id stored before returns trigger.ErrDuplicate and is
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
		return trigger.ErrBusy
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
	// This committer's wake row (see wakeUpsert). Keys are random so that
	// committers of several processes seldom share one; sharing would be
	// correct, only slower.
	wake := rand.Int64() //nolint:gosec // a key, not a secret
	// last is the size of the previous group.
	last := 0
	for req := range q.accepts {
		group := q.gather(req, last)
		last = len(group)
		began := time.Now()
		results := q.commitApart(group, wake)
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

// gather makes the next group from first and what else has arrived. After
// a large group (of last deliveries), its senders come back together a
// moment later: it waits briefly for them rather than commit the first few
// on their own (see gatherFor).
func (q *Queue) gather(first acceptReq, last int) []acceptReq {
	group := []acceptReq{first}
	var gather <-chan time.Time
	want := 0
	if last >= gatherAfter {
		gather, want = time.After(gatherFor), last*3/4
	}
	for len(group) < maxGroup {
		select {
		case r, ok := <-q.accepts:
			if !ok {
				return group
			}
			group = append(group, r)
			continue
		default:
		}
		if gather == nil || len(group) >= want {
			return group
		}
		select {
		case r, ok := <-q.accepts:
			if !ok {
				return group
			}
			group = append(group, r)
		case <-gather:
			gather = nil
		}
	}
	return group
}

// commitApart commits group and returns each delivery's result. When the
// database refuses a row's values, one row would fail every delivery
// committed with it: the halves are then committed apart, down to the
// deliveries it really refuses, which get ErrUnstorable (no redelivery can
// store them). Any other failure is the database's, and fails the group.
func (q *Queue) commitApart(group []acceptReq, wake int64) []error {
	results, err := q.commit(group, wake)
	switch {
	case err == nil:
		q.health.committed()
		return results
	case !q.db.dialect.refusesRow(err):
		q.health.failed(err)
		results = make([]error, len(group))
		for i := range results {
			results[i] = err
		}
		return results
	case len(group) == 1:
		return []error{fmt.Errorf("%w: %w", trigger.ErrUnstorable, err)}
	}
	half := len(group) / 2
	return append(q.commitApart(group[:half], wake), q.commitApart(group[half:], wake)...)
}

// commit stores a group the database's way (see dialect.commit).
func (q *Queue) commit(group []acceptReq, wake int64) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return q.db.dialect.commit(ctx, q, group, wake)
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
		results[i] = trigger.ErrDuplicate
	}
	return results, dups
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
