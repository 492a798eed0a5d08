package main_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/fakegithub"
)

// githubApp is the fake GitHub with an App whose key file the binary
// reads, and the flags that make serve authenticate as it.
func githubApp(t *testing.T) (*fakegithub.GitHub, []string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	g := fakegithub.New("installation-token")
	t.Cleanup(g.Close)
	g.AppKey, g.InstallationToken = &key.PublicKey, "installation-token"
	return g, []string{"--github-app-id", "42", "--github-installation-id", "7", "--github-app-key-file", keyFile, "--github-api-url", g.URL}
}

func putRules(t *testing.T, env []string, data string, docs map[string]string) {
	t.Helper()
	for name, doc := range docs {
		file := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--file", file); code != 0 {
			t.Fatalf("rules put %s: %s", name, errOut)
		}
	}
}

var checkRules = map[string]string{
	"api.yaml": "repository: acme/monorepo\nbranches: [main]\npaths: [\"services/api/**\"]\ntarget: {type: codepipeline, pipeline: api}\n",
	"web.yaml": "repository: acme/monorepo\nevents: [push, merge_group]\nbranches: [main]\npaths: [\"web/**\"]\nreport: {name: ci/web}\ntarget: {type: codepipeline, pipeline: web}\n",
}

func latestRun(g *fakegithub.GitHub, name, sha string) (fakegithub.CheckRun, bool) {
	runs := g.CheckRuns()
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Name == name && runs[i].HeadSHA == sha {
			return runs[i], true
		}
	}
	return fakegithub.CheckRun{}, false
}

func createsOf(g *fakegithub.GitHub, name, sha string) int {
	n := 0
	for _, e := range g.CheckEvents() {
		if e.Op == "create" && e.Run.Name == name && e.Run.HeadSHA == sha {
			n++
		}
	}
	return n
}

const mainSHA = "3333333333333333333333333333333333333333"

