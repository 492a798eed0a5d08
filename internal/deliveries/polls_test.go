package deliveries_test

import (
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
)

// The backoff keeps the polls of a long execution few: doubling from 10 s
// to 5 min, an execution of 24 h costs at most one poll per 2.5 min (the
// jitter's shortest wait), and one of a minute a handful.
func TestPollsAreFew(t *testing.T) {
	opts := deliveries.Options{}
	for range 100 {
		if n := deliveries.PollsFor(opts, time.Minute); n > 5 {
			t.Errorf("%d polls for a minute", n)
		}
		if n := deliveries.PollsFor(opts, 24*time.Hour); n > int(24*time.Hour/(150*time.Second))+10 {
			t.Errorf("%d polls for a day", n)
		}
	}
}

// BenchmarkFollowPolls reports the mean polls (one API call each:
// GetPipelineExecution, or a share of one BatchGetBuilds) per followed
// execution by how long it runs, with the default backoff.
func BenchmarkFollowPolls(b *testing.B) {
	for _, d := range []time.Duration{time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour} {
		b.Run(d.String(), func(b *testing.B) {
			total := 0
			for b.Loop() {
				total += deliveries.PollsFor(deliveries.Options{}, d)
			}
			b.ReportMetric(float64(total)/float64(b.N), "polls/execution")
		})
	}
}
