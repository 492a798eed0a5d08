package rulestest

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Sizes are issue 20's rule set sizes: rules × changed paths.
var Sizes = [][2]int{{2000, 2000}, {10000, 5000}}

// Benchmarks are the workloads the evaluation benchmarks measure at one
// size: each shape alone, all shapes mixed with a few broad rules, and the
// same mix written as v2 globs, with and without excludes.
func Benchmarks(rules, paths int) []Workload {
	var out []Workload
	for _, s := range Shapes {
		w := Generate(Config{Rules: rules, Paths: paths, Seed: 20, Shapes: []Shape{s}})
		w.Name = s.Name + "/" + w.Name
		out = append(out, w)
	}
	for _, c := range []Config{{}, {Glob: true}, {Glob: true, Excludes: true}} {
		c.Rules, c.Paths, c.Seed, c.PerRule, c.BroadEvery = rules, paths, 20, 3, 100
		w := Generate(c)
		w.Name = "mixed/" + w.Name
		out = append(out, w)
	}
	return out
}

// Fingerprint identifies a workload's content: a change of the generator
// changes it, and the expected results must then be made again.
func (w Workload) Fingerprint() string {
	h := sha256.New()
	for _, r := range w.Rules {
		fmt.Fprintf(h, "%q\n", r)
	}
	fmt.Fprintf(h, "%q\n", w.Paths)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Naive is the naive evaluation of w, seed or glob as its rules are
// written.
func (w Workload) Naive() []int {
	if strings.HasPrefix(w.Name, "glob") || strings.Contains(w.Name, "/glob") {
		return NaiveGlob(w.Rules, w.Paths)
	}
	return NaiveSeed(w.Rules, w.Paths)
}

// The naive evaluation of the large workloads takes minutes, so their
// results are kept: expected/NAME.txt holds a workload's fingerprint, then
// the numbers of the rules that match it. Make them again with
// go test ./internal/rules/rulestest -run TestExpected -update
//
//go:embed expected
var expected embed.FS

// ExpectedFile is where w's expected result is kept.
func ExpectedFile(w Workload) string {
	return "expected/" + strings.ReplaceAll(w.Name, "/", "_") + ".txt"
}

// Expected returns the naive evaluation's result for w, as kept.
func Expected(w Workload) ([]int, error) {
	raw, err := expected.ReadFile(ExpectedFile(w))
	if err != nil {
		return nil, fmt.Errorf("no expected result for %s (make it with -update): %w", w.Name, err)
	}
	lines := strings.Fields(string(raw))
	if len(lines) == 0 || lines[0] != w.Fingerprint() {
		return nil, fmt.Errorf("the expected result of %s is for another workload: the generator changed; make it again with -update", w.Name)
	}
	out := make([]int, 0, len(lines)-1)
	for _, l := range lines[1:] {
		n, err := strconv.Atoi(l)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ExpectedFile(w), err)
		}
		out = append(out, n)
	}
	return out, nil
}

// FormatExpected is the content of w's expected file for a result.
func FormatExpected(w Workload, matched []int) []byte {
	var b strings.Builder
	b.WriteString(w.Fingerprint() + "\n")
	for _, r := range matched {
		b.WriteString(strconv.Itoa(r) + "\n")
	}
	return []byte(b.String())
}
