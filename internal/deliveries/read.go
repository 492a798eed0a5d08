package deliveries

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

// Delivery is a stored delivery as the operations commands show it.
type Delivery struct {
	ID          string          `json:"id"`
	Event       string          `json:"event"`
	Received    time.Time       `json:"received"`
	Repo        string          `json:"repo,omitempty"`
	Ref         string          `json:"ref,omitempty"`
	SHA         string          `json:"sha,omitempty"`
	Paths       int             `json:"paths"`
	Status      string          `json:"status"` // received, evaluated, retrying (evaluation), unreadable
	Duplicates  int             `json:"duplicates"`
	Round       int             `json:"round"` // evaluations so far beyond the first (replays)
	EvaluatedAt *time.Time      `json:"evaluated_at,omitempty"`
	Result      *trigger.Result `json:"result,omitempty"`
	Starts      []Start         `json:"starts,omitempty"`
	// Recovered is when the delivery was fetched from GitHub's deliveries
	// API, GitHub having failed to deliver it (nil: it came as a webhook).
	Recovered *time.Time `json:"recovered,omitempty"`
}

// recoveredAt is the recovered_at column as Delivery.Recovered.
func recoveredAt(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := time.UnixMilli(ms)
	return &t
}

// Start is one pipeline start of a delivery and what the target answered.
type Start struct {
	Round       int       `json:"round"`
	Pipeline    string    `json:"pipeline"`
	Token       string    `json:"token"`
	Status      string    `json:"status"` // pending, retrying, started, failed, dry-run
	Attempts    int       `json:"attempts"`
	ExecutionID string    `json:"execution_id,omitempty"`
	Output      string    `json:"output,omitempty"` // more of what the target answered
	Error       string    `json:"error,omitempty"`
	Updated     time.Time `json:"updated"`
	// The execution as followed: where to see it, how it ended (a
	// trigger conclusion; empty while it runs or when not followed),
	// the target's word on it, and when it ended.
	URL          string     `json:"url,omitempty"`
	Result       string     `json:"result,omitempty"`
	ResultDetail string     `json:"result_detail,omitempty"`
	Finished     *time.Time `json:"finished,omitempty"`
	// Duration is how long a started execution ran until its result,
	// in seconds (0: not ended, or its answer was its result).
	Duration float64 `json:"duration_seconds,omitempty"`
	// CheckID is the GitHub check run reporting this start (0: none).
	CheckID int64 `json:"check_id,omitempty"`
}

// Ran is how long s's execution took, or has run by now while it runs
// (running); ok is false when it has no duration of its own: not started,
// or an answer that was its own result (an http target's 2xx). A start's
// time is its row's update when it started (a result leaves it alone).
func (s Start) Ran(now time.Time) (d time.Duration, running, ok bool) {
	switch {
	case s.Status != "started":
		return 0, false, false
	case s.Finished == nil && s.Result != "":
		return 0, false, false
	case s.Finished == nil:
		return now.Sub(s.Updated), true, true
	}
	d = s.Finished.Sub(s.Updated)
	return d, false, d > 0
}

