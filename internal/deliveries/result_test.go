package deliveries_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

// TestAnswerIsTheResult: an http target's 2xx answer and an exec target's
// exit 0 are their results, recorded with the start; a start that failed
// for good has the result failure, the error as its detail.
func TestAnswerIsTheResult(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		ctx := context.Background()
		ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/builds/7")
			w.WriteHeader(http.StatusCreated)
		}))
		t.Cleanup(ok.Close)
		refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no such job", http.StatusNotFound)
		}))
		t.Cleanup(refused.Close)
		for name, target := range map[string]string{
			"ok":      "{type: http, url: '" + ok.URL + "/build'}",
			"refused": "{type: http, url: '" + refused.URL + "/build'}",
			"command": "{type: exec, command: [sh, -c, 'exit 0']}",
			"broken":  "{type: exec, command: ['false']}", // another name: exec:false
		} {
			rule := "repository: org/repo\npaths: [\"**\"]\ntarget: " + target + "\n"
			if _, err := e.store.PutV2(ctx, name, []byte(rule)); err != nil {
				t.Fatal(err)
			}
		}
		starter := targets.Starters(targets.Config{Network: netguard.Policy{AllowPrivate: true}, Exec: true})
		q := e.openWith(t, dsn, starter, deliveries.Options{})
		if err := q.Accept(ctx, delivery("d1", "x")); err != nil {
			t.Fatal(err)
		}
		d := waitStarts(t, q, "d1", 4)
		for _, s := range d.Starts {
			want, detail := trigger.Success, ""
			switch {
			case strings.HasPrefix(s.Pipeline, "http:"+ok.URL):
				detail = "201 Created"
				if s.URL != ok.URL+"/builds/7" {
					t.Errorf("%s: url %q", s.Pipeline, s.URL)
				}
			case strings.HasPrefix(s.Pipeline, "http:"+refused.URL):
				want, detail = trigger.Failure, "404 Not Found"
			case s.Status == "failed":
				want, detail = trigger.Failure, "exit status 1"
			default:
				detail = "exit 0"
			}
			if s.Result != want || !strings.Contains(s.ResultDetail, detail) || s.Finished == nil || s.Finished.Before(d.Received) {
				t.Errorf("%s: %s result %q %q finished %v; want %s %q", s.Pipeline, s.Status, s.Result, s.ResultDetail, s.Finished, want, detail)
			}
		}
	})
}
