package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/fakegithub"
)

// TestRecoveredInBrowser: in headless Chromium, the deliveries list marks
// the delivery recovered at start and tells of the last reconciliation;
// the delivery's page says it was recovered.
func TestRecoveredInBrowser(t *testing.T) {
	chrome := browser(t)
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	g := fakegithub.New("gh-token")
	defer g.Close()
	missedPush(g, "missed-1", 0, 10, false)
	data := t.TempDir()
	env := append(awsEnv(fake), "MONOHOOK_GITHUB_API_URL="+g.URL, "MONOHOOK_GITHUB_TOKEN=gh-token", "MONOHOOK_GITHUB_ORG=acme", "MONOHOOK_GITHUB_HOOK_ID=42")
	if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--repo", "monorepo", "--branch", "feature/login", "--pipeline", "api", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	const token = "dashboard-test-token-0123456789"
	d := startServe(t, append(env, "MONOHOOK_ADMIN_TOKEN="+token), "--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "recover-secret")
	base := strings.TrimSuffix(d.url, "/webhook")
	waitFor(t, "the recovered start", func() bool { return fake.Started()["api"] == 1 })

	ctx := newBrowser(t, chrome)
	do := func(steps ...chromedp.Action[chromedp.Void]) { t.Helper(); must(t, chromedp.Do(ctx, steps...)) }
	textOf := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		must(t, err)
		return s
	}
	shot := func(name string) {
		t.Helper()
		if dir := os.Getenv("MONOHOOK_SCREENSHOTS"); dir != "" {
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			must(t, err)
			must(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
		}
	}
	sel := `a.delivery[data-id="missed-1"]`
	do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#token`), chromedp.SendKeys(`#token`, token), chromedp.Click(`#login`), chromedp.WaitVisible(sel))
	shot("recovered-list")
	if text := textOf(`#reconciliation`); !strings.Contains(text, "1 listed, 1 missing, 1 recovered") {
		t.Errorf("last reconciliation reads %q", text)
	}
	if text := textOf(`#deliveries tbody tr`); !strings.Contains(text, "recovered") {
		t.Errorf("the recovered delivery's row %q is not marked", text)
	}
	do(chromedp.Click(sel), chromedp.WaitVisible(`#recovered`))
	shot("recovered-delivery")
	if text := textOf(`#recovered`); !strings.Contains(text, "GitHub failed to deliver it") {
		t.Errorf("the delivery page says %q", text)
	}
}
