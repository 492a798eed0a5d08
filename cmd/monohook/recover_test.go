package main_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/pgtest"
	"github.com/monohook/monohook/internal/trigger"
)

// missedPush records in the fake a push delivery GitHub tried minutesAgo
// and that got code (0: no connection), with the headers it was sent with.
func missedPush(g *fakegithub.GitHub, guid string, code, minutesAgo int, redelivery bool) {
	sig256, sig1 := githubhook.Sign("recover-secret", []byte(pushPayload))
	g.AddHookDelivery("acme", 42, fakegithub.HookDelivery{
		GUID: guid, Event: "push", StatusCode: code, Redelivery: redelivery,
		DeliveredAt: time.Now().Add(-time.Duration(minutesAgo) * time.Minute),
		Headers: map[string]string{"X-GitHub-Delivery": guid, "X-GitHub-Event": "push", "Content-Type": "application/json",
			"X-Hub-Signature-256": sig256, "X-Hub-Signature": sig1, "User-Agent": "GitHub-Hookshot/abc"},
		Payload: json.RawMessage(pushPayload),
	})
}

type reconciled struct {
	Listed    int `json:"listed"`
	Missing   int `json:"missing"`
	Recovered int `json:"recovered"`
	Arrived   int `json:"arrived_meanwhile"`
	Missed    []struct {
		GUID string `json:"GUID"`
	} `json:"missed"`
}

func recoverCLI(t *testing.T, env []string, args ...string) reconciled {
	t.Helper()
	out, errOut, code := run(t, env, append([]string{"deliveries", "recover", "--json"}, args...)...)
	var r reconciled
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("deliveries recover --json %v: exit %d %s %s", args, code, out, errOut)
	}
	return r
}

// fetchedGUIDs is the GUIDs of the deliveries the fake served one by one.
func fetchedGUIDs(g *fakegithub.GitHub) []string {
	var out []string
	for _, id := range g.Fetched() {
		out = append(out, fmt.Sprint(id))
	}
	return out
}

