package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/monohook/monohook/internal/fakeaws"
)

// TestReplayTokensDoNotCollide: the first replay of delivery "victim-1"
// and a delivery named "victim-1#replay-1" are two starts, so CodePipeline
// gets two tokens and starts two executions (tokens once derived from
// "id#replay-N" made them one).
func TestReplayTokensDoNotCollide(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	data := t.TempDir()
	env := awsEnv(fake)
	if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--repo", "monorepo", "--branch", "feature/login", "--pipeline", "api", "--match", "services/api/.*"); code != 0 {
		t.Fatal(errOut)
	}
	d := startServe(t, env, "--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "s", "--retry-base", "50ms")
	for _, id := range []string{"victim-1#replay-1", "victim-1"} {
		if c := postSigned(d.url, "s", id, pushPayload); c != http.StatusAccepted {
			t.Fatalf("%s: %d", id, c)
		}
	}
	waitFor(t, "two starts", func() bool { return len(fake.Calls()) == 2 })
	if out, errOut, code := run(t, env, "deliveries", "replay", "victim-1", "--data-dir", data); code != 0 || !strings.Contains(out, "replay 1") {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}
	waitFor(t, "the replay's start", func() bool { return len(fake.Calls()) == 3 })
	tokens := map[string]bool{}
	for _, c := range fake.Calls() {
		tokens[c.Token] = true
	}
	if len(tokens) != 3 || fake.Started()["api"] != 3 {
		t.Errorf("3 starts of api gave %d tokens and %d executions: %+v", len(tokens), fake.Started()["api"], fake.Calls())
	}
}

// shownDelivery is what deliveries show prints, in part.
type shownDelivery struct {
	Starts []struct {
		Round    int
		Pipeline string
		Status   string
		Attempts int
		Error    string
	}
}

func showDelivery(t *testing.T, env []string, data, id string) shownDelivery {
	t.Helper()
	out, errOut, code := run(t, env, "deliveries", "show", id, "--data-dir", data, "--json")
	var d shownDelivery
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("deliveries show %s: %d %s %s", id, code, out, errOut)
	}
	return d
}

// TestTargetGuards runs serve with http targets that must not do what
// they ask: rules put refuses what can be judged when a rule is written;
// a rule that passes but renders more than the cap, and one stored by hand
// around rules put, fail without harm and say why; an http target on
// 127.0.0.1 is refused unless --http-allow-private.
func TestTargetGuards(t *testing.T) {
	var hits atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer receiver.Close()
	pipelines := fakeaws.NewCodePipeline() // serve needs an AWS region
	defer pipelines.Close()
	data := t.TempDir()
	env := awsEnv(pipelines)
	write := func(dir, name, doc string) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	rule := func(target string) string {
		return "repository: acme/monorepo\npaths: [\"src/**\"]\ntarget:\n  type: http\n" + target
	}
	nested := rule("  url: " + receiver.URL + "/hook\n  body: '{{range 100000}}{{range 100000}}x{{end}}{{end}}'\n")
	for doc, want := range map[string]string{
		nested: "target.body: range 100000: only over a field of the data",
		rule("  url: 'https://{{.Branch}}.ci.example/x'\n"):                        "target.url: {{.Branch}}: the URL's host (and port and user) must be written out",
		rule("  url: http://169.254.169.254/latest/meta-data/\n"):                  "target.url: 169.254.169.254: link-local and metadata addresses are never allowed",
		rule("  url: https://ci.example/x\n  body: '{{printf \"%999999d\" 1}}'\n"): "widths, precisions and argument indexes are not allowed",
	} {
		file := write(t.TempDir(), "r.yaml", doc)
		if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--file", file); code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("rules put of\n%s→ exit %d, %q\nwant a refusal containing %q", doc, code, errOut, want)
		}
	}
	// Stored around rules put: the nested loop, and a body that passes the
	// checks but renders 4 KiB per changed path.
	rulesDir := filepath.Join(data, "monohook", "rules")
	write(rulesDir, "nested.yaml", nested)
	write(rulesDir, "big.yaml", rule("  url: "+receiver.URL+"/big\n  body: '{{range .ChangedPathsCount}}"+strings.Repeat("x", 4096)+"{{end}}'\n"))
	write(rulesDir, "local.yaml", rule("  url: "+receiver.URL+"/local?sha={{.SHA}}\n"))

	d := startServe(t, env, "--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "s", "--retry-base", "50ms")
	var paths []string
	for i := range 300 {
		paths = append(paths, fmt.Sprintf("%q", fmt.Sprintf("src/f%03d.go", i)))
	}
	push := `{"ref":"refs/heads/main","before":"1111111111111111111111111111111111111111","after":"2222222222222222222222222222222222222222",
	 "repository":{"name":"monorepo","full_name":"acme/monorepo"},"commits":[{"added":[` + strings.Join(paths, ",") + `],"removed":[],"modified":[]}]}`
	if c := postSigned(d.url, "s", "guards-1", push); c != http.StatusAccepted {
		t.Fatalf("push: %d", c)
	}
	settled := func(sd shownDelivery, round int) bool {
		n := 0
		for _, s := range sd.Starts {
			if s.Round == round && (s.Status == "failed" || s.Status == "started") {
				n++
			}
		}
		return n == 2
	}
	var shown shownDelivery
	waitFor(t, "both starts to settle", func() bool { shown = showDelivery(t, env, data, "guards-1"); return settled(shown, 0) })
	// The nested loop is an invalid rule, skipped: it starts nothing.
	if len(shown.Starts) != 2 {
		t.Errorf("starts %+v", shown.Starts)
	}
	if out, _, code := run(t, env, "rules", "validate", "--data-dir", data); code != 1 || !strings.Contains(out, "nested.yaml") || !strings.Contains(out, "only over a field of the data") {
		t.Errorf("rules validate: %d %s", code, out)
	}
	for _, s := range shown.Starts {
		want := "127.0.0.1: loopback and private addresses need --http-allow-private or --http-allow-cidr"
		if strings.Contains(s.Pipeline, "/big") {
			want = "body: the template produces more than 1 MiB"
		}
		if s.Status != "failed" || s.Attempts != 1 || !strings.Contains(s.Error, want) || !strings.Contains(s.Error, "permanent") {
			t.Errorf("start %s: %s after %d attempts, %q; want failed for good with %q", s.Pipeline, s.Status, s.Attempts, s.Error, want)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the receiver got %d requests", hits.Load())
	}
	d.terminate(t)

	// Allowed: the local receiver is reached; the big body still is not sent.
	startServe(t, env, "--data-dir", data, "--listen", "127.0.0.1:0", "--secret", "s", "--retry-base", "50ms", "--http-allow-private")
	if _, errOut, code := run(t, env, "deliveries", "replay", "guards-1", "--data-dir", data); code != 0 {
		t.Fatal(errOut)
	}
	waitFor(t, "the replay's starts to settle", func() bool { shown = showDelivery(t, env, data, "guards-1"); return settled(shown, 1) })
	for _, s := range shown.Starts {
		if s.Round == 1 && (s.Status == "started") != strings.Contains(s.Pipeline, "/local") {
			t.Errorf("replayed start %s: %s %q", s.Pipeline, s.Status, s.Error)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("the receiver got %d requests, want 1", hits.Load())
	}
}
