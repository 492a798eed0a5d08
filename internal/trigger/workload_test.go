package trigger_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/rules"
	"github.com/monohook/monohook/internal/trigger"
)

type workload struct {
	name     string
	configs  []workloadConfig
	push     *trigger.Push
	expected []string
}

type workloadConfig struct {
	Name                   string `json:"name"`
	CodePipelineName       string `json:"CodePipelineName"`
	ChangeMatchExpressions string `json:"ChangeMatchExpressions"`
}

func loadWorkload(tb testing.TB, path string) workload {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var w struct {
		Configs []workloadConfig `json:"configs"`
		Event   json.RawMessage  `json:"event"`
		Meta    struct {
			ExpectedMatches []string `json:"expected_matches"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		tb.Fatal(err)
	}
	p, err := githubhook.ParsePush(w.Event)
	if err != nil {
		tb.Fatal(err)
	}
	name := strings.TrimSuffix(filepath.Base(path), ".json")
	return workload{name: name, configs: w.Configs, push: p, expected: w.Meta.ExpectedMatches}
}

func (w workload) ruleSet(tb testing.TB) *trigger.RuleSet {
	tb.Helper()
	branch, _ := w.push.Branch()
	rs := make([]trigger.Rule, 0, len(w.configs))
	for _, c := range w.configs {
		r, err := trigger.NewSeedRule(c.Name, w.push.Repo, branch, c.CodePipelineName, c.ChangeMatchExpressions)
		if err != nil {
			tb.Fatal(err)
		}
		rs = append(rs, r)
	}
	return trigger.NewRuleSet(w.push.Repo, branch, rs, nil)
}

// workloadFiles lists the team's benchmark workloads (copies of the shared
// ones, kept in testdata so that a clone has them).
func workloadFiles(tb testing.TB) []string {
	files, _ := filepath.Glob("testdata/wl-*.json")
	if len(files) == 0 {
		tb.Fatal("no workloads found")
	}
	return files
}

func TestSharedWorkloadsMatchExpected(t *testing.T) {
	for _, f := range workloadFiles(t) {
		w := loadWorkload(t, f)
		t.Run(w.name, func(t *testing.T) {
			res := trigger.Evaluate(w.push, w.ruleSet(t))
			want := slices.Clone(w.expected)
			slices.Sort(want)
			if !slices.Equal(res.Start, want) {
				t.Errorf("started %d pipelines, want %d\n got %v\nwant %v", len(res.Start), len(want), res.Start, want)
			}
		})
	}
}

// mixedShapes rewrites a workload so its expressions are not all
// "literal/prefix/.*": a quarter each of alternations, patterns with no
// literal prefix at all, prefixes that need the regular expression to
// confirm, and character classes.
func mixedShapes(w workload) workload {
	out := w
	out.name = "mixed-" + w.name
	out.configs = make([]workloadConfig, len(w.configs))
	svc := regexp.MustCompile(`^services/(svc\d+)/\.\*$`)
	for i, c := range w.configs {
		parts := rules.SplitSeed(c.ChangeMatchExpressions)
		for j, p := range parts {
			m := svc.FindStringSubmatch(p)
			if m == nil {
				continue
			}
			switch i % 4 {
			case 0:
				parts[j] = "(services|deploy)/" + m[1] + "/.*"
			case 1:
				parts[j] = ".*/" + m[1] + `/.*\.(go|yaml)`
			case 2:
				parts[j] = "services/" + m[1] + `/.*\.go$`
			case 3:
				parts[j] = "[sS]ervices/" + m[1] + "/.*"
			}
		}
		// Every tenth rule also watches markdown anywhere: one expression
		// shared by many rules, with no literal prefix.
		if i%10 == 0 {
			parts = append(parts, `.*\.md`)
		}
		out.configs[i] = workloadConfig{Name: c.Name, CodePipelineName: c.CodePipelineName, ChangeMatchExpressions: strings.Join(parts, ",")}
	}
	out.expected = nil
	return out
}

// naiveStart is the predecessor's algorithm: every expression against
// every path.
func naiveStart(w workload) []string {
	var out []string
	for _, c := range w.configs {
	config:
		for _, e := range rules.SplitSeed(c.ChangeMatchExpressions) {
			re := regexp.MustCompile(`^(?:` + e + `)`)
			for _, p := range w.push.Paths {
				if re.MatchString(p) {
					out = append(out, c.CodePipelineName)
					break config
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestMixedShapesMatchNaive(t *testing.T) {
	w := mixedShapes(loadWorkload(t, "testdata/wl-c200-p3-n500.json"))
	res := trigger.Evaluate(w.push, w.ruleSet(t))
	want := naiveStart(w)
	if len(want) == 0 {
		t.Fatal("the mixed workload matches nothing; it would test nothing")
	}
	if !slices.Equal(res.Start, want) {
		t.Errorf("index started %v\nnaive       %v", res.Start, want)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, f := range workloadFiles(b) {
		base := loadWorkload(b, f)
		for _, w := range []workload{base, mixedShapes(base)} {
			b.Run(w.name, func(b *testing.B) {
				set := w.ruleSet(b)
				if w.expected != nil {
					want := slices.Clone(w.expected)
					slices.Sort(want)
					if got := trigger.Evaluate(w.push, set).Start; !slices.Equal(got, want) {
						b.Fatalf("wrong result: %d pipelines, want %d", len(got), len(want))
					}
				} else if len(w.configs) <= 2000 {
					if got := trigger.Evaluate(w.push, set).Start; !slices.Equal(got, naiveStart(w)) {
						b.Fatal("wrong result on the mixed workload")
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					trigger.Evaluate(w.push, set)
				}
			})
		}
	}
}

// BenchmarkBuildRuleSet is the cost paid when the stored rules change:
// compiling every expression and building the index. Unchanged rules reuse
// the built set.
func BenchmarkBuildRuleSet(b *testing.B) {
	for _, f := range workloadFiles(b) {
		w := loadWorkload(b, f)
		b.Run(w.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w.ruleSet(b)
			}
		})
	}
}

func ExampleEvaluate() {
	r, _ := trigger.NewSeedRule("k", "repo", "main", "api-deploy", "services/api/.*, libs/.*")
	set := trigger.NewRuleSet("repo", "main", []trigger.Rule{r}, nil)
	res := trigger.Evaluate(&trigger.Push{Repo: "repo", Ref: "refs/heads/main", Paths: []string{"docs/x.md", "libs/log/log.go"}}, set)
	fmt.Println(res.Start, res.Decisions[0].Path, res.Decisions[0].Expression)
	// Output: [api-deploy] libs/log/log.go libs/.*
}

// BenchmarkEvaluateBigPush is the load test's case: the 200 KB push
// (135 commits, 3,375 paths) against 200 two-expression rules.
func BenchmarkEvaluateBigPush(b *testing.B) {
	p, set := bigPush(b)
	b.ReportAllocs()
	for b.Loop() {
		trigger.Evaluate(p, set)
	}
}

// BenchmarkPlanBigPush is BenchmarkEvaluateBigPush through the plan, as
// the server evaluates: the v2 rules (none here) too, and the starts.
func BenchmarkPlanBigPush(b *testing.B) {
	p, set := bigPush(b)
	b.ReportAllocs()
	for b.Loop() {
		trigger.NewPlan(trigger.PlanInput{Event: p, Rules: trigger.Rules{Seed: set}})
	}
	rec, _ := json.Marshal(trigger.NewPlan(trigger.PlanInput{Event: p, Rules: trigger.Rules{Seed: set}}).Result)
	b.ReportMetric(float64(len(rec)), "recorded-B")
}

// BenchmarkPlanBigPushReported is BenchmarkPlanBigPush made for
// reporting to GitHub: every rule decided, the unmatched ones too, each
// with its check's name.
func BenchmarkPlanBigPushReported(b *testing.B) {
	p, set := bigPush(b)
	b.ReportAllocs()
	for b.Loop() {
		trigger.NewPlan(trigger.PlanInput{Event: p, Rules: trigger.Rules{Seed: set}, Report: true})
	}
	// What the evaluation records: the decision grows with the rules.
	rec, _ := json.Marshal(trigger.NewPlan(trigger.PlanInput{Event: p, Rules: trigger.Rules{Seed: set}, Report: true}).Result)
	b.ReportMetric(float64(len(rec)), "recorded-B")
}

// bigPush is the 200 KB push (3,375 paths) and 200 seed rules for its
// repository, each of two expressions.
func bigPush(b *testing.B) (*trigger.Push, *trigger.RuleSet) {
	body, err := os.ReadFile("../../testdata/bench/push-200k.json")
	if err != nil {
		b.Fatal(err)
	}
	p, err := githubhook.ParsePush(body)
	if err != nil {
		b.Fatal(err)
	}
	rs := make([]trigger.Rule, 0, 200)
	for i := range 200 {
		r, err := trigger.NewSeedRule(fmt.Sprint(i), p.Repo, "main", fmt.Sprintf("pipeline-svc%d", i), fmt.Sprintf("services/svc%d/.*,deploy/svc%d/.*", i, i))
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, r)
	}
	return p, trigger.NewRuleSet(p.Repo, "main", rs, nil)
}
