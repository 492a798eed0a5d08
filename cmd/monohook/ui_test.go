package main_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/monohook/monohook/internal/fakeaws"
)

// browser finds a Chromium to drive. CI installs Debian's chromium and
// sets MONOHOOK_REQUIRE_BROWSER=1, so there a missing browser fails the
// test instead of skipping it.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("MONOHOOK_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("MONOHOOK_REQUIRE_BROWSER") != "" {
		t.Fatal("no Chromium found (apt-get install chromium, or set MONOHOOK_CHROMIUM)")
	}
	t.Skip("no Chromium found; set MONOHOOK_CHROMIUM to run the dashboard test")
	return ""
}

func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// TestDashboardInBrowser drives the dashboard of a real serve process in
// headless Chromium: log in, see a delivery sent by the test with its
// pipeline started, open it, press Replay and see the new start; test
// paths against the rules; log out. Wrong tokens, POSTs without the CSRF
// token and the cookie of a session logged out are refused.
func TestDashboardInBrowser(t *testing.T) {
	chrome := browser(t)
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	data := t.TempDir()
	env := awsEnv(fake)
	for _, r := range [][2]string{{"api", "services/api/.*"}, {"web", "services/web/.*"}} {
		if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--repo", "monorepo", "--branch", "feature/login", "--pipeline", r[0], "--match", r[1]); code != 0 {
			t.Fatal(errOut)
		}
	}
	// A document written behind monohook's back with an expression RE2
	// cannot run: the rules page must flag it.
	bad := filepath.Join(data, "mono-repo", "config", "monorepo-feature", "login-broken-00000000.json")
	if err := os.WriteFile(bad, []byte(`{"GitHubRepo": "monorepo", "GitHubBranch": "feature/login", "CodePipelineName": "broken", "ChangeMatchExpressions": "a(?=b)"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const token = "dashboard-test-token-0123456789"
	d := startServe(t, append(env, "MONOHOOK_ADMIN_TOKEN="+token), "--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "s3cret")
	base := strings.TrimSuffix(d.url, "/webhook")
	const id = "browser-delivery-1"
	if code := postSigned(d.url, "s3cret", id, pushPayload); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d", code)
	}
	waitFor(t, "the first start", func() bool { return fake.Started()["api"] == 1 })
	families := scrape(t, base+"/metrics")
	if loaded, invalid := value(families, "monohook_rules_loaded", nil), value(families, "monohook_rules_invalid", nil); loaded != 2 || invalid != 1 {
		t.Errorf("rules gauges: loaded %v invalid %v, want 2 and 1", loaded, invalid)
	}

	ctx := newBrowser(t, chrome)
	do := func(steps ...chromedp.Action[chromedp.Void]) { t.Helper(); must(t, chromedp.Do(ctx, steps...)) }
	// MONOHOOK_SCREENSHOTS=DIR keeps a picture of each page, to look at.
	shot := func(name string) {
		t.Helper()
		if dir := os.Getenv("MONOHOOK_SCREENSHOTS"); dir != "" {
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			must(t, err)
			must(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
		}
	}
	textOf := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		must(t, err)
		return s
	}
	// Not logged in: sent to the login page; a wrong token is refused.
	do(chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#token`),
		chromedp.SendKeys(`#token`, "not-the-token"),
		chromedp.Click(`#login`),
		chromedp.WaitVisible(`.error`))
	text := textOf(`.error`)
	if !strings.Contains(text, "Wrong token") {
		t.Errorf("wrong token: page says %q", text)
	}
	// The right token: the deliveries list shows the delivery with its
	// started pipeline.
	sel := `a.delivery[data-id="` + id + `"]`
	do(
		chromedp.SendKeys(`#token`, token),
		chromedp.Click(`#login`),
		chromedp.WaitVisible(sel))
	text = textOf(`#deliveries tbody tr`)
	shot("deliveries")
	for _, want := range []string{"push", "monorepo", "feature/login", "2222222"} {
		if !strings.Contains(text, want) {
			t.Errorf("deliveries row %q lacks %q", text, want)
		}
	}
	if started := textOf(`#deliveries tbody tr td.started`); strings.TrimSpace(started) != "1" {
		t.Errorf("started column %q, want 1", started)
	}

	// The delivery: its start with the execution id, and why each rule
	// matched or not.
	do(chromedp.Click(sel), chromedp.WaitVisible(`#starts`))
	text = textOf(`#starts tbody`)
	if !strings.Contains(text, "api") || !strings.Contains(text, "started") || !strings.Contains(text, "exec-0001-api") {
		t.Errorf("starts table %q lacks api started as exec-0001-api", text)
	}
	text = textOf(`#explain tbody`)
	shot("delivery")
	if !strings.Contains(text, "services/api/login.go matched services/api/.*") || !strings.Contains(text, "no changed path matched") {
		t.Errorf("explanation %q", text)
	}

	// Replay: a new round starts the pipeline again, with a new token.
	do(chromedp.Click(`#replay`), chromedp.WaitVisible(`#replayed`))
	waitFor(t, "the replayed start", func() bool { return fake.Started()["api"] == 2 })
	// The fake answers before the start is recorded: reload until it is.
	waitFor(t, "the replayed start on the page", func() bool {
		do(chromedp.Reload(), chromedp.WaitVisible(`#starts`))
		text = textOf(`#starts tbody`)
		return strings.Count(text, "started") == 2
	})
	if !strings.Contains(text, "replay 1") || strings.Count(text, "started") != 2 {
		t.Errorf("after replay the starts table is %q", text)
	}

	// The pipeline's page, from its link: both runs, each with the push
	// that started it, and the chart with one mark per run.
	do(chromedp.Click(`#starts td.pipeline a`), chromedp.WaitVisible(`#chart`))
	text = textOf(`#runs tbody`)
	shot("pipeline")
	if strings.Count(text, id) != 2 || !strings.Contains(text, "monorepo") || !strings.Contains(text, "2222222") || !strings.Contains(text, "replay 1") {
		t.Errorf("runs table %q", text)
	}
	marks, err := chromedp.Run(ctx, chromedp.Nodes(`#chart g.mark`))
	must(t, err)
	if len(marks) != 2 {
		t.Errorf("%d marks in the chart, want one per run", len(marks))
	}
	if legend := textOf(`#legend`); !strings.Contains(legend, "success") || !strings.Contains(legend, "failure") {
		t.Errorf("legend %q", legend)
	}
	title, err := chromedp.Run(ctx, chromedp.TextContent(`#chart g.mark title`))
	must(t, err)
	if !strings.Contains(title, "delivery "+id) {
		t.Errorf("the first mark's title %q", title)
	}
	do(chromedp.Navigate(base+"/pipelines"), chromedp.WaitVisible(`#pipelines`))
	if text := textOf(`#pipelines tbody`); !strings.Contains(text, "api") || !strings.Contains(text, "web") || !strings.Contains(text, "never run") {
		t.Errorf("pipelines index %q", text)
	}

	// The rules page: the broken document is flagged; the path tester says
	// what would start.
	do(chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(`#rules`))
	text = textOf(`#rules tr.invalid`)
	if !strings.Contains(text, "broken") || !strings.Contains(text, "look-around") {
		t.Errorf("invalid rule row %q", text)
	}
	do(chromedp.SendKeys(`#repo`, "acme/monorepo"),
		chromedp.SendKeys(`#branch`, "feature/login"),
		chromedp.SendKeys(`#paths`, "services/web/index.html\nREADME.md"),
		chromedp.Click(`#test`),
		chromedp.WaitVisible(`#would-start`))
	text = textOf(`#would-start`)
	shot("rules")
	if !strings.Contains(text, "Would start: web") || strings.Contains(text, "api") {
		t.Errorf("path tester says %q", text)
	}

	// The browser's session cookie, reused without the CSRF token: refused.
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	must(t, err)
	cookies := got.Cookies
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(base)
	for _, c := range cookies {
		jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value}})
	}
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	postForm := func(path string, form url.Values) int {
		resp, err := client.PostForm(base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := postForm("/delivery/replay", url.Values{"id": {id}}); code != http.StatusForbidden {
		t.Errorf("replay without CSRF token: %d, want 403", code)
	}
	if code := postForm("/delivery/replay", url.Values{"id": {id}, "csrf": {"0123abcd"}}); code != http.StatusForbidden {
		t.Errorf("replay with a wrong CSRF token: %d, want 403", code)
	}
	if got := fake.Started()["api"]; got != 2 {
		t.Errorf("refused replays started the pipeline: %d executions", got)
	}
	// Logging out in the browser ends the session: its cookie, copied
	// before, opens nothing any more.
	get := func(path string) int {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/rules"); code != http.StatusOK {
		t.Fatalf("the copied session cookie: %d", code)
	}
	do(chromedp.Click(`.logout button`), chromedp.WaitVisible(`#token`))
	if code := get("/rules"); code != http.StatusSeeOther {
		t.Errorf("the cookie of a session logged out: %d, want 303 to the login", code)
	}
	// Without a session nothing is served, and the wrong token gets none.
	anon := &http.Client{CheckRedirect: client.CheckRedirect}
	resp, err := anon.Get(base + "/delivery?id=" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("anonymous GET: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = anon.PostForm(base+"/login", url.Values{"token": {token + "x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if strings.Contains(d.log(), token) {
		t.Error("the admin token was logged")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
