package deliveries_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/trigger"
)

// hostilePush is a push of repository name (a JSON string's contents).
func hostilePush(name string, i int) string {
	return fmt.Sprintf(`{"ref":"refs/heads/main","after":"%040x","repository":{"name":"%s","full_name":"org/%s"},"commits":[{"added":["src/a.go"],"removed":[],"modified":[]}]}`, i, name, name)
}

// sent is one delivery of a burst and the status it should get.
type sent struct {
	id, body string
	want     int
}

// sendAll posts every delivery at once over real HTTP, so that the good
// and the bad share commit groups, and checks each answer.
func sendAll(t *testing.T, s *server, burst []sent) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, d := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			code, answer := s.post(t, request{body: d.body, headers: signed(d.body, "push", d.id)})
			if code != d.want {
				t.Errorf("delivery %q: %d %v, want %d", d.id, code, answer, d.want)
			}
			if code >= 400 && answer["error"] == nil {
				t.Errorf("delivery %q: %d without an error message", d.id, code)
			}
		}()
	}
	wg.Wait()
}

// waitAllEvaluated waits until every stored delivery is evaluated.
func waitAllEvaluated(t *testing.T, s *server, n int) []deliveries.Delivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds := s.stored(t)
		done := 0
		for _, d := range ds {
			if d.Status == "evaluated" {
				done++
			}
		}
		if len(ds) == n && done == n {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries stored, %d evaluated; want %d", len(ds), done, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A delivery id that is not printable UTF-8 is refused alike on both
// databases; a payload whose repository name holds "\u0000" (which
// PostgreSQL's text cannot hold) is stored with U+FFFD in its columns and
// its payload exact. Neither fails the valid deliveries committed with it.
func TestHostileTextDoesNotFailItsGroup(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		s := newWebhookServerOn(t, dsn)
		var burst []sent
		for i := range 180 {
			burst = append(burst, sent{fmt.Sprintf("ok-%03d", i), hostilePush("repo", i), http.StatusAccepted})
			switch i % 30 {
			case 0:
				burst = append(burst, sent{fmt.Sprintf("bad-\xff-%03d", i), hostilePush("repo", i), http.StatusBadRequest})
			case 10:
				burst = append(burst, sent{fmt.Sprintf("tab\t%03d", i), hostilePush("repo", i), http.StatusBadRequest})
			case 15:
				// Shows reversed on a page: exe.gnp-015 reads as 510-png.exe.
				burst = append(burst, sent{fmt.Sprintf("\u202eexe.gnp-%03d", i), hostilePush("repo", i), http.StatusBadRequest})
			case 20:
				burst = append(burst, sent{fmt.Sprintf("nul-%03d", i), hostilePush(`re\u0000po`, i), http.StatusAccepted})
			}
		}
		sendAll(t, s, burst)
		ds := waitAllEvaluated(t, s, 186)
		for _, d := range ds {
			want := "repo"
			if strings.HasPrefix(d.ID, "nul-") {
				want = "re\uFFFDpo"
			}
			if d.Repo != want || d.Ref != "refs/heads/main" {
				t.Errorf("%s stored with repo %q, ref %q; want %q", d.ID, d.Repo, d.Ref, want)
			}
		}
		// The payload is kept as received; parsed again, its NUL reads as
		// U+FFFD, as when it arrived.
		p, err := s.q.Push(context.Background(), "nul-020")
		if err != nil || p.Repo != "re\uFFFDpo" {
			t.Errorf("stored push of nul-020 = %+v, %v", p, err)
		}
	})
}

// A row the database refuses (on PostgreSQL a repository name too long
// for its index, on SQLite a trigger that refuses one name) fails alone,
// with 422: it can never be stored, so GitHub is not told to send it
// again. The valid deliveries committed in its group are stored.
func TestRefusedRowFailsAlone(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		refused := "refused"
		if strings.HasPrefix(dsn, "postgres") {
			long := make([]byte, 3000)
			_, _ = rand.Read(long)
			refused = base64.RawURLEncoding.EncodeToString(long)
		} else {
			db, err := sql.Open("sqlite", strings.TrimPrefix(dsn, "sqlite://"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			schema, err := deliveries.OpenDB(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			schema.Close()
			if _, err := db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON monohook_delivery WHEN NEW.repo = 'refused'
				BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
				t.Fatal(err)
			}
		}
		s := newWebhookServerOn(t, dsn)
		var burst []sent
		for i := range 180 {
			burst = append(burst, sent{fmt.Sprintf("ok-%03d", i), hostilePush("repo", i), http.StatusAccepted})
			if i%30 == 0 {
				burst = append(burst, sent{fmt.Sprintf("refused-%03d", i), hostilePush(refused, i), http.StatusUnprocessableEntity})
			}
		}
		sendAll(t, s, burst)
		for _, d := range waitAllEvaluated(t, s, 180) {
			if !strings.HasPrefix(d.ID, "ok-") {
				t.Errorf("%s was stored", d.ID)
			}
		}
		if !strings.Contains(s.logs.String(), "webhook rejected: unstorable") {
			t.Error("the refusal is not logged")
		}
	})
}

// A push whose ref and paths hold "\u0000" and that a v2 rule selects is
// evaluated and started like any other, and so is the valid push beside
// it: its values travel into the start job (jsonb on PostgreSQL, which
// holds no NUL), so left raw it failed its evaluation batch for ever.
func TestNULInASelectedPushDoesNotStallEvaluation(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		e := newEnv(t)
		rule := "repository: org/repo\npaths: [\"**\"]\ntarget:\n  type: codepipeline\n  pipeline: p\n  variables: {REF: \"{{.Ref}}\"}\n"
		if _, err := e.store.PutV2(context.Background(), "all", []byte(rule)); err != nil {
			t.Fatal(err)
		}
		q := e.open(t, dsn, deliveries.Options{})
		hostile := `{"ref":"refs/heads/ma\u0000in","after":"0123456789abcdef","repository":{"name":"repo","full_name":"org/repo"},"commits":[{"added":["src/a\u0000.go"],"removed":[],"modified":[]}]}`
		p, err := githubhook.ParsePush([]byte(hostile))
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Accept(context.Background(), trigger.Delivery{ID: "nul-ref", Event: "push", Received: time.Now(), Payload: []byte(hostile), Push: p}); err != nil {
			t.Fatal(err)
		}
		if err := q.Accept(context.Background(), delivery("plain", "src/b.go")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return len(e.fake.Calls()) == 2 })
		for _, c := range e.fake.Calls() {
			if strings.ContainsRune(c.Variables["REF"], 0) {
				t.Errorf("a start carried NUL: %q", c.Variables["REF"])
			}
		}
	})
}
