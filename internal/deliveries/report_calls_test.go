package deliveries_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/fakegithub"
)

// TestGitHubCallsPerPush counts the GitHub API calls that report one push
// to a repository of n rules, of which it selects k: one write per check
// (n), one listing of what the commit has (per 100 checks), and an update
// of a selected check for each change of its start that its report job
// did not find waiting (at most one here: started). BENCHMARKS.md has the
// figures (go test -v -run TestGitHubCallsPerPush ./internal/deliveries).
func TestGitHubCallsPerPush(t *testing.T) {
	for _, c := range []struct {
		n, k    int
		limited bool
	}{{1, 1, false}, {50, 1, false}, {500, 1, false}, {500, 50, false}, {500, 50, true}} {
		n, k := c.n, c.k
		for _, statuses := range []bool{false, true} {
			mode := "checks"
			if statuses {
				mode = "statuses"
			}
			name := fmt.Sprintf("%s-%d-of-%d", mode, k, n)
			if c.limited {
				name += "-rate-limited"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t)
				for i := range n {
					e.rule(t, fmt.Sprintf("p%03d", i), fmt.Sprintf("src/%03d/.*", i))
				}
				g := fakegithub.New("gh-token")
				defer g.Close()
				if c.limited {
					// The first call meets a rate limit: the changes of the
					// starts meanwhile collapse into the job that waits.
					g.RateLimitNext(1, 3*time.Second)
				}
				q := e.open(t, sqliteDSN(t), deliveries.Options{Report: reportingTo(t, g, statuses)})
				var paths []string
				for i := range k {
					paths = append(paths, fmt.Sprintf("src/%03d/a.go", i))
				}
				if err := q.Accept(context.Background(), delivery("d1", paths...)); err != nil {
					t.Fatal(err)
				}
				waitStarts(t, q, "d1", k)
				waitFor(t, func() bool { return reported(g, n, k, statuses) })
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
				t.Logf("%s: %d GitHub calls %v", name, total, calls)
				if most := n + (n+99)/100 + k + 1; total > most {
					t.Errorf("%d calls for %d checks: more than one each, the listing and one update of each selected one (%d)", total, n, most)
				}
			})
		}
	}
}

// reported: every check is posted, the k selected ones as running.
func reported(g *fakegithub.GitHub, n, k int, statuses bool) bool {
	running := 0
	if statuses {
		last := map[string]string{}
		for _, s := range g.Statuses() {
			last[s.Context] = s.Description
		}
		for _, d := range last {
			if strings.HasSuffix(d, " is running") {
				running++
			}
		}
		return len(last) == n && running == k
	}
	runs := g.CheckRuns()
	for _, r := range runs {
		if r.Status == "in_progress" {
			running++
		}
	}
	return len(runs) == n && running == k
}
