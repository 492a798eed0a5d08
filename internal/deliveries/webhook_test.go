package deliveries_test

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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/trigger"
)

const webhookSecret = "make sure you keep this one quiet"

const pushBody = `{"ref":"refs/heads/master","after":"d8a20fd5b86b1c08c9962573d21317ec70905b60","repository":{"name":"repo","full_name":"Org/repo"},"commits":[{"added":["github-endpoint/webhook/org.py"],"removed":[],"modified":["readme.md"]}]}`

// These tests drive the webhook handler over real HTTP in front of the
// real durable queue: what is acknowledged is stored, and nothing else.

// server runs the handler on a real HTTP server in front of the real
// durable queue (SQLite in a temporary folder) and a dry-run evaluation
// service with a real rule store.
type server struct {
	url  string
	logs *syncBuffer
	q    *deliveries.Queue
	db   *deliveries.DB

	dbClosed bool
}

func newWebhookServer(t *testing.T) *server {
	t.Helper()
	return newWebhookServerOn(t, sqliteDSN(t))
}

// newWebhookServerOn is newWebhookServer with the database at dsn.
func newWebhookServerOn(t *testing.T, dsn string) *server {
	t.Helper()
	s := &server{logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	st, err := rulestore.Open(context.Background(), "file://"+filepath.ToSlash(dir)+"?metadata=skip", rulestore.DefaultPrefix, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if s.db, err = deliveries.OpenDB(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	svc := &trigger.Service{Rules: st, Log: log}
	if s.q, err = deliveries.New(s.db, svc, trigger.DryRun{}, deliveries.Options{Parse: githubhook.ParseEvent, MaxPayload: githubhook.MaxBody}, log); err != nil {
		t.Fatal(err)
	}
	if err := s.q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := githubhook.NewVerifier([]string{webhookSecret}, false)
	if err != nil {
		t.Fatal(err)
	}
	h := &githubhook.Handler{Verifier: v, Acceptor: s.q, Log: log, MaxBody: 1 << 20}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if s.dbClosed {
			// River's Stop waits several seconds for its background work
			// when the database has gone away; nothing here needs it.
			go s.q.Close(context.Background()) //nolint:errcheck // see above
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.q.Close(ctx)
		s.db.Close()
	})
	s.url = srv.URL
	return s
}

// syncBuffer is a log buffer that River's goroutines write to while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stored returns the deliveries in the database, evaluated or not.
func (s *server) stored(t *testing.T) []deliveries.Delivery {
	t.Helper()
	ds, err := s.q.List(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// waitEvaluated waits until delivery id was evaluated and returns it.
func (s *server) waitEvaluated(t *testing.T, id string) deliveries.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := s.q.Get(context.Background(), id)
		if err == nil && d.Status == "evaluated" {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s not evaluated: %+v %v", id, d, err)
		}
		time.Sleep(10 * time.Millisecond)
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
	sig256, sig1 := githubhook.Sign(webhookSecret, []byte(body))
	h := map[string]string{"X-Hub-Signature-256": sig256, "X-Hub-Signature": sig1, "X-GitHub-Event": event}
	if delivery != "" {
		h["X-GitHub-Delivery"] = delivery
	}
	return h
}

// sha1Only signs like the predecessor's tests: "sha1 = <hex>".
func sha1Only(body, event string) map[string]string {
	m := hmac.New(sha1.New, []byte(webhookSecret))
	m.Write([]byte(body))
	return map[string]string{"X-Hub-Signature": "sha1 = " + hex.EncodeToString(m.Sum(nil)), "X-GitHub-Event": event}
}

func TestPushIsStoredAndEvaluated(t *testing.T) {
	s := newWebhookServer(t)
	code, answer := s.post(t, request{body: pushBody, headers: signed(pushBody, "push", "d-1")})
	if code != http.StatusAccepted || answer["delivery"] != "d-1" {
		t.Fatalf("push: %d %v", code, answer)
	}
	d := s.waitEvaluated(t, "d-1")
	if d.Event != "push" || d.Repo != "repo" || d.Ref != "refs/heads/master" || d.Paths != 2 || d.Result == nil {
		t.Errorf("stored %+v", d)
	}
}

func TestPredecessorVectors(t *testing.T) {
	s := newWebhookServer(t)
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
	if got := s.stored(t); len(got) != 1 || got[0].Event != "push" {
		t.Errorf("stored %+v, want only the signed push", got)
	}
}

func TestEvents(t *testing.T) {
	s := newWebhookServer(t)
	code, answer := s.post(t, request{body: `{"zen":"x","hook_id":1}`, headers: signed(`{"zen":"x","hook_id":1}`, "ping", "p")})
	if code != http.StatusOK || answer["message"] != "pong" {
		t.Errorf("ping: %d %v", code, answer)
	}
	code, answer = s.post(t, request{body: `{"action":"opened"}`, headers: signed(`{"action":"opened"}`, "issues", "i")})
	if code != http.StatusOK || answer["status"] != "ignored" {
		t.Errorf("issues event: %d %v", code, answer)
	}
	if got := s.stored(t); len(got) != 0 {
		t.Errorf("non-push events were stored: %+v", got)
	}
}

func TestFormEncodedPayload(t *testing.T) {
	s := newWebhookServer(t)
	body := url.Values{"payload": {pushBody}}.Encode()
	code, answer := s.post(t, request{body: body, contentType: "application/x-www-form-urlencoded", headers: signed(body, "push", "f-1")})
	if code != http.StatusAccepted {
		t.Fatalf("form push: %d %v", code, answer)
	}
	if d := s.waitEvaluated(t, "f-1"); d.Repo != "repo" {
		t.Errorf("form push stored as %+v", d)
	}
}

func TestBadInput(t *testing.T) {
	s := newWebhookServer(t)
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
	if got := s.stored(t); len(got) != 0 {
		t.Errorf("bad input was stored: %+v", got)
	}
	logs := s.logs.String()
	sig := signed(pushBody, "push", "")
	for _, secretThing := range []string{webhookSecret, strings.TrimPrefix(sig["X-Hub-Signature-256"], "sha256="), strings.TrimPrefix(sig["X-Hub-Signature"], "sha1=")} {
		if strings.Contains(logs, secretThing) {
			t.Errorf("the log contains a secret or signature %q", secretThing)
		}
	}
	if !strings.Contains(logs, "webhook rejected: signature") {
		t.Errorf("rejections are not logged:\n%s", logs)
	}
}

func TestAnnouncedOversizeBodyIsRefusedUnread(t *testing.T) {
	s := newWebhookServer(t)
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
	s := newWebhookServer(t)
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
	d := s.waitEvaluated(t, "same-id")
	if d.Duplicates != 4 || d.Round != 0 {
		t.Errorf("stored %+v: want 4 duplicates recorded and one evaluation", d)
	}
	if got := s.stored(t); len(got) != 1 {
		t.Errorf("%d deliveries stored", len(got))
	}
}

func TestDatabaseDownAnswers503(t *testing.T) {
	s := newWebhookServer(t)
	s.db.Close() // the commit fails: nothing may be acknowledged
	s.dbClosed = true
	code, answer := s.post(t, request{body: pushBody, headers: signed(pushBody, "push", "down-1")})
	if code != http.StatusServiceUnavailable {
		t.Errorf("%d %v, want 503", code, answer)
	}
}

func TestMissingDeliveryIDGetsOne(t *testing.T) {
	s := newWebhookServer(t)
	code, answer := s.post(t, request{body: pushBody, headers: signed(pushBody, "push", "")})
	id, _ := answer["delivery"].(string)
	if code != http.StatusAccepted || !strings.HasPrefix(id, "local-") {
		t.Errorf("%d %v", code, answer)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := newWebhookServer(t)
	resp, err := http.Get(s.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}
