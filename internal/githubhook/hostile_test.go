package githubhook_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/metrics"
	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/trigger"
)

const smallPush = `{"ref":"refs/heads/main","after":"abc","repository":{"full_name":"o/r","name":"r"},"commits":[{"added":["a"]}]}`

// serveHook serves h on /webhook and m on /metrics over real HTTP.
func serveHook(t *testing.T, h *githubhook.Handler, m *metrics.Metrics) *httptest.Server {
	t.Helper()
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhook", h)
	if m != nil {
		mux.Handle("GET /metrics", m.Handler())
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func verifier(t *testing.T, requireSHA256 bool) *githubhook.Verifier {
	t.Helper()
	v, err := githubhook.NewVerifier([]string{secret}, requireSHA256)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// post sends body with headers (and a JSON content type) and returns the
// response, its body read.
func post(t *testing.T, c *http.Client, url string, body io.Reader, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func signed(event, delivery, body string) map[string]string {
	sig256, _ := githubhook.Sign(secret, []byte(body))
	return map[string]string{"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig256}
}

// scrapeDeliveries returns the /metrics page's size and its
// monohook_deliveries_total series as "event/outcome" → value.
func scrapeDeliveries(t *testing.T, url string) (size int, series map[string]float64) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	series = map[string]float64{}
	for _, m := range families["monohook_deliveries_total"].GetMetric() {
		series[label(m, "event")+"/"+label(m, "outcome")] = m.GetCounter().GetValue()
	}
	return len(page), series
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) Accept(_ context.Context, d trigger.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, d.ID)
	return nil
}

// TestUnverifiedRequestsMakeNoSeries: thousands of requests with made-up
// and huge X-GitHub-Event values, none of them signed, neither add a series
// to /metrics nor grow it; a verified event of an unknown name counts as
// "other".
func TestUnverifiedRequestsMakeNoSeries(t *testing.T) {
	m := metrics.New()
	srv := serveHook(t, &githubhook.Handler{Verifier: verifier(t, false), Acceptor: &recorder{}, Metrics: m, MaxBody: 1 << 10}, m)
	sizeBefore, before := scrapeDeliveries(t, srv.URL)
	huge := strings.Repeat("e", 60<<10)
	const n = 2000
	for i := range n {
		event := rand.Text()
		if i%20 == 0 {
			event = huge + event
		}
		h := map[string]string{"X-GitHub-Event": event, "X-GitHub-Delivery": rand.Text()}
		body := smallPush
		want := http.StatusForbidden
		switch i % 4 {
		case 1: // a signature under another secret
			sig, _ := githubhook.Sign("not the secret", []byte(body))
			h["X-Hub-Signature-256"] = sig
		case 2: // over MaxBody
			body, want = strings.Repeat(" ", 2<<10), http.StatusRequestEntityTooLarge
		case 3: // a signature label of nothing known
			h["X-Hub-Signature"] = "md5=00"
		}
		if resp := post(t, srv.Client(), srv.URL+"/webhook", strings.NewReader(body), h); resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
	for range 10 {
		if resp := post(t, srv.Client(), srv.URL+"/webhook", strings.NewReader(smallPush), signed(rand.Text(), rand.Text(), smallPush)); resp.StatusCode != http.StatusOK {
			t.Fatalf("signed unknown event: status %d", resp.StatusCode)
		}
	}
	sizeAfter, after := scrapeDeliveries(t, srv.URL)
	if len(after) != len(before) {
		t.Errorf("%d monohook_deliveries_total series after the requests, %d before", len(after), len(before))
	}
	for s := range after {
		if _, ok := before[s]; !ok {
			t.Errorf("a request made the series %.80q", s)
		}
	}
	// Only the counters' digits may grow.
	if sizeAfter > sizeBefore+1024 {
		t.Errorf("/metrics grew from %d to %d bytes", sizeBefore, sizeAfter)
	}
	for s, want := range map[string]float64{"unverified/bad_signature": n / 4 * 3, "unverified/too_large": n / 4, "other/ignored": 10} {
		if after[s] != want {
			t.Errorf("%s = %v, want %v", s, after[s], want)
		}
	}
}

// requestHead starts a request on a connection of its own with only its
// head (and prefix of the body) sent, so the server holds it mid-read.
func requestHead(t *testing.T, addr, head, prefix string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "POST /webhook HTTP/1.1\r\nHost: monohook\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n"+head+"\r\n"+prefix); err != nil {
		t.Fatal(err)
	}
	return c
}

func waitHeld(t *testing.T, b *githubhook.BodyBudget, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Held() != want {
		if time.Now().After(deadline) {
			t.Fatalf("budget holds %d bytes, want %d", b.Held(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// blocking holds each delivery in Accept until told to go on, as a commit
// that takes a while does.
type blocking struct {
	entered chan trigger.Delivery
	proceed chan struct{}
}

func (b blocking) Accept(_ context.Context, d trigger.Delivery) error {
	b.entered <- d
	<-b.proceed
	return nil
}

// TestBodyBudget: bodies read before their signature is checked are held
// within the budget, and what is held is what has arrived: announcing a
// large body reserves one first step, not its size. A body that must grow
// past what is free is refused at once (503, Retry-After); chunked bodies
// are reserved as they grow; a reservation lasts until Accept has returned
// and then frees room for a signed push.
func TestBodyBudget(t *testing.T) {
	const maxBody = 1 << 20
	// Room for two bodies of maxBody once past their last enlargement.
	budget := githubhook.NewBodyBudget(2 * maxBody)
	acceptor := blocking{entered: make(chan trigger.Delivery, 1), proceed: make(chan struct{})}
	m := metrics.New()
	srv := serveHook(t, &githubhook.Handler{Verifier: verifier(t, false), Acceptor: acceptor, Metrics: m, MaxBody: maxBody, Budget: budget}, m)
	addr := srv.Listener.Addr().String()
	announce := "Content-Length: " + strconv.Itoa(maxBody) + "\r\n"

	// Connections that send headers and wait hold nothing, whatever size
	// they announce (these would count below if they did).
	for _, size := range []int{100, maxBody} {
		requestHead(t, addr, "Content-Length: "+strconv.Itoa(size)+"\r\n", "")
	}
	// Two unsigned bodies announcing the largest size, sent slowly, hold
	// one first step each: announcing is not holding.
	a := requestHead(t, addr, announce, "{")
	b := requestHead(t, addr, announce, "{")
	waitHeld(t, budget, 2*githubhook.FirstStep)

	// b sends all but its last byte: it holds its whole size.
	if _, err := io.WriteString(b, strings.Repeat(" ", maxBody-2)); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, budget, githubhook.FirstStep+maxBody)

	// a sends half: to grow to its size it needs more than is free while
	// it still holds the half, so it is refused at once, and what it held
	// is returned.
	if _, err := io.WriteString(a, strings.Repeat(" ", maxBody/2)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(a), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a body growing past the budget: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	waitHeld(t, budget, maxBody)

	// A signed push now gets through; its body stays reserved while the
	// Acceptor has it, and is returned once Accept has returned.
	done := make(chan int, 1)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/webhook", strings.NewReader(smallPush))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range signed("push", "after-1", smallPush) {
		req.Header.Set(k, v)
	}
	go func() {
		resp, err := srv.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	d := <-acceptor.entered
	// At least its length: a reused buffer counts with its capacity.
	if held := budget.Held(); d.ID != "after-1" || held < maxBody+int64(len(smallPush)) || held > 2*maxBody {
		t.Errorf("in Accept: delivery %q, budget holds %d, want at least %d", d.ID, held, maxBody+len(smallPush))
	}
	acceptor.proceed <- struct{}{}
	if code := <-done; code != http.StatusAccepted {
		t.Errorf("signed push after the budget freed: status %d", code)
	}
	waitHeld(t, budget, maxBody)

	// Chunked bodies announce nothing; each larger buffer is reserved
	// before it is made, the one being copied from still counted. 300 KiB
	// fits in what is free beside b and is read (and refused for its
	// signature); 600 KiB needs a 1 MiB buffer besides its 512 KiB one,
	// which does not fit.
	chunked := func(size int) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/webhook", io.MultiReader(strings.NewReader(strings.Repeat(" ", size))))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := chunked(300 << 10); resp.StatusCode != http.StatusForbidden {
		t.Errorf("chunked 300 KiB: status %d, want 403", resp.StatusCode)
	}
	if resp := chunked(600 << 10); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("chunked 600 KiB: status %d, want 503 with Retry-After", resp.StatusCode)
	}
	waitHeld(t, budget, maxBody)

	// b hangs up: what it held is returned.
	b.Close()
	waitHeld(t, budget, 0)

	_, series := scrapeDeliveries(t, srv.URL)
	for s, want := range map[string]float64{"unverified/unavailable": 2, "unverified/bad_signature": 1, "push/accepted": 1} {
		if series[s] != want {
			t.Errorf("%s = %v, want %v", s, series[s], want)
		}
	}
}

// TestRequireSHA256OverHTTP: with requireSHA256 only X-Hub-Signature-256
// is read; X-Hub-Signature alone is refused whatever algorithm it names.
func TestRequireSHA256OverHTTP(t *testing.T) {
	sig256, sig1 := githubhook.Sign(secret, []byte(smallPush))
	for _, tt := range []struct {
		name    string
		require bool
		headers map[string]string
		want    int
	}{
		{"sha256 header", true, map[string]string{"X-Hub-Signature-256": sig256}, http.StatusAccepted},
		{"both headers", true, map[string]string{"X-Hub-Signature-256": sig256, "X-Hub-Signature": sig1}, http.StatusAccepted},
		{"sha1 header", true, map[string]string{"X-Hub-Signature": sig1}, http.StatusForbidden},
		{"sha256 digest in the sha1 header", true, map[string]string{"X-Hub-Signature": sig256}, http.StatusForbidden},
		{"sha1 header, sha1 allowed", false, map[string]string{"X-Hub-Signature": sig1}, http.StatusAccepted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveHook(t, &githubhook.Handler{Verifier: verifier(t, tt.require), Acceptor: &recorder{}}, nil)
			tt.headers["X-GitHub-Event"] = "push"
			if resp := post(t, srv.Client(), srv.URL+"/webhook", strings.NewReader(smallPush), tt.headers); resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// TestAllowFrom: with an allow-list, a connection from elsewhere is refused
// before its body is read, and counted as unverified.
func TestAllowFrom(t *testing.T) {
	nets, err := netguard.ParsePrefixes("192.30.252.0/22, 127.0.0.1 ,2606:50c0::/32")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	srv := serveHook(t, &githubhook.Handler{Verifier: verifier(t, false), Acceptor: &recorder{}, Metrics: m, AllowFrom: nets}, m)
	if resp := post(t, srv.Client(), srv.URL+"/webhook", strings.NewReader(smallPush), signed("push", "from-1", smallPush)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("from 127.0.0.1: status %d", resp.StatusCode)
	}
	// Another loopback address, not on the list.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	if resp := post(t, other, srv.URL+"/webhook", strings.NewReader(smallPush), signed("push", "from-2", smallPush)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("from 127.0.0.2: status %d", resp.StatusCode)
	}
	_, series := scrapeDeliveries(t, srv.URL)
	if series["unverified/address_refused"] != 1 || series["push/accepted"] != 1 {
		t.Errorf("series %v", series)
	}
}

// TestMissingRefsOverHTTP: a push with an empty ref and a pull request
// without its base branch or head commit are refused with 400.
func TestMissingRefsOverHTTP(t *testing.T) {
	srv := serveHook(t, &githubhook.Handler{Verifier: verifier(t, false), Acceptor: &recorder{}}, nil)
	for _, tt := range []struct{ event, body string }{
		{"push", `{"ref":"","repository":{"name":"r","full_name":"o/r"}}`},
		{"pull_request", `{"action":"opened","number":1,"pull_request":{"head":{"sha":"h"}},"repository":{"name":"r","full_name":"o/r"}}`},
		{"pull_request", `{"action":"opened","number":1,"pull_request":{"base":{"ref":"main"},"head":{"sha":""}},"repository":{"name":"r","full_name":"o/r"}}`},
	} {
		if resp := post(t, srv.Client(), srv.URL+"/webhook", strings.NewReader(tt.body), signed(tt.event, "", tt.body)); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %s: status %d, want 400", tt.event, tt.body, resp.StatusCode)
		}
	}
}
