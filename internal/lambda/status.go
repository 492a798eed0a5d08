package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"gocloud.dev/blob"

	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/targets/codebuild"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/trigger"
)

// The EventBridge events the status function takes.
const (
	PipelineSource     = "aws.codepipeline"
	PipelineDetailType = "CodePipeline Pipeline Execution State Change"
	BuildSource        = "aws.codebuild"
	BuildDetailType    = "CodeBuild Build State Change"
)

// Status is the status function: EventBridge's execution state changes
// of CodePipeline and CodeBuild bring the checks the eval function posted
// up to date, by the record it kept of each execution it started.
type Status struct {
	Checks *Checks      // how the eval function posts
	Bucket *blob.Bucket // the records (ExecutionPrefix)
	Log    *slog.Logger
}

// stateChange is what the status function reads of an event.
type stateChange struct {
	key      string // the execution's record
	state    string
	at       time.Time
	progress trigger.Progress
}

// Handle applies one state change. An execution without a record (one
// monohook did not start) is ignored, as is a change older than the one
// the check shows, so that an event delivered late never reopens a
// completed check.
func (s *Status) Handle(ctx context.Context, ev events.CloudWatchEvent) error {
	sc, err := readStateChange(ev)
	if err != nil {
		return err
	}
	log := s.Log.With("source", ev.Source, "key", sc.key, "state", sc.state)
	rec, err := readRecord(ctx, s.Bucket, sc.key)
	if errors.Is(err, errNoRecord) {
		log.Debug("state change ignored: an execution monohook did not start")
		return nil
	}
	if err != nil {
		return err
	}
	if stale(rec, sc) {
		log.Info("state change ignored: the check shows a later one", "applied_at", rec.AppliedAt, "ended", rec.Ended)
		return nil
	}
	st := rec.Input.Starts[rec.Pipeline]
	st.Status, st.Result, st.ResultDetail = "started", "", ""
	if sc.progress.Done {
		st.Result, st.ResultDetail = sc.progress.Conclusion, sc.progress.Detail
	}
	if st.URL == "" {
		st.URL = sc.progress.URL
	}
	rec.Input.Starts = maps.Clone(rec.Input.Starts)
	rec.Input.Starts[rec.Pipeline] = st
	in, err := s.withSiblings(ctx, rec)
	if err != nil {
		return err
	}
	var check *report.Check
	for _, c := range report.Checks(in) {
		if c.Name == rec.Check {
			check = &c
		}
	}
	if check == nil {
		return fmt.Errorf("record %s: no check %q in it", sc.key, rec.Check)
	}
	if err := s.post(ctx, rec, *check, sc.progress.Done, log); err != nil {
		return err
	}
	rec.AppliedAt, rec.Ended = sc.at, sc.progress.Done
	_, err = writeRecord(ctx, s.Bucket, sc.key, rec, false)
	return err
}

// withSiblings is rec's input with how each other execution of its check
// stands, as its record says (one expired or missing: as it started).
func (s *Status) withSiblings(ctx context.Context, rec *execRecord) (report.Input, error) {
	in := rec.Input
	in.Starts = maps.Clone(rec.Input.Starts)
	for _, key := range rec.Siblings {
		sib, err := readRecord(ctx, s.Bucket, key)
		if errors.Is(err, errNoRecord) {
			continue
		}
		if err != nil {
			return in, err
		}
		if st, ok := sib.Input.Starts[sib.Pipeline]; ok && sib.Pipeline != rec.Pipeline {
			in.Starts[sib.Pipeline] = st
		}
	}
	return in, nil
}

// post posts check as rec says: a commit status, or the check run,
// found by its external id the first time (the eval function posts it
// after writing the record) and its id kept in rec. A check run not
// there yet is created only by a change that ends the execution; an
// earlier one is left to the eval function, which is about to post it.
func (s *Status) post(ctx context.Context, rec *execRecord, check report.Check, ends bool, log *slog.Logger) error {
	gh := s.Checks.GitHub
	if !rec.Statuses && rec.CheckRunID == 0 {
		listed, err := gh.CheckRuns(ctx, rec.Repository, rec.SHA)
		if err != nil {
			return err
		}
		// The check's external id names the pipeline it shows, which
		// may be another of its pipelines than when it was created.
		for _, p := range rec.Input.Result.Start {
			rec.CheckRunID = max(rec.CheckRunID, listed.IDs[report.ExternalID(rec.Input.Event.DeliveryID, rec.Input.Round, p)])
		}
		if rec.CheckRunID == 0 && !ends {
			log.Info("no check run yet: the eval function posts it", "check", rec.Check)
			return nil
		}
	}
	id, err := gh.PostCheck(ctx, &trigger.Push{FullName: rec.Repository, After: rec.SHA}, check, rec.Statuses, rec.CheckRunID)
	if err != nil {
		return err
	}
	rec.CheckRunID = id
	log.Info("check brought up to date", "check", rec.Check, "status", check.Status, "conclusion", check.Conclusion)
	return nil
}

// stale says the check already shows a later state than sc: a change
// older than the applied one, or, once the execution ended, one that does
// not end it and is not later (STARTED and IN_PROGRESS come before any
// end; RESUMED after a FAILED, a retried stage, reopens the check).
func stale(rec *execRecord, sc stateChange) bool {
	switch {
	case sc.at.Before(rec.AppliedAt):
		return true
	case rec.Ended && !sc.progress.Done:
		return !sc.at.After(rec.AppliedAt) || sc.state == "STARTED" || sc.state == "IN_PROGRESS"
	}
	return false
}

// readStateChange reads an execution state change of CodePipeline or a
// build state change of CodeBuild; any other event is an error (the
// function's rules send only these).
func readStateChange(ev events.CloudWatchEvent) (stateChange, error) {
	sc := stateChange{at: ev.Time}
	switch {
	case ev.Source == PipelineSource && ev.DetailType == PipelineDetailType:
		var d struct {
			Pipeline    string `json:"pipeline"`
			ExecutionID string `json:"execution-id"`
			State       string `json:"state"`
		}
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			return sc, fmt.Errorf("%s event %s: detail: %w", ev.Source, short(ev.ID), err)
		}
		key, err := pipelineKey(d.Pipeline, d.ExecutionID)
		if err != nil {
			return sc, fmt.Errorf("%s event %s: %w", ev.Source, short(ev.ID), err)
		}
		sc.key, sc.state, sc.progress = key, d.State, codepipeline.EventProgress(d.State, ev.Region, d.Pipeline, d.ExecutionID)
	case ev.Source == BuildSource && ev.DetailType == BuildDetailType:
		var d struct {
			Project string `json:"project-name"`
			BuildID string `json:"build-id"` // the build's ARN
			Status  string `json:"build-status"`
		}
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			return sc, fmt.Errorf("%s event %s: detail: %w", ev.Source, short(ev.ID), err)
		}
		_, id, _ := strings.Cut(d.BuildID, ":build/")
		key, err := buildKey(id)
		if err != nil {
			return sc, fmt.Errorf("%s event %s: %w", ev.Source, short(ev.ID), err)
		}
		sc.key, sc.state, sc.progress = key, d.Status, codebuild.EventProgress(d.Status, ev.Region, d.Project, id)
	default:
		return sc, fmt.Errorf("event %s: source %q, detail-type %q: want %s %q or %s %q", short(ev.ID), short(ev.Source), short(ev.DetailType),
			PipelineSource, PipelineDetailType, BuildSource, BuildDetailType)
	}
	return sc, nil
}

// short bounds what an error repeats of an event.
func short(s string) string {
	if len(s) <= 100 {
		return s
	}
	return s[:100] + "…"
}
