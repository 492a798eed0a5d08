package trigger_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/rules"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/trigger"
)

// v2Set turns a workload's seed rules into v2 rules with globs: each
// "dir/.*" expression becomes "dir/**". With excludes, every rule also
// leaves out Markdown and test data ("!**/*.md", "!**/testdata/**"),
// which makes each candidate path go through the whole pattern list.
func (w workload) v2Set(tb testing.TB, excludes bool) (*trigger.V2Set, [][]string) {
	tb.Helper()
	rs := make([]trigger.Rule, 0, len(w.configs))
	var globs [][]string
	for _, c := range w.configs {
		var paths []string
		for _, e := range rules.SplitSeed(c.ChangeMatchExpressions) {
			paths = append(paths, strings.TrimSuffix(e, ".*")+"**")
		}
		if excludes {
			paths = append(paths, "!**/*.md", "!**/testdata/**")
		}
		globs = append(globs, paths)
		r, err := trigger.NewV2Rule(c.Name, trigger.Spec{Repository: "acme/" + w.push.Repo, Paths: paths,
			Target: trigger.NewTarget(codepipeline.Type, codepipeline.Spec{Pipeline: c.CodePipelineName})}, targets.Registry{})
		if err != nil {
			tb.Fatal(err)
		}
		rs = append(rs, r)
	}
	return trigger.NewV2Set(rs, nil), globs
}

// naiveV2 decides every rule by the filter semantics, path by path.
func naiveV2(tb testing.TB, w workload, globs [][]string) []string {
	var out []string
	for i, list := range globs {
		pats := make([]*rules.Pattern, len(list))
		for j, g := range list {
			p, err := rules.CompileGlob(strings.TrimPrefix(g, "!"))
			if err != nil {
				tb.Fatal(err)
			}
			pats[j] = p
		}
	paths:
		for _, path := range w.push.Paths {
			for j := len(pats) - 1; j >= 0; j-- {
				if pats[j].Match(path) {
					if !strings.HasPrefix(list[j], "!") {
						out = append(out, w.configs[i].CodePipelineName)
						break paths
					}
					break
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func v2Push(w workload) *trigger.Push {
	p := *w.push
	p.FullName = "acme/" + p.Repo
	return &p
}

func TestV2GlobWorkloadsMatchNaive(t *testing.T) {
	for _, f := range workloadFiles(t) {
		w := loadWorkload(t, f)
		if len(w.configs) > 2000 {
			continue // the naive reading is slow; the benchmark checks the big one
		}
		for _, excl := range []bool{false, true} {
			set, globs := w.v2Set(t, excl)
			got := trigger.EvaluateRules(v2Push(w), trigger.Rules{V2: set}, false).Start
			want := naiveV2(t, w, globs)
			if !excl {
				// Without excludes the globs say what the seed expressions say.
				want = slices.Sorted(slices.Values(w.expected))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s excludes=%v: started %d, want %d", w.name, excl, len(got), len(want))
			}
		}
	}
}

// BenchmarkEvaluateV2 is BenchmarkEvaluate with v2 glob rules: the same
// workloads, the same goals.
func BenchmarkEvaluateV2(b *testing.B) {
	for _, f := range workloadFiles(b) {
		w := loadWorkload(b, f)
		for _, excl := range []bool{false, true} {
			name := w.name + "/globs"
			if excl {
				name += "-with-excludes"
			}
			b.Run(name, func(b *testing.B) {
				set, globs := w.v2Set(b, excl)
				p := v2Push(w)
				r := trigger.Rules{V2: set}
				got := trigger.EvaluateRules(p, r, false).Start
				if want := naiveV2(b, w, globs); !slices.Equal(got, want) {
					b.Fatalf("wrong result: %d pipelines, want %d", len(got), len(want))
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					trigger.EvaluateRules(p, r, false)
				}
			})
		}
	}
}

func ExampleEvaluateRules() {
	s, _ := trigger.ParseSpec([]byte(`
repository: acme/mono
branches: [main]
paths: ["services/api/**", "!**/*.md"]
target: {type: codepipeline, pipeline: api-deploy}
`))
	r, _ := trigger.NewV2Rule("api.yaml", s, targets.Registry{})
	p := &trigger.Push{FullName: "acme/mono", Ref: "refs/heads/main", Paths: []string{"services/api/README.md", "services/api/main.go"}}
	res := trigger.EvaluateRules(p, trigger.Rules{V2: trigger.NewV2Set([]trigger.Rule{r}, nil)}, false)
	fmt.Println(res.Start, res.Decisions[0].Path, res.Decisions[0].Expression)
	// Output: [api-deploy] services/api/main.go services/api/**
}
