package githubapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/trigger"
)

// fill records n deliveries of hook, one a minute back from now, every
// third one failed, and one just past GitHub's 3 days.
func fill(g *fakegithub.GitHub, org string, hook int64, n int) {
	now := time.Now()
	for i := range n {
		code := 202
		if i%3 == 0 {
			code = 0
		}
		guid := fmt.Sprintf("guid-%04d", i)
		g.AddHookDelivery(org, hook, fakegithub.HookDelivery{
			GUID: guid, Event: "push", StatusCode: code, DeliveredAt: now.Add(-time.Duration(i) * time.Minute),
			Headers: map[string]string{"X-GitHub-Delivery": guid, "X-GitHub-Event": "push", "Content-Type": "application/json"},
			Payload: json.RawMessage(fmt.Sprintf(`{"ref":"refs/heads/main","n":%d}`, i)),
		})
	}
	g.AddHookDelivery(org, hook, fakegithub.HookDelivery{GUID: "too-old", Event: "push", DeliveredAt: now.Add(-fakegithub.Kept - time.Minute)})
}

func listAll(t *testing.T, h *Hooks) []trigger.HookDelivery {
	t.Helper()
	var all []trigger.HookDelivery
	if err := h.List(context.Background(), func(p []trigger.HookDelivery) bool { all = append(all, p...); return true }); err != nil {
		t.Fatal(err)
	}
	return all
}

func TestOrgHookDeliveriesPaginateByCursorNewestFirst(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	fill(g, "acme", 42, 250)
	h, err := NewHooks(Config{URL: g.URL, Token: "gh-token"}, Hook{Org: "acme", ID: 42})
	if err != nil {
		t.Fatal(err)
	}
	all := listAll(t, h)
	if len(all) != 250 {
		t.Fatalf("listed %d, want 250 (the one older than 3 days is gone)", len(all))
	}
	for i, d := range all {
		if want := fmt.Sprintf("guid-%04d", i); d.GUID != want || d.Event != "push" || d.Failed() != (i%3 == 0) {
			t.Fatalf("entry %d: %+v, want %s failed=%v", i, d, want, i%3 == 0)
		}
	}
	var lists []string
	for _, r := range g.Requests() {
		if strings.HasPrefix(r, "GET /orgs/acme/hooks/42/deliveries") {
			lists = append(lists, r)
		}
	}
	if len(lists) != 3 || !strings.Contains(lists[0], "per_page=100") || strings.Contains(lists[0], "cursor") || !strings.Contains(lists[2], "cursor=v1_") {
		t.Errorf("list requests %q, want 3 pages of 100 following the cursor", lists)
	}
	// Stopping early reads no further page.
	before := len(g.Requests())
	_ = h.List(context.Background(), func([]trigger.HookDelivery) bool { return false })
	if n := len(g.Requests()) - before; n != 1 {
		t.Errorf("a listing stopped after its first page made %d requests", n)
	}
	req, err := h.Get(context.Background(), all[7].ID)
	if err != nil {
		t.Fatal(err)
	}
	if req.Headers["X-GitHub-Delivery"] != "guid-0007" || string(req.Payload) != `{"ref":"refs/heads/main","n":7}` {
		t.Errorf("fetched %+v %s", req.Headers, req.Payload)
	}
	if err := h.Redeliver(context.Background(), all[3].ID); err != nil {
		t.Fatal(err)
	}
	if r := g.Redelivered(); len(r) != 1 || r[0] != all[3].ID {
		t.Errorf("redelivered %v", r)
	}
}

func TestHookDeliveriesWaitOutTheRateLimit(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	fill(g, "acme", 42, 10)
	h, err := NewHooks(Config{URL: g.URL, Token: "gh-token"}, Hook{Org: "acme", ID: 42})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	h.c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	g.RateLimitNext(1, 0)
	if all := listAll(t, h); len(all) != 10 {
		t.Errorf("listed %d after the reset", len(all))
	}
	if len(waits) != 1 {
		t.Errorf("waits %v, want one until the reset", waits)
	}
	if _, err := h.Get(context.Background(), 999999); !errors.Is(err, trigger.ErrDeliveryGone) || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown delivery: %v", err)
	}
}

func TestAppHookDeliveriesUseTheAppJWT(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	g := fakegithub.New("not-a-jwt")
	defer g.Close()
	g.AppKey = &key.PublicKey
	fill(g, "", 0, 120)
	h, err := NewHooks(Config{URL: g.URL, App: 12345, Key: pemKey}, Hook{})
	if err != nil {
		t.Fatal(err)
	}
	if all := listAll(t, h); len(all) != 120 {
		t.Errorf("listed %d of the App's webhook", len(all))
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	g.AppKey = &other.PublicKey
	err = h.List(context.Background(), func([]trigger.HookDelivery) bool { return true })
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a JWT of another key: %v", err)
	}
	if _, err := NewHooks(Config{URL: g.URL, Token: "x"}, Hook{}); err == nil {
		t.Error("the App's webhook without the App's key was accepted")
	}
}

func TestFindOrgHookByURL(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	g.AddOrgHook("acme", 7, "https://ci.example/other")
	g.AddOrgHook("acme", 9, "https://monohook.example/webhook")
	c, _ := newClient(t, g)
	id, err := c.FindOrgHook(context.Background(), "acme", "https://monohook.example/webhook")
	if err != nil || id != 9 {
		t.Errorf("found %d, %v", id, err)
	}
	if _, err := c.FindOrgHook(context.Background(), "acme", "https://nowhere.example/"); err == nil || !strings.Contains(err.Error(), "--github-hook-id") {
		t.Errorf("no such hook: %v", err)
	}
	// Hooks named by their URL find their id on first use.
	fill(g, "acme", 9, 5)
	h, err := NewHooks(Config{URL: g.URL, Token: "gh-token"}, Hook{Org: "acme", URL: "https://monohook.example/webhook"})
	if err != nil {
		t.Fatal(err)
	}
	if all := listAll(t, h); len(all) != 5 || h.Hook().ID != 9 {
		t.Errorf("listed %d of hook %+v", len(all), h.Hook())
	}
	if _, err := NewHooks(Config{URL: g.URL, Token: "gh-token"}, Hook{Org: "acme"}); err == nil {
		t.Error("an organization webhook without id or URL was accepted")
	}
}

func TestAnswersAreBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 2000)))
	}))
	defer srv.Close()
	c := &http.Client{Transport: capTransport{http.DefaultTransport, 1000}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); !errors.Is(err, errAnswerTooLarge) || len(b) > 1001 {
		t.Errorf("read %d bytes, %v; want the cap's error", len(b), err)
	}
	c.Transport = capTransport{http.DefaultTransport, 2000}
	resp, _ = c.Get(srv.URL)
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 2000 {
		t.Errorf("an answer of the cap's size: %d bytes, %v", len(b), err)
	}
	resp.Body.Close()
}

func TestListingIsBounded(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	fill(g, "acme", 42, 350)
	h, err := NewHooks(Config{URL: g.URL, Token: "gh-token"}, Hook{Org: "acme", ID: 42})
	if err != nil {
		t.Fatal(err)
	}
	h.maxListed = 200
	pages := 0
	err = h.List(context.Background(), func([]trigger.HookDelivery) bool { pages++; return true })
	if err == nil || !strings.Contains(err.Error(), "more than 200") || pages != 2 {
		t.Errorf("%d pages, %v", pages, err)
	}
}

// An API whose list of webhooks always names a next page (the same one,
// or always a further one) is not followed forever.
func TestFindOrgHookStopsOnEndlessPages(t *testing.T) {
	for _, further := range []bool{false, true} {
		var requests atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if requests.Add(1) > 1000 {
				cancel() // the test's own bound: the client did not stop
			}
			next := 2
			if further {
				next = int(requests.Load()) + 1
			}
			w.Header().Set("Link", fmt.Sprintf(`<http://%s/orgs/acme/hooks?page=%d&per_page=100>; rel="next"`, r.Host, next))
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`[]`))
		}))
		c, err := New(Config{URL: srv.URL, Token: "gh-token"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.FindOrgHook(ctx, "acme", "https://monohook.example/webhook")
		if err == nil || ctx.Err() != nil || requests.Load() > 100 {
			t.Errorf("next page further each time %v: %d requests, %v; want an error within 100 pages", further, requests.Load(), err)
		}
		srv.Close()
		cancel()
	}
}

// An API whose next cursor is one it gave before (the listing would go
// round forever, spending the token's rate limit until MaxListed) stops
// the listing with an error.
func TestListingStopsOnARepeatedCursor(t *testing.T) {
	var requests atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		if n > 1000 {
			cancel() // the test's own bound: the client did not stop
		}
		w.Header().Set("Link", fmt.Sprintf(`<http://%s/orgs/acme/hooks/42/deliveries?cursor=c%d&per_page=100>; rel="next"`, r.Host, n%3))
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `[{"id":%d,"guid":"g%d","event":"push","status_code":0,"delivered_at":%q}]`, n, n, time.Now().UTC().Format(time.RFC3339))
	}))
	defer srv.Close()
	h, err := NewHooks(Config{URL: srv.URL, Token: "gh-token"}, Hook{Org: "acme", ID: 42})
	if err != nil {
		t.Fatal(err)
	}
	err = h.List(ctx, func([]trigger.HookDelivery) bool { return true })
	if err == nil || ctx.Err() != nil || requests.Load() > 4 {
		t.Errorf("%d requests, %v; want an error once a cursor comes again", requests.Load(), err)
	}
}

// TestOneLargeAnswerAtATime: a fetched payload past smallAnswer holds the
// process's one large-answer turn until its caller is done with it; a
// second large one waits for it, small ones do not.
func TestOneLargeAnswerAtATime(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	big := json.RawMessage(`{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", 2*smallAnswer) + `"}`)
	for i, p := range []json.RawMessage{big, big, json.RawMessage(`{"ref":"refs/heads/main"}`)} {
		guid := fmt.Sprintf("g%d", i+1)
		g.AddHookDelivery("acme", 42, fakegithub.HookDelivery{ID: int64(i + 1), GUID: guid, Event: "push", DeliveredAt: time.Now(),
			Headers: map[string]string{"X-GitHub-Delivery": guid, "X-GitHub-Event": "push"}, Payload: p})
	}
	h, err := NewHooks(Config{URL: g.URL, Token: "gh-token"}, Hook{Org: "acme", ID: 42})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := h.Get(ctx, 1)
	if err != nil || len(first.Payload) != len(big) || first.Done == nil {
		t.Fatalf("first large: %d bytes, %v", len(first.Payload), err)
	}
	if small, err := h.Get(ctx, 3); err != nil || len(small.Payload) == 0 {
		t.Errorf("a small one while the large one is held: %v", err)
	}
	// The second large one cannot be read while the first is held: its
	// call ends at its deadline, whenever that is.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := h.Get(short, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second large one while the first is held: %v, want it to wait (here, to its deadline)", err)
	}
	first.Done()
	first.Done() // a second call gives back nothing more
	second, err := h.Get(ctx, 2)
	if err != nil || len(second.Payload) != len(big) {
		t.Fatalf("the second large one once the first is done: %v", err)
	}
	second.Done()
}
