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

// StartRequest is one start of one target for one push.
type StartRequest struct {
	// Name is the start's name: the pipeline of a seed rule, or the v2
	// target's Name.
	Name string
	// Token is the idempotency token of this start (StartToken): a second
	// call with the same token must not start a second run where the
	// target supports it.
	Token string
	// Target is the v2 rule's target; the zero Target is a plain
	// CodePipeline start of Name (a seed rule).
	Target Target
	Data   TemplateData
	// Paths gives the changed paths, read only by targets that need them.
	Paths func(context.Context) ([]string, error)
}

// Type is the target type of the request.
func (r *StartRequest) Type() string {
	if r.Target.Type == "" {
		return SeedTarget
	}
	return r.Target.Type
}

// Started is what a target answered to a start.
type Started struct {
	ID     string // the execution, build or run id; for http and exec, the status
	Output string // more of the answer: a response body, a command's output (trimmed)
	// DryRun: nothing was started (the DryRun starter).
	DryRun bool
	// Progress is what the start already tells of the execution: where
	// to see it, and for targets whose answer is their result (http,
	// exec) that it is done and how.
	Progress Progress
}

// Starter starts targets. An error that retrying cannot fix (no such
// pipeline, access denied) wraps ErrPermanent.
type Starter interface {
	Start(ctx context.Context, req StartRequest) (Started, error)
}

// Starters sends each start to the Starter of its target type.
type Starters map[string]Starter

// Start implements Starter.
func (s Starters) Start(ctx context.Context, req StartRequest) (Started, error) {
	st := s[req.Type()]
	if st == nil {
		return Started{}, fmt.Errorf("target type %s is not configured in this process (%w)", req.Type(), ErrPermanent)
	}
	return st.Start(ctx, req)
}

// NewTemplateData is what target templates see of p.
func NewTemplateData(p *Push) TemplateData {
	d := TemplateData{Event: p.Event, Repo: p.FullName, RepoName: p.Repo, Ref: p.Ref, SHA: p.After, Before: p.Before,
		ChangedPathsCount: len(p.Paths), PullRequest: p.PullRequest, DeliveryID: p.DeliveryID}
	if d.Event == "" {
		d.Event = "push"
	}
	if b, ok := p.Branch(); ok {
		d.Branch = b
	}
	if t, ok := strings.CutPrefix(p.Ref, "refs/tags/"); ok {
		d.Tag = t
	}
	if p.Event == "pull_request" || p.Event == "merge_group" {
		d.Branch = p.BaseBranch
	}
	return d
}

// ErrPermanent marks a start error that a retry would repeat.
var ErrPermanent = errors.New("permanent error")

// StartResult is what the target answered to one start.
type StartResult struct {
	Pipeline    string `json:"pipeline"`
	Token       string `json:"token"`
	ExecutionID string `json:"execution_id,omitempty"`
	Output      string `json:"output,omitempty"`
	Error       string `json:"error,omitempty"`
	DryRun      bool   `json:"dry_run,omitempty"`
	// URL is where a person sees the execution (Started.Progress.URL).
	URL string `json:"url,omitempty"`
	// Result is the execution's conclusion when the start's answer is
	// its result (http, exec: Started.Progress.Done); ResultDetail says
	// more.
	Result       string `json:"result,omitempty"`
	ResultDetail string `json:"result_detail,omitempty"`
}

// Outcome is everything that happened for one push.
type Outcome struct {
	Result
	Starts []StartResult `json:"starts"`
}

// Service evaluates deliveries against stored rules and, in Process,
// starts what they select.
type Service struct {
	Rules RuleSource
	// Starter makes the starts: the targets, or DryRun.
	Starter Starter
	// Parallel bounds the starts in flight for one push (default 8).
	Parallel int
	// Changes, when set, completes change sets that a payload may list
	// only in part (see ChangeSet).
	Changes ChangeSource
	// Report makes Process's plans for reporting (PlanInput.Report).
	Report bool
	Log    *slog.Logger
}

