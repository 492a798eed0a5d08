package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/pgtest"
)

// Commands that read never create a data directory or a database: run
// where there is none, they fail and say where they looked and what to
// pass.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	payload := filepath.Join(t.TempDir(), "push.json")
	if err := os.WriteFile(payload, []byte(pushPayload), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nowhere")
	for _, args := range [][]string{
		{"rules", "list"}, {"rules", "get", "mono-repo/config/x.json"}, {"rules", "validate"}, {"rules", "rm", "mono-repo/config/x.json"},
		{"rules", "convert", "mono-repo/config/x.json", "--owner", "acme"}, {"eval", payload},
		{"deliveries", "list"}, {"deliveries", "show", "x"}, {"deliveries", "replay", "x"},
		{"deliveries", "recover", "--github-org", "acme", "--github-hook-id", "1", "--github-token", "x", "--github-api-url", "http://127.0.0.1:1/"},
	} {
		_, errOut, code := run(t, os.Environ(), append(args, "--data-dir", missing)...)
		if code == 0 || !strings.Contains(errOut, missing) || !strings.Contains(errOut, "--data-dir") {
			t.Errorf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatalf("%s created %s", strings.Join(args, " "), missing)
		}
	}
	// A data directory with rules but no database yet (serve never ran).
	data := t.TempDir()
	if _, errOut, code := run(t, os.Environ(), "rules", "put", "--data-dir", data, "--repo", "r", "--branch", "main", "--pipeline", "p", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	if out, _, _ := run(t, os.Environ(), "rules", "validate", "--data-dir", data); !strings.Contains(out, "1 rule, 0 invalid, 0 warnings") {
		t.Errorf("rules validate counts in the plural: %s", out)
	}
	_, errOut, code := run(t, os.Environ(), "deliveries", "list", "--data-dir", data)
	if code == 0 || !strings.Contains(errOut, filepath.Join(data, "monohook.db")) || !strings.Contains(errOut, "--database") {
		t.Errorf("deliveries list without a database: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "monohook.db")); err == nil {
		t.Error("deliveries list created the database")
	}
	// rules put is the one that creates the directory, for this user only.
	fresh := filepath.Join(t.TempDir(), "fresh")
	if _, errOut, code := run(t, os.Environ(), "rules", "put", "--data-dir", fresh, "--repo", "r", "--branch", "main", "--pipeline", "p", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	if st, err := os.Stat(fresh); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("rules put: data directory %v %v", st, err)
	}
}

// On PostgreSQL, a database serve has not set up is not set up by a
// command that reads.
func TestReadOnlyCommandsCreateNoTables(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	_, errOut, code := run(t, os.Environ(), "deliveries", "list", "--database", dsn)
	if code == 0 || !strings.Contains(errOut, "no deliveries database") || !strings.Contains(errOut, "--database") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// Still nothing there: the same answer again, not an empty list.
	if _, errOut, code := run(t, os.Environ(), "deliveries", "list", "--database", dsn); code == 0 || !strings.Contains(errOut, "no deliveries database") {
		t.Errorf("second run: exit %d: %s", code, errOut)
	}
}

func TestMistakesExitNonZero(t *testing.T) {
	env := os.Environ()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"rules", "lst"}, []string{`unknown command "lst" for "monohook rules"`, "did you mean list?"}},
		{[]string{"deliveries", "shwo", "x"}, []string{"did you mean show?"}},
		{[]string{"serv"}, []string{"did you mean serve?"}},
		{[]string{"help", "rules", "lst"}, []string{"did you mean list?"}},
		{[]string{"deliveries", "show"}, []string{"Usage: monohook deliveries show DELIVERY"}},
		{[]string{"eval"}, []string{"Usage: monohook eval PUSH.json"}},
		{[]string{"eval", "../../testdata/push.json", "--event", "pull_requets"}, []string{`--event "pull_requets"`, "merge_group"}},
		{[]string{"rules", "list", "--nope"}, []string{"unknown flag: --nope", "Usage: monohook rules list"}},
		{[]string{"rules", "list", "extra"}, []string{"Usage: monohook rules list"}},
	} {
		out, errOut, code := run(t, env, c.args...)
		if code == 0 {
			t.Errorf("%s: exit 0\n%s", strings.Join(c.args, " "), out)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", strings.Join(c.args, " "), w, errOut)
			}
		}
	}
	// A group alone still shows its commands.
	if out, _, code := run(t, env, "rules"); code != 0 || !strings.Contains(out, "validate") {
		t.Errorf("rules: exit %d\n%s", code, out)
	}
}

