package httpserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, webhook http.Handler, ready func(context.Context) error) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	srv := httptest.NewServer(Handler(Config{Webhook: webhook, Ready: ready, Log: log}))
	t.Cleanup(srv.Close)
	return srv, &logs
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoutes(t *testing.T) {
	hook := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	ready := true
	srv, logs := serve(t, hook, func(context.Context) error {
		if !ready {
			return &NotReady{What: "database: cannot commit", Err: errors.New("failed to connect to `user=monouser database=monodb`: 10.1.2.3:5432: connection refused")}
		}
		return nil
	})
	checkRoutes(t, srv.URL, []route{
		{http.MethodPost, "/ghorg/push", http.StatusAccepted},
		{http.MethodPost, "/webhook", http.StatusAccepted},
		{http.MethodGet, "/webhook", http.StatusMethodNotAllowed},
		{http.MethodPut, "/ghorg/push", http.StatusMethodNotAllowed},
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodGet, "/readyz", http.StatusOK},
		{http.MethodGet, "/nothing", http.StatusNotFound},
	})
	// /readyz needs no login: it says what failed, and the details (hosts,
	// users, databases) go to the log only.
	ready = false
	if code, body := get(t, http.MethodGet, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || body != `{"error":"database: cannot commit","status":"unavailable"}`+"\n" {
		t.Errorf("readyz when not ready: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "monouser") {
		t.Errorf("the details of not ready are not logged: %s", logs)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	hook := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("bug") })
	srv, logs := serve(t, hook, func(context.Context) error { return nil })
	if code, _ := get(t, http.MethodPost, srv.URL+"/webhook"); code != http.StatusInternalServerError {
		t.Errorf("status %d", code)
	}
	if code, _ := get(t, http.MethodGet, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("server unhealthy after a panic: %d", code)
	}
	if !strings.Contains(logs.String(), "panic serving request") {
		t.Errorf("panic not logged: %s", logs)
	}
}

// The dashboard gets every path the server's routes do not; those keep
// answering a wrong method 405.
func TestDashboardGetsOtherPaths(t *testing.T) {
	hook := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	dashboard := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	log := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(Handler(Config{Webhook: hook, Ready: func(context.Context) error { return nil }, Metrics: hook, Dashboard: dashboard, Log: log}))
	t.Cleanup(srv.Close)
	checkRoutes(t, srv.URL, []route{
		{http.MethodPost, "/webhook", http.StatusAccepted},
		{http.MethodGet, "/webhook", http.StatusMethodNotAllowed},
		{http.MethodPut, "/ghorg/push", http.StatusMethodNotAllowed},
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodGet, "/", http.StatusTeapot},
		{http.MethodPost, "/login", http.StatusTeapot},
		{http.MethodGet, "/webhook/x", http.StatusTeapot},
	})
}

type route struct {
	method, path string
	code         int
}

// checkRoutes requests each route of the server at base and checks its
// status.
func checkRoutes(t *testing.T, base string, routes []route) {
	t.Helper()
	for _, r := range routes {
		if code, body := get(t, r.method, base+r.path); code != r.code {
			t.Errorf("%s %s: %d %s, want %d", r.method, r.path, code, body, r.code)
		}
	}
}
