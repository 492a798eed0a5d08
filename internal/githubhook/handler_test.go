package githubhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the predecessor's header
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/queue"
	"github.com/monohook/monohook/internal/trigger"
)

const secret = "make sure you keep this one quiet"

const pushBody = `{"ref":"refs/heads/master","after":"d8a20fd5b86b1c08c9962573d21317ec70905b60","repository":{"name":"repo","full_name":"Org/repo"},"commits":[{"added":["github-endpoint/webhook/org.py"],"removed":[],"modified":["readme.md"]}]}`

// server runs the handler on a real HTTP server in front of a real queue;
// processed collects what the queue's worker received.
type server struct {
	url  string
	logs *bytes.Buffer

	mu        sync.Mutex
	processed []trigger.Delivery
	release   chan struct{} // when non-nil, workers wait on it
}

func newServer(t *testing.T, queueSize int, block bool) *server {
	t.Helper()
	s := &server{logs: &bytes.Buffer{}}
	if block {
		s.release = make(chan struct{})
	}
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, s.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	q := queue.NewMemory(queueSize, 1, func(_ context.Context, batch []trigger.Delivery) {
		if s.release != nil {
			<-s.release
		}
		s.mu.Lock()
		s.processed = append(s.processed, batch...)
		s.mu.Unlock()
	}, log)
	v, err := githubhook.NewVerifier([]string{secret}, false)
	if err != nil {
		t.Fatal(err)
	}
	h := &githubhook.Handler{Verifier: v, Acceptor: q, Log: log, MaxBody: 1 << 20}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if s.release != nil {
			close(s.release)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	s.url = srv.URL
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitProcessed waits until n deliveries were processed.
func (s *server) waitProcessed(t *testing.T, n int) []trigger.Delivery {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got := append([]trigger.Delivery(nil), s.processed...)
		s.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type request struct {
	body        string
	contentType string
	headers     map[string]string
}

func (s *server) post(t *testing.T, r request) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	ct := r.contentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer
}

func signed(body, event, delivery string) map[string]string {
	sig256, sig1 := githubhook.Sign(secret, []byte(body))
	h := map[string]string{"X-Hub-Signature-256": sig256, "X-Hub-Signature": sig1, "X-GitHub-Event": event}
	if delivery != "" {
		h["X-GitHub-Delivery"] = delivery
	}
	return h
}

// sha1Only signs like the predecessor's tests: "sha1 = <hex>".
func sha1Only(body, event string) map[string]string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(body))
	return map[string]string{"X-Hub-Signature": "sha1 = " + hex.EncodeToString(m.Sum(nil)), "X-GitHub-Event": event}
}

func TestPushIsAcceptedAndProcessed(t *testing.T) {
	s := newServer(t, 10, false)
	code, answer := s.post(t, request{body: pushBody, headers: signed(pushBody, "push", "d-1")})
	if code != http.StatusAccepted || answer["delivery"] != "d-1" {
		t.Fatalf("push: %d %v", code, answer)
	}
	got := s.waitProcessed(t, 1)
	if len(got) != 1 {
		t.Fatalf("processed %d deliveries", len(got))
	}
	p := got[0].Push
	if got[0].ID != "d-1" || p.DeliveryID != "d-1" || p.Repo != "repo" || p.Ref != "refs/heads/master" || len(p.Paths) != 2 {
		t.Errorf("processed %+v / %+v", got[0], p)
	}
}

func TestPredecessorVectors(t *testing.T) {
	s := newServer(t, 10, false)
	// Signature header as the predecessor's tests sent it: "sha1 = <hex>".
	for _, event := range []string{"ping", "push"} {
		code, _ := s.post(t, request{body: pushBody, headers: sha1Only(pushBody, event)})
		if code/100 != 2 {
			t.Errorf("%s with a sha1 signature: %d", event, code)
		}
		bad := map[string]string{"X-Hub-Signature": "sha1 = BAD", "X-GitHub-Event": event}
		if code, answer := s.post(t, request{body: pushBody, headers: bad}); code != http.StatusForbidden {
			t.Errorf("%s with a bad signature: %d %v", event, code, answer)
		}
	}
	if got := s.waitProcessed(t, 1); len(got) != 1 {
		t.Errorf("processed %d deliveries, want only the signed push", len(got))
	}
}

