package httptarget

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/monohook/monohook/internal/trigger"
)

type received struct {
	method, path, query, body string
	header                    http.Header
}

func receiver(t *testing.T, status int, answer string) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Clone()})
		mu.Unlock()
		w.Header().Set("Location", "/queue/item/42/")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }
}

var data = trigger.TemplateData{Event: "push", Repo: "acme/mono", RepoName: "mono", Branch: "main", SHA: "0123abcd", ChangedPathsCount: 2}

// A Jenkins-style trigger: the token from the environment in the query, a
// header and a JSON body from templates.
func TestRequestFromTemplates(t *testing.T) {
	srv, calls := receiver(t, http.StatusCreated, "queued")
	t.Setenv("MONOHOOK_SECRET_JENKINS_TOKEN", "s3cr3t-jenkins")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "BUILDKITE"), []byte("bk-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Starter{SecretsDir: dir}
	req := trigger.StartRequest{Name: "http:x", Token: "monohook-tok", Data: data, Target: trigger.Target{
		Type:    "http",
		URL:     srv.URL + `/job/api/buildWithParameters?token={{secret "JENKINS_TOKEN"}}&SHA={{.SHA}}`,
		Headers: map[string]string{"Authorization": `Bearer {{secret "BUILDKITE"}}`},
		Body:    `{"commit": {{json .SHA}}, "branch": {{json .Branch}}, "paths": {{.ChangedPathsCount}}}`,
	}}
	got, err := s.Start(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "201 Created /queue/item/42/" || got.Output != "queued" {
		t.Errorf("answer %+v", got)
	}
	c := calls()[0]
	if c.method != "POST" || c.path != "/job/api/buildWithParameters" || c.query != "token=s3cr3t-jenkins&SHA=0123abcd" {
		t.Errorf("request %s %s?%s", c.method, c.path, c.query)
	}
	if c.header.Get("Authorization") != "Bearer bk-token" || c.header.Get("Idempotency-Key") != "monohook-tok" || c.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", c.header)
	}
	if c.body != `{"commit": "0123abcd", "branch": "main", "paths": 2}` {
		t.Errorf("body %s", c.body)
	}
}

func TestDefaultBodyIsThePush(t *testing.T) {
	srv, calls := receiver(t, http.StatusOK, "")
	if _, err := (&Starter{}).Start(context.Background(), trigger.StartRequest{Data: data, Target: trigger.Target{Type: "http", URL: srv.URL}}); err != nil {
		t.Fatal(err)
	}
	if b := calls()[0].body; !strings.Contains(b, `"SHA":"0123abcd"`) || !strings.Contains(b, `"Repo":"acme/mono"`) {
		t.Errorf("body %s", b)
	}
}

func TestAnswersAreClassified(t *testing.T) {
	for status, permanent := range map[int]bool{400: true, 401: true, 404: true, 408: false, 429: false, 500: false, 503: false} {
		srv, _ := receiver(t, status, "no")
		_, err := (&Starter{}).Start(context.Background(), trigger.StartRequest{Data: data, Target: trigger.Target{Type: "http", URL: srv.URL}})
		if err == nil || errors.Is(err, trigger.ErrPermanent) != permanent {
			t.Errorf("%d: %v, permanent %v", status, err, permanent)
		}
	}
}

// Secrets never appear in errors, even when the server is unreachable and
// the secret is in the URL.
func TestSecretsStayOutOfErrors(t *testing.T) {
	t.Setenv("MONOHOOK_SECRET_TOKEN", "very-secret-value")
	srv, _ := receiver(t, 200, "")
	srv.Close() // nothing listens any more
	_, err := (&Starter{}).Start(context.Background(), trigger.StartRequest{Data: data, Target: trigger.Target{Type: "http", URL: srv.URL + `/x?t={{secret "TOKEN"}}`}})
	if err == nil || strings.Contains(err.Error(), "very-secret-value") || errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("unreachable: %v", err)
	}
	_, err = (&Starter{}).Start(context.Background(), trigger.StartRequest{Data: data, Target: trigger.Target{Type: "http", URL: srv.URL + `/x?t={{secret "MISSING"}}`}})
	if err == nil || !strings.Contains(err.Error(), "MONOHOOK_SECRET_MISSING") || !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("missing secret: %v", err)
	}
	_, err = (&Starter{}).Start(context.Background(), trigger.StartRequest{Data: data, Target: trigger.Target{Type: "http", URL: srv.URL + `/x?t={{secret "../etc/passwd"}}`}})
	if err == nil || !strings.Contains(err.Error(), "secret name") {
		t.Errorf("bad secret name: %v", err)
	}
}
