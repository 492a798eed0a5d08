package trigger_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/trigger"
)

// env is a real rule store on a temporary folder and the real CodePipeline
// client talking to the fake over HTTP.
type env struct {
	dir   string
	store *rulestore.Store
	fake  *fakeaws.CodePipeline
	svc   *trigger.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), fake: fakeaws.NewCodePipeline()}
	t.Cleanup(e.fake.Close)
	log := slog.New(slog.DiscardHandler)
	var err error
	e.store, err = rulestore.Open(context.Background(), "file://"+filepath.ToSlash(e.dir)+"?metadata=skip", rulestore.DefaultPrefix, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.fake.Setenv(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.svc = &trigger.Service{Rules: e.store, Starter: codepipeline.New(cfg), Log: log}
	return e
}

func (e *env) rule(t *testing.T, repo, branch, pipeline, match string) {
	t.Helper()
	if _, _, err := e.store.Put(context.Background(), rulestore.Document{GitHubRepo: repo, GitHubBranch: branch, CodePipelineName: pipeline, ChangeMatchExpressions: match}); err != nil {
		t.Fatal(err)
	}
}

// writeRaw stores a document bypassing validation, as a person with the
// AWS CLI could.
func (e *env) writeRaw(t *testing.T, key, body string) {
	t.Helper()
	path := filepath.Join(e.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func push(delivery, ref string, paths ...string) *trigger.Push {
	return &trigger.Push{DeliveryID: delivery, Repo: "repo", FullName: "org/repo", Ref: ref, After: "0123456789abcdef", Commits: 1, Paths: paths}
}

func started(out trigger.Outcome) []string {
	var names []string
	for _, s := range out.Starts {
		if s.ExecutionID != "" {
			names = append(names, s.Pipeline)
		}
	}
	slices.Sort(names)
	return names
}

func TestFullBranchName(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "repo", "feature/x", "feature-x", "src/.*")
	e.rule(t, "repo", "x", "just-x", "src/.*")
	out, err := e.svc.Process(context.Background(), push("d1", "refs/heads/feature/x", "src/main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if got := started(out); !slices.Equal(got, []string{"feature-x"}) {
		t.Errorf("started %v, want [feature-x] (the predecessor took the last segment, x)", got)
	}
}

func TestTagsAndDeletedRefsStartNothing(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "repo", "v1", "tag-named-branch", ".*")
	e.rule(t, "repo", "main", "main", ".*")
	for _, p := range []*trigger.Push{
		push("d1", "refs/tags/v1", "src/main.go"),
		{DeliveryID: "d2", Repo: "repo", Ref: "refs/heads/main", Deleted: true, Paths: []string{"src/main.go"}},
		push("d3", "refs/notes/commits", "x"),
	} {
		out, err := e.svc.Process(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Starts) != 0 || out.Skipped == "" {
			t.Errorf("%s deleted=%v: starts %+v, skipped %q", p.Ref, p.Deleted, out.Starts, out.Skipped)
		}
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("%d starts", n)
	}
}

func TestOtherBranchesSharingThePrefixDoNotMatch(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "repo", "main", "main-pipeline", "src/.*")
	e.rule(t, "repo", "main-old", "old-pipeline", "src/.*")
	out, err := e.svc.Process(context.Background(), push("d1", "refs/heads/main", "src/a.go"))
	if err != nil {
		t.Fatal(err)
	}
	if got := started(out); !slices.Equal(got, []string{"main-pipeline"}) {
		t.Errorf("started %v", got)
	}
}

func TestBadRuleDoesNotStopTheOthers(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "repo", "main", "good", "src/.*")
	e.writeRaw(t, rulestore.SeedKey(rulestore.DefaultPrefix, "repo", "main", "bad"),
		`{"GitHubRepo": "repo", "GitHubBranch": "main", "ChangeMatchExpressions": "src/(?=x)", "CodePipelineName": "bad"}`)
	out, err := e.svc.Process(context.Background(), push("d1", "refs/heads/main", "src/a.go"))
	if err != nil {
		t.Fatal(err)
	}
	if got := started(out); !slices.Equal(got, []string{"good"}) {
		t.Errorf("started %v", got)
	}
	if len(out.Problems) != 1 || !strings.Contains(out.Problems[0].Error, "look-around") {
		t.Errorf("problems %+v", out.Problems)
	}
}

