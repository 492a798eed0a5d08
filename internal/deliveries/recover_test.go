package deliveries_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/trigger"
)

// recoverPush is a push to repo's main changing services/api/x.
func recoverPush(sha string) string {
	return `{"ref":"refs/heads/main","before":"1111111111111111111111111111111111111111","after":"` + sha +
		`","repository":{"name":"repo","full_name":"org/repo"},"commits":[{"added":["services/api/x"],"removed":[],"modified":[]}]}`
}

// hooked is a fake GitHub holding the webhook acme/42's deliveries.
type hooked struct {
	gh    *fakegithub.GitHub
	hooks *githubapi.Hooks
}

func newHooked(t *testing.T) *hooked {
	t.Helper()
	g := fakegithub.New("gh-token")
	t.Cleanup(g.Close)
	h, err := githubapi.NewHooks(githubapi.Config{URL: g.URL, Token: "gh-token"}, githubapi.Hook{Org: "acme", ID: 42})
	if err != nil {
		t.Fatal(err)
	}
	return &hooked{gh: g, hooks: h}
}

// add records a delivery of event GitHub tried minutesAgo, answered code.
func (h *hooked) add(guid, event string, code int, minutesAgo int, redelivery bool) {
	body := recoverPush(fmt.Sprintf("%040x", len(guid)*1000+minutesAgo))
	if event != "push" {
		body = `{"zen":"Keep it logically awesome."}`
	}
	h.gh.AddHookDelivery("acme", 42, fakegithub.HookDelivery{
		GUID: guid, Event: event, StatusCode: code, Redelivery: redelivery,
		DeliveredAt: time.Now().Add(-time.Duration(minutesAgo) * time.Minute),
		Headers:     map[string]string{"X-GitHub-Delivery": guid, "X-GitHub-Event": event, "Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00"},
		Payload:     json.RawMessage(body),
	})
}

