package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/githubhook"
)

func postEvent(t *testing.T, url, secret, event, delivery, body string) int {
	t.Helper()
	sig, _ := githubhook.Sign(secret, []byte(body))
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRulesV2EndToEnd runs serve with v2 rules of every target type, each
// against a fake of its API over HTTP (exec runs a real command), and
// sends a push, a tag, a forced push whose real change set only the
// GitHub API knows, and pull request events.
func TestRulesV2EndToEnd(t *testing.T) {
	pipelines := fakeaws.NewCodePipeline()
	defer pipelines.Close()
	builds := fakeaws.NewCodeBuild()
	defer builds.Close()
	gh := fakegithub.New("gh-token")
	defer gh.Close()
	var mu sync.Mutex
	var hooks []string
	jenkins := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, r.URL.RawQuery+" "+string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer jenkins.Close()

	data := t.TempDir()
	env := append(awsEnv(pipelines), "AWS_ENDPOINT_URL_CODEBUILD="+builds.URL,
		"MONOHOOK_GITHUB_TOKEN=gh-token", "MONOHOOK_GITHUB_API_URL="+gh.URL, "MONOHOOK_SECRET_JENKINS=jenkins-secret")
	marker := filepath.Join(t.TempDir(), "exec-ran")
	rules := map[string]string{
		"api.yaml": `description: the API, built at the pushed commit
owner: team-api
repository: acme/monorepo
branches: [main]
paths: ["services/api/**", "!**/*.md"]
target:
  type: codepipeline
  pipeline: api
  source_revision: true
  source_action: Source
  variables: {COMMIT: "{{.SHA}}", PATHS: "{{.ChangedPathsCount}}"}
`,
		"libs.yaml": `repository: acme/monorepo
paths: ["libs/**"]
target: {type: codebuild, project: libs-ci}
`,
		"web-pr.yaml": `repository: acme/monorepo
events: [pull_request]
branches: [main]
paths: ["web/**"]
target:
  type: github-actions
  repository: acme/monorepo
  workflow: preview.yml
  inputs: {pr: "{{.PullRequest}}"}
`,
		"release.yaml": `repository: acme/monorepo
tags: ["v*"]
target:
  type: http
  url: '` + jenkins.URL + `/job/release/buildWithParameters?token={{secret "JENKINS"}}'
  body: '{"tag": {{json .Tag}}}'
`,
		"docs.json": `{"repository": "acme/monorepo", "paths": ["docs/**"],
 "target": {"type": "exec", "command": ["sh", "-c", "cat \"$MONOHOOK_CHANGED_PATHS_FILE\" > ` + marker + `; echo built {{.Branch}}"]}}`,
	}
	for name, doc := range rules {
		file := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--file", file); code != 0 {
			t.Fatalf("rules put %s: %s", name, errOut)
		}
	}
	out, errOut, code := run(t, env, "rules", "validate", "--data-dir", data)
	if code != 0 || !strings.Contains(out, "5 rules, 0 invalid") {
		t.Fatalf("validate: %d %s %s", code, out, errOut)
	}
	d := startServe(t, env, "--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "s", "--allow-exec", "--retry-base", "50ms",
		"--http-allow-private") // the Jenkins fake listens on 127.0.0.1

	const sha = "1111111111111111111111111111111111111111"
	push := `{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000001","after":"` + sha + `","repository":{"name":"monorepo","full_name":"acme/monorepo","default_branch":"main"},
	 "commits":[{"added":["services/api/x.go","services/api/README.md","libs/a.go","docs/guide.md"],"removed":[],"modified":[]}]}`
	if c := postEvent(t, d.url, "s", "push", "push-1", push); c != http.StatusAccepted {
		t.Fatalf("push: %d", c)
	}
	waitFor(t, "the push's starts", func() bool {
		b, _ := os.ReadFile(marker)
		return len(pipelines.Calls()) == 1 && builds.Builds() == 1 && strings.HasSuffix(string(b), "\n")
	})
	c := pipelines.Calls()[0]
	if c.Name != "api" || c.Variables["COMMIT"] != sha || c.Variables["PATHS"] != "4" || len(c.SourceRevisions) != 1 || c.SourceRevisions[0].RevisionValue != sha {
		t.Errorf("codepipeline call %+v", c)
	}
	if b := builds.Calls()[0]; b.Project != "libs-ci" || b.SourceVersion != sha {
		t.Errorf("codebuild call %+v", b)
	}
	if b, _ := os.ReadFile(marker); !strings.Contains(string(b), "docs/guide.md") {
		t.Errorf("exec saw paths %q", b)
	}
	// The exec target's output is kept with its start.
	waitFor(t, "the exec start recorded", func() bool {
		out, _, _ := run(t, env, "deliveries", "show", "push-1", "--data-dir", data, "--json")
		return strings.Contains(out, `"output": "built main"`)
	})

	// A tag: only the rule with a tags filter, and its secret in the URL.
	tag := `{"ref":"refs/tags/v1.2.0","before":"` + strings.Repeat("0", 40) + `","after":"` + sha + `","created":true,"repository":{"name":"monorepo","full_name":"acme/monorepo"},"commits":[]}`
	if c := postEvent(t, d.url, "s", "push", "tag-1", tag); c != http.StatusAccepted {
		t.Fatalf("tag: %d", c)
	}
	waitFor(t, "the release hook", func() bool { mu.Lock(); defer mu.Unlock(); return len(hooks) == 1 })
	if hooks[0] != `token=jenkins-secret {"tag": "v1.2.0"}` {
		t.Errorf("release hook got %q", hooks[0])
	}
	if strings.Contains(d.log(), "jenkins-secret") {
		t.Error("a secret was logged")
	}

	// A forced push whose payload lists only a Markdown file: the compare
	// API says services/api/y.go changed too, so the API pipeline starts.
	gh.SetCompare("acme/monorepo", "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333", 2, "services/api/README.md", "services/api/y.go")
	forced := `{"ref":"refs/heads/main","before":"2222222222222222222222222222222222222222","after":"3333333333333333333333333333333333333333","forced":true,
	 "repository":{"name":"monorepo","full_name":"acme/monorepo","default_branch":"main"},"commits":[{"added":[],"removed":[],"modified":["services/api/README.md"]}]}`
	gh.RateLimitNext(1, 0) // and the API is rate limited at first
	if c := postEvent(t, d.url, "s", "push", "forced-1", forced); c != http.StatusAccepted {
		t.Fatalf("forced push: %d", c)
	}
	waitFor(t, "the forced push's start", func() bool { return len(pipelines.Calls()) == 2 })
	out, _, _ = run(t, env, "deliveries", "show", "forced-1", "--data-dir", data, "--json")
	var shown struct {
		Result struct {
			Fetched   []string
			Decisions []struct{ Rule, Path, Expression string }
		}
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatal(err, out)
	}
	if len(shown.Result.Fetched) != 1 || shown.Result.Fetched[0] != "services/api/y.go" || shown.Result.Decisions[0].Path != "services/api/y.go" {
		t.Errorf("forced push decision %s", out)
	}

	// Pull requests: opened against main starts the preview workflow with
	// the files GitHub lists; a label starts nothing and is not stored.
	gh.SetPullRequestFiles("acme/monorepo", 42, "web/app.ts")
	pr := func(action string) string {
		return `{"action":"` + action + `","number":42,"pull_request":{"merged":false,"base":{"ref":"main","sha":"` + sha + `"},"head":{"sha":"4444444444444444444444444444444444444444"}},
		 "repository":{"name":"monorepo","full_name":"acme/monorepo","default_branch":"main"}}`
	}
	if c := postEvent(t, d.url, "s", "pull_request", "pr-label", pr("labeled")); c != http.StatusOK {
		t.Errorf("labeled: %d", c)
	}
	if c := postEvent(t, d.url, "s", "pull_request", "pr-open", pr("opened")); c != http.StatusAccepted {
		t.Fatalf("opened: %d", c)
	}
	waitFor(t, "the workflow dispatch", func() bool { return len(gh.Dispatches()) == 1 })
	if dsp := gh.Dispatches()[0]; dsp.Workflow != "preview.yml" || dsp.Ref != "refs/pull/42/head" || dsp.Inputs["pr"] != "42" {
		t.Errorf("dispatch %+v", dsp)
	}
	if _, errOut, code := run(t, env, "deliveries", "show", "pr-label", "--data-dir", data); code == 0 {
		t.Errorf("an ignored action was stored: %s", errOut)
	}
	// Nothing else started along the way.
	if len(pipelines.Calls()) != 2 || builds.Builds() != 1 || len(gh.Dispatches()) != 1 {
		t.Errorf("extra starts: %d pipelines, %d builds, %d dispatches", len(pipelines.Calls()), builds.Builds(), len(gh.Dispatches()))
	}
}