func TestPipelineNamedTwiceStartsOnce(t *testing.T) {
	e := newEnv(t)
	// Two documents for one pipeline: one by monohook, one by hand under
	// another key of the same lookup prefix.
	e.rule(t, "repo", "main", "shared", "api/.*")
	e.writeRaw(t, rulestore.DefaultPrefix+"/repo-main-shared-copy.json",
		`{"GitHubRepo": "repo", "GitHubBranch": "main", "ChangeMatchExpressions": "web/.*", "CodePipelineName": "shared"}`)
	out, err := e.svc.Process(context.Background(), push("d1", "refs/heads/main", "api/x", "web/y"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Calls()); n != 1 || len(out.Starts) != 1 {
		t.Errorf("%d calls, %d starts; want 1", n, len(out.Starts))
	}
}

func TestStartsAreIndependentAndIdempotent(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"a", "b", "c"} {
		e.rule(t, "repo", "main", p, "src/.*")
	}
	e.fake.OnlyPipelines("a", "c") // b fails permanently
	p := push("delivery-1", "refs/heads/main", "src/x")
	out, err := e.svc.Process(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := started(out); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("started %v: a failing start must not stop the others", got)
	}
	for _, s := range out.Starts {
		if s.Pipeline == "b" && !strings.Contains(s.Error, "PipelineNotFoundException") {
			t.Errorf("b: %+v", s)
		}
		if s.Token != trigger.StartToken("delivery-1", 0, s.Pipeline) {
			t.Errorf("token %q", s.Token)
		}
	}
	// The whole delivery again (a retry): no second execution of a or c.
	if _, err := e.svc.Process(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Started(); got["a"] != 1 || got["c"] != 1 {
		t.Errorf("executions %v, want one each", got)
	}
}

func TestDryRunStartsNothing(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "repo", "main", "a", "src/.*")
	e.svc.Starter = trigger.DryRun{}
	out, err := e.svc.Process(context.Background(), push("d", "refs/heads/main", "src/x"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Start) != 1 || len(out.Starts) != 1 || !out.Starts[0].DryRun || len(e.fake.Calls()) != 0 {
		t.Errorf("dry run: %+v, %d calls", out, len(e.fake.Calls()))
	}
}

func TestStartToken(t *testing.T) {
	a, b := trigger.StartToken("d", 0, "p"), trigger.StartToken("d", 0, "q")
	if a == b || a != trigger.StartToken("d", 0, "p") || len(a) > 128 {
		t.Errorf("tokens %q %q", a, b)
	}
	for _, c := range a {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			t.Errorf("token %q has %q", a, c)
		}
	}
	// No encoding ambiguity: no two (delivery, round, target) triples
	// give one token, whatever the fields hold.
	pairs := [][2][3]any{
		{{"ab", 0, "c"}, {"a", 0, "bc"}},
		{{"victim-1#replay-1", 0, "p"}, {"victim-1", 1, "p"}},
		{{"d", 1, "2:p"}, {"d", 12, "p"}},
		{{"d\x00", 0, "p"}, {"d", 0, "\x00p"}},
	}
	for _, p := range pairs {
		x := trigger.StartToken(p[0][0].(string), p[0][1].(int), p[0][2].(string))
		y := trigger.StartToken(p[1][0].(string), p[1][1].(int), p[1][2].(string))
		if x == y {
			t.Errorf("%v and %v share the token %s", p[0], p[1], x)
		}
	}
}

func TestEvaluateExplains(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "repo", "main", "api", "docs/.*, services/api/.*")
	e.rule(t, "repo", "main", "web", "services/web/.*")
	body := `{"ref":"refs/heads/main","repository":{"name":"repo"},"commits":[{"added":["README.md","services/api/main.go"],"removed":[],"modified":["services/api/x.go"]}]}`
	p, err := githubhook.ParsePush([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.Load(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	res := trigger.NewPlan(trigger.PlanInput{Event: p, Rules: r, Explain: true}).Result
	want := []trigger.Decision{
		{Rule: rulestore.SeedKey(rulestore.DefaultPrefix, "repo", "main", "api"), Pipeline: "api", Matched: true, Path: "services/api/main.go", Expression: "services/api/.*"},
		{Rule: rulestore.SeedKey(rulestore.DefaultPrefix, "repo", "main", "web"), Pipeline: "web"},
	}
	if !slices.Equal(res.Decisions, want) {
		t.Errorf("decisions\n got %+v\nwant %+v", res.Decisions, want)
	}
	if !slices.Equal(res.Start, []string{"api"}) {
		t.Errorf("start %v", res.Start)
	}
}

func TestEvaluateListsOnlyMatched(t *testing.T) {
	a, _ := trigger.NewSeedRule("a", "repo", "main", "a", "a/.*")
	b, _ := trigger.NewSeedRule("b", "repo", "main", "b", "b/.*")
	set := trigger.NewRuleSet("repo", "main", []trigger.Rule{a, b}, nil)
	res := trigger.Evaluate(push("d", "refs/heads/main", "b/x"), set)
	if res.Rules != 2 || len(res.Decisions) != 1 || res.Decisions[0].Pipeline != "b" || !res.Decisions[0].Matched {
		t.Errorf("%+v", res)
	}
	all := trigger.Explain(push("d", "refs/heads/main", "b/x"), set)
	if len(all.Decisions) != 2 || all.Decisions[0].Matched || !all.Decisions[1].Matched {
		t.Errorf("%+v", all)
	}
}