func (h *hooked) reconciler(t *testing.T, q *deliveries.Queue) *deliveries.Reconciler {
	t.Helper()
	r, err := deliveries.NewReconciler(q, h.hooks, deliveries.RecoverOptions{Handles: githubhook.Handles, Admit: githubhook.Recovered}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fetchedGUIDs maps the ids the fake served one by one to their GUIDs.
func fetchedGUIDs(h *hooked, byID map[int64]string) []string {
	var out []string
	for _, id := range h.gh.Fetched() {
		out = append(out, byID[id])
	}
	slices.Sort(out)
	return out
}

func TestReconcileRecoversExactlyTheMissing(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "services/api/.*")
		q := e.open(t, dsn, deliveries.Options{})
		h := newHooked(t)
		// While monohook was down: m1…m4 failed (m2 also redelivered, and
		// failed again); ok1, ok2 and late (GitHub timed out, monohook had
		// stored it) reached it; a ping and an issues event failed too;
		// old is past GitHub's 3 days.
		h.add("ok1", "push", 202, 50, false)
		h.add("m1", "push", 0, 40, false)
		h.add("m2", "push", 503, 30, false)
		h.add("m2", "push", 0, 29, true)
		h.add("late", "push", 0, 25, false)
		h.add("ping1", "ping", 0, 22, false)
		h.add("issue1", "issues", 0, 21, false)
		h.add("m3", "push", 0, 20, false)
		h.add("ok2", "push", 202, 10, false)
		h.add("m4", "push", 504, 5, false)
		h.gh.AddHookDelivery("acme", 42, fakegithub.HookDelivery{GUID: "old", Event: "push", DeliveredAt: time.Now().Add(-fakegithub.Kept - time.Hour)})
		for _, id := range []string{"ok1", "ok2", "late"} {
			d := delivery(id, "services/api/x")
			if err := q.Accept(context.Background(), d); err != nil {
				t.Fatal(err)
			}
		}
		r := h.reconciler(t, q)

		dry, err := r.Run(context.Background(), deliveries.RunOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		var dryGUIDs []string
		for _, m := range dry.Missed {
			dryGUIDs = append(dryGUIDs, m.GUID)
		}
		if want := []string{"m1", "m2", "m3", "m4"}; !slices.Equal(dryGUIDs, want) || len(h.gh.Fetched()) != 0 {
			t.Fatalf("dry run: missing %v (oldest first), fetched %v; want %v, none fetched", dryGUIDs, h.gh.Fetched(), want)
		}
		if last, _ := q.LastReconciliation(context.Background()); !last.Started.IsZero() {
			t.Errorf("a dry run recorded a reconciliation: %+v", last)
		}

		rec, err := r.Run(context.Background(), deliveries.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Listed != 10 || rec.Missing != 4 || rec.Recovered != 4 {
			t.Errorf("reconciliation %+v, want 10 listed, 4 missing, 4 recovered", rec)
		}
		byID := map[int64]string{}
		_ = h.hooks.List(context.Background(), func(p []trigger.HookDelivery) bool {
			for _, d := range p {
				byID[d.ID] = d.GUID
			}
			return true
		})
		if got := fetchedGUIDs(h, byID); !slices.Equal(got, []string{"m1", "m2", "m3", "m4"}) {
			t.Errorf("fetched %v, want exactly the missing ones, each once", got)
		}
		for _, id := range []string{"m1", "m2", "m3", "m4"} {
			d := waitStarts(t, q, id, 1)
			if d.Recovered == nil || len(d.Starts) != 1 || d.Starts[0].Status != "started" {
				t.Errorf("%s: recovered %v, starts %+v", id, d.Recovered, d.Starts)
			}
		}
		for _, id := range []string{"ok1", "late"} {
			if d, _ := q.Get(context.Background(), id); d.Recovered != nil {
				t.Errorf("%s came as a webhook, and is marked recovered", id)
			}
		}
		if _, err := q.Get(context.Background(), "ping1"); !errors.Is(err, deliveries.ErrNotFound) {
			t.Errorf("a ping was recovered: %v", err)
		}
		last, err := q.LastReconciliation(context.Background())
		if err != nil || last.Finished.IsZero() || last.Succeeded.IsZero() || last.Listed != 10 || last.Missing != 4 || last.Recovered != 4 || last.Error != "" {
			t.Errorf("last reconciliation %+v, %v", last, err)
		}

		// The next finds nothing, and lists from the newest it saw.
		before := len(h.gh.Fetched())
		again, err := r.Run(context.Background(), deliveries.RunOptions{})
		if err != nil || again.Missing != 0 || again.Recovered != 0 || len(h.gh.Fetched()) != before {
			t.Errorf("second reconciliation %+v, %v; fetched %d more", again, err, len(h.gh.Fetched())-before)
		}
		if again.Since.Before(time.Now().Add(-16 * time.Minute)) {
			t.Errorf("second reconciliation looked back to %v, not to the newest listed less the overlap", again.Since)
		}
		if n := len(e.fake.Calls()); n != 7 {
			t.Errorf("%d pipeline starts, want 7: each delivery's once", n)
		}
	})
}

func TestLiveDeliveryDuringRecoveryIsProcessedOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "services/api/.*")
		q := e.open(t, dsn, deliveries.Options{})
		h := newHooked(t)
		h.add("both", "push", 0, 3, false)
		// GitHub's own redelivery (someone clicked Redeliver) arrives while
		// monohook fetches the delivery.
		h.gh.OnGetDelivery(func(guid string) {
			d := delivery(guid, "services/api/x")
			if err := q.Accept(context.Background(), d); err != nil {
				t.Errorf("live delivery: %v", err)
			}
		})
		rec, err := h.reconciler(t, q).Run(context.Background(), deliveries.RunOptions{})
		if err != nil || rec.Missing != 1 || rec.Recovered != 0 || rec.Arrived != 1 {
			t.Errorf("reconciliation %+v, %v; want the one missing found arrived meanwhile", rec, err)
		}
		d := waitStarts(t, q, "both", 1)
		time.Sleep(300 * time.Millisecond) // a second start would come now
		if len(e.fake.Calls()) != 1 || d.Recovered != nil || d.Duplicates != 1 {
			t.Errorf("%d starts, recovered %v, duplicates %d; want one start of the live delivery", len(e.fake.Calls()), d.Recovered, d.Duplicates)
		}
	})
}

