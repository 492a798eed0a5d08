package rulestest_test

import (
	"flag"
	"os"
	"slices"
	"testing"

	"github.com/monohook/monohook/internal/rules/rulestest"
)

var update = flag.Bool("update", false, "make the expected results again with the naive evaluation (minutes)")

// TestExpected checks that every benchmark workload has its expected
// result, made for what the generator makes now; the smaller mixed
// workload's is checked against the naive evaluation on every run.
func TestExpected(t *testing.T) {
	for _, size := range rulestest.Sizes {
		for _, w := range rulestest.Benchmarks(size[0], size[1]) {
			if *update {
				if err := os.WriteFile(rulestest.ExpectedFile(w), rulestest.FormatExpected(w, w.Naive()), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := rulestest.Expected(w)
			if err != nil {
				t.Error(err)
				continue
			}
			if len(got) == 0 {
				t.Errorf("%s: nothing matches; it would measure nothing", w.Name)
			}
			if w.Name == "mixed/seed-r2000-p2000" {
				if want := w.Naive(); !slices.Equal(got, want) {
					t.Errorf("%s: kept %v, naive %v", w.Name, got, want)
				}
			}
		}
	}
}