// TestRecoverAfterDowntime: pushes GitHub could not deliver while
// monohook was stopped are recovered when it starts, each started once;
// the one it had are not fetched; a delivery that also arrives live
// during the recovery starts once.
func TestRecoverAfterDowntime(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	g := fakegithub.New("gh-token")
	defer g.Close()
	dataDir := t.TempDir()
	rules := "file://" + filepath.ToSlash(t.TempDir()) + "?metadata=skip"
	env := append(awsEnv(fake), "MONOHOOK_STORE="+rules, "MONOHOOK_WEBHOOK_SECRET=recover-secret", "MONOHOOK_DATA_DIR="+dataDir, "MONOHOOK_ADMIN_TOKEN="+recoverAdmin)
	if _, errOut, code := run(t, env, "rules", "put", "--repo", "monorepo", "--branch", "feature/login", "--pipeline", "api", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	first := startServe(t, env, "--listen", "127.0.0.1:0")
	waitFor(t, "the startup log saying how to turn recovery on", func() bool {
		return strings.Contains(first.log(), "recovery of missed deliveries off") && strings.Contains(first.log(), "admin:org_hook")
	})
	if code := postSigned(first.url, "recover-secret", "live-1", pushPayload); code != 202 {
		t.Fatalf("live delivery: %d", code)
	}
	waitFor(t, "the live delivery's start", func() bool { return len(fake.Calls()) == 1 })
	first.terminate(t)

	// GitHub's record: live-1 reached monohook; down-1…down-4 did not
	// (down-2 was redelivered by hand, and failed again); both failed, and
	// is delivered again while monohook recovers it.
	missedPush(g, "live-1", 202, 30, false)
	for i := 1; i <= 4; i++ {
		missedPush(g, fmt.Sprintf("down-%d", i), 0, 20-i, false)
	}
	missedPush(g, "down-2", 502, 10, true)
	missedPush(g, "both", 0, 5, false)
	ghEnv := append(env, "MONOHOOK_GITHUB_API_URL="+g.URL, "MONOHOOK_GITHUB_TOKEN=gh-token", "MONOHOOK_GITHUB_ORG=acme", "MONOHOOK_GITHUB_HOOK_ID=42")

	dry := recoverCLI(t, ghEnv, "--dry-run", "--since", "1d")
	var dryGUIDs []string
	for _, m := range dry.Missed {
		dryGUIDs = append(dryGUIDs, m.GUID)
	}
	if want := []string{"down-1", "down-2", "down-3", "down-4", "both"}; !slices.Equal(dryGUIDs, want) || len(g.Fetched()) != 0 {
		t.Fatalf("dry run lists %v, fetched %v; want %v and nothing fetched", dryGUIDs, g.Fetched(), want)
	}

	var serverURL atomic.Value
	g.OnGetDelivery(func(guid string) {
		if guid != "both" {
			return
		}
		deadline := time.Now().Add(20 * time.Second)
		for serverURL.Load() == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if code := postSigned(serverURL.Load().(string), "recover-secret", "both", pushPayload); code != 202 {
			t.Errorf("the live copy of a delivery being recovered: %d", code)
		}
	})
	second := startServe(t, ghEnv, "--listen", "127.0.0.1:0")
	serverURL.Store(second.url)
	waitFor(t, "the reconciliation at start", func() bool { return strings.Contains(second.log(), "reconciled with GitHub") })
	waitFor(t, "six starts", func() bool { return len(fake.Calls()) >= 6 })
	time.Sleep(500 * time.Millisecond) // a second start would come now
	log := second.log()
	if !strings.Contains(log, "missing=5") || !strings.Contains(log, "recovered=4") || !strings.Contains(log, "arrived_meanwhile=1") {
		t.Errorf("reconciliation log:\n%s", log)
	}
	perToken := map[string]int{}
	for _, c := range fake.Calls() {
		perToken[c.Token]++
	}
	for _, id := range []string{"live-1", "down-1", "down-2", "down-3", "down-4", "both"} {
		if n := perToken[trigger.StartToken(id, 0, "api")]; n != 1 {
			t.Errorf("%s: started %d times, want once", id, n)
		}
	}
	if len(fake.Calls()) != 6 {
		t.Errorf("%d starts, want 6", len(fake.Calls()))
	}
	if n := len(g.Fetched()); n != 5 {
		t.Errorf("fetched %d deliveries (%v), want the 5 missing ones: not live-1, down-2 once", n, fetchedGUIDs(g))
	}
	if out, _, _ := run(t, env, "deliveries", "show", "down-3", "--json"); !strings.Contains(out, `"recovered"`) {
		t.Errorf("down-3 is not marked recovered: %s", out)
	}
	if out, _, _ := run(t, env, "deliveries", "show", "down-3"); !strings.Contains(out, "GitHub failed to deliver it") {
		t.Errorf("deliveries show down-3 does not say it was recovered: %s", out)
	}
	if out, _, _ := run(t, env, "deliveries", "show", "live-1", "--json"); strings.Contains(out, `"recovered"`) {
		t.Errorf("live-1 is marked recovered: %s", out)
	}

	// Metrics and the dashboard tell of it.
	base := strings.TrimSuffix(second.url, "/webhook")
	m := scrape(t, base+"/metrics")
	if v := value(m, "monohook_recovered_deliveries_total", nil); v != 4 {
		t.Errorf("monohook_recovered_deliveries_total %v, want 4", v)
	}
	if v := value(m, "monohook_recover_missing_deliveries_total", nil); v != 5 {
		t.Errorf("monohook_recover_missing_deliveries_total %v, want 5", v)
	}
	if v := value(m, "monohook_recover_last_success_timestamp_seconds", nil); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("monohook_recover_last_success_timestamp_seconds %v", v)
	}
	page := dashboard(t, base, "/")
	if !regexp.MustCompile(`id="reconciliation">Last reconciliation with GitHub's deliveries: [-0-9: Z]+: 7 listed, 5 missing, 4 recovered`).MatchString(page) {
		t.Errorf("the dashboard does not show the last reconciliation:\n%s", page)
	}
	if n := strings.Count(page, `<span class="recovered"`); n != 4 {
		t.Errorf("the dashboard marks %d deliveries recovered, want 4", n)
	}
	if !strings.Contains(dashboard(t, base, "/delivery?id=down-1"), `id="recovered"`) {
		t.Error("the delivery page does not say down-1 was recovered")
	}

	// The next reconciliation finds nothing.
	fetched := len(g.Fetched())
	again := recoverCLI(t, ghEnv)
	if again.Missing != 0 || again.Recovered != 0 || len(g.Fetched()) != fetched {
		t.Errorf("second reconciliation %+v, fetched %d more", again, len(g.Fetched())-fetched)
	}

	// One more missed while serve runs (its next turn is 5 minutes away):
	// the CLI stores it, with a progress line, and serve starts it.
	missedPush(g, "down-5", 0, 0, false)
	out, errOut, code := run(t, ghEnv, "deliveries", "recover")
	if code != 0 || !strings.Contains(out, "1 missing: 1 recovered") || !regexp.MustCompile(`listed \d+ deliveries since .*: 1 missing, 1 recovered`).MatchString(errOut) {
		t.Errorf("deliveries recover: exit %d\n%s\n%s", code, out, errOut)
	}
	waitFor(t, "the CLI's recovered delivery's start", func() bool { return len(fake.Calls()) == 7 })
	second.terminate(t)
}

