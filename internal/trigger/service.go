package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// RuleSource gives the rules stored for a repository and branch. It returns
// an error only when the rules cannot be read at all; a single bad rule is a
// Problem in the set.
type RuleSource interface {
	RuleSet(ctx context.Context, repo, branch string) (*RuleSet, error)
	// V2Rules gives every rule of format v2.
	V2Rules(ctx context.Context) (*V2Set, error)
}

// Starter starts a pipeline. token is the idempotency token of this start
// (StartToken): a second call with the same token must not start a second run.
// An error that retrying cannot fix (no such pipeline, access denied) wraps
// ErrPermanent.
type Starter interface {
	Start(ctx context.Context, pipeline, token string) (executionID string, err error)
}

// ErrPermanent marks a start error that a retry would repeat.
var ErrPermanent = errors.New("permanent error")

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

// Decide loads the rules for p and decides, without starting anything.
// The error is non-nil only when the rules could not be read.
func (s *Service) Decide(ctx context.Context, p *Push) (Result, error) {
	r, err := s.Load(ctx, p)
	if err != nil {
		return Result{}, err
	}
	return EvaluateRules(p, r, false), nil
}

// LogDecision logs what was decided for p: one line, with why each
// matched rule matched, and a warning per invalid rule.
func (s *Service) LogDecision(p *Push, res Result) {
	log := s.logger().With("delivery", p.DeliveryID, "repo", p.Repo, "ref", p.Ref, "sha", p.ShortSHA())
	for _, pr := range res.Problems {
		log.Warn("rule skipped: it is invalid", "rule", pr.Key, "problem", pr.Error)
	}
	log.Info("push evaluated", "skipped", res.Skipped, "paths", len(p.Paths), "rules", res.Rules,
		"matched", len(res.Decisions), "pipelines", len(res.Start), "invalid_rules", len(res.Problems), "dry_run", s.DryRun,
		"incomplete", p.Incomplete, "why", explanation(res.Decisions))
}

// Explain is Decide with a decision for every rule, matched or not.
func (s *Service) Explain(ctx context.Context, p *Push) (Result, error) {
	r, err := s.Load(ctx, p)
	if err != nil {
		return Result{}, err
	}
	return EvaluateRules(p, r, true), nil
}

// Load reads the rules p is evaluated against: the seed rules of its
// repository and branch (none for a tag, a deleted branch or a pull
// request), and the v2 rules.
func (s *Service) Load(ctx context.Context, p *Push) (Rules, error) {
	var r Rules
	if SkipReason(p) == "" && p.Event != "pull_request" {
		branch, _ := p.Branch()
		set, err := s.Rules.RuleSet(ctx, p.Repo, branch)
		if err != nil {
			return Rules{}, fmt.Errorf("load rules for %s@%s: %w", p.Repo, branch, err)
		}
		r.Seed = set
	}
	v2, err := s.Rules.V2Rules(ctx)
	if err != nil {
		return Rules{}, fmt.Errorf("load v2 rules: %w", err)
	}
	r.V2 = v2
	return r, nil
}

// Process decides for p and starts every selected pipeline, in this call.
// Starts are independent: one failing does not keep the others from
// starting. The error is non-nil only when the rules could not be loaded,
// so nothing was decided and the whole push may be retried.
func (s *Service) Process(ctx context.Context, p *Push) (Outcome, error) {
	res, err := s.Decide(ctx, p)
	if err != nil {
		return Outcome{}, err
	}
	s.LogDecision(p, res)
	log := s.logger().With("delivery", p.DeliveryID)
	out := Outcome{Result: res, Starts: make([]StartResult, len(res.Start))}
	parallel := s.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, name := range res.Start {
		out.Starts[i] = StartResult{Pipeline: name, Token: StartToken(p.DeliveryID, name), DryRun: s.DryRun}
		if s.DryRun {
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

// explanation is the "why" of a push's log line: for each matched rule,
// the pipeline, the path and expression that matched, and the rule's key.
// One line per push rather than per rule keeps logging cheap when a big
// push matches many rules.
type explanation []Decision

func (e explanation) LogValue() slog.Value {
	if len(e) == 0 {
		return slog.StringValue("")
	}
	var b strings.Builder
	for i, d := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		if d.Path == "" {
			fmt.Fprintf(&b, "%s: %s (%s)", d.Pipeline, d.Reason, d.Rule)
			continue
		}
		fmt.Fprintf(&b, "%s: %s matched %s (%s)", d.Pipeline, d.Path, d.Expression, d.Rule)
	}
	return slog.StringValue(b.String())
}