// List returns the newest deliveries first, at most limit.
func (q *Queue) List(ctx context.Context, limit int) ([]Delivery, error) {
	rows, err := q.db.read.QueryContext(ctx, q.db.q(`SELECT id, event, received_at, repo, ref, sha, paths, status, duplicates, round, recovered_at
		FROM monohook_delivery ORDER BY received_at DESC, id LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var received, recovered int64
		if err := rows.Scan(&d.ID, &d.Event, &received, &d.Repo, &d.Ref, &d.SHA, &d.Paths, &d.Status, &d.Duplicates, &d.Round, &recovered); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.Received, d.Recovered = time.UnixMilli(received), recoveredAt(recovered)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Get returns one delivery with its decision and starts, read together in
// one transaction: read separately, a delivery could show starts that
// happened after the moment its status was read.
func (q *Queue) Get(ctx context.Context, id string) (Delivery, error) {
	tx, err := q.db.read.BeginTx(ctx, q.db.dialect.readOnly())
	if err != nil {
		return Delivery{}, fmt.Errorf("read delivery %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to commit
	d := Delivery{ID: id}
	var received, recovered int64
	var evaluated sql.NullInt64
	var result sql.NullString
	err = tx.QueryRowContext(ctx, q.db.q(`SELECT event, received_at, repo, ref, sha, paths, status, duplicates, round, evaluated_at, result, recovered_at
		FROM monohook_delivery WHERE id = ?`), id).
		Scan(&d.Event, &received, &d.Repo, &d.Ref, &d.SHA, &d.Paths, &d.Status, &d.Duplicates, &d.Round, &evaluated, &result, &recovered)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("read delivery %s: %w", id, err)
	}
	d.Received, d.Recovered = time.UnixMilli(received), recoveredAt(recovered)
	if evaluated.Valid {
		t := time.UnixMilli(evaluated.Int64)
		d.EvaluatedAt = &t
	}
	if result.Valid {
		d.Result = &trigger.Result{}
		if err := json.Unmarshal([]byte(result.String), d.Result); err != nil {
			return Delivery{}, fmt.Errorf("delivery %s: decision: %w", id, err)
		}
	}
	rows, err := tx.QueryContext(ctx, q.db.q(`SELECT round, pipeline, token, status, attempts, execution_id, output, error, updated_at,
		url, result, result_detail, finished_at, check_id
		FROM monohook_start WHERE delivery_id = ? ORDER BY round, pipeline`), id)
	if err != nil {
		return Delivery{}, fmt.Errorf("read starts of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var s Start
		var updated, finished int64
		if err := rows.Scan(&s.Round, &s.Pipeline, &s.Token, &s.Status, &s.Attempts, &s.ExecutionID, &s.Output, &s.Error, &updated,
			&s.URL, &s.Result, &s.ResultDetail, &finished, &s.CheckID); err != nil {
			return Delivery{}, fmt.Errorf("read starts of %s: %w", id, err)
		}
		s.Updated = time.UnixMilli(updated)
		if finished != 0 {
			t := time.UnixMilli(finished)
			s.Finished = &t
			if d, running, ok := s.Ran(t); ok && !running {
				s.Duration = d.Seconds()
			}
		}
		d.Starts = append(d.Starts, s)
	}
	return d, rows.Err()
}

// Filter selects deliveries for the dashboard.
type Filter struct {
	Repo string
	// Status keeps deliveries with a start in that state in their latest
	// round ("failed", "started"), still in progress ("pending": not yet
	// evaluated, or a start pending or retrying), or that started nothing
	// ("none").
	Status string
	// Text keeps deliveries whose id, repository, ref or commit, or the
	// name of a pipeline they started, contains it, ignoring case.
	Text string
	// Before is Page.Next of the previous page: only older deliveries.
	Before string
	Limit  int
}

// Statuses are the values Filter.Status accepts.
var Statuses = []string{"failed", "pending", "started", "none"}

// Summary is a delivery with the count of its latest round's starts by
// state.
type Summary struct {
	Delivery
	Started, Pending, Failed, DryRun int
}

// Page is one page of deliveries, newest first; Next, when not empty, is
// the Filter.Before of the following page.
type Page struct {
	Deliveries []Summary
	Next       string
}

// pendingOf narrows the conditions where (with their args) to deliveries
// still in progress: not evaluated yet, or with a start pending or retrying
// in their latest round. Each of the two is its own query, the newest n of
// it: as one condition (status OR start), PostgreSQL read every delivery
// through the time index when none was in progress (BENCHMARKS.md), the
// common case; apart, each goes through the index of its own state.
func pendingOf(where []string, args []any, n int) ([]string, []any) {
	and := ""
	if len(where) > 0 {
		and = " AND " + strings.Join(where, " AND ")
	}
	const newest = " ORDER BY d.received_at DESC, d.id DESC LIMIT ?"
	waiting := `SELECT d.id FROM monohook_delivery d WHERE d.status IN ('received', 'retrying')` + and + newest
	starting := `SELECT d.id FROM monohook_delivery d WHERE (d.id, d.round) IN (SELECT s.delivery_id, s.round FROM monohook_start s WHERE s.status IN ('pending', 'retrying'))` + and + newest
	// The other conditions' arguments, once for each query.
	all := append(append(slices.Clone(args), n), args...)
	all = append(all, n)
	return []string{"d.id IN (SELECT id FROM (" + waiting + ") w UNION SELECT id FROM (" + starting + ") s)"}, all
}

// ErrBadCursor is returned by Find for a Before that no page gave.
var ErrBadCursor = errors.New("not a page cursor")

// Find returns a page of the deliveries f selects, newest first. Paging is
// by (received_at, id), read backwards through their index, so a page
// costs the same however deep it is.
func (q *Queue) Find(ctx context.Context, f Filter) (Page, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	where, args, err := findWhere(f)
	if err != nil {
		return Page{}, err
	}
	query := `SELECT d.id, d.event, d.received_at, d.repo, d.ref, d.sha, d.paths, d.status, d.duplicates, d.round, d.recovered_at FROM monohook_delivery d`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY d.received_at DESC, d.id DESC LIMIT ?"
	args = append(args, f.Limit+1)

	tx, err := q.db.read.BeginTx(ctx, q.db.dialect.readOnly())
	if err != nil {
		return Page{}, fmt.Errorf("find deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to commit
	rows, err := tx.QueryContext(ctx, q.db.q(query), args...)
	if err != nil {
		return Page{}, fmt.Errorf("find deliveries: %w", err)
	}
	var page Page
	for rows.Next() {
		var s Summary
		var received, recovered int64
		if err := rows.Scan(&s.ID, &s.Event, &received, &s.Repo, &s.Ref, &s.SHA, &s.Paths, &s.Status, &s.Duplicates, &s.Round, &recovered); err != nil {
			rows.Close()
			return Page{}, fmt.Errorf("find deliveries: %w", err)
		}
		s.Received, s.Recovered = time.UnixMilli(received), recoveredAt(recovered)
		page.Deliveries = append(page.Deliveries, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("find deliveries: %w", err)
	}
	if len(page.Deliveries) > f.Limit {
		page.Deliveries = page.Deliveries[:f.Limit]
		last := page.Deliveries[f.Limit-1]
		page.Next = fmt.Sprintf("%d:%s", last.Received.UnixMilli(), last.ID)
	}
	if err := q.countStarts(ctx, tx, page.Deliveries); err != nil {
		return Page{}, err
	}
	return page, nil
}

// findWhere is the conditions (with their args) of the deliveries f
// selects.
func findWhere(f Filter) ([]string, []any, error) {
	var where []string
	var args []any
	if f.Repo != "" {
		where = append(where, "d.repo = ?")
		args = append(args, f.Repo)
	}
	// A start's state is looked up through its own index, so a rare state
	// (failed) is found without reading every delivery.
	startIn := func(states string) string {
		return `(d.id, d.round) IN (SELECT s.delivery_id, s.round FROM monohook_start s WHERE s.status IN (` + states + `))`
	}
	switch f.Status {
	case "":
	case "failed":
		where = append(where, startIn("'failed'"))
	case "started":
		where = append(where, startIn("'started'"))
	case "pending":
		// Added below, once the other conditions are known.
	case "none":
		where = append(where, "d.status = 'evaluated' AND NOT EXISTS (SELECT 1 FROM monohook_start s WHERE s.delivery_id = d.id AND s.round = d.round)")
	default:
		return nil, nil, fmt.Errorf("unknown status %q (want one of %s)", f.Status, strings.Join(Statuses, ", "))
	}
	if f.Text != "" {
		like := "%" + escapeLike(strings.ToLower(f.Text)) + "%"
		where = append(where, `(LOWER(d.id) LIKE ? ESCAPE '\' OR LOWER(d.repo) LIKE ? ESCAPE '\' OR LOWER(d.ref) LIKE ? ESCAPE '\'
			OR LOWER(d.sha) LIKE ? ESCAPE '\' OR d.id IN (SELECT s.delivery_id FROM monohook_start s WHERE LOWER(s.pipeline) LIKE ? ESCAPE '\'))`)
		args = append(args, like, like, like, like, like)
	}
	if f.Before != "" {
		ms, id, ok := strings.Cut(f.Before, ":")
		received, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil {
			return nil, nil, fmt.Errorf("page cursor %q: %w", f.Before, ErrBadCursor)
		}
		where = append(where, "(d.received_at, d.id) < (?, ?)")
		args = append(args, received, id)
	}
	if f.Status == "pending" {
		where, args = pendingOf(where, args, f.Limit+1)
	}
	return where, args, nil
}

// countStarts counts the starts of each delivery's latest round by state,
// in the transaction that found them.
func (q *Queue) countStarts(ctx context.Context, tx *sql.Tx, deliveries []Summary) error {
	if len(deliveries) == 0 {
		return nil
	}
	ids := make([]any, len(deliveries))
	byID := make(map[string]*Summary, len(deliveries))
	for i := range deliveries {
		ids[i] = deliveries[i].ID
		byID[deliveries[i].ID] = &deliveries[i]
	}
	rows, err := tx.QueryContext(ctx, q.db.q(`SELECT s.delivery_id, s.status, COUNT(*) FROM monohook_start s
		JOIN monohook_delivery d ON d.id = s.delivery_id AND d.round = s.round
		WHERE s.delivery_id IN (`+marks(len(ids))+`) GROUP BY s.delivery_id, s.status`), ids...)
	if err != nil {
		return fmt.Errorf("count starts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var n int
		if err := rows.Scan(&id, &status, &n); err != nil {
			return fmt.Errorf("count starts: %w", err)
		}
		s := byID[id]
		switch status {
		case "started":
			s.Started += n
		case "failed":
			s.Failed += n
		case "dry-run":
			s.DryRun += n
		default:
			s.Pending += n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count starts: %w", err)
	}
	return nil
}

// escapeLike makes s match literally inside a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Repos returns the repositories deliveries were received for, sorted.
// The query steps from one repository to the next through the index on
// (repo, …), one lookup per repository: SELECT DISTINCT read every
// delivery's index entry (BENCHMARKS.md, "Dashboard queries"), on
// every list page.
func (q *Queue) Repos(ctx context.Context) ([]string, error) {
	rows, err := q.db.read.QueryContext(ctx, `WITH RECURSIVE r(repo) AS (
			SELECT (SELECT repo FROM monohook_delivery WHERE repo > '' ORDER BY repo LIMIT 1)
			UNION ALL
			SELECT (SELECT d.repo FROM monohook_delivery d WHERE d.repo > r.repo ORDER BY d.repo LIMIT 1) FROM r WHERE r.repo IS NOT NULL
		)
		SELECT repo FROM r WHERE repo IS NOT NULL ORDER BY repo`)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	out, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	return out, nil
}

// LastStarted returns, per pipeline, when it was last started: really
// started, not decided in a dry run, which starts nothing. As Repos, it
// steps from one pipeline to the next through the index on (pipeline,
// status, updated_at) and takes each one's last start there: a GROUP BY
// read every start.
func (q *Queue) LastStarted(ctx context.Context) (map[string]time.Time, error) {
	rows, err := q.db.read.QueryContext(ctx, `WITH RECURSIVE p(pipeline) AS (
			SELECT (SELECT pipeline FROM monohook_start ORDER BY pipeline LIMIT 1)
			UNION ALL
			SELECT (SELECT s.pipeline FROM monohook_start s WHERE s.pipeline > p.pipeline ORDER BY s.pipeline LIMIT 1) FROM p WHERE p.pipeline IS NOT NULL
		)
		SELECT pipeline, last FROM (
			SELECT pipeline, (SELECT MAX(updated_at) FROM monohook_start s WHERE s.pipeline = p.pipeline AND s.status = 'started') AS last
			FROM p WHERE pipeline IS NOT NULL
		) AS l WHERE last IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("read last starts: %w", err)
	}
	out, err := scanLastStarted(rows)
	if err != nil {
		return nil, fmt.Errorf("read last starts: %w", err)
	}
	return out, nil
}

// scanLastStarted reads rows of (pipeline, Unix milliseconds) and closes
// them.
func scanLastStarted(rows *sql.Rows) (map[string]time.Time, error) {
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var p string
		var ms int64
		if err := rows.Scan(&p, &ms); err != nil {
			return nil, err
		}
		out[p] = time.UnixMilli(ms)
	}
	return out, rows.Err()
}

// Push returns the stored push of a delivery, parsed, as it is evaluated:
// the dashboard explains it against the current rules.
func (q *Queue) Push(ctx context.Context, id string) (*trigger.Push, error) {
	p, _, err := q.stored(ctx, id)
	return p, err
}

// ChangedPaths returns a delivery's changed paths as its evaluation saw
// them: the payload's, and those the GitHub API added.
func (q *Queue) ChangedPaths(ctx context.Context, id string) ([]string, error) {
	p, result, err := q.stored(ctx, id)
	if err != nil {
		return nil, err
	}
	if result.Valid {
		var res trigger.Result
		if err := json.Unmarshal([]byte(result.String), &res); err != nil {
			return nil, fmt.Errorf("delivery %s: decision: %w", id, err)
		}
		p = res.Recorded().Apply(p)
	}
	return p.Paths, nil
}

// stored reads a delivery's parsed payload and its recorded decision (as
// JSON; null before it is evaluated) in one query.
func (q *Queue) stored(ctx context.Context, id string) (*trigger.Push, sql.NullString, error) {
	var payload []byte
	var event string
	var result sql.NullString
	expr, joins, _ := q.db.dialect.payload()
	err := q.db.read.QueryRowContext(ctx, q.db.q(`SELECT d.event, `+expr+`, d.result FROM monohook_delivery d `+joins+` WHERE d.id = ?`), id).Scan(&event, &payload, &result)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, result, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, result, fmt.Errorf("read delivery %s: %w", id, err)
	}
	p, err := q.parse(id, event, payload)
	if err != nil {
		return nil, result, fmt.Errorf("delivery %s: %w", id, err)
	}
	return p, result, nil
}

// errNoParser is returned for a parsed delivery by a queue given no
// Options.Parse.
var errNoParser = errors.New("no parser of stored payloads (Options.Parse)")

// parse reads a delivery's stored payload back into the push it was
// accepted as.
func (q *Queue) parse(id, event string, stored []byte) (*trigger.Push, error) {
	if q.opts.Parse == nil {
		return nil, errNoParser
	}
	payload, err := q.payloads.unpack(stored)
	if err != nil {
		return nil, err
	}
	p, err := q.opts.Parse(event, payload)
	if err != nil {
		return nil, err
	}
	p.DeliveryID = id
	return p, nil
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
