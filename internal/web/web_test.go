package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/trigger"
)

const adminToken = "unit-test-admin-token-0123456789"

// newUI serves the dashboard over a real SQLite queue (not started: its
// deliveries stay received) and a file rule store.
func newUI(t *testing.T, token string) (*httptest.Server, *deliveries.Queue) {
	t.Helper()
	return newUIOn(t, token, "sqlite://"+filepath.Join(t.TempDir(), "monohook.db"))
}

// newUIOn serves the dashboard over the database at dsn: several on one
// database are replicas.
func newUIOn(t *testing.T, token, dsn string) (*httptest.Server, *deliveries.Queue) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	db, err := deliveries.OpenDB(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	q, err := deliveries.New(db, nil, nil, deliveries.Options{Parse: githubhook.ParseEvent, MaxPayload: githubhook.MaxBody}, log)
	if err != nil {
		t.Fatal(err)
	}
	st, err := rulestore.Open(ctx, "file://"+filepath.ToSlash(dir)+"?metadata=skip", rulestore.DefaultPrefix, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Put(ctx, rulestore.Document{GitHubRepo: "mono", GitHubBranch: "main", CodePipelineName: "api", ChangeMatchExpressions: "api/.*"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutV2(ctx, "web", []byte("description: the web app\nrepository: org/mono\npaths: [\"web/**\", \"!**/*.md\"]\ntarget: {type: codebuild, project: web-ci}\n")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&UI{AdminToken: token, Sessions: db, Deliveries: q, Store: st, Rules: st, Log: log}).Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = q.Close(context.Background())
		db.Close()
		st.Close()
	})
	return srv, q
}

func noRedirects(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func body(t *testing.T, resp *http.Response, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// login returns a client holding a session, and the CSRF token of a page.
func login(t *testing.T, srv *httptest.Server) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := noRedirects(jar)
	resp, err := c.PostForm(srv.URL+"/login", url.Values{"token": {adminToken}, "next": {"/rules"}})
	body(t, resp, err)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/rules" {
		t.Fatalf("login: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure {
		t.Errorf("session cookie attributes: %+v", ck)
	}
	resp, err = c.Get(srv.URL + "/")
	page := body(t, resp, err)
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page: %s", page)
	}
	return c, m[1]
}

func TestOffWithoutToken(t *testing.T) {
	srv, _ := newUI(t, "")
	resp, err := http.Get(srv.URL + "/")
	text := body(t, resp, err)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(text, "MONOHOOK_ADMIN_TOKEN") {
		t.Errorf("%d %q", resp.StatusCode, text)
	}
	for _, path := range []string{"/login", "/rules", "/delivery?id=x"} {
		if resp, err := http.Get(srv.URL + path); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with the dashboard off: %v %v", path, resp.StatusCode, err)
		}
	}
}

