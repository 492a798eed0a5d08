package web

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/pgtest"
)

// The tricks that make a browser leave the site from a "next" that looks
// like a path.
var nextTricks = []string{
	"/\t/evil.com", // what /login?next=/%09/evil.com decodes to
	"/\tevil",
	"/\n/evil.com",
	"/\r/evil.com",
	"/\\evil.com",
	"/\\\\evil.com",
	"//evil.com",
	"/\\/evil.com",
	"/\x00/evil.com",
	"https://evil.com",
	"javascript:alert(1)",
	" /x",
	" //evil.com",
	"\t//evil.com",
	"/x\r\n/y",
	"/%2F%2Fevil.com",
	"/%5Cevil.com",
	"/%09/evil.com",
	"evil.com",
	"",
}

func TestSafeNext(t *testing.T) {
	for _, next := range nextTricks {
		got := safeNext(next)
		if got != "/" {
			t.Errorf("safeNext(%q) = %q, want /", next, got)
		}
	}
	for next, want := range map[string]string{
		"/rules":                              "/rules",
		"/":                                   "/",
		"/delivery?id=a%3Fb%23c":              "/delivery?id=a%3Fb%23c",
		"/?repo=org%2Fmono&status=failed&q=x": "/?q=x&repo=org%2Fmono&status=failed",
		"/%2509/x":                            "/%2509/x",
		"/a\\b":                               "/a%5Cb",
		"/x y":                                "/x%20y",
		"/x#frag":                             "/x",
		"/a/../..//evil.com":                  "/a/../..//evil.com", // a path; http.Redirect cleans it to /evil.com
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// browserResolves reads loc as a browser's URL parser would on a page of
// https://monohook.example/ and says whether it stays there.
func browserResolves(loc string) (*url.URL, bool) {
	loc = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, loc)
	loc = strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' })
	loc = strings.ReplaceAll(loc, `\`, "/")
	ref, err := url.Parse(loc)
	if err != nil {
		return nil, false
	}
	base := &url.URL{Scheme: "https", Host: "monohook.example", Path: "/"}
	u := base.ResolveReference(ref)
	return u, u.Scheme == "https" && u.Host == "monohook.example" && u.User == nil
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range nextTricks {
		f.Add(s)
	}
	f.Add("/delivery?id=a%3Fb%23c")
	f.Add("/a/../..//evil.com")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("safeNext(%q) = %q: not a path", next, got)
		}
		if u, ok := browserResolves(got); !ok {
			t.Fatalf("safeNext(%q) = %q: a browser goes to %v", next, got, u)
		}
		if again := safeNext(got); again != got {
			t.Fatalf("safeNext(%q) = %q, and of that %q: the Location is not what was checked", next, got, again)
		}
		// What the browser is sent: http.Redirect cleans the path.
		rec := httptest.NewRecorder()
		http.Redirect(rec, httptest.NewRequest(http.MethodPost, "/login", nil), got, http.StatusSeeOther)
		if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "/") {
			t.Fatalf("Location %q for %q", loc, next)
		} else if u, ok := browserResolves(loc); !ok {
			t.Fatalf("Location %q for %q: a browser goes to %v", loc, next, u)
		}
	})
}

// TestLoginRedirectStaysOnSite: over HTTP, the login page and the login
// itself send the browser only into this site, and a page asked for
// before the login is reached after it, its query intact.
func TestLoginRedirectStaysOnSite(t *testing.T) {
	srv, _ := newUI(t, adminToken)
	anon := noRedirects(nil)
	for _, next := range nextTricks {
		// Not through a client: Go's refuses to read some of the Locations
		// a browser follows.
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"token": {adminToken}, "next": {next}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultTransport.RoundTrip(req)
		body(t, resp, err)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/" {
			t.Errorf("next %q: %d → %q", next, resp.StatusCode, loc)
		}
	}
	resp, err := anon.Get(srv.URL + "/login?next=/%09/evil.com")
	if page := body(t, resp, err); !strings.Contains(page, `name="next" value="/"`) {
		t.Errorf("the login page carries an unsafe next: %s", page)
	}

	resp, err = anon.Get(srv.URL + "/delivery?id=a%3Fb%23c")
	body(t, resp, err)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path != "/login" {
		t.Fatalf("anonymous page: %d → %v", resp.StatusCode, loc)
	}
	resp, err = anon.Get(srv.URL + loc.String())
	page := body(t, resp, err)
	m := regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no next on the login page: %s", page)
	}
	resp, err = anon.PostForm(srv.URL+"/login", url.Values{"token": {adminToken}, "next": {html.UnescapeString(m[1])}})
	body(t, resp, err)
	if got := resp.Header.Get("Location"); got != "/delivery?id=a%3Fb%23c" {
		t.Errorf("after the login: %q", got)
	}
}

// sessionCookieOf is the session cookie a client holds for srv.
func sessionCookieOf(t *testing.T, c *http.Client, srv *httptest.Server) string {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			return ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// getWith requests path from srv with a session cookie and no jar, as an
// attacker holding a copied cookie would; it returns the status.
func getWith(t *testing.T, srv *httptest.Server, path, cookie string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	resp, err := noRedirects(nil).Do(req)
	body(t, resp, err)
	return resp.StatusCode
}

// eachDB runs test on SQLite and, when MONOHOOK_TEST_DATABASE_URL names a
// PostgreSQL server, on a fresh database there too.
func eachDB(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, "sqlite://"+t.TempDir()+"/monohook.db") })
	if os.Getenv(pgtest.EnvVar) != "" {
		t.Run("postgres", func(t *testing.T) { test(t, pgtest.FreshDatabase(t)) })
	}
}

// TestLogoutEndsTheSession: after a logout the old cookie opens nothing,
// and a new admin token ends every session.
func TestLogoutEndsTheSession(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		srv, _ := newUIOn(t, adminToken, dsn)
		c, csrf := login(t, srv)
		old := sessionCookieOf(t, c, srv)
		if code := getWith(t, srv, "/", old); code != http.StatusOK {
			t.Fatalf("the session opens nothing: %d", code)
		}
		// The same database behind a process given another token.
		rotated, _ := newUIOn(t, "another-admin-token-0123456789", dsn)
		if code := getWith(t, rotated, "/", old); code != http.StatusSeeOther {
			t.Errorf("a session outlived a change of the admin token: %d", code)
		}

		resp, err := c.PostForm(srv.URL+"/logout", url.Values{"csrf": {csrf}})
		body(t, resp, err)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Fatalf("logout: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if code := getWith(t, srv, "/", old); code != http.StatusSeeOther {
			t.Errorf("the cookie of a session logged out still opens the dashboard: %d", code)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rules/test", strings.NewReader(url.Values{"csrf": {csrf}, "repo": {"mono"}, "branch": {"main"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: old})
		resp, err = noRedirects(nil).Do(req)
		body(t, resp, err)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a POST with the cookie of a session logged out: %d", resp.StatusCode)
		}
		// A new login is a new session.
		c2, _ := login(t, srv)
		if s := sessionCookieOf(t, c2, srv); s == old || getWith(t, srv, "/", s) != http.StatusOK {
			t.Error("a new login does not open a new session")
		}
	})
}

// TestLogoutOnOneReplicaEndsTheSessionOnAll: replicas share sessions
// through PostgreSQL, a logout included.
func TestLogoutOnOneReplicaEndsTheSessionOnAll(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	a, _ := newUIOn(t, adminToken, dsn)
	b, _ := newUIOn(t, adminToken, dsn)
	c, csrf := login(t, a)
	session := sessionCookieOf(t, c, a)
	if code := getWith(t, b, "/rules", session); code != http.StatusOK {
		t.Fatalf("a session from replica a on replica b: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, b.URL+"/logout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
	resp, err := noRedirects(nil).Do(req)
	body(t, resp, err)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on replica b: %d", resp.StatusCode)
	}
	for name, srv := range map[string]*httptest.Server{"a": a, "b": b} {
		if code := getWith(t, srv, "/rules", session); code != http.StatusSeeOther {
			t.Errorf("replica %s still opens a session logged out on b: %d", name, code)
		}
	}
}

var (
	deliveryLink = regexp.MustCompile(`<a href="([^"]*)" class="delivery" data-id="([^"]*)">`)
	replayForm   = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)" class="inline">.*?name="id" value="([^"]*)"`)
)

// follow resolves a link of a page as a browser does (dot segments
// removed) and gets it.
func follow(t *testing.T, c *http.Client, page *url.URL, href string) (*url.URL, *http.Response, string) {
	t.Helper()
	ref, err := url.Parse(html.UnescapeString(href))
	if err != nil {
		t.Fatalf("link %q: %v", href, err)
	}
	u := page.ResolveReference(ref)
	resp, err := c.Get(u.String())
	return u, resp, body(t, resp, err)
}

// TestDeliveryIDsInURLs: whatever a delivery's id, the list links to that
// delivery, its Replay button replays that delivery (and nothing else:
// not a logout), and the redirect after it comes back to it.
func TestDeliveryIDsInURLs(t *testing.T) {
	srv, q := newUI(t, adminToken)
	ids := []string{"x/../../logout?", "a?b#c", "a%2Fb", "..", ".", "a/b", "%2E%2E", "d&replayed=9", "plain"}
	for _, id := range ids {
		if err := q.Accept(context.Background(), push(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	c, csrf := login(t, srv)
	list, _ := url.Parse(srv.URL + "/")
	resp, err := c.Get(list.String())
	page := body(t, resp, err)
	links := map[string]string{}
	for _, m := range deliveryLink.FindAllStringSubmatch(page, -1) {
		links[html.UnescapeString(m[2])] = m[1]
	}
	for _, id := range ids {
		href, ok := links[id]
		if !ok {
			t.Errorf("no link to %q", id)
			continue
		}
		at, resp, page := follow(t, c, list, href)
		form := replayForm.FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || form == nil {
			t.Errorf("the link to %q (%s) opens %d, not its page: %s", id, at, resp.StatusCode, page)
			continue
		}
		if got := html.UnescapeString(form[2]); got != id {
			t.Errorf("the link to %q opens the page of %q", id, got)
		}
		action, _ := url.Parse(html.UnescapeString(form[1]))
		resp, err := c.PostForm(at.ResolveReference(action).String(), url.Values{"csrf": {csrf}, "id": {html.UnescapeString(form[2])}})
		body(t, resp, err)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("replay of %q: %d", id, resp.StatusCode)
			continue
		}
		back, resp, page := follow(t, c, at, resp.Header.Get("Location"))
		form = replayForm.FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || form == nil || html.UnescapeString(form[2]) != id || !strings.Contains(page, `id="replayed"`) {
			t.Errorf("after the replay of %q, %s: %d %s", id, back, resp.StatusCode, page)
		}
	}
	for _, id := range ids {
		if d, err := q.Get(context.Background(), id); err != nil || d.Round != 1 {
			t.Errorf("delivery %q: round %d (%v), want 1", id, d.Round, err)
		}
	}
	if resp, err := c.Get(srv.URL + "/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the session did not survive the replays: %v %v", resp.StatusCode, err)
	}
}

// TestFormBounds: forms over their size, and path tester input out of its
// bounds, are refused with the status that says so.
func TestFormBounds(t *testing.T) {
	srv, _ := newUI(t, adminToken)
	c, csrf := login(t, srv)
	test := func(repo, branch, paths string) (int, string) {
		resp, err := c.PostForm(srv.URL+"/rules/test", url.Values{"csrf": {csrf}, "repo": {repo}, "branch": {branch}, "paths": {paths}})
		page := body(t, resp, err)
		return resp.StatusCode, page
	}
	for name, c := range map[string]struct {
		repo, branch, paths string
		want                int
	}{
		"fine":             {"mono", "main", "api/x.go", http.StatusOK},
		"no branch":        {"mono", "", "api/x.go", http.StatusBadRequest},
		"too many paths":   {"mono", "main", strings.Repeat("a\n", maxTestPaths+1), http.StatusBadRequest},
		"the most paths":   {"mono", "main", strings.Repeat("a\n", maxTestPaths), http.StatusOK},
		"a long path":      {"mono", "main", strings.Repeat("a", maxPathLen+1), http.StatusBadRequest},
		"a long repo":      {strings.Repeat("r", maxRepoLen+1), "main", "a", http.StatusBadRequest},
		"a long branch":    {"mono", strings.Repeat("b", maxBranchLen+1), "a", http.StatusBadRequest},
		"control in repo":  {"mo\x00no", "main", "a", http.StatusBadRequest},
		"control in path":  {"mono", "main", "a\x1b[2Jb", http.StatusBadRequest},
		"not UTF-8 branch": {"mono", "ma\xffin", "a", http.StatusBadRequest},
	} {
		if code, page := test(c.repo, c.branch, c.paths); code != c.want {
			t.Errorf("%s: %d, want %d: %.300s", name, code, c.want, page)
		}
	}
	if code, _ := test("mono", "main", strings.Repeat("a", maxFormBytes)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a form over %d bytes: %d", maxFormBytes, code)
	}
	resp, err := noRedirects(nil).PostForm(srv.URL+"/login", url.Values{"token": {strings.Repeat("t", maxLoginBytes)}})
	body(t, resp, err)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a login over %d bytes: %d", maxLoginBytes, resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader("token=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = noRedirects(nil).Do(req)
	body(t, resp, err)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a malformed login form: %d", resp.StatusCode)
	}
}

// TestListAndDeliveryBounds: the list's filters and a delivery's id that
// no page gives are refused with 400, on both databases (PostgreSQL
// cannot even compare a NUL or invalid UTF-8), never a 500.
func TestListAndDeliveryBounds(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		srv, _ := newUIOn(t, adminToken, dsn)
		c, _ := login(t, srv)
		for path, want := range map[string]int{
			"/?q=fine&repo=mono": http.StatusOK,
			"/?before=garbage":   http.StatusBadRequest,
			"/?before=1:x%00":    http.StatusBadRequest,
			"/?q=%00":            http.StatusBadRequest,
			"/?q=%ff":            http.StatusBadRequest,
			"/?repo=%ff":         http.StatusBadRequest,
			"/?q=" + strings.Repeat("a", maxFilterLen+1): http.StatusBadRequest,
			"/delivery?id=%00":                           http.StatusBadRequest,
			"/delivery?id=%ff":                           http.StatusBadRequest,
			"/delivery?id=%E2%80%AEnot-stored":           http.StatusNotFound,
		} {
			resp, err := c.Get(srv.URL + path)
			body(t, resp, err)
			if resp.StatusCode != want {
				t.Errorf("GET %.60s: %d, want %d", path, resp.StatusCode, want)
			}
		}
	})
}
