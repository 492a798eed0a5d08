package trigger

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// RuleSource gives the rules stored for a repository and branch. It returns
// an error only when the rules cannot be read at all; a single bad rule is a
// Problem in the set.
type RuleSource interface {
	RuleSet(ctx context.Context, repo, branch string) (*RuleSet, error)
}

// Starter starts a pipeline. token is the idempotency token of this start
// (StartToken): a second call with the same token must not start a second run.
type Starter interface {
	Start(ctx context.Context, pipeline, token string) (executionID string, err error)
}

// StartResult is what the target answered to one start.
type StartResult struct {
	Pipeline    string `json:"pipeline"`
	Token       string `json:"token"`
	ExecutionID string `json:"execution_id,omitempty"`
	Error       string `json:"error,omitempty"`
	DryRun      bool   `json:"dry_run,omitempty"`
}

// Outcome is everything that happened for one push.
type Outcome struct {
	Result
	Starts []StartResult `json:"starts"`
}

// Service evaluates pushes against stored rules and starts the pipelines
// they select.
type Service struct {
	Rules   RuleSource
	Starter Starter // nil with DryRun
	// DryRun evaluates and logs every decision but starts nothing.
	DryRun bool
	// Parallel bounds the starts in flight for one push (default 8).
	Parallel int
	Log      *slog.Logger
}

// Evaluate loads the rules for p and decides, without starting anything.
func (s *Service) Evaluate(ctx context.Context, p *Push) (Result, error) {
	if reason := SkipReason(p); reason != "" {
		return Evaluate(p, &RuleSet{}), nil
	}
	branch, _ := p.Branch()
	set, err := s.Rules.RuleSet(ctx, p.Repo, branch)
	if err != nil {
		return Result{}, fmt.Errorf("load rules for %s@%s: %w", p.Repo, branch, err)
	}
	return Evaluate(p, set), nil
}

// Process evaluates p and starts every selected pipeline. Starts are
// independent: one failing does not keep the others from starting. The
// error is non-nil only when the rules could not be loaded, so nothing was
// decided and the whole push may be retried.
func (s *Service) Process(ctx context.Context, p *Push) (Outcome, error) {
	log := s.logger().With("delivery", p.DeliveryID, "repo", p.Repo, "ref", p.Ref, "sha", p.ShortSHA())
	began := time.Now()
	res, err := s.Evaluate(ctx, p)
	if err != nil {
		log.Error("evaluation failed", "err", err)
		return Outcome{}, err
	}
	out := Outcome{Result: res, Starts: make([]StartResult, len(res.Start))}
	for _, pr := range res.Problems {
		log.Warn("rule skipped: it is invalid", "rule", pr.Key, "problem", pr.Error)
	}
	matched := 0
	for _, d := range res.Decisions {
		if d.Matched {
			matched++
			log.Info("rule matched", "rule", d.Rule, "pipeline", d.Pipeline, "path", d.Path, "expression", d.Expression)
		}
	}
	log.Info("push evaluated", "skipped", res.Skipped, "paths", len(p.Paths), "rules", len(res.Decisions),
		"matched", matched, "pipelines", len(res.Start), "invalid_rules", len(res.Problems), "took", time.Since(began))

	parallel := s.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, name := range res.Start {
		out.Starts[i] = StartResult{Pipeline: name, Token: StartToken(p.DeliveryID, name), DryRun: s.DryRun}
		if s.DryRun {
			log.Info("dry run: pipeline not started", "pipeline", name)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(sr *StartResult) {
			defer func() { <-sem; wg.Done() }()
			id, err := s.Starter.Start(ctx, sr.Pipeline, sr.Token)
			if err != nil {
				sr.Error = err.Error()
				log.Error("pipeline start failed", "pipeline", sr.Pipeline, "token", sr.Token, "err", err)
				return
			}
			sr.ExecutionID = id
			log.Info("pipeline started", "pipeline", sr.Pipeline, "execution_id", id, "token", sr.Token)
		}(&out.Starts[i])
	}
	wg.Wait()
	return out, nil
}

func (s *Service) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