func TestLoginSessionAndCSRF(t *testing.T) {
	srv, q := newUI(t, adminToken)
	anon := noRedirects(nil)

	resp, err := anon.Get(srv.URL + "/rules")
	body(t, resp, err)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Frules" {
		t.Errorf("anonymous page: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	resp, err = anon.PostForm(srv.URL+"/delivery/replay", url.Values{"id": {"x"}})
	body(t, resp, err)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous POST: %d", resp.StatusCode)
	}
	resp, err = anon.PostForm(srv.URL+"/login", url.Values{"token": {adminToken[:len(adminToken)-1]}})
	body(t, resp, err)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token: %d %v", resp.StatusCode, resp.Cookies())
	}
	// A forged or tampered cookie is no session.
	for _, v := range []string{"garbage", "9999999999.00.00", strings.Repeat("a", 80), strings.Repeat("a", 64)} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: v})
		resp, err := anon.Do(req)
		body(t, resp, err)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("cookie %q let in: %d", v, resp.StatusCode)
		}
	}
	// A login may only send the browser back into this site.
	for _, next := range []string{"https://evil.example/", "//evil.example/", `/\evil.example`} {
		resp, err := anon.PostForm(srv.URL+"/login", url.Values{"token": {adminToken}, "next": {next}})
		body(t, resp, err)
		if resp.Header.Get("Location") != "/" {
			t.Errorf("next %q redirected to %q", next, resp.Header.Get("Location"))
		}
	}
	// A login posted from another site is refused.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"token": {adminToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = anon.Do(req)
	body(t, resp, err)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login: %d", resp.StatusCode)
	}

	c, csrf := login(t, srv)
	if err := q.Accept(context.Background(), push(t, "d1")); err != nil {
		t.Fatal(err)
	}
	resp, err = c.Get(srv.URL + "/")
	if page := body(t, resp, err); !strings.Contains(page, `data-id="d1"`) {
		t.Errorf("the delivery is not listed: %s", page)
	}
	tag := push(t, "d-tag")
	tag.Push.Ref = "refs/tags/v1"
	if err := q.Accept(context.Background(), tag); err != nil {
		t.Fatal(err)
	}
	resp, err = c.Get(srv.URL + "/?q=d-tag")
	if page := body(t, resp, err); !strings.Contains(page, "skipped: tag") || strings.Contains(page, `data-id="d1"`) {
		t.Errorf("search for the tag push: %s", page)
	}
	resp, err = c.PostForm(srv.URL+"/delivery/replay", url.Values{"csrf": {"00" + csrf[2:]}, "id": {"d1"}})
	body(t, resp, err)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("replay with a wrong CSRF token: %d", resp.StatusCode)
	}
	resp, err = c.PostForm(srv.URL+"/delivery/replay", url.Values{"csrf": {csrf}, "id": {"d1"}})
	body(t, resp, err)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/delivery?id=d1&replayed=1" {
		t.Errorf("replay: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.PostForm(srv.URL+"/delivery/replay", url.Values{"csrf": {csrf}, "id": {"nope"}})
	body(t, resp, err)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("replay of an unknown delivery: %d", resp.StatusCode)
	}
	resp, err = c.Get(srv.URL + "/delivery?id=nope")
	body(t, resp, err)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown delivery: %d", resp.StatusCode)
	}
	resp, err = c.Get(srv.URL + "/delivery")
	body(t, resp, err)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no delivery named: %d", resp.StatusCode)
	}
	resp, err = c.Get(srv.URL + "/?status=bogus")
	body(t, resp, err)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad status filter: %d", resp.StatusCode)
	}

	// The path tester.
	resp, err = c.PostForm(srv.URL+"/rules/test", url.Values{"csrf": {csrf}, "repo": {"mono"}, "branch": {"main"}, "paths": {"docs/a.md\r\napi/x.go\n"}})
	page := body(t, resp, err)
	if !strings.Contains(page, `Would start: <strong>api</strong>`) || !strings.Contains(page, "2 paths") {
		t.Errorf("path tester: %s", page)
	}

	// A v2 rule is listed, and its exclude explains why it did not match.
	resp, err = c.Get(srv.URL + "/rules")
	if page := body(t, resp, err); !strings.Contains(page, `codebuild: <a href="/pipelines/codebuild:web-ci">codebuild:web-ci</a>`) || !strings.Contains(page, "the web app") {
		t.Errorf("rules page lacks the v2 rule: %s", page)
	}
	resp, err = c.PostForm(srv.URL+"/rules/test", url.Values{"csrf": {csrf}, "repo": {"org/mono"}, "branch": {"main"}, "paths": {"web/README.md"}})
	page = body(t, resp, err)
	if !strings.Contains(page, "<code>web/README.md</code> excluded by <code>!**/*.md</code>") {
		t.Errorf("path tester does not show the veto: %s", page)
	}
	// The repository's name alone finds the v2 rules of org/mono too.
	resp, err = c.PostForm(srv.URL+"/rules/test", url.Values{"csrf": {csrf}, "repo": {"mono"}, "branch": {"main"}, "paths": {"web/README.md"}})
	page = body(t, resp, err)
	if !strings.Contains(page, "<code>web/README.md</code> excluded by <code>!**/*.md</code>") {
		t.Errorf("path tester given the name alone does not reach the v2 rule: %s", page)
	}

	// Logging out ends the session in the browser.
	resp, err = c.PostForm(srv.URL+"/logout", url.Values{"csrf": {csrf}})
	body(t, resp, err)
	resp, err = c.Get(srv.URL + "/")
	body(t, resp, err)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
}

func push(t *testing.T, id string) trigger.Delivery {
	t.Helper()
	payload := []byte(`{"ref":"refs/heads/main","after":"abcdef0123456789","repository":{"name":"mono","full_name":"org/mono"},"commits":[{"added":["api/x.go"],"removed":[],"modified":[]}]}`)
	p, err := githubhook.ParsePush(payload)
	if err != nil {
		t.Fatal(err)
	}
	return trigger.Delivery{ID: id, Event: "push", Received: time.Now(), Payload: payload, Push: p}
}
