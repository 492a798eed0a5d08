package deliveries_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/trigger"
)

func deliveryIn(repo, id, sha string, paths ...string) trigger.Delivery {
	body := `{"ref":"refs/heads/main","after":"` + sha + `","repository":{"name":"` + repo + `","full_name":"org/` + repo + `"},"commits":[{"added":["` + strings.Join(paths, `","`) + `"],"removed":[],"modified":[]}]}`
	p, err := githubhook.ParsePush([]byte(body))
	if err != nil {
		panic(err)
	}
	return trigger.Delivery{ID: id, Event: "push", Received: time.Now(), Payload: []byte(body), Push: p}
}

func ids(t *testing.T, q *deliveries.Queue, f deliveries.Filter) []string {
	t.Helper()
	page, err := q.Find(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range page.Deliveries {
		out = append(out, d.ID)
	}
	return out
}

// TestFindFilters checks the dashboard's filters against deliveries whose
// outcomes are known: started, failed (dead letter), nothing to start.
func TestFindFilters(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "api/.*")
		e.rule(t, "gone", "gone/.*")
		e.fake.OnlyPipelines("api")
		q := e.open(t, dsn, deliveries.Options{})
		ctx := context.Background()
		for _, d := range []trigger.Delivery{
			deliveryIn("repo", "d-started", "aaaa111", "api/x.go"),
			deliveryIn("repo", "d-failed", "bbbb222", "gone/x.go"),
			deliveryIn("repo", "d-none", "cccc333", "docs/x.md"),
			deliveryIn("other", "d-other", "dddd444", "api/x.go"), // no rules for "other"
		} {
			d.Received = time.Now()
			if err := q.Accept(ctx, d); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // distinct received times: a known order
		}
		waitStarts(t, q, "d-started", 1)
		waitStarts(t, q, "d-failed", 1)
		for _, id := range []string{"d-none", "d-other"} {
			waitFor(t, func() bool { d, err := q.Get(ctx, id); return err == nil && d.Status == "evaluated" })
		}

		tests := []struct {
			f    deliveries.Filter
			want []string
		}{
			{deliveries.Filter{}, []string{"d-other", "d-none", "d-failed", "d-started"}},
			{deliveries.Filter{Repo: "other"}, []string{"d-other"}},
			{deliveries.Filter{Status: "failed"}, []string{"d-failed"}},
			{deliveries.Filter{Status: "started"}, []string{"d-started"}},
			{deliveries.Filter{Status: "none"}, []string{"d-other", "d-none"}},
			{deliveries.Filter{Status: "pending"}, nil},
			{deliveries.Filter{Repo: "repo", Status: "none"}, []string{"d-none"}},
			{deliveries.Filter{Text: "BBBB2"}, []string{"d-failed"}}, // commit, any case
			{deliveries.Filter{Text: "gone"}, []string{"d-failed"}},  // a pipeline in the decision
			{deliveries.Filter{Text: "d-o"}, []string{"d-other"}},    // delivery id
			{deliveries.Filter{Text: "100%_"}, nil},                  // LIKE wildcards are literal
			{deliveries.Filter{Repo: "nope"}, nil},
		}
		for _, tt := range tests {
			if got := ids(t, q, tt.f); !slices.Equal(got, tt.want) {
				t.Errorf("%+v: %v, want %v", tt.f, got, tt.want)
			}
		}
		if _, err := q.Find(ctx, deliveries.Filter{Status: "bogus"}); err == nil {
			t.Error("an unknown status was accepted")
		}
		if _, err := q.Find(ctx, deliveries.Filter{Before: "garbage"}); err == nil {
			t.Error("a bad cursor was accepted")
		}

		// Counts per delivery.
		page, err := q.Find(ctx, deliveries.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Deliveries {
			want := map[string][2]int{"d-started": {1, 0}, "d-failed": {0, 1}}[d.ID]
			if d.Started != want[0] || d.Failed != want[1] || d.Pending != 0 {
				t.Errorf("%s: started %d failed %d pending %d", d.ID, d.Started, d.Failed, d.Pending)
			}
		}

		// Paging one at a time visits every delivery once, in order.
		var walked []string
		f := deliveries.Filter{Limit: 1}
		for {
			page, err := q.Find(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page.Deliveries {
				walked = append(walked, d.ID)
			}
			if page.Next == "" {
				break
			}
			f.Before = page.Next
		}
		if want := []string{"d-other", "d-none", "d-failed", "d-started"}; !slices.Equal(walked, want) {
			t.Errorf("paged %v, want %v", walked, want)
		}

		repos, err := q.Repos(ctx)
		if err != nil || !slices.Equal(repos, []string{"other", "repo"}) {
			t.Errorf("repos %v %v", repos, err)
		}
		last, err := q.LastStarted(ctx)
		if err != nil || last["api"].IsZero() || !last["gone"].IsZero() {
			t.Errorf("last started %v %v", last, err)
		}
		p, err := q.Push(ctx, "d-failed")
		if err != nil || p.Repo != "repo" || !slices.Equal(p.Paths, []string{"gone/x.go"}) {
			t.Errorf("push %+v %v", p, err)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