func TestOneReconcilerAtATime(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		e.rule(t, "api", "services/api/.*")
		// Two replicas on one database.
		qa, qb := e.open(t, dsn, deliveries.Options{}), e.open(t, dsn, deliveries.Options{})
		h := newHooked(t)
		for i := range 20 {
			h.add(fmt.Sprintf("m%02d", i), "push", 0, 30-i, false)
		}
		ra, rb := h.reconciler(t, qa), h.reconciler(t, qb)
		inFetch, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		h.gh.OnGetDelivery(func(string) {
			once.Do(func() { close(inFetch); <-release })
		})
		var wg sync.WaitGroup
		var recA deliveries.Reconciliation
		var errA error
		wg.Add(1)
		go func() { defer wg.Done(); recA, errA = ra.Run(context.Background(), deliveries.RunOptions{}) }()
		<-inFetch
		if _, err := rb.Run(context.Background(), deliveries.RunOptions{}); !errors.Is(err, deliveries.ErrReconciling) {
			t.Errorf("second replica while the first reconciles: %v, want ErrReconciling", err)
		}
		if last, _ := qb.LastReconciliation(context.Background()); last.Started.IsZero() || !last.Finished.IsZero() {
			t.Errorf("while one runs, the last reconciliation reads %+v", last)
		}
		close(release)
		wg.Wait()
		if errA != nil || recA.Recovered != 20 {
			t.Fatalf("first replica: %+v, %v", recA, errA)
		}
		if _, err := rb.Run(context.Background(), deliveries.RunOptions{Fresh: time.Hour}); !errors.Is(err, deliveries.ErrReconciling) {
			t.Errorf("a replica whose turn it is not: %v", err)
		}
		recB, err := rb.Run(context.Background(), deliveries.RunOptions{})
		if err != nil || recB.Missing != 0 {
			t.Errorf("second replica after the first: %+v, %v", recB, err)
		}
		deadline := time.Now().Add(time.Minute)
		for len(e.fake.Calls()) < 20 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		if n := len(e.fake.Calls()); n != 20 {
			t.Errorf("%d starts, want 20: each recovered delivery once", n)
		}
	})
}

// TestReconcileLooksNoFurtherThanTheWindowOrRetention: a delivery older
// than the window (GitHub Enterprise Server keeping less than 3 days), or
// older than retention (deleted here: it would look missing), is not
// fetched; --since looks back less.
func TestReconcileLooksNoFurtherThanTheWindowOrRetention(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "api", "services/api/.*")
	q := e.open(t, sqliteDSN(t), deliveries.Options{Retention: 2 * time.Hour})
	h := newHooked(t)
	h.add("recent", "push", 0, 20, false)
	h.add("hour-old", "push", 0, 90, false)
	h.add("past-retention", "push", 0, 150, false)
	run := func(window time.Duration, ro deliveries.RunOptions) []string {
		r, err := deliveries.NewReconciler(q, h.hooks, deliveries.RecoverOptions{Window: window, Handles: githubhook.Handles, Admit: githubhook.Recovered}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ro.DryRun = true
		rec, err := r.Run(context.Background(), ro)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range rec.Missed {
			out = append(out, m.GUID)
		}
		return out
	}
	if got := run(72*time.Hour, deliveries.RunOptions{}); !slices.Equal(got, []string{"hour-old", "recent"}) {
		t.Errorf("with 2 hours' retention: %v", got)
	}
	if got := run(time.Hour, deliveries.RunOptions{}); !slices.Equal(got, []string{"recent"}) {
		t.Errorf("with a 1-hour window: %v", got)
	}
	if got := run(72*time.Hour, deliveries.RunOptions{Since: 30 * time.Minute}); !slices.Equal(got, []string{"recent"}) {
		t.Errorf("since 30 minutes: %v", got)
	}
}

// TestLeaseOfADeadProcessExpires: a lease held by a process that died
// keeps others out until it expires, then the next takes it.
func TestLeaseOfADeadProcessExpires(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		q := e.open(t, dsn, deliveries.Options{})
		db, err := deliveries.OpenDB(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		h := newHooked(t)
		h.add("m1", "push", 0, 5, false)
		r := h.reconciler(t, q)
		if err := deliveries.SetLease(context.Background(), db, "dead", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(context.Background(), deliveries.RunOptions{}); !errors.Is(err, deliveries.ErrReconciling) {
			t.Errorf("while another holds the lease: %v", err)
		}
		if err := deliveries.SetLease(context.Background(), db, "dead", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if rec, err := r.Run(context.Background(), deliveries.RunOptions{}); err != nil || rec.Recovered != 1 {
			t.Errorf("after the dead process's lease expired: %+v, %v", rec, err)
		}
	})
}

// TestFailedReconciliationIsRecordedAndRetried: a rate limit that resets
// later than a call may wait fails the reconciliation, which says so; the
// next lists the same window again and recovers what is missing. One
// that resets soon is waited out.
func TestFailedReconciliationIsRecordedAndRetried(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "api", "services/api/.*")
	q := e.open(t, sqliteDSN(t), deliveries.Options{})
	h := newHooked(t)
	for i := range 3 {
		h.add(fmt.Sprintf("m%d", i), "push", 0, 30-i, false)
	}
	h.gh.RateLimitNext(1, time.Hour)
	rec, err := h.reconciler(t, q).Run(context.Background(), deliveries.RunOptions{})
	if err == nil || rec.Recovered != 0 {
		t.Fatalf("with GitHub's rate limit an hour away: %+v, %v", rec, err)
	}
	last, _ := q.LastReconciliation(context.Background())
	if !strings.Contains(last.Error, "rate limit") || last.Finished.IsZero() || !last.Succeeded.IsZero() {
		t.Errorf("the failed reconciliation recorded as %+v", last)
	}
	// The next process (this one's client refuses calls until the reset).
	h.gh.RateLimitNext(1, time.Second)
	h.hooks, err = githubapi.NewHooks(githubapi.Config{URL: h.gh.URL, Token: "gh-token"}, githubapi.Hook{Org: "acme", ID: 42})
	if err != nil {
		t.Fatal(err)
	}
	rec, err = h.reconciler(t, q).Run(context.Background(), deliveries.RunOptions{})
	if err != nil || rec.Recovered != 3 {
		t.Errorf("the next one, after a short rate limit: %+v, %v", rec, err)
	}
	if last, _ := q.LastReconciliation(context.Background()); last.Error != "" || last.Succeeded.IsZero() {
		t.Errorf("after it: %+v", last)
	}
}

