package deliveries_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

// TestRunsOfAPipeline: a pipeline's runs come newest first with the push
// that started each, a page at a time (the cursor of one page reads the
// next, the last has none); Pipelines counts each pipeline's runs and
// gives its newest.
func TestRunsOfAPipeline(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		ctx := context.Background()
		ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
		t.Cleanup(ok.Close)
		refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }))
		t.Cleanup(refused.Close)
		for name, u := range map[string]string{"ok": ok.URL, "refused": refused.URL} {
			if _, err := e.store.PutV2(ctx, name, []byte("repository: org/repo\npaths: [\"**\"]\ntarget: {type: http, url: '"+u+"/build'}\n")); err != nil {
				t.Fatal(err)
			}
		}
		okName, refusedName := "http:"+ok.URL+"/build", "http:"+refused.URL+"/build"
		q := e.openWith(t, dsn, targets.Starters(targets.Config{Network: netguard.Policy{AllowPrivate: true}}), deliveries.Options{})
		ids := []string{"d:1", "d:2", "d:3"} // a colon in an id must not confuse the cursor
		for _, id := range ids {
			if err := q.Accept(ctx, delivery(id, "x")); err != nil {
				t.Fatal(err)
			}
			waitStarts(t, q, id, 2)
		}

		page, err := q.Runs(ctx, okName, "", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Runs) != 2 || page.Next == "" || page.Runs[0].DeliveryID != "d:3" || page.Runs[1].DeliveryID != "d:2" {
			t.Fatalf("first page: %+v", page)
		}
		r := page.Runs[0]
		if r.Pipeline != okName || r.Result != trigger.Success || r.Repo != "repo" || r.Ref != "refs/heads/main" || r.SHA != "0123456789abcdef" ||
			r.Event != "push" || r.Received.IsZero() || r.Finished == nil {
			t.Errorf("run: %+v", r)
		}
		next, err := q.Runs(ctx, okName, page.Next, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(next.Runs) != 1 || next.Runs[0].DeliveryID != "d:1" || next.Next != "" {
			t.Errorf("second page: %+v", next)
		}
		if refused, err := q.Runs(ctx, refusedName, "", 0); err != nil || len(refused.Runs) != 3 || refused.Runs[0].Result != trigger.Failure {
			t.Errorf("refused: %+v %v", refused, err)
		}
		if none, err := q.Runs(ctx, "no-such", "", 10); err != nil || len(none.Runs) != 0 {
			t.Errorf("unknown pipeline: %+v %v", none, err)
		}
		for _, bad := range []string{"x", "1:x:d", "x:0:d", "12"} {
			if _, err := q.Runs(ctx, okName, bad, 2); !errors.Is(err, deliveries.ErrBadCursor) {
				t.Errorf("cursor %q: %v", bad, err)
			}
		}

		ps, err := q.Pipelines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]deliveries.PipelineSummary{}
		for _, p := range ps {
			byName[p.Name] = p
		}
		if o, f := byName[okName], byName[refusedName]; len(ps) != 2 || o.Runs != 3 || o.Last.Result != trigger.Success ||
			f.Runs != 3 || f.Last.Result != trigger.Failure || f.Last.Updated.IsZero() || ps[0].Name > ps[1].Name {
			t.Errorf("pipelines: %s", fmt.Sprint(ps))
		}
	})
}