// A push selecting api and not web, both reported: web's check completes
// skipped with its reason at once, api's is queued while its start is
// retried, survives a restart and goes in progress, created once; a merge
// group gets checks on its head commit, decided on its base branch; a
// re-run of api's check starts api alone again, with a new token.
func TestChecksEndToEnd(t *testing.T) {
	pipelines := fakeaws.NewCodePipeline()
	defer pipelines.Close()
	g, appFlags := githubApp(t)
	data := t.TempDir()
	env := awsEnv(pipelines)
	putRules(t, env, data, checkRules)
	args := append([]string{"--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "s", "--retry-base", "5s"}, appFlags...)
	// api's first start attempts are throttled: its check waits queued.
	pipelines.FailNext("api", "ThrottlingException", "ThrottlingException", "ThrottlingException", "ThrottlingException")
	d := startServe(t, env, args...)
	if !strings.Contains(d.log(), "github_report=checks") {
		t.Errorf("not reporting check runs with an App:\n%s", d.log())
	}
	push := `{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000001","after":"` + mainSHA + `","repository":{"name":"monorepo","full_name":"acme/monorepo","default_branch":"main"},
	 "commits":[{"added":["services/api/x.go"],"removed":[],"modified":[]}]}`
	if c := postEvent(t, d.url, "s", "push", "push-1", push); c != http.StatusAccepted {
		t.Fatalf("push: %d", c)
	}
	waitFor(t, "web's check", func() bool { _, ok := latestRun(g, "ci/web", mainSHA); return ok })
	web, _ := latestRun(g, "ci/web", mainSHA)
	if web.Status != "completed" || web.Conclusion != "skipped" || !strings.Contains(web.Summary, "No watched path changed") {
		t.Errorf("web: %+v", web)
	}
	waitFor(t, "api's check", func() bool { _, ok := latestRun(g, "monohook/api", mainSHA); return ok })
	if api, _ := latestRun(g, "monohook/api", mainSHA); api.Status != "queued" || pipelines.Started()["api"] != 0 {
		t.Fatalf("api before its start: %+v, started %v", api, pipelines.Started())
	}
	d.terminate(t)
	d = startServe(t, env, args...)
	waitFor(t, "api in progress", func() bool { r, _ := latestRun(g, "monohook/api", mainSHA); return r.Status == "in_progress" })
	if n, m := createsOf(g, "monohook/api", mainSHA), createsOf(g, "ci/web", mainSHA); n != 1 || m != 1 {
		t.Errorf("check runs created: api %d, web %d; want one each", n, m)
	}

	// A merge group: evaluated on base...head, checked on head.
	const head = "4444444444444444444444444444444444444444"
	g.SetCompare("acme/monorepo", mainSHA, head, 1, "web/app.ts")
	mg := `{"action":"checks_requested","merge_group":{"head_sha":"` + head + `","head_ref":"refs/heads/gh-readonly-queue/main/pr-9-` + mainSHA + `","base_sha":"` + mainSHA + `","base_ref":"refs/heads/main"},
	 "repository":{"name":"monorepo","full_name":"acme/monorepo","default_branch":"main"}}`
	if c := postEvent(t, d.url, "s", "merge_group", "mg-1", mg); c != http.StatusAccepted {
		t.Fatalf("merge_group: %d", c)
	}
	waitFor(t, "the merge group's checks", func() bool {
		a, okA := latestRun(g, "monohook/api", head)
		w, okW := latestRun(g, "ci/web", head)
		return okA && okW && a.Status == "completed" && w.Status == "in_progress"
	})
	if a, _ := latestRun(g, "monohook/api", head); a.Conclusion != "skipped" || !strings.Contains(a.Summary, "not for merge_group events") {
		t.Errorf("api in the merge group: %+v", a)
	}
	if pipelines.Started()["web"] != 1 {
		t.Errorf("web started %v", pipelines.Started())
	}

	// Re-run api's check.
	api, _ := latestRun(g, "monohook/api", mainSHA)
	rerun, _ := json.Marshal(map[string]any{"action": "rerequested", "check_run": map[string]any{"id": api.ID, "head_sha": mainSHA, "external_id": api.ExternalID, "app": map[string]any{"id": 42}},
		"repository": map[string]any{"name": "monorepo", "full_name": "acme/monorepo"}})
	if c := postEvent(t, d.url, "s", "check_run", "rerun-1", string(rerun)); c != http.StatusAccepted {
		t.Fatalf("check_run rerequested: %d", c)
	}
	if c := postEvent(t, d.url, "s", "check_run", "rerun-1", string(rerun)); c != http.StatusOK {
		t.Errorf("the same request redelivered: %d", c)
	}
	waitFor(t, "api started again", func() bool { return pipelines.Started()["api"] == 2 })
	tokens := map[string]bool{}
	for _, c := range pipelines.Calls() {
		if c.Name == "api" {
			tokens[c.Token] = true
		}
	}
	if len(tokens) != 2 {
		t.Errorf("api's starts used %d tokens, want a new one for the re-run", len(tokens))
	}
	waitFor(t, "the re-run's check", func() bool { return createsOf(g, "monohook/api", mainSHA) == 2 })
	if n := createsOf(g, "ci/web", mainSHA); n != 1 || pipelines.Started()["web"] != 1 {
		t.Errorf("the re-run of api touched web: %d checks, started %v", n, pipelines.Started())
	}
	echo := strings.Replace(string(rerun), "rerequested", "completed", 1)
	if c := postEvent(t, d.url, "s", "check_run", "echo-1", echo); c != http.StatusOK {
		t.Errorf("our own completed echo: %d", c)
	}
	families := scrape(t, strings.Replace(d.url, "/webhook", "/metrics", 1))
	if n := value(families, "monohook_github_reports_total", map[string]string{"kind": "check_run", "outcome": "created"}); n < 2 {
		t.Errorf("check runs created counted %v, want at least the re-run's and the merge group's", n)
	}
	if n := value(families, "monohook_deliveries_total", map[string]string{"event": "check_run", "outcome": "accepted"}); n != 1 {
		t.Errorf("check_run re-runs accepted counted %v, want 1", n)
	}
	d.terminate(t)
}

// With a token: commit statuses of the same meaning; check runs with a
// token are refused at start. GitHub rate limiting monohook delays the
// statuses, not the start.
func TestStatusesEndToEnd(t *testing.T) {
	pipelines := fakeaws.NewCodePipeline()
	defer pipelines.Close()
	g := fakegithub.New("gh-token")
	defer g.Close()
	data := t.TempDir()
	env := append(awsEnv(pipelines), "MONOHOOK_GITHUB_TOKEN=gh-token", "MONOHOOK_GITHUB_API_URL="+g.URL)
	putRules(t, env, data, checkRules)
	_, errOut, code := run(t, env, "serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "s", "--github-report", "checks")
	if code == 0 || !strings.Contains(errOut, "needs a GitHub App") {
		t.Errorf("checks with a token: exit %d: %s", code, errOut)
	}
	d := startServe(t, env, "--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "s", "--github-max-wait", "10ms")
	g.RateLimitNext(1, 5*time.Second)
	push := `{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000001","after":"` + mainSHA + `","repository":{"name":"monorepo","full_name":"acme/monorepo","default_branch":"main"},
	 "commits":[{"added":["services/api/x.go"],"removed":[],"modified":[]}]}`
	if c := postEvent(t, d.url, "s", "push", "push-1", push); c != http.StatusAccepted {
		t.Fatalf("push: %d", c)
	}
	waitFor(t, "api started", func() bool { return pipelines.Started()["api"] == 1 })
	if st := g.Statuses(); len(st) != 0 {
		t.Errorf("statuses %+v while the rate limit lasts", st)
	}
	last := map[string]fakegithub.Status{}
	waitFor(t, "both statuses", func() bool {
		for _, s := range g.Statuses() {
			last[s.Context] = s
		}
		return last["ci/web"].State != "" && last["monohook/api"].State != ""
	})
	if w := last["ci/web"]; w.State != "success" || w.SHA != mainSHA || !strings.Contains(w.Description, "No watched path changed") {
		t.Errorf("web: %+v", w)
	}
	if a := last["monohook/api"]; a.State != "pending" {
		t.Errorf("api: %+v", a)
	}
	if len(g.CheckRuns()) != 0 {
		t.Error("check runs with a token")
	}
	d.terminate(t)
}

// TestCheckEndsWithThePipelinesResult: the loop closed, with the built
// binary. A push selects api, not web: web's check completes skipped at
// once, api's goes in progress with the execution's console link and,
// across a restart of monohook while the execution runs, completes with
// its real result (success), created once; a second push's execution
// fails, and its check says failure with CodePipeline's words.
func TestCheckEndsWithThePipelinesResult(t *testing.T) {
	pipelines := fakeaws.NewCodePipeline()
	defer pipelines.Close()
	g, appFlags := githubApp(t)
	data := t.TempDir()
	env := append(awsEnv(pipelines), "MONOHOOK_FOLLOW_POLL=1s", "MONOHOOK_FOLLOW_POLL_MAX=1s")
	putRules(t, env, data, checkRules)
	args := append([]string{"--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "s"}, appFlags...)
	d := startServe(t, env, args...)
	push := func(id, sha string) {
		t.Helper()
		p := `{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000001","after":"` + sha + `","repository":{"name":"monorepo","full_name":"acme/monorepo","default_branch":"main"},
		 "commits":[{"added":["services/api/x.go"],"removed":[],"modified":[]}]}`
		if c := postEvent(t, d.url, "s", "push", id, p); c != http.StatusAccepted {
			t.Fatalf("push %s: %d", id, c)
		}
	}
	push("result-1", mainSHA)
	waitFor(t, "api in progress", func() bool { r, _ := latestRun(g, "monohook/api", mainSHA); return r.Status == "in_progress" })
	api, _ := latestRun(g, "monohook/api", mainSHA)
	if !strings.Contains(api.DetailsURL, "/codepipeline/pipelines/api/executions/") {
		t.Errorf("api in progress links to %q, want its execution's console page", api.DetailsURL)
	}
	if web, _ := latestRun(g, "ci/web", mainSHA); web.Status != "completed" || web.Conclusion != "skipped" {
		t.Errorf("web: %+v", web)
	}

	// Restarted while the execution runs; it then succeeds.
	d.terminate(t)
	pipelines.Script("api", fakeaws.Outcome{Status: "Succeeded"})
	d = startServe(t, env, args...)
	waitFor(t, "api's check completed", func() bool { r, _ := latestRun(g, "monohook/api", mainSHA); return r.Status == "completed" })
	if api, _ = latestRun(g, "monohook/api", mainSHA); api.Conclusion != "success" {
		t.Errorf("api after its execution succeeded: %+v", api)
	}
	if n := createsOf(g, "monohook/api", mainSHA); n != 1 {
		t.Errorf("api's check run created %d times, want once", n)
	}

	// A second push, whose execution fails.
	const second = "5555555555555555555555555555555555555555"
	pipelines.Script("api", fakeaws.Outcome{InProgress: 1, Status: "Failed", Summary: "Action Deploy failed"})
	push("result-2", second)
	waitFor(t, "the second check completed", func() bool { r, _ := latestRun(g, "monohook/api", second); return r.Status == "completed" })
	if r, _ := latestRun(g, "monohook/api", second); r.Conclusion != "failure" || !strings.Contains(r.Summary, "Action Deploy failed") {
		t.Errorf("api after its execution failed: %+v\n%s", r, r.Summary)
	}
	d.terminate(t)
	if n := len(pipelines.Calls()); n != 2 {
		t.Errorf("%d starts, want 2", n)
	}
}