// A delivery GitHub's API gives with a payload larger than the webhook
// takes is refused as the webhook would have refused it (413), not stored.
func TestRecoveredPayloadIsBoundedAsTheWebhooks(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "api", "services/api/.*")
	q := e.open(t, sqliteDSN(t), deliveries.Options{})
	h := newHooked(t)
	push := recoverPush(strings.Repeat("a", 40))
	big := push[:len(push)-1] + `,"pad":"` + strings.Repeat("x", githubhook.MaxBody) + `"}`
	h.gh.AddHookDelivery("acme", 42, fakegithub.HookDelivery{
		GUID: "big", Event: "push", DeliveredAt: time.Now().Add(-time.Minute),
		Headers: map[string]string{"X-GitHub-Delivery": "big", "X-GitHub-Event": "push", "Content-Type": "application/json"},
		Payload: json.RawMessage(big),
	})
	rec, err := h.reconciler(t, q).Run(context.Background(), deliveries.RunOptions{})
	if err != nil || rec.Missing != 1 || rec.Recovered != 0 || rec.Ignored != 1 {
		t.Errorf("a %d-byte payload: %+v, %v; want it ignored as the webhook would refuse it", len(big), rec, err)
	}
	if _, err := q.Get(context.Background(), "big"); !errors.Is(err, deliveries.ErrNotFound) {
		t.Errorf("the payload larger than a webhook's was stored: %v", err)
	}
}

// A delivery GitHub lists with a time in the future (a clock that was
// wrong) does not move the next reconciliations' start past now: those
// would list nothing until that time.
func TestFutureDeliveryDoesNotStopLaterReconciliations(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "api", "services/api/.*")
	q := e.open(t, sqliteDSN(t), deliveries.Options{})
	h := newHooked(t)
	h.add("future", "push", 202, -48*60, false)
	if err := q.Accept(context.Background(), delivery("future", "services/api/x")); err != nil {
		t.Fatal(err)
	}
	r := h.reconciler(t, q)
	if _, err := r.Run(context.Background(), deliveries.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	h.add("m1", "push", 0, 1, false)
	rec, err := r.Run(context.Background(), deliveries.RunOptions{})
	if err != nil || rec.Recovered != 1 {
		t.Errorf("after a delivery listed 48 h ahead: %+v, %v; want m1 recovered", rec, err)
	}
}

// A delivery GitHub's API gives without its request's payload is left
// alone, logged, as one the webhook would refuse: it does not fail every
// reconciliation, and with them the recovery of the deliveries after it,
// until GitHub forgets it 3 days later.
func TestDeliveryWithoutPayloadDoesNotStopRecovery(t *testing.T) {
	e := newEnv(t)
	e.rule(t, "api", "services/api/.*")
	q := e.open(t, sqliteDSN(t), deliveries.Options{})
	h := newHooked(t)
	h.gh.AddHookDelivery("acme", 42, fakegithub.HookDelivery{
		GUID: "bare", Event: "push", DeliveredAt: time.Now().Add(-30 * time.Minute),
		Headers: map[string]string{"X-GitHub-Delivery": "bare", "X-GitHub-Event": "push", "Content-Type": "application/json"},
	})
	for i := range 10 {
		h.add(fmt.Sprintf("m%d", i), "push", 0, 20-i, false)
	}
	r := h.reconciler(t, q)
	for run := range 2 {
		rec, err := r.Run(context.Background(), deliveries.RunOptions{Since: time.Hour})
		if err != nil || rec.Ignored != 1 || rec.Recovered != 10*(1-run) {
			t.Errorf("reconciliation %d: %+v, %v; want the one without payload ignored, the 10 after it recovered (by the first)", run+1, rec, err)
		}
	}
	if _, err := q.Get(context.Background(), "m9"); err != nil {
		t.Errorf("the newest missing delivery was not recovered: %v", err)
	}
}
