// Package httpserver owns monohook's HTTP surface: routes, server limits
// and timeouts, and the recovery that keeps a bug in one request from
// taking the process down.
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// Config is what the server serves.
type Config struct {
	// Webhook receives GitHub deliveries on POST /ghorg/push (the
	// predecessor's route) and POST /webhook.
	Webhook http.Handler
	// Ready reports whether the dependencies (rule store, database) work.
	// Its error is logged; the answer says only a *NotReady's What.
	Ready func(context.Context) error
	// Metrics, when set, is served on GET /metrics.
	Metrics http.Handler
	// Dashboard, when set, serves every path the routes above do not.
	Dashboard http.Handler
	Log       *slog.Logger
}

// NotReady is a readiness failure. /readyz needs no login, so its answer
// says only What failed ("database: cannot commit"); Err, which may name
// hosts, users and databases, goes to the log.
type NotReady struct {
	What string
	Err  error
}

func (e *NotReady) Error() string { return e.What + ": " + e.Err.Error() }

func (e *NotReady) Unwrap() error { return e.Err }

// Handler returns the routes.
func Handler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	var paths []string
	route := func(method, path string, h http.Handler) {
		mux.Handle(method+" "+path, h)
		paths = append(paths, path)
	}
	route(http.MethodPost, "/ghorg/push", cfg.Webhook)
	route(http.MethodPost, "/webhook", cfg.Webhook)
	route(http.MethodGet, "/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	route(http.MethodGet, "/readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := cfg.Ready(ctx); err != nil {
			cfg.Log.Warn("not ready", "err", err)
			what := "not ready"
			var nr *NotReady
			if errors.As(err, &nr) {
				what = nr.What
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": what})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	if cfg.Metrics != nil {
		route(http.MethodGet, "/metrics", cfg.Metrics)
	}
	if cfg.Dashboard == nil {
		return recoverPanics(mux, cfg.Log)
	}
	// The paths above, with any method, stay with mux, which answers a
	// wrong method 405 as before; every other path is the dashboard's.
	top := http.NewServeMux()
	top.Handle("/", cfg.Dashboard)
	for _, path := range paths {
		top.Handle(path, mux)
	}
	return recoverPanics(top, cfg.Log)
}

// NewServer returns an http.Server with timeouts suited to webhooks: a slow
// or idle client cannot hold a connection for long, and a 25 MiB body still
// has time to arrive.
func NewServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func recoverPanics(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				log.Error("panic serving request", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
