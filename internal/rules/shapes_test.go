package rules_test

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/rules"
	"github.com/monohook/monohook/internal/rules/rulestest"
)

func compileSeed(tb testing.TB, w rulestest.Workload) *rules.Index {
	tb.Helper()
	lists := make([][]*rules.Pattern, len(w.Rules))
	for i, exprs := range w.Rules {
		for _, e := range exprs {
			p, err := rules.CompileSeed(e)
			if err != nil {
				tb.Fatal(err)
			}
			lists[i] = append(lists[i], p)
		}
	}
	return rules.NewIndex(lists)
}

func matched(hits []rules.Hit) []int {
	out := make([]int, len(hits))
	for i, h := range hits {
		out[i] = h.Rule
	}
	return out
}

// TestShapesAgreeWithNaive checks the index against the naive evaluation on
// generated workloads: each shape alone and all of them mixed, several
// seeds each.
func TestShapesAgreeWithNaive(t *testing.T) {
	configs := map[string]rulestest.Config{"mixed": {Rules: 300, Paths: 400, PerRule: 3, BroadEvery: 50}}
	for _, s := range rulestest.Shapes {
		configs[s.Name] = rulestest.Config{Rules: 200, Paths: 300, Shapes: []rulestest.Shape{s}}
	}
	for name, c := range configs {
		total := 0
		for seed := range uint64(4) {
			c.Seed = seed
			w := rulestest.Generate(c)
			got := matched(compileSeed(t, w).Match(w.Paths))
			want := rulestest.NaiveSeed(w.Rules, w.Paths)
			total += len(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s seed %d: index %v\nnaive %v", name, seed, got, want)
			}
		}
		if total == 0 {
			t.Errorf("%s: nothing matches; the workloads test nothing", name)
		}
	}
}

// BenchmarkIndexShapes is BenchmarkEvaluateShapes (internal/trigger) for
// the seed workloads without the rest of evaluation: the index alone.
func BenchmarkIndexShapes(b *testing.B) {
	for _, size := range rulestest.Sizes {
		for _, w := range rulestest.Benchmarks(size[0], size[1]) {
			if strings.Contains(w.Name, "glob") {
				continue
			}
			b.Run(w.Name, func(b *testing.B) {
				want, err := rulestest.Expected(w)
				if err != nil {
					b.Fatal(err)
				}
				ix := compileSeed(b, w)
				if got := matched(ix.Match(w.Paths)); !slices.Equal(got, want) {
					b.Fatalf("matched %d, naive %d", len(got), len(want))
				}
				b.ReportAllocs()
				for b.Loop() {
					ix.Match(w.Paths)
				}
			})
		}
	}
}

func compileFilters(tb testing.TB, w rulestest.Workload) *rules.Index {
	tb.Helper()
	filters := make([][]rules.Term, len(w.Rules))
	for i, globs := range w.Rules {
		for _, g := range globs {
			p, err := rules.CompileGlob(strings.TrimPrefix(g, "!"))
			if err != nil {
				tb.Fatal(err)
			}
			filters[i] = append(filters[i], rules.Term{Pattern: p, Exclude: strings.HasPrefix(g, "!")})
		}
	}
	return rules.NewFilterIndex(filters)
}

// TestFiltersAgreeWithNaive: v2 globs, excludes decided in the index, agree
// with the filter semantics read literally, including a path excluded and
// then included again by a later pattern.
func TestFiltersAgreeWithNaive(t *testing.T) {
	for _, excl := range []bool{false, true} {
		for seed := range uint64(3) {
			w := rulestest.Generate(rulestest.Config{Rules: 300, Paths: 400, Seed: seed, PerRule: 3, BroadEvery: 20, Glob: true, Excludes: excl})
			got := matched(compileFilters(t, w).Match(w.Paths))
			if want := rulestest.NaiveGlob(w.Rules, w.Paths); !slices.Equal(got, want) || len(want) == 0 {
				t.Errorf("%s seed %d: index %v\nnaive %v", w.Name, seed, got, want)
			}
		}
	}
	w := rulestest.Workload{
		Rules: [][]string{{"docs/**", "!**/*.md", "docs/keep/*.md"}, {"**.md", "!**/*.md"}, {"!x/**", "x/y"}, {"a/**", "!a/b/**"}},
		Paths: []string{"docs/a.md", "docs/keep/b.md", "x/y", "a/b/c", "docs/x.txt"},
	}
	got := matched(compileFilters(t, w).Match(w.Paths))
	if want := rulestest.NaiveGlob(w.Rules, w.Paths); !slices.Equal(got, want) {
		t.Errorf("index %v, naive %v", got, want)
	}
}

// BenchmarkNewIndex is the index's share of a rule change: the patterns
// are compiled beforehand. index-MB is what the index keeps beside them.
func BenchmarkNewIndex(b *testing.B) {
	for _, size := range rulestest.Sizes {
		for _, w := range rulestest.Benchmarks(size[0], size[1]) {
			if !strings.HasPrefix(w.Name, "mixed/") {
				continue
			}
			b.Run(w.Name, func(b *testing.B) {
				filters := make([][]rules.Term, len(w.Rules))
				for i, exprs := range w.Rules {
					for _, e := range exprs {
						var p *rules.Pattern
						var err error
						if strings.Contains(w.Name, "glob") {
							p, err = rules.CompileGlob(strings.TrimPrefix(e, "!"))
						} else {
							p, err = rules.CompileSeed(e)
						}
						if err != nil {
							b.Fatal(err)
						}
						filters[i] = append(filters[i], rules.Term{Pattern: p, Exclude: strings.HasPrefix(e, "!") && strings.Contains(w.Name, "glob")})
					}
				}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				ix := rules.NewFilterIndex(filters)
				ix.Match(w.Paths) // its matcher, kept for the next push, counts too
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(ix)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					rules.NewFilterIndex(filters)
				}
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "index-MB")
			})
		}
	}
}
