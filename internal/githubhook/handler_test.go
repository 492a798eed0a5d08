package githubhook_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
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
		body, err := os.ReadFile("../../../shared/bench/" + name)
		if err != nil {
			b.Skipf("shared bench payloads not present: %v", err)
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
