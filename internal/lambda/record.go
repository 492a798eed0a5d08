package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/trigger"
)

// ExecutionPrefix is where the eval function keeps, for each CodePipeline
// execution and CodeBuild build it started and reported, what the status
// function needs to bring its check up to date. The template expires
// these records with a lifecycle rule.
const ExecutionPrefix = "monohook/executions/"

// maxRecord bounds a record: a push whose paths do not fit keeps only the
// paths a check shows (report.Input.PathCount says how many changed).
const maxRecord = 256 << 10

// execRecord is one execution's record.
type execRecord struct {
	Repository string `json:"repository"` // owner/name
	SHA        string `json:"sha"`
	// Check is the check's name; Pipeline the start it reports (a key of
	// Input.Starts).
	Check    string `json:"check"`
	Pipeline string `json:"pipeline"`
	// CheckRunID is the check run's, once the status function found it
	// by its external id (the eval function posts after writing this);
	// always 0 with Statuses.
	CheckRunID int64 `json:"check_run_id,omitempty"`
	Statuses   bool  `json:"statuses,omitempty"`
	// Siblings are the records of the other executions the same check
	// reports (rules naming one check): it shows the one furthest from
	// passing, so each change reads how the others stand.
	Siblings []string `json:"siblings,omitempty"`
	// Input is the push's report input narrowed to this check.
	Input report.Input `json:"input"`
	// AppliedAt is the time of the latest state change applied, and
	// Ended says whether it ended the execution.
	AppliedAt time.Time `json:"applied_at,omitzero"`
	Ended     bool      `json:"ended,omitempty"`
}