// LogDecision logs what a plan decided: one line, with why each matched
// rule matched, and a warning per invalid rule.
func (s *Service) LogDecision(p *Push, res Result) {
	log := s.logger().With("delivery", p.DeliveryID, "repo", p.Repo, "ref", p.Ref, "sha", p.ShortSHA())
	for _, pr := range res.Problems {
		log.Warn("rule skipped: it is invalid", "rule", pr.Key, "problem", pr.Error)
	}
	log.Info("push evaluated", "skipped", res.Skipped, "paths", len(p.Paths), "rules", res.Rules,
		"matched", len(res.Decisions), "pipelines", len(res.Start), "invalid_rules", len(res.Problems),
		"incomplete", p.Incomplete, "why", explanation(res.Decisions))
}

// Load reads the rules p is evaluated against: the seed rules of its
// repository and branch (none for a tag, a deleted branch or a pull
// request), and the v2 rules.
func (s *Service) Load(ctx context.Context, p *Push) (Rules, error) {
	return NewLoader(s.Rules).Load(ctx, p)
}

// Loader is Load for a batch of pushes: each repository and branch's seed
// rules, and the v2 rules, are read once for all of them.
type Loader struct {
	src  RuleSource
	seed map[[2]string]*RuleSet
	v2   *V2Set
}

// NewLoader returns a Loader reading src.
func NewLoader(src RuleSource) *Loader {
	return &Loader{src: src, seed: map[[2]string]*RuleSet{}}
}

// NewLoader returns a Loader reading s.Rules.
func (s *Service) NewLoader() *Loader { return NewLoader(s.Rules) }

// Load reads (or reuses) the rules p is evaluated against.
func (l *Loader) Load(ctx context.Context, p *Push) (Rules, error) {
	var r Rules
	if SkipReason(p) == "" && p.Event != "pull_request" && p.Event != "merge_group" {
		branch, _ := p.Branch()
		key := [2]string{p.Repo, branch}
		if r.Seed = l.seed[key]; r.Seed == nil {
			set, err := l.src.RuleSet(ctx, p.Repo, branch)
			if err != nil {
				return Rules{}, fmt.Errorf("load rules for %s@%s: %w", p.Repo, branch, err)
			}
			r.Seed, l.seed[key] = set, set
		}
	}
	if l.v2 == nil {
		v2, err := l.src.V2Rules(ctx)
		if err != nil {
			return Rules{}, fmt.Errorf("load v2 rules: %w", err)
		}
		l.v2 = v2
	}
	r.V2 = l.v2
	return r, nil
}

// Process plans p (round 0: in Lambda mode there are no replays) and makes
// every start of the plan, in this call. Starts are independent: one
// failing does not keep the others from starting. The error is non-nil
// only when the change set or the rules could not be read, so nothing was
// decided and the whole push may be retried.
func (s *Service) Process(ctx context.Context, p *Push) (Outcome, error) {
	cs, err := s.ChangeSet(ctx, p)
	if err != nil {
		return Outcome{}, err
	}
	r, err := s.Load(ctx, p)
	if err != nil {
		return Outcome{}, err
	}
	plan := NewPlan(PlanInput{Event: p, Rules: r, Changes: cs, Report: s.Report})
	s.LogDecision(plan.Event, plan.Result)
	log := s.logger().With("delivery", p.DeliveryID)
	out := Outcome{Result: plan.Result, Starts: make([]StartResult, len(plan.Starts))}
	paths := func(context.Context) ([]string, error) { return plan.Event.Paths, nil }
	parallel := s.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, start := range plan.Starts {
		out.Starts[i] = StartResult{Pipeline: start.Name, Token: start.Token}
		wg.Add(1)
		sem <- struct{}{}
		go func(sr *StartResult, req StartRequest) {
			defer func() { <-sem; wg.Done() }()
			got, err := s.Starter.Start(ctx, req)
			if err != nil {
				sr.Error = err.Error()
				log.Error("pipeline start failed", "pipeline", sr.Pipeline, "target", req.Type(), "token", sr.Token, "err", err)
				return
			}
			sr.ExecutionID, sr.Output, sr.DryRun, sr.URL = got.ID, got.Output, got.DryRun, got.Progress.URL
			if got.Progress.Done {
				sr.Result, sr.ResultDetail = got.Progress.Conclusion, got.Progress.Detail
			}
			msg := "pipeline started"
			if got.DryRun {
				msg = "dry run: nothing started"
			}
			log.Info(msg, "pipeline", sr.Pipeline, "target", req.Type(), "execution_id", got.ID, "token", sr.Token)
		}(&out.Starts[i], start.Request(paths))
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
