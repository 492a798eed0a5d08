package deliveries_test

import (
	"context"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
)

// TestDryRunRecordsALiveRunsStartJobs: a dry run on a database holding the
// start jobs of a live run (here a start in flight when the live process
// stopped) records them as dry runs, visible and replayable. Its starter
// was nil: each such job panicked, and River discarded it after its
// attempts, the start lost.
func TestDryRunRecordsALiveRunsStartJobs(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		e := newEnv(t)
		e.rule(t, "p", ".*")
		e.fake.SetDelay(time.Hour) // CodePipeline does not answer before the live process stops
		live := e.open(t, dsn, deliveries.Options{})
		if err := live.Accept(ctx, delivery("d1", "x")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return len(e.fake.Calls()) == 1 })
		stop, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_ = live.Close(stop) // the start is cut short; its job stays for the next process
		cancel()
		e.fake.SetDelay(0)

		dry := e.openDryRun(t, dsn, deliveries.Options{})
		startsOf := func(round int) []deliveries.Start {
			d, err := dry.Get(ctx, "d1")
			if err != nil {
				t.Fatal(err)
			}
			var out []deliveries.Start
			for _, s := range d.Starts {
				if s.Round == round {
					out = append(out, s)
				}
			}
			return out
		}
		dryRun := func(round int) bool {
			s := startsOf(round)
			return len(s) == 1 && s[0].Status == "dry-run"
		}
		waitFor(t, func() bool { return dryRun(0) })
		if p, err := dry.Find(ctx, deliveries.Filter{}); err != nil || len(p.Deliveries) != 1 || p.Deliveries[0].DryRun != 1 {
			t.Errorf("the dashboard's list: %+v, %v; want d1 with one dry run", p.Deliveries, err)
		}
		if round, err := dry.Replay(ctx, "d1"); err != nil || round != 1 {
			t.Fatalf("Replay = %d, %v", round, err)
		}
		waitFor(t, func() bool { return dryRun(1) })
		if n := len(e.fake.Calls()); n != 1 {
			t.Errorf("%d calls to CodePipeline; want the live run's one", n)
		}
	})
}
