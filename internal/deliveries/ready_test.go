package deliveries_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/httpserver"
	"github.com/monohook/monohook/internal/trigger"
)

// readyServer is the real routes (webhook and /readyz) in front of a
// queue on the database at dsn, with readiness wired as serve wires it.
func readyServer(t *testing.T, dsn string) (base string, db *deliveries.DB, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	e := newEnv(t)
	var err error
	if db, err = deliveries.OpenDB(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	q, err := deliveries.New(db, &trigger.Service{Rules: e.store, Log: log}, trigger.DryRun{}, deliveries.Options{Parse: githubhook.ParseEvent, MaxPayload: githubhook.MaxBody}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Close(ctx)
		db.Close()
	})
	v, err := githubhook.NewVerifier([]string{webhookSecret}, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpserver.Handler(httpserver.Config{
		Webhook: &githubhook.Handler{Verifier: v, Acceptor: q, Log: log},
		Ready: func(ctx context.Context) error {
			if err := q.Ready(ctx); err != nil {
				return &httpserver.NotReady{What: "database: cannot commit", Err: err}
			}
			return nil
		},
		Log: log,
	}))
	t.Cleanup(srv.Close)
	return srv.URL, db, logs
}

func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// postPush posts a signed push of fresh, incompressible content, which
// needs more pages than a new database has free.
func postPush(t *testing.T, base, id string) int {
	t.Helper()
	pad := make([]byte, 64<<10)
	_, _ = rand.Read(pad)
	body := fmt.Sprintf(`{"ref":"refs/heads/main","after":"%s","repository":{"name":"repo","full_name":"org/repo"},"commits":[],"pad":"%s"}`, strings.Repeat("a", 40), hex.EncodeToString(pad))
	s := &server{url: base + "/webhook"}
	code, _ := s.post(t, request{body: body, headers: signed(body, "push", id)})
	return code
}

// A full disk (SQLite's SQLITE_FULL) makes every commit fail: /readyz
// says so, in words that name nothing of the database, until a delivery
// can be committed again.
func TestReadyzSaysNotReadyWhileCommitsFail(t *testing.T) {
	base, db, logs := readyServer(t, sqliteDSN(t))
	if code, body := readyz(t, base); code != http.StatusOK {
		t.Fatalf("readyz of a working database: %d %s", code, body)
	}
	if err := deliveries.SetFull(context.Background(), db, true); err != nil {
		t.Fatal(err)
	}
	if code := postPush(t, base, "full-1"); code != http.StatusServiceUnavailable {
		t.Fatalf("push to a full database: %d, want 503", code)
	}
	code, body := readyz(t, base)
	if code != http.StatusServiceUnavailable || body != `{"error":"database: cannot commit","status":"unavailable"}` {
		t.Errorf("readyz while commits fail: %d %s", code, body)
	}
	if l := logs.String(); !strings.Contains(l, "not ready") || !strings.Contains(l, "full") {
		t.Errorf("the reason is not logged:\n%s", l)
	}
	if err := deliveries.SetFull(context.Background(), db, false); err != nil {
		t.Fatal(err)
	}
	if code := postPush(t, base, "room-1"); code != http.StatusAccepted {
		t.Fatalf("push after space was freed: %d, want 202", code)
	}
	if code, body := readyz(t, base); code != http.StatusOK {
		t.Errorf("readyz after a commit succeeded again: %d %s", code, body)
	}
}