// safeID is what an execution or build id may be made of, so that an
// event cannot name a key outside its record's.
var safeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$`)

// pipelineKey is the record key of execution id of a pipeline.
func pipelineKey(pipeline, id string) (string, error) {
	if !trigger.ValidPipelineName(pipeline) || !safeID.MatchString(id) {
		return "", fmt.Errorf("pipeline %q, execution %q: not names CodePipeline gives", short(pipeline), short(id))
	}
	seg := pipeline
	if strings.Trim(pipeline, ".") == "" {
		// '.' and '..' are valid pipeline names, but a dot segment names
		// another key wherever paths are cleaned ('~' is in no pipeline's
		// name, so this names no other pipeline's records).
		seg = "~" + pipeline
	}
	return ExecutionPrefix + "codepipeline/" + seg + "/" + id + ".json", nil
}

// buildKey is the record key of a build (id: PROJECT:UUID).
func buildKey(id string) (string, error) {
	if !safeID.MatchString(id) || !strings.Contains(id, ":") {
		return "", fmt.Errorf("build %q: not an id CodeBuild gives (PROJECT:UUID)", short(id))
	}
	return ExecutionPrefix + "codebuild/" + id + ".json", nil
}

// recordKey is where the record of start s (of the target type kind) is
// kept; "" for a start the status function does not follow.
func recordKey(kind string, s trigger.StartResult, target trigger.Target) string {
	var key string
	switch kind {
	case trigger.SeedTarget:
		var spec struct{ Pipeline string }
		_ = target.Decode(&spec)
		if spec.Pipeline == "" {
			spec.Pipeline = s.Pipeline
		}
		key, _ = pipelineKey(spec.Pipeline, s.ExecutionID)
	case "codebuild":
		key, _ = buildKey(s.ExecutionID)
	}
	return key
}

// recordExecutions writes, before its check is posted, the record of
// each execution of checks the status function is to complete, once: it
// returns the checks whose execution an earlier invocation recorded (a
// retried event), which are the status function's from then on, as it may
// have completed them meanwhile. A record that cannot be written is
// logged: its check is posted, and stays in progress.
func (e *Eval) recordExecutions(ctx context.Context, in report.Input, out trigger.Outcome, checks []report.Check, log *slog.Logger) map[string]bool {
	before := map[string]bool{}
	for _, c := range checks {
		recs := recordsOf(in, out, c, e.Checks.Statuses)
		for key, rec := range recs {
			written, err := writeRecord(ctx, e.Bucket, key, rec, true)
			switch {
			case err != nil:
				log.Error("no record of the execution: the status function will not complete its check", "check", c.Name, "key", key, "err", err)
			case !written:
				before[c.Name] = true
				log.Info("check left to the status function: its execution was recorded before", "check", c.Name, "key", key)
			}
		}
	}
	return before
}

// recordsOf are the records of the executions check c reports, by key:
// one per pipeline of c that was selected and started, each naming the
// others as siblings; none when the status function does not complete c
// (c is complete, or no start of it is of a kind EventBridge tells of).
func recordsOf(in report.Input, out trigger.Outcome, c report.Check, statuses bool) map[string]*execRecord {
	if c.Status == report.Completed {
		return nil
	}
	recs := map[string]*execRecord{}
	narrow := narrowed(in, c)
	for _, pipeline := range narrow.Result.Start {
		if key := startKeyOf(out, pipeline); key != "" {
			recs[key] = &execRecord{Repository: in.Event.FullName, SHA: in.Event.After, Check: c.Name, Pipeline: pipeline, Statuses: statuses, Input: narrow}
		}
	}
	for key, rec := range recs {
		for other := range recs {
			if other != key {
				rec.Siblings = append(rec.Siblings, other)
			}
		}
		slices.Sort(rec.Siblings)
	}
	return recs
}

// startKeyOf is the record key of pipeline's start in out; "" when it
// failed, was a dry run, or is of a kind EventBridge does not tell of.
func startKeyOf(out trigger.Outcome, pipeline string) string {
	i := slices.IndexFunc(out.Starts, func(s trigger.StartResult) bool { return s.Pipeline == pipeline })
	if i < 0 || out.Starts[i].Error != "" || out.Starts[i].DryRun {
		return ""
	}
	target := out.Targets[pipeline]
	kind := target.Type
	if kind == "" {
		kind = trigger.SeedTarget
	}
	return recordKey(kind, out.Starts[i], target)
}

// startOf is how a start of Process went, as a check reports it.
func startOf(s trigger.StartResult) report.Start {
	switch {
	case s.Error != "":
		return report.Start{Status: "failed", Error: s.Error}
	case s.DryRun:
		return report.Start{Status: "dry-run"}
	}
	return report.Start{Status: "started", ExecutionID: s.ExecutionID, URL: s.URL, Result: s.Result, ResultDetail: s.ResultDetail}
}

// narrowed is in with only what check c is made of: its decisions, and
// the pipelines of them that were selected, with their starts.
func narrowed(in report.Input, c report.Check) report.Input {
	res := in.Result
	mine := func(d trigger.Decision) bool { return d.Check != c.Name }
	res.Decisions = slices.DeleteFunc(slices.Clone(res.Decisions), mine)
	res.Unselected = slices.DeleteFunc(slices.Clone(res.Unselected), mine)
	starts := map[string]report.Start{}
	res.Start = nil
	for _, d := range res.Decisions {
		if d.Matched && slices.Contains(in.Result.Start, d.Pipeline) && !slices.Contains(res.Start, d.Pipeline) {
			res.Start, starts[d.Pipeline] = append(res.Start, d.Pipeline), in.Starts[d.Pipeline]
		}
	}
	res.Targets, res.Problems = nil, nil
	return report.Input{Event: in.Event, Round: in.Round, Result: res, Starts: starts}
}

// writeRecord writes rec under key (with ifNew, only if there is none:
// written is false when there is); a record over maxRecord keeps only the
// paths its check shows.
func writeRecord(ctx context.Context, bucket *blob.Bucket, key string, rec *execRecord, ifNew bool) (written bool, err error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("encode record %s: %w", key, err)
	}
	if len(b) > maxRecord {
		ev := *rec.Input.Event
		paths := uniq(ev.Paths)
		ev.Paths, rec.Input.PathCount = paths[:min(len(paths), 20)], len(paths)
		rec.Input.Event, rec.Input.Result.Fetched = &ev, nil
		if b, err = json.Marshal(rec); err != nil {
			return false, fmt.Errorf("encode record %s: %w", key, err)
		}
		if len(b) > maxRecord {
			return false, fmt.Errorf("record %s: %d bytes, more than %d (%w)", key, len(b), maxRecord, trigger.ErrPermanent)
		}
	}
	err = bucket.WriteAll(ctx, key, b, &blob.WriterOptions{ContentType: "application/json", IfNotExist: ifNew})
	if ifNew && gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write record %s: %w", key, err)
	}
	return true, nil
}

func uniq(paths []string) []string {
	seen := make(map[string]bool, len(paths))
	var out []string
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// errNoRecord: the execution was not started by monohook (or its record
// expired).
var errNoRecord = errors.New("no record of the execution")

// readRecord reads the record under key, at most maxRecord bytes of it.
func readRecord(ctx context.Context, bucket *blob.Bucket, key string) (*execRecord, error) {
	r, err := bucket.NewReader(ctx, key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, errNoRecord
	}
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxRecord+1))
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", key, err)
	}
	if len(b) > maxRecord {
		return nil, fmt.Errorf("record %s: more than %d bytes", key, maxRecord)
	}
	var rec execRecord
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&rec); err != nil {
		return nil, fmt.Errorf("record %s: %w", key, err)
	}
	if rec.Input.Event == nil || rec.Repository == "" || rec.SHA == "" {
		return nil, fmt.Errorf("record %s: no event, repository or commit", key)
	}
	return &rec, nil
}
