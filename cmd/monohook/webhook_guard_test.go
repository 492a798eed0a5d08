package main_test

import (
	"bufio"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/githubhook"
)

// TestServeWebhookGuards drives the built binary: --max-body-memory bounds
// the bodies held before their signature is checked (503 with Retry-After
// past it, room again once a sender is gone), --webhook-allow-cidr refuses
// other sources, and no unverified request adds a metric series.
func TestServeWebhookGuards(t *testing.T) {
	env := append(os.Environ(), "MONOHOOK_MAX_BODY_MEMORY=50", "MONOHOOK_WEBHOOK_SECRET=guard-secret")
	d := startServe(t, env, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--dry-run", "--webhook-allow-cidr", "192.30.252.0/22, 127.0.0.1/32")
	metricsURL := strings.Replace(d.url, "/webhook", "/metrics", 1)
	gauge := func(name string) float64 { return value(scrape(t, metricsURL), name, nil) }
	if got := gauge("monohook_body_memory_limit_bytes"); got != 50<<20 {
		t.Errorf("budget %v bytes, want 50 MiB", got)
	}

	// A sender announcing GitHub's largest body and sending it slowly
	// holds what it sent (a first step), not what it announced.
	addr := strings.TrimPrefix(strings.TrimSuffix(d.url, "/webhook"), "http://")
	head := "POST /webhook HTTP/1.1\r\nHost: monohook\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nContent-Length: " + strconv.Itoa(githubhook.MaxBody) + "\r\n\r\n{"
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		return c
	}
	slow := dial()
	waitFor(t, "the slow body's first step", func() bool { return gauge("monohook_body_memory_bytes") == 64<<10 })

	send := func(client *http.Client, delivery string) *http.Response {
		sig256, _ := githubhook.Sign("guard-secret", []byte(pushPayload))
		req, err := http.NewRequest(http.MethodPost, d.url, strings.NewReader(pushPayload))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", sig256)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := send(http.DefaultClient, "guard-1"); resp.StatusCode != http.StatusAccepted {
		t.Errorf("push beside an announced 25 MiB body: %d", resp.StatusCode)
	}

	// Once it has sent more than 16 MiB it holds its whole size; a second
	// body that must grow past what is left is refused at once with
	// Retry-After, and what it held is returned.
	if _, err := io.WriteString(slow, strings.Repeat(" ", 16<<20)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow body's whole size", func() bool { return gauge("monohook_body_memory_bytes") == githubhook.MaxBody })
	second := dial()
	if _, err := io.WriteString(second, strings.Repeat(" ", 16<<20)); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(second), nil); err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a second body past the budget: %v %v", resp, err)
	}
	waitFor(t, "the second body's room returned", func() bool { return gauge("monohook_body_memory_bytes") == githubhook.MaxBody })

	// The slow sender gives up; its body is answered and its room returned.
	if _, err := io.WriteString(slow, strings.Repeat(" ", 1000)); err != nil {
		t.Fatal(err)
	}
	if err := slow.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(slow), nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("cut-short body: %v %v", resp, err)
	}
	waitFor(t, "the budget to free", func() bool { return gauge("monohook_body_memory_bytes") == 0 })
	if resp := send(http.DefaultClient, "guard-2"); resp.StatusCode != http.StatusAccepted {
		t.Errorf("push once the budget is free: %d", resp.StatusCode)
	}

	// Another address than the allowed ones is refused, signature or not.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	if resp := send(other, "guard-3"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("push from 127.0.0.2: %d", resp.StatusCode)
	}

	// Unsigned requests with made-up event names add no series.
	series := func() int { return len(scrape(t, metricsURL)["monohook_deliveries_total"].GetMetric()) }
	before := series()
	for i := range 200 {
		event := rand.Text()
		if i%10 == 0 {
			event = strings.Repeat("x", 40<<10)
		}
		req, _ := http.NewRequest(http.MethodPost, d.url, strings.NewReader(pushPayload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", event)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("unsigned request: %d", resp.StatusCode)
		}
	}
	families := scrape(t, metricsURL)
	if after := series(); after != before {
		t.Errorf("%d monohook_deliveries_total series after unsigned requests, %d before", after, before)
	}
	for _, c := range []struct {
		outcome string
		want    float64
	}{{"unavailable", 1}, {"bad_request", 1}, {"address_refused", 1}, {"bad_signature", 200}} {
		if got := value(families, "monohook_deliveries_total", map[string]string{"event": "unverified", "outcome": c.outcome}); got != c.want {
			t.Errorf("unverified %s = %v, want %v", c.outcome, got, c.want)
		}
	}
	if got := value(families, "monohook_deliveries_total", map[string]string{"event": "push", "outcome": "accepted"}); got != 2 {
		t.Errorf("push accepted = %v, want 2", got)
	}
	if strings.Contains(d.log(), strings.Repeat("x", 1000)) {
		t.Error("a huge X-GitHub-Event was logged whole")
	}
}

func TestServeRefusesBadGuardFlags(t *testing.T) {
	for _, tt := range []struct{ flag, value, want string }{
		{"--max-body-memory", "30", "at least 50"},
		{"--webhook-allow-cidr", "10.0.0.0/8,github", `"github" is not a CIDR`},
	} {
		_, errOut, code := run(t, os.Environ(), "serve", "--dry-run", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", tt.flag, tt.value)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s %s: exit %d, %q", tt.flag, tt.value, code, errOut)
		}
	}
}