func TestStoreNeedsRegion(t *testing.T) {
	env := append(os.Environ(), "AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_PROFILE=", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	for _, args := range [][]string{{"rules", "list"}, {"serve", "--dry-run", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}} {
		_, errOut, code := run(t, env, append(args, "--store", "s3://rules-bucket")...)
		if code == 0 || !strings.Contains(errOut, "no AWS region") || !strings.Contains(errOut, "?region=") || !strings.Contains(errOut, "AWS_REGION") {
			t.Errorf("%s: exit %d: %s", args[0], code, errOut)
		}
	}
}

func TestHelpSaysWhatCommandsDo(t *testing.T) {
	out, _, _ := run(t, os.Environ(), "send", "--help")
	if strings.Contains(out, "create") {
		t.Errorf("send --help says it creates something:\n%s", out)
	}
	_, errOut, _ := run(t, os.Environ(), "rules", "put", "--data-dir", t.TempDir(), "--repo", "r", "--branch", "main", "--pipeline", "p", "--match", "a/(?!b)")
	if !strings.Contains(errOut, "look-around") || strings.Contains(errOut, "use an exclude") {
		t.Errorf("a seed rule's look-around error: %s", errOut)
	}
}

// listedDelivery is the part of deliveries list --json these tests read.
type listedDelivery struct {
	ID      string `json:"id"`
	Started int    `json:"started"`
	Failed  int    `json:"failed"`
	Pending int    `json:"pending"`
	Outcome string `json:"outcome"`
	Status  string `json:"status"`
}

func listDeliveries(t *testing.T, env []string, args ...string) []listedDelivery {
	t.Helper()
	out, errOut, code := run(t, env, append([]string{"deliveries", "list", "--json"}, args...)...)
	var ds []listedDelivery
	if code != 0 || json.Unmarshal([]byte(out), &ds) != nil {
		t.Fatalf("deliveries list --json %v: exit %d %s %s", args, code, out, errOut)
	}
	return ds
}

func ids(ds []listedDelivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	slices.Sort(out)
	return out
}

func TestDeliveriesListFiltersAndShow(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	fake.OnlyPipelines("api") // "gone" does not exist: its start fails
	data := t.TempDir()
	env := append(awsEnv(fake), "MONOHOOK_DATA_DIR="+data)
	for _, r := range [][2]string{{"api", "services/api/.*"}, {"gone", "services/.*"}} {
		if _, errOut, code := run(t, env, "rules", "put", "--repo", "monorepo", "--branch", "feature/login", "--pipeline", r[0], "--match", r[1]); code != 0 {
			t.Fatal(errOut)
		}
	}
	d := startServe(t, env, "--listen", "127.0.0.1:0", "--secret", "s", "--start-attempts", "1")
	docsOnly := strings.Replace(strings.Replace(pushPayload, "services/api/login.go", "docs/a.md", 1), "libs/auth/old.go", "docs/b.md", 1)
	tag := strings.Replace(pushPayload, "refs/heads/feature/login", "refs/tags/v1", 1)
	for id, body := range map[string]string{"6f1c0001-aaaa": pushPayload, "6f1c0002-bbbb": docsOnly, "7a000003-cccc": tag} {
		if code := postSigned(d.url, "s", id, body); code != 202 {
			t.Fatalf("post %s: %d", id, code)
		}
	}
	waitFor(t, "the deliveries to be evaluated and started", func() bool {
		for _, d := range listDeliveries(t, env) {
			if d.Status != "evaluated" || d.Pending > 0 {
				return false
			}
		}
		return len(fake.Calls()) >= 1
	})
	d.terminate(t)

	out, errOut, code := run(t, env, "deliveries", "list")
	if code != 0 {
		t.Fatal(errOut)
	}
	for _, want := range []string{"STARTED", "PENDING", "FAILED", "OUTCOME", "failed", "nothing to start", "skipped: tag"} {
		if !strings.Contains(out, want) {
			t.Errorf("deliveries list lacks %q:\n%s", want, out)
		}
	}
	all := listDeliveries(t, env)
	for _, d := range all {
		if d.ID == "6f1c0001-aaaa" && (d.Started != 1 || d.Failed != 1 || d.Outcome != "failed") {
			t.Errorf("the started and failed delivery: %+v", d)
		}
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"6f1c0001-aaaa", "6f1c0002-bbbb", "7a000003-cccc"}},
		{[]string{"--status", "failed"}, []string{"6f1c0001-aaaa"}},
		{[]string{"--status", "none"}, []string{"6f1c0002-bbbb", "7a000003-cccc"}},
		{[]string{"--repo", "acme/monorepo", "--status", "started"}, []string{"6f1c0001-aaaa"}},
		{[]string{"--repo", "other"}, nil},
		{[]string{"--since", "1h"}, []string{"6f1c0001-aaaa", "6f1c0002-bbbb", "7a000003-cccc"}},
		{[]string{"--since", "2999-01-01"}, nil},
	} {
		if got := ids(listDeliveries(t, env, c.args...)); !slices.Equal(got, c.want) {
			t.Errorf("deliveries list %v: %v, want %v", c.args, got, c.want)
		}
	}
	if _, errOut, code := run(t, env, "deliveries", "list", "--status", "bogus"); code == 0 || !strings.Contains(errOut, "failed, pending, started, none") {
		t.Errorf("--status bogus: exit %d %s", code, errOut)
	}
	if _, errOut, code := run(t, env, "deliveries", "list", "--since", "yesterday"); code == 0 || !strings.Contains(errOut, "--since") {
		t.Errorf("--since yesterday: exit %d %s", code, errOut)
	}

	// show: by a unique prefix, human-readable; --json for scripts.
	out, errOut, code = run(t, env, "deliveries", "show", "6f1c0001")
	if code != 0 {
		t.Fatal(errOut)
	}
	for _, want := range []string{"6f1c0001-aaaa", "outcome", "failed", "START api", "START gone", "services/api/login.go", "PipelineNotFound"} {
		if !strings.Contains(out, want) {
			t.Errorf("deliveries show lacks %q:\n%s", want, out)
		}
	}
	if strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Errorf("deliveries show printed JSON:\n%s", out)
	}
	out, _, code = run(t, env, "deliveries", "show", "7a", "--json")
	var shown struct {
		ID string `json:"id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown.ID != "7a000003-cccc" {
		t.Errorf("deliveries show 7a --json: exit %d %s", code, out)
	}
	_, errOut, code = run(t, env, "deliveries", "show", "6f1c")
	if code == 0 || !strings.Contains(errOut, "ambiguous") || !strings.Contains(errOut, "6f1c0001-aaaa") || !strings.Contains(errOut, "6f1c0002-bbbb") {
		t.Errorf("an ambiguous prefix: exit %d %s", code, errOut)
	}
	if _, errOut, code = run(t, env, "deliveries", "replay", "6f1c"); code == 0 || !strings.Contains(errOut, "ambiguous") {
		t.Errorf("replay of an ambiguous prefix: exit %d %s", code, errOut)
	}
	if out, errOut, code = run(t, env, "deliveries", "replay", "6f1c0002"); code != 0 || !strings.Contains(out, "replay 1 of 6f1c0002-bbbb queued") {
		t.Errorf("replay by prefix: exit %d %s %s", code, out, errOut)
	}
	if _, errOut, code = run(t, env, "deliveries", "show", "zz"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("show zz: exit %d %s", code, errOut)
	}
}

// A monohook command run by an exec target sees the push's MONOHOOK_REPO,
// MONOHOOK_BRANCH, …: none of them configures it.
func TestExecTargetEnvironmentIsNotConfiguration(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	data := t.TempDir()
	env := append(awsEnv(fake), "MONOHOOK_DATA_DIR="+data)
	// A seed rule of another repository and branch, which a rules list
	// filtered by the push's repository and branch would leave out.
	if _, errOut, code := run(t, env, "rules", "put", "--repo", "elsewhere", "--branch", "dev", "--pipeline", "far", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	for name, argv := range map[string][]string{
		"list": {binary, "rules", "list", "--data-dir", data},
		"env":  {"env"},
	} {
		b, _ := json.Marshal(argv)
		file := filepath.Join(t.TempDir(), name+".json")
		doc := `{"repository": "acme/monorepo", "paths": ["**"], "target": {"type": "exec", "command": ` + string(b) + `}}`
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := run(t, env, "rules", "put", "--file", file); code != 0 {
			t.Fatal(errOut)
		}
	}
	d := startServe(t, env, "--listen", "127.0.0.1:0", "--secret", "s", "--allow-exec", "--start-attempts", "1")
	if code := postSigned(d.url, "s", "exec-1", pushPayload); code != 202 {
		t.Fatalf("post: %d", code)
	}
	var shown struct {
		Starts []struct{ Pipeline, Status, Output, Error string }
	}
	waitFor(t, "both exec starts", func() bool {
		out, _, _ := run(t, env, "deliveries", "show", "exec-1", "--json")
		shown.Starts = nil
		_ = json.Unmarshal([]byte(out), &shown)
		done := 0
		for _, s := range shown.Starts {
			if s.Status == "started" || s.Status == "failed" {
				done++
			}
		}
		return done == 2
	})
	d.terminate(t)
	var listed, environ string
	for _, s := range shown.Starts {
		if s.Status != "started" {
			t.Errorf("exec start %s: %s %s %s", s.Pipeline, s.Status, s.Error, s.Output)
		}
		if strings.Contains(s.Output, "MONOHOOK_TOKEN=") {
			environ = s.Output
		} else {
			listed = s.Output
		}
	}
	if !strings.Contains(listed, "far") {
		t.Errorf("rules list run by an exec target left out a rule:\n%s", listed)
	}
	names := regexp.MustCompile(`(?m)^(MONOHOOK_[A-Z_]+)=`).FindAllStringSubmatch(environ, -1)
	if len(names) < 5 {
		t.Fatalf("the exec target's environment:\n%s", environ)
	}
	// No flag of any command has one of those variables as its twin.
	for _, cmd := range [][]string{{"serve"}, {"eval"}, {"send"}, {"rules", "put"}, {"rules", "list"}, {"rules", "get"}, {"rules", "rm"},
		{"rules", "validate"}, {"rules", "convert"}, {"deliveries", "list"}, {"deliveries", "show"}, {"deliveries", "replay"}} {
		help, _, _ := run(t, os.Environ(), append(cmd, "--help")...)
		for _, n := range names {
			if strings.Contains(help, "$"+n[1]+"]") {
				t.Errorf("%s --help: %s, which exec targets set, is a flag's twin", strings.Join(cmd, " "), n[1])
			}
		}
	}
}
