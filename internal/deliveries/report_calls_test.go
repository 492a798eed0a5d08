package deliveries_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/fakegithub"
)

// TestGitHubCallsPerPush counts the GitHub API calls that report one push
// to a repository of n rules, one of which it selects: one write per
// check (n), one listing of what the commit has (per 100 checks), and an
// update of the selected check for each change of its start that its
// report job did not find waiting. BENCHMARKS.md has the
// figures (go test -v -run TestGitHubCallsPerPush ./internal/deliveries).
func TestGitHubCallsPerPush(t *testing.T) {
	for _, n := range []int{1, 50, 500} {
		for _, statuses := range []bool{false, true} {
			mode := "checks"
			if statuses {
				mode = "statuses"
			}
			t.Run(fmt.Sprintf("%s-%d", mode, n), func(t *testing.T) {
				e := newEnv(t)
				for i := range n {
					e.rule(t, fmt.Sprintf("p%03d", i), fmt.Sprintf("src/%03d/.*", i))
				}
				g := fakegithub.New("gh-token")
				defer g.Close()
				q := e.open(t, sqliteDSN(t), deliveries.Options{Report: reportingTo(t, g, statuses)})
				if err := q.Accept(context.Background(), delivery("d1", "src/000/a.go")); err != nil {
					t.Fatal(err)
				}
				waitStarts(t, q, "d1", 1)
				waitFor(t, func() bool { return reported(g, n, statuses) })
				calls := map[string]int{}
				for _, r := range g.Requests() {
					method, path, _ := strings.Cut(r, " ")
					kind := "statuses"
					if strings.Contains(path, "check-runs") {
						kind = "check-runs"
					}
					calls[method+" "+kind]++
				}
				total := len(g.Requests())
				t.Logf("%s, %d rules: %d GitHub calls %v", mode, n, total, calls)
				if most := n + (n+99)/100 + 1; total > most {
					t.Errorf("%d calls for %d checks: more than one each, the listing and one update of the selected one (%d)", total, n, most)
				}
			})
		}
	}
}

// reported: every check is posted, the selected one in progress.
func reported(g *fakegithub.GitHub, n int, statuses bool) bool {
	if statuses {
		last := map[string]string{}
		for _, s := range g.Statuses() {
			last[s.Context] = s.State
		}
		return len(last) == n
	}
	runs := g.CheckRuns()
	if len(runs) != n {
		return false
	}
	for _, r := range runs {
		if r.Name == "monohook/p000" && r.Status != "in_progress" {
			return false
		}
	}
	return true
}
