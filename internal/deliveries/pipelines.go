package deliveries

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Run is one start of a pipeline with the push that started it, as a
// pipeline's page lists it.
type Run struct {
	Start
	DeliveryID string    `json:"delivery_id"`
	Event      string    `json:"event"`
	Repo       string    `json:"repo,omitempty"`
	Ref        string    `json:"ref,omitempty"`
	SHA        string    `json:"sha,omitempty"`
	Received   time.Time `json:"received"`
}

// RunPage is one page of a pipeline's runs, newest first; Next, when not
// empty, is the before of the following page.
type RunPage struct {
	Runs []Run
	Next string
}

// MaxRuns is the most runs one page holds: a page's size, and its chart's
// marks, are bounded whatever is asked.
const MaxRuns = 200

// Runs returns a page of pipeline's runs, newest first (by the time the
// start was last updated: when it started, or its last attempt), at most
// limit, older than before (the Next of the previous page; "" for the
// newest). Paging is by (updated_at, delivery_id, round), read backwards
// through monohook_start_runs, so a page costs the same however many
// runs the pipeline has.
func (q *Queue) Runs(ctx context.Context, pipeline, before string, limit int) (RunPage, error) {
	if limit <= 0 || limit > MaxRuns {
		limit = MaxRuns
	}
	args := []any{pipeline}
	if before != "" {
		updated, round, id, err := parseRunCursor(before)
		if err != nil {
			return RunPage{}, err
		}
		args = append(args, updated, id, round)
	}
	args = append(args, limit+1)
	query := runsQuery(before != "")
	rows, err := q.db.read.QueryContext(ctx, q.db.q(query), args...)
	if err != nil {
		return RunPage{}, fmt.Errorf("read runs of %s: %w", pipeline, err)
	}
	runs, err := scanRuns(rows)
	if err != nil {
		return RunPage{}, fmt.Errorf("read runs of %s: %w", pipeline, err)
	}
	page := RunPage{Runs: runs}
	if len(runs) > limit {
		page.Runs = runs[:limit]
		last := page.Runs[limit-1]
		page.Next = fmt.Sprintf("%d:%d:%s", last.Updated.UnixMilli(), last.Round, last.DeliveryID)
	}
	return page, nil
}

// runsQuery is Runs' query, of the runs after a cursor or from the
// newest.
func runsQuery(after bool) string {
	query := `SELECT s.round, s.pipeline, s.token, s.status, s.attempts, s.execution_id, s.error, s.updated_at,
		s.url, s.result, s.result_detail, s.finished_at, s.check_id,
		s.delivery_id, d.event, d.repo, d.ref, d.sha, d.received_at
		FROM monohook_start s JOIN monohook_delivery d ON d.id = s.delivery_id
		WHERE s.pipeline = ?`
	if after {
		query += ` AND (s.updated_at, s.delivery_id, s.round) < (?, ?, ?)`
	}
	return query + ` ORDER BY s.updated_at DESC, s.delivery_id DESC, s.round DESC LIMIT ?`
}

// parseRunCursor reads a RunPage.Next: updated_at, round, delivery id (the
// id last: it may hold a colon).
func parseRunCursor(c string) (updated int64, round int, id string, err error) {
	parts := strings.SplitN(c, ":", 3)
	if len(parts) == 3 {
		updated, err = strconv.ParseInt(parts[0], 10, 64)
		if err == nil {
			round, err = strconv.Atoi(parts[1])
		}
		if err == nil {
			return updated, round, parts[2], nil
		}
	}
	return 0, 0, "", fmt.Errorf("runs cursor %q: %w", c, ErrBadCursor)
}

// scanRuns reads the rows of Runs and closes them.
func scanRuns(rows *sql.Rows) ([]Run, error) {
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var updated, finished, received int64
		if err := rows.Scan(&r.Round, &r.Pipeline, &r.Token, &r.Status, &r.Attempts, &r.ExecutionID, &r.Error, &updated,
			&r.URL, &r.Result, &r.ResultDetail, &finished, &r.CheckID,
			&r.DeliveryID, &r.Event, &r.Repo, &r.Ref, &r.SHA, &received); err != nil {
			return nil, err
		}
		r.Updated, r.Received = time.UnixMilli(updated), time.UnixMilli(received)
		if finished != 0 {
			t := time.UnixMilli(finished)
			r.Finished = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PipelineSummary is one pipeline on the pipelines index: how many runs
// are stored, and the latest.
type PipelineSummary struct {
	Name string `json:"name"`
	// Runs is how many are stored, up to MaxCounted + 1 (more).
	Runs int `json:"runs"`
	// Last is the newest run's status, result and times (no delivery).
	Last Start `json:"last"`
}

// MaxPipelines is the most pipelines the index lists.
const MaxPipelines = 1000

// MaxCounted is how far each pipeline's runs are counted: counting every
// start read them all, each index entry and (PostgreSQL) its row, on every
// view of the index (BENCHMARKS.md, "Pipeline pages").
const MaxCounted = 100

// Pipelines returns every pipeline that has a stored start, by name, at
// most MaxPipelines, each with its number of runs (up to MaxCounted + 1)
// and its newest run. As
// LastStarted, it steps from one pipeline to the next through an index on
// pipeline, and reads each one's newest run from monohook_start_runs.
func (q *Queue) Pipelines(ctx context.Context) ([]PipelineSummary, error) {
	newest := func(col string) string {
		return `(SELECT ` + col + ` FROM monohook_start s WHERE s.pipeline = p.pipeline
			ORDER BY s.updated_at DESC, s.delivery_id DESC, s.round DESC LIMIT 1)`
	}
	rows, err := q.db.read.QueryContext(ctx, q.db.q(`WITH RECURSIVE p(pipeline) AS (
			SELECT (SELECT pipeline FROM monohook_start ORDER BY pipeline LIMIT 1)
			UNION ALL
			SELECT (SELECT s.pipeline FROM monohook_start s WHERE s.pipeline > p.pipeline ORDER BY s.pipeline LIMIT 1) FROM p WHERE p.pipeline IS NOT NULL
		)
		SELECT pipeline, (SELECT COUNT(*) FROM (SELECT 1 FROM monohook_start s WHERE s.pipeline = p.pipeline ORDER BY s.updated_at DESC LIMIT ?) AS c),
			`+newest("status")+`, `+newest("result")+`, `+newest("updated_at")+`, `+newest("finished_at")+`
		FROM p WHERE pipeline IS NOT NULL ORDER BY pipeline LIMIT ?`), MaxCounted+1, MaxPipelines)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	defer rows.Close()
	var out []PipelineSummary
	for rows.Next() {
		var p PipelineSummary
		var updated, finished int64
		if err := rows.Scan(&p.Name, &p.Runs, &p.Last.Status, &p.Last.Result, &updated, &finished); err != nil {
			return nil, fmt.Errorf("list pipelines: %w", err)
		}
		p.Last.Pipeline, p.Last.Updated = p.Name, time.UnixMilli(updated)
		if finished != 0 {
			t := time.UnixMilli(finished)
			p.Last.Finished = &t
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	return out, nil
}
