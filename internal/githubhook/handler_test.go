package githubhook_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/trigger"
)

const secret = "make sure you keep this one quiet"

// discard accepts every delivery and keeps nothing: BenchmarkHandler
// measures the handler's own work, without storage (the queue's benchmarks
// measure that).
type discard struct{}

func (discard) Accept(context.Context, trigger.Delivery) error { return nil }

// BenchmarkHandler is the work of acknowledging one delivery: read the
// body, check the signature, parse the push, hand it on, answer. No
// network: the request is served in process.
func BenchmarkHandler(b *testing.B) {
	for _, name := range []string{"push-8k.json", "push-200k.json"} {
		body, err := os.ReadFile("../../testdata/bench/" + name)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			v, _ := githubhook.NewVerifier([]string{secret}, false)
			h := &githubhook.Handler{Verifier: v, Acceptor: discard{}, Log: slog.New(slog.DiscardHandler)}
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

// waitForCancel is an acceptor whose commit never ends before the sender
// hangs up.
type waitForCancel struct{ began chan struct{} }

func (a waitForCancel) Accept(ctx context.Context, _ trigger.Delivery) error {
	close(a.began)
	<-ctx.Done()
	return ctx.Err()
}

// TestSenderGoneIsLoggedAsSuch: a sender that hangs up while its delivery
// is being committed is told apart in the log from a delivery refused (the
// delivery may be stored all the same).
func TestSenderGoneIsLoggedAsSuch(t *testing.T) {
	var logs bytes.Buffer
	v, _ := githubhook.NewVerifier([]string{secret}, false)
	acceptor := waitForCancel{began: make(chan struct{})}
	h := &githubhook.Handler{Verifier: v, Acceptor: acceptor, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	body := []byte(`{"ref":"refs/heads/main","repository":{"full_name":"o/r","name":"r"},"head_commit":{"id":"abc"},"commits":[]}`)
	sig256, _ := githubhook.Sign(secret, body)
	ctx, hangUp := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body)).WithContext(ctx)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "gone-1")
	req.Header.Set("X-Hub-Signature-256", sig256)
	go func() { <-acceptor.began; hangUp() }()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d", w.Code)
	}
	if log := logs.String(); !strings.Contains(log, "sender gone before the answer") || !strings.Contains(log, "delivery=gone-1") {
		t.Errorf("log: %s", log)
	}
}