func TestEvents(t *testing.T) {
	s := newServer(t, 10, false)
	code, answer := s.post(t, request{body: `{"zen":"x","hook_id":1}`, headers: signed(`{"zen":"x","hook_id":1}`, "ping", "p")})
	if code != http.StatusOK || answer["message"] != "pong" {
		t.Errorf("ping: %d %v", code, answer)
	}
	code, answer = s.post(t, request{body: `{"action":"opened"}`, headers: signed(`{"action":"opened"}`, "issues", "i")})
	if code != http.StatusOK || answer["status"] != "ignored" {
		t.Errorf("issues event: %d %v", code, answer)
	}
	if got := s.waitProcessed(t, 0); len(got) != 0 {
		t.Errorf("non-push events were processed: %d", len(got))
	}
}

func TestFormEncodedPayload(t *testing.T) {
	s := newServer(t, 10, false)
	body := url.Values{"payload": {pushBody}}.Encode()
	code, answer := s.post(t, request{body: body, contentType: "application/x-www-form-urlencoded", headers: signed(body, "push", "f-1")})
	if code != http.StatusAccepted {
		t.Fatalf("form push: %d %v", code, answer)
	}
	if got := s.waitProcessed(t, 1); len(got) != 1 || got[0].Push.Repo != "repo" {
		t.Errorf("form push not processed: %+v", got)
	}
}

