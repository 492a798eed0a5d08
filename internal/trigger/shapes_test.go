package trigger_test

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/rules/rulestest"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/trigger"
)

// shapeRules turns a generated workload into the rules evaluation runs:
// rule i starts pipeline p<i>; a glob workload's rules are v2 rules.
func shapeRules(tb testing.TB, w rulestest.Workload) trigger.Rules {
	tb.Helper()
	glob := strings.Contains(w.Name, "glob")
	rs := make([]trigger.Rule, len(w.Rules))
	for i, exprs := range w.Rules {
		var r trigger.Rule
		var err error
		if glob {
			r, err = trigger.NewV2Rule(fmt.Sprintf("%06d.yaml", i), trigger.Spec{Repository: "acme/mono", Paths: exprs,
				Target: trigger.NewTarget(codepipeline.Type, codepipeline.Spec{Pipeline: fmt.Sprintf("p%d", i)})}, targets.Registry{})
		} else {
			r, err = trigger.NewSeedRule(fmt.Sprint(i), "mono", "main", fmt.Sprintf("p%d", i), strings.Join(exprs, ","))
		}
		if err != nil {
			tb.Fatal(err)
		}
		rs[i] = r
	}
	if glob {
		return trigger.Rules{V2: trigger.NewV2Set(rs, nil)}
	}
	return trigger.Rules{Seed: trigger.NewRuleSet("mono", "main", rs, nil)}
}

func shapePush(w rulestest.Workload) *trigger.Push {
	return &trigger.Push{Repo: "mono", FullName: "acme/mono", Ref: "refs/heads/main", Paths: w.Paths}
}

// BenchmarkEvaluateShapes is issue 20's measurement: each expression shape
// alone, then all mixed (seed expressions, v2 globs, v2 globs with
// excludes), at 2,000 rules × 2,000 paths and 10,000 × 5,000. Each result
// is first checked against the naive evaluation's.
func BenchmarkEvaluateShapes(b *testing.B) {
	for _, size := range rulestest.Sizes {
		for _, w := range rulestest.Benchmarks(size[0], size[1]) {
			b.Run(w.Name, func(b *testing.B) {
				want, err := rulestest.Expected(w)
				if err != nil {
					b.Fatal(err)
				}
				r := shapeRules(b, w)
				p := shapePush(w)
				if got := trigger.EvaluateRules(p, r, false).Start; !slices.Equal(got, rulestest.Names(want)) {
					b.Fatalf("started %d, naive %d", len(got), len(want))
				}
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cpuTime()
				for b.Loop() {
					trigger.EvaluateRules(p, r, false)
				}
				reportCPU(b, cpu)
				b.ReportMetric(float64(len(want)), "matched")
			})
		}
	}
}

// BenchmarkBuildShapes is what a change of the stored rules costs for the
// mixed workloads: every expression compiled and indexed (for v2 rules,
// the subset a push selects indexed on first use). heap-MB is what the
// built rules keep.
func BenchmarkBuildShapes(b *testing.B) {
	for _, size := range rulestest.Sizes {
		for _, w := range rulestest.Benchmarks(size[0], size[1]) {
			if !strings.HasPrefix(w.Name, "mixed/") {
				continue
			}
			b.Run(w.Name, func(b *testing.B) {
				p := shapePush(w)
				build := func() trigger.Rules {
					r := shapeRules(b, w)
					r.V2.For(p)
					return r
				}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				kept := build()
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(kept)
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cpuTime()
				for b.Loop() {
					build()
				}
				reportCPU(b, cpu)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
			})
		}
	}
}

// cpuTime is the CPU time the process has used. On a machine shared with
// other work, a benchmark's wall-clock time includes the time it waited
// for a core; cpu-ns/op, its CPU time per operation, does not (with -cpu 1
// almost all of it is the benchmark's; the garbage collector's share is in
// it too).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(cpuTime()-since)/float64(b.N), "cpu-ns/op")
}
