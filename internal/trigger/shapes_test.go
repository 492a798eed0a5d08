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
	"github.com/monohook/monohook/internal/trigger"
)

// Issue 20's sizes: rules × changed paths.
var shapeSizes = [][2]int{{2000, 2000}, {10000, 5000}}

// shapeWorkloads are the generated workloads the benchmarks measure: each
// shape alone, then all shapes mixed with a few broad rules.
func shapeWorkloads(rules, paths int) []rulestest.Workload {
	var out []rulestest.Workload
	for _, s := range rulestest.Shapes {
		w := rulestest.Generate(rulestest.Config{Rules: rules, Paths: paths, Seed: 20, Shapes: []rulestest.Shape{s}})
		w.Name = s.Name + "/" + w.Name
		out = append(out, w)
	}
	w := rulestest.Generate(rulestest.Config{Rules: rules, Paths: paths, Seed: 20, PerRule: 3, BroadEvery: 100})
	w.Name = "mixed/" + w.Name
	return append(out, w)
}

func seedRuleSet(tb testing.TB, w rulestest.Workload) *trigger.RuleSet {
	tb.Helper()
	rs := make([]trigger.Rule, len(w.Rules))
	for i, exprs := range w.Rules {
		r, err := trigger.NewSeedRule(fmt.Sprint(i), "mono", "main", fmt.Sprintf("p%d", i), strings.Join(exprs, ","))
		if err != nil {
			tb.Fatal(err)
		}
		rs[i] = r
	}
	return trigger.NewRuleSet("mono", "main", rs, nil)
}

func shapePush(w rulestest.Workload) *trigger.Push {
	return &trigger.Push{Repo: "mono", FullName: "acme/mono", Ref: "refs/heads/main", Paths: w.Paths}
}

func BenchmarkEvaluateShapes(b *testing.B) {
	for _, size := range shapeSizes {
		for _, w := range shapeWorkloads(size[0], size[1]) {
			b.Run(w.Name, func(b *testing.B) {
				set := seedRuleSet(b, w)
				p := shapePush(w)
				got := trigger.Evaluate(p, set).Start
				if want := rulestest.Names(rulestest.NaiveSeed(w.Rules, w.Paths)); !slices.Equal(got, want) {
					b.Fatalf("started %d, naive %d", len(got), len(want))
				}
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cpuTime()
				for b.Loop() {
					trigger.Evaluate(p, set)
				}
				reportCPU(b, cpu)
				b.ReportMetric(float64(len(got)), "matched")
			})
		}
	}
}

// BenchmarkBuildShapes is what a change of the stored rules costs: every
// expression compiled and indexed. heap-MB is what the built set keeps.
func BenchmarkBuildShapes(b *testing.B) {
	for _, size := range shapeSizes {
		ws := shapeWorkloads(size[0], size[1])
		w := ws[len(ws)-1]
		b.Run(w.Name, func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			set := seedRuleSet(b, w)
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(set)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for b.Loop() {
				seedRuleSet(b, w)
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
		})
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