func TestBadInput(t *testing.T) {
	s := newServer(t, 10, false)
	big := `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	form := "other=1"
	tests := []struct {
		name string
		req  request
		code int
	}{
		{"no signature", request{body: pushBody, headers: map[string]string{"X-GitHub-Event": "push"}}, http.StatusForbidden},
		{"wrong secret", request{body: pushBody, headers: map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + strings.Repeat("ab", 32)}}, http.StatusForbidden},
		{"sha256 label over a sha1 digest", request{body: pushBody, headers: map[string]string{"X-GitHub-Event": "push",
			"X-Hub-Signature": strings.Replace(sha1Only(pushBody, "push")["X-Hub-Signature"], "sha1 ", "sha256", 1)}}, http.StatusForbidden},
		{"signature of another body", request{body: pushBody + " ", headers: signed(pushBody, "push", "x")}, http.StatusForbidden},
		{"missing event", request{body: pushBody, headers: map[string]string{"X-Hub-Signature-256": signed(pushBody, "", "")["X-Hub-Signature-256"]}}, http.StatusBadRequest},
		{"body too large", request{body: big, headers: signed(big, "push", "big")}, http.StatusRequestEntityTooLarge},
		{"unsupported media type", request{body: pushBody, contentType: "text/plain", headers: signed(pushBody, "push", "t")}, http.StatusUnsupportedMediaType},
		{"form without payload", request{body: form, contentType: "application/x-www-form-urlencoded", headers: signed(form, "push", "f")}, http.StatusBadRequest},
		{"malformed json", request{body: `{"ref":`, headers: signed(`{"ref":`, "push", "m")}, http.StatusBadRequest},
		{"push without repository", request{body: `{"ref":"refs/heads/main"}`, headers: signed(`{"ref":"refs/heads/main"}`, "push", "n")}, http.StatusBadRequest},
		{"delivery id too long", request{body: pushBody, headers: signed(pushBody, "push", strings.Repeat("d", 300))}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		code, answer := s.post(t, tt.req)
		if code != tt.code {
			t.Errorf("%s: %d %v, want %d", tt.name, code, answer, tt.code)
		}
		if answer["error"] == nil || answer["error"] == "" {
			t.Errorf("%s: no error message in %v", tt.name, answer)
		}
	}
	if got := s.waitProcessed(t, 0); len(got) != 0 {
		t.Errorf("bad input was processed: %+v", got)
	}
	logs := s.logs.String()
	sig := signed(pushBody, "push", "")
	for _, secretThing := range []string{secret, strings.TrimPrefix(sig["X-Hub-Signature-256"], "sha256="), strings.TrimPrefix(sig["X-Hub-Signature"], "sha1=")} {
		if strings.Contains(logs, secretThing) {
			t.Errorf("the log contains a secret or signature %q", secretThing)
		}
	}
	if !strings.Contains(logs, "webhook rejected: signature") {
		t.Errorf("rejections are not logged:\n%s", logs)
	}
}

func TestAnnouncedOversizeBodyIsRefusedUnread(t *testing.T) {
	s := newServer(t, 10, false)
	req, _ := http.NewRequest(http.MethodPost, s.url, io.NopCloser(strings.NewReader("{}")))
	req.ContentLength = 2 << 20
	req.Header.Set("X-GitHub-Event", "push")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	// An error here is the server closing the connection on a body it will
	// not read, which is also a refusal.
}

func TestDuplicateDeliveryIsProcessedOnce(t *testing.T) {
	s := newServer(t, 10, false)
	var wg sync.WaitGroup
	codes := make([]int, 5)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = s.post(t, request{body: pushBody, headers: signed(pushBody, "push", "same-id")})
		}()
	}
	wg.Wait()
	accepted := 0
	for _, c := range codes {
		switch c {
		case http.StatusAccepted:
			accepted++
		case http.StatusOK:
		default:
			t.Errorf("status %d", c)
		}
	}
	if accepted != 1 {
		t.Errorf("%d of 5 copies accepted, want 1", accepted)
	}
	time.Sleep(50 * time.Millisecond)
	if got := s.waitProcessed(t, 1); len(got) != 1 {
		t.Errorf("processed %d times", len(got))
	}
}

func TestFullQueueAnswers503(t *testing.T) {
	s := newServer(t, 1, true) // the worker blocks; one waits in the queue
	codes := map[int]int{}
	for i := range 4 {
		code, _ := s.post(t, request{body: pushBody, headers: signed(pushBody, "push", "q-"+string(rune('a'+i)))})
		codes[code]++
	}
	if codes[http.StatusServiceUnavailable] == 0 || codes[http.StatusAccepted] == 0 {
		t.Errorf("statuses %v: want some accepted, then 503 once full", codes)
	}
}

func TestMissingDeliveryIDGetsOne(t *testing.T) {
	s := newServer(t, 10, false)
	code, answer := s.post(t, request{body: pushBody, headers: signed(pushBody, "push", "")})
	id, _ := answer["delivery"].(string)
	if code != http.StatusAccepted || !strings.HasPrefix(id, "local-") {
		t.Errorf("%d %v", code, answer)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := newServer(t, 10, false)
	resp, err := http.Get(s.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

// BenchmarkHandler is the work of acknowledging one delivery: read the
// body, check the signature, parse the push, hand it to the queue, answer.
// No network: the request is served in process.
func BenchmarkHandler(b *testing.B) {
	for _, name := range []string{"push-8k.json", "push-200k.json"} {
		body, err := os.ReadFile("../../../shared/bench/" + name)
		if err != nil {
			b.Skipf("shared bench payloads not present: %v", err)
		}
		b.Run(name, func(b *testing.B) {
			q := queue.NewMemory(1<<16, 1, func(context.Context, []trigger.Delivery) {}, slog.New(slog.DiscardHandler))
			defer func() { _ = q.Close(context.Background()) }()
			v, _ := githubhook.NewVerifier([]string{secret}, false)
			h := &githubhook.Handler{Verifier: v, Acceptor: q, Log: slog.New(slog.DiscardHandler)}
			sig256, _ := githubhook.Sign(secret, body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-GitHub-Delivery", "bench-"+strconv.Itoa(i))
				req.Header.Set("X-Hub-Signature-256", sig256)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