// TestRecoverWithTwoReplicasOnPostgreSQL: two serve processes reconcile
// the same webhook on one database, one at a time: each missing delivery
// is fetched once and its pipeline started once.
func TestRecoverWithTwoReplicasOnPostgreSQL(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	g := fakegithub.New("gh-token")
	defer g.Close()
	g.AddOrgHook("acme", 42, "https://monohook.example/webhook")
	const n = 150
	for i := range n {
		missedPush(g, fmt.Sprintf("missed-%03d", i), 0, 100-i/2, false)
	}
	rules := "file://" + filepath.ToSlash(t.TempDir()) + "?metadata=skip"
	env := append(awsEnv(fake), "MONOHOOK_DATABASE="+dsn, "MONOHOOK_STORE="+rules, "MONOHOOK_WEBHOOK_SECRET=recover-secret",
		"MONOHOOK_GITHUB_API_URL="+g.URL, "MONOHOOK_GITHUB_TOKEN=gh-token", "MONOHOOK_GITHUB_ORG=acme",
		"MONOHOOK_PUBLIC_URL=https://monohook.example/webhook", "MONOHOOK_RECOVER_EVERY=1s")
	if _, errOut, code := run(t, env, "rules", "put", "--repo", "monorepo", "--branch", "feature/login", "--pipeline", "api", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	replicas := []*daemon{
		startServe(t, env, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()),
		startServe(t, env, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()),
	}
	waitFor(t, "the recovered starts", func() bool { return len(fake.Calls()) >= n })
	// Let both replicas take a few turns.
	time.Sleep(3 * time.Second)
	perToken := map[string]int{}
	for _, c := range fake.Calls() {
		perToken[c.Token]++
	}
	for i := range n {
		if c := perToken[trigger.StartToken(fmt.Sprintf("missed-%03d", i), 0, "api")]; c != 1 {
			t.Errorf("missed-%03d: started %d times", i, c)
		}
	}
	seen := map[int64]int{}
	for _, id := range g.Fetched() {
		seen[id]++
	}
	if len(seen) != n || len(g.Fetched()) != n {
		t.Errorf("fetched %d deliveries, %d distinct; want each of the %d once", len(g.Fetched()), len(seen), n)
	}
	for _, r := range replicas {
		// Every replica tells of the last complete reconciliation,
		// whichever ran it.
		m := scrape(t, strings.TrimSuffix(r.url, "/webhook")+"/metrics")
		if v := value(m, "monohook_recover_last_success_timestamp_seconds", nil); v < float64(time.Now().Add(-time.Minute).Unix()) {
			t.Errorf("a replica reports the last success at %v", v)
		}
		if !strings.Contains(r.log(), "the webhook of organization acme whose URL is https://monohook.example/webhook") {
			t.Errorf("a replica does not say which webhook it reconciles:\n%s", r.log())
		}
		r.terminate(t)
	}
}

const recoverAdmin = "recover-admin-token-0123456789"

// dashboard logs in to the dashboard at base and returns the page at path.
func dashboard(t *testing.T, base, path string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/login", url.Values{"token": {recoverAdmin}, "next": {path}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dashboard %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// TestRecoverMisconfigured: a webhook named incompletely, or twice, is an
// error at start, with a non-zero exit; recover without a webhook says
// how to name one.
func TestRecoverMisconfigured(t *testing.T) {
	data := t.TempDir()
	env := append(os.Environ(), "MONOHOOK_DATA_DIR="+data, "MONOHOOK_GITHUB_TOKEN=x", "MONOHOOK_GITHUB_API_URL=http://127.0.0.1:1/")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--dry-run", "--listen", "127.0.0.1:0", "--github-org", "acme"}, "--github-hook-id, or --public-url"},
		{[]string{"serve", "--dry-run", "--listen", "127.0.0.1:0", "--github-org", "acme", "--github-app-hook"}, "name two webhooks"},
		{[]string{"serve", "--dry-run", "--listen", "127.0.0.1:0", "--github-org", "acme", "--github-hook-id", "1", "--recover-every", "1ns"}, "--recover-every 1ns: must be at least 1s"},
		{[]string{"deliveries", "recover"}, "--github-org"},
	} {
		_, errOut, code := run(t, env, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %s; want an error naming %q", c.args, code, errOut, c.want)
		}
	}
	// GitHub's API unreachable at start: serve serves all the same, and
	// says the reconciliation failed.
	d := startServe(t, env, "--dry-run", "--listen", "127.0.0.1:0", "--github-org", "acme", "--public-url", "https://monohook.example/webhook")
	waitFor(t, "the failed reconciliation's log line", func() bool { return strings.Contains(d.log(), "reconciliation failed") })
	if code := postSigned(d.url, "", "after-start", pushPayload); code != 403 {
		t.Errorf("the webhook answers %d, want 403 for an unsigned delivery: serve is not serving", code)
	}
	d.terminate(t)
}

// TestRecoverAppWebhook: a GitHub App's own webhook is reconciled through
// /app/hook/deliveries with the App's JWT.
func TestRecoverAppWebhook(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	g := fakegithub.New("installation-token")
	defer g.Close()
	g.AppKey, g.InstallationToken = &key.PublicKey, "installation-token"
	sig256, _ := githubhook.Sign("recover-secret", []byte(pushPayload))
	g.AddHookDelivery("", 0, fakegithub.HookDelivery{GUID: "app-missed", Event: "push", DeliveredAt: time.Now().Add(-time.Minute),
		Headers: map[string]string{"X-GitHub-Delivery": "app-missed", "X-GitHub-Event": "push", "Content-Type": "application/json", "X-Hub-Signature-256": sig256},
		Payload: json.RawMessage(pushPayload)})
	data := t.TempDir()
	env := append(os.Environ(), "MONOHOOK_DATA_DIR="+data, "MONOHOOK_WEBHOOK_SECRET=recover-secret", "MONOHOOK_GITHUB_API_URL="+g.URL,
		"MONOHOOK_GITHUB_APP_ID=12345", "MONOHOOK_GITHUB_INSTALLATION_ID=678", "MONOHOOK_GITHUB_APP_KEY_FILE="+keyFile, "MONOHOOK_GITHUB_APP_HOOK=true")
	if _, errOut, code := run(t, env, "rules", "put", "--repo", "monorepo", "--branch", "feature/login", "--pipeline", "api", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	d := startServe(t, env, "--dry-run", "--listen", "127.0.0.1:0")
	waitFor(t, "the App webhook's reconciliation", func() bool { return strings.Contains(d.log(), "delivery recovered") })
	if !strings.Contains(d.log(), "the GitHub App's webhook") {
		t.Errorf("the startup log does not name the App's webhook:\n%s", d.log())
	}
	if out, _, _ := run(t, env, "deliveries", "show", "app-missed", "--json"); !strings.Contains(out, `"recovered"`) {
		t.Errorf("app-missed not recovered: %s", out)
	}
	d.terminate(t)
}
