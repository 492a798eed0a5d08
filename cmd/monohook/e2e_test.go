package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/pgtest"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/trigger"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "monohook-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "monohook")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// awsEnv points the binary's AWS SDK at the fake and nowhere else.
func awsEnv(fake *fakeaws.CodePipeline) []string {
	return append(os.Environ(), fake.Environ()...)
}

func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// daemon is a running `monohook serve`.
type daemon struct {
	cmd *exec.Cmd
	url string

	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

// terminate sends SIGTERM and expects the server to exit 0 within 20 s.
func (d *daemon) terminate(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("serve exit: %v\n%s", err, d.log())
	}
}

func startServe(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{done: make(chan struct{})}
	d.cmd = exec.Command(binary, append([]string{"serve"}, args...)...)
	d.cmd.Env = env
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlCh := make(chan string, 1)
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`webhook_url=(\S+)`)
		for sc.Scan() {
			d.mu.Lock()
			d.logs.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urlCh <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		_ = d.cmd.Wait()
	})
	select {
	case d.url = <-urlCh:
	case <-d.done:
		t.Fatalf("serve exited early:\n%s", d.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not start:\n%s", d.log())
	}
	return d
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const pushPayload = `{
  "ref": "refs/heads/feature/login", "before": "1111111111111111111111111111111111111111",
  "after": "2222222222222222222222222222222222222222", "created": false, "deleted": false, "forced": false,
  "repository": {"name": "monorepo", "full_name": "acme/monorepo"},
  "commits": [
    {"id": "a", "added": ["services/api/login.go"], "removed": [], "modified": ["docs/readme.md"]},
    {"id": "b", "added": [], "removed": ["libs/auth/old.go"], "modified": []}
  ]
}`

func TestEndToEnd(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	data := t.TempDir()
	env := awsEnv(fake)
	payload := filepath.Join(t.TempDir(), "push.json")
	if err := os.WriteFile(payload, []byte(pushPayload), 0o644); err != nil {
		t.Fatal(err)
	}

	put := func(pipeline, match string) {
		out, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--repo", "monorepo", "--branch", "feature/login", "--pipeline", pipeline, "--match", match)
		if code != 0 {
			t.Fatalf("rules put %s: %d %s", pipeline, code, errOut)
		}
		if want := rulestore.SeedKey(rulestore.DefaultPrefix, "monorepo", "feature/login", pipeline); strings.TrimSpace(out) != want {
			t.Errorf("rules put printed %q, want %q", out, want)
		}
	}
	put("api", "services/api/.*")
	put("auth", "libs/auth/.*, libs/crypto/.*")
	put("web", "services/web/.*")
	// Another branch whose name shares the lookup prefix.
	if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--repo", "monorepo", "--branch", "feature/login-v2", "--pipeline", "v2", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	// A bad expression is refused with a reason.
	if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--repo", "monorepo", "--branch", "main", "--pipeline", "x", "--match", "a/(?!b)"); code == 0 || !strings.Contains(errOut, "look-around") {
		t.Errorf("bad expression: exit %d, %q", code, errOut)
	}

	// eval explains without starting.
	out, errOut, code := run(t, env, "eval", "--data-dir", data, "--json", payload)
	if code != 0 {
		t.Fatalf("eval: %d %s", code, errOut)
	}
	var res struct {
		Start     []string `json:"start"`
		Decisions []struct {
			Pipeline, Path, Expression string
			Matched                    bool
		} `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	if !slices.Equal(res.Start, []string{"api", "auth"}) {
		t.Errorf("eval would start %v", res.Start)
	}
	for _, d := range res.Decisions {
		if d.Pipeline == "auth" && (d.Path != "libs/auth/old.go" || d.Expression != "libs/auth/.*") {
			t.Errorf("auth decision %+v", d)
		}
	}
	if text, _, _ := run(t, env, "eval", "--data-dir", data, payload); !strings.Contains(text, "START api") || !strings.Contains(text, "services/api/login.go") {
		t.Errorf("eval text:\n%s", text)
	}
	if len(fake.Calls()) != 0 {
		t.Fatal("eval started pipelines")
	}

	// serve, configured partly through the environment.
	d := startServe(t, append(env, "MONOHOOK_LISTEN=127.0.0.1:0", "MONOHOOK_DATA_DIR="+data))
	if !strings.Contains(d.log(), "rule_count=4") || !strings.Contains(d.log(), "generated") {
		t.Errorf("startup log does not say the rule count or the generated secret:\n%s", d.log())
	}
	secret, err := os.ReadFile(filepath.Join(data, "webhook-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(data, "webhook-secret")); st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v", st.Mode().Perm())
	}
	if strings.Contains(d.log(), strings.TrimSpace(string(secret))) {
		t.Error("the secret was logged")
	}

	out, errOut, code = run(t, env, "send", payload, "--url", d.url, "--data-dir", data, "--delivery", "delivery-1")
	if code != 0 || !strings.Contains(out, "202") {
		t.Fatalf("send: %d %s %s", code, out, errOut)
	}
	waitFor(t, "two starts", func() bool { return len(fake.Calls()) >= 2 })
	time.Sleep(100 * time.Millisecond) // anything extra would arrive now
	if got := fake.Started(); len(got) != 2 || got["api"] != 1 || got["auth"] != 1 {
		t.Errorf("started %v, want api and auth once", got)
	}

	// The same delivery again is acknowledged and not processed again.
	out, _, code = run(t, env, "send", payload, "--url", d.url, "--data-dir", data, "--delivery", "delivery-1")
	if code != 0 || !strings.Contains(out, "duplicate") {
		t.Errorf("repeat delivery: %d %s", code, out)
	}
	// A wrong secret is refused.
	out, _, code = run(t, env, "send", payload, "--url", d.url, "--secret", "wrong")
	if code == 0 || !strings.Contains(out, "403") {
		t.Errorf("wrong secret: %d %s", code, out)
	}
	// The predecessor's route works too, and a ping is answered.
	out, _, code = run(t, env, "send", payload, "--url", strings.Replace(d.url, "/webhook", "/ghorg/push", 1), "--data-dir", data, "--event", "ping")
	if code != 0 || !strings.Contains(out, "pong") {
		t.Errorf("ping on /ghorg/push: %d %s", code, out)
	}
	if got := len(fake.Calls()); got != 2 {
		t.Errorf("%d start calls after the repeats, want 2", got)
	}
	waitFor(t, "the starts to be recorded", func() bool {
		out, _, _ := run(t, env, "deliveries", "show", "delivery-1", "--data-dir", data, "--json")
		return strings.Count(out, `"status": "started"`) == 2
	})
	log := d.log()
	for _, want := range []string{"delivery=delivery-1", "auth: libs/auth/old.go matched libs/auth/.*", "pipeline started", "execution_id=exec-"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}

	// The delivery is stored with its decision and its starts.
	out, errOut, code = run(t, env, "deliveries", "list", "--data-dir", data)
	if code != 0 || !strings.Contains(out, "delivery-1") || !strings.Contains(out, "started · 1 duplicate") {
		t.Errorf("deliveries list: %d %s %s", code, out, errOut)
	}
	var shown struct {
		Duplicates int `json:"duplicates"`
		Starts     []struct {
			Pipeline    string `json:"pipeline"`
			Status      string `json:"status"`
			ExecutionID string `json:"execution_id"`
		} `json:"starts"`
	}
	out, errOut, code = run(t, env, "deliveries", "show", "delivery-1", "--data-dir", data, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || len(shown.Starts) != 2 || shown.Duplicates != 1 {
		t.Errorf("deliveries show: %d %s %s", code, out, errOut)
	}
	// Replay: evaluated again, the pipelines start again.
	if out, errOut, code = run(t, env, "deliveries", "replay", "delivery-1", "--data-dir", data); code != 0 || !strings.Contains(out, "replay 1") {
		t.Errorf("deliveries replay: %d %s %s", code, out, errOut)
	}
	waitFor(t, "the replay's starts", func() bool { return fake.Started()["api"] == 2 && fake.Started()["auth"] == 2 })
	if _, errOut, code = run(t, env, "deliveries", "show", "nope", "--data-dir", data); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("show unknown: %d %s", code, errOut)
	}

	// Metrics, scraped and parsed as Prometheus does, count that traffic.
	families := scrape(t, strings.Replace(d.url, "/webhook", "/metrics", 1))
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"monohook_deliveries_total", map[string]string{"event": "push", "outcome": "accepted"}, 1},
		{"monohook_deliveries_total", map[string]string{"event": "push", "outcome": "duplicate"}, 1},
		{"monohook_deliveries_total", map[string]string{"event": "unverified", "outcome": "bad_signature"}, 1},
		{"monohook_deliveries_total", map[string]string{"event": "ping", "outcome": "ping"}, 1},
		{"monohook_signature_failures_total", nil, 1},
		{"monohook_starts_total", map[string]string{"target": "codepipeline", "outcome": "started"}, 4},
		{"monohook_rules_loaded", nil, 3}, // feature/login's; the v2 branch's rule shares the lookup prefix but is not one of them
		{"monohook_rules_invalid", nil, 0},
	} {
		if got := value(families, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if h := families["monohook_evaluation_seconds"]; h == nil || h.GetMetric()[0].GetHistogram().GetSampleCount() != 2 {
		t.Errorf("evaluation histogram: %v", h)
	}
	// Both deliveries answered 2xx (the first and its repeat) waited for a
	// commit, and each went through one.
	histogram := func(name string) (count uint64, sum float64) {
		if f := families[name]; f != nil {
			h := f.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
		return 0, 0
	}
	if n, _ := histogram("monohook_acknowledge_seconds"); n != 2 {
		t.Errorf("acknowledge histogram counts %d, want 2", n)
	}
	commits, _ := histogram("monohook_commit_seconds")
	if groups, deliveries := histogram("monohook_commit_deliveries"); commits == 0 || groups != commits || deliveries != 2 {
		t.Errorf("commit histograms: %d commits, %d groups of %v deliveries in all, want 2 deliveries", commits, groups, deliveries)
	}
	if _, ok := families["monohook_queue_jobs_waiting"]; !ok {
		t.Error("no queue depth metric")
	}

	// SIGTERM: drains and exits 0.
	d.terminate(t)
	if !strings.Contains(d.log(), "stopped") {
		t.Errorf("no clean stop in the log:\n%s", d.log())
	}
}

func TestValidateNamesBadRules(t *testing.T) {
	data := t.TempDir()
	env := os.Environ()
	if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--repo", "r", "--branch", "main", "--pipeline", "ok", "--match", "a/.*,"); code != 0 {
		t.Fatal(errOut)
	}
	out, _, code := run(t, env, "rules", "validate", "--data-dir", data)
	if code != 0 || !strings.Contains(out, "WARNING") {
		t.Errorf("a warning alone: exit %d\n%s", code, out)
	}
	bad := filepath.Join(data, filepath.FromSlash(rulestore.SeedKey(rulestore.DefaultPrefix, "r", "main", "bad")))
	if err := os.WriteFile(bad, []byte(`{"GitHubRepo": "r", "GitHubBranch": "main", "ChangeMatchExpressions": "(a)\\1", "CodePipelineName": "bad"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = run(t, env, "rules", "validate", "--data-dir", data)
	if code != 1 || !strings.Contains(out, "INVALID "+rulestore.SeedKey(rulestore.DefaultPrefix, "r", "main", "bad")) || !strings.Contains(out, "back-references") {
		t.Errorf("exit %d\n%s", code, out)
	}
	out, _, _ = run(t, env, "rules", "list", "--data-dir", data)
	if !strings.Contains(out, "INVALID") || !strings.Contains(out, "ok") {
		t.Errorf("list:\n%s", out)
	}
	if out, _, code := run(t, env, "rules", "rm", "--data-dir", data, "--repo", "r", "--branch", "main", "--pipeline", "bad"); code != 0 {
		t.Errorf("rm: %d %s", code, out)
	}
	if _, _, code := run(t, env, "rules", "validate", "--data-dir", data); code != 0 {
		t.Errorf("validate after rm: exit %d", code)
	}
	if _, errOut, code := run(t, env, "rules", "get", "--data-dir", data, "--repo", "r", "--branch", "main", "--pipeline", "bad"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("get removed: %d %s", code, errOut)
	}
}

func TestServeNeedsRegionUnlessDryRun(t *testing.T) {
	env := append(os.Environ(), "AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_CONFIG_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true")
	_, errOut, code := run(t, env, "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "AWS_REGION") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	d := startServe(t, env, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--dry-run")
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
}

// A serve that is to start pipelines finds out at start that it has no AWS
// credentials, and says so, rather than accepting pushes whose every start
// fails and retries.
func TestServeNeedsCredentialsUnlessDryRun(t *testing.T) {
	env := append(os.Environ(), "AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=",
		"AWS_PROFILE=", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_WEB_IDENTITY_TOKEN_FILE=")
	// Bounded: without the check, serve would serve on.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil || err == nil || !strings.Contains(string(out), "no usable AWS credentials") || !strings.Contains(string(out), "--dry-run") {
		t.Errorf("serve without credentials: %v (timed out: %v)\n%s", err, ctx.Err() != nil, out)
	}
	d := startServe(t, env, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--dry-run")
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
}

func TestHelpNamesEnvironment(t *testing.T) {
	out, _, _ := run(t, os.Environ(), "serve", "--help")
	for _, env := range []string{"MONOHOOK_LISTEN", "MONOHOOK_DATA_DIR", "MONOHOOK_WEBHOOK_SECRET", "MONOHOOK_WEBHOOK_SECRET_FILE", "MONOHOOK_STORE", "MONOHOOK_PREFIX", "MONOHOOK_REQUIRE_SHA256", "MONOHOOK_DRY_RUN"} {
		if !strings.Contains(out, env) {
			t.Errorf("serve --help does not name %s", env)
		}
	}
}

func TestSecretFromFlagAndRotation(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	data := t.TempDir()
	env := awsEnv(fake)
	d := startServe(t, env, "--listen", "127.0.0.1:0", "--data-dir", data, "--secret", "new-secret,old-secret", "--dry-run")
	for _, s := range []string{"new-secret", "old-secret"} {
		if out, _, code := run(t, env, "send", "-", "--url", d.url, "--secret", s); code == 0 {
			t.Errorf("empty stdin payload accepted: %s", out)
		}
		payload := filepath.Join(t.TempDir(), "p.json")
		_ = os.WriteFile(payload, []byte(pushPayload), 0o644)
		if out, _, code := run(t, env, "send", payload, "--url", d.url, "--secret", s); code != 0 {
			t.Errorf("secret %s refused: %s", s, out)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "webhook-secret")); err == nil {
		t.Error("a secret file was generated although --secret was given")
	}
}

// TestCrashLosesNothing kills serve with SIGKILL in the middle of a burst
// of deliveries while CodePipeline is slow, then starts it again: every
// delivery that got a 2xx is processed, and every (delivery, pipeline) is
// started exactly once, counted by the fake by clientRequestToken.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the job rescuer")
	}
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	fake.SetDelay(300 * time.Millisecond)
	data := t.TempDir()
	env := append(awsEnv(fake), "MONOHOOK_DATA_DIR="+data, "MONOHOOK_WEBHOOK_SECRET=crash-secret", "MONOHOOK_JOB_TIMEOUT=2s", "MONOHOOK_RETRY_BASE=50ms")
	for _, p := range []string{"a", "b"} {
		if _, errOut, code := run(t, env, "rules", "put", "--repo", "monorepo", "--branch", "feature/login", "--pipeline", p, "--match", ".*"); code != 0 {
			t.Fatal(errOut)
		}
	}
	d := startServe(t, env, "--listen", "127.0.0.1:0", "--workers", "4")

	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("crash-%d-%d", w, i)
				if code := postSigned(d.url, "crash-secret", id, pushPayload); code == 202 {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, "20 acknowledged deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 20 })
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	_ = d.cmd.Wait()
	close(stop)
	wg.Wait()
	if n := len(fake.Calls()); n >= 2*len(acked) {
		t.Fatalf("everything was started before the kill (%d calls for %d deliveries): the test proves nothing", n, len(acked))
	}

	startServe(t, env, "--listen", "127.0.0.1:0", "--workers", "4")
	want := map[string]bool{}
	for _, id := range acked {
		want[trigger.StartToken(id, 0, "a")] = true
		want[trigger.StartToken(id, 0, "b")] = true
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		missing := 0
		started := map[string]bool{}
		for _, c := range fake.Calls() {
			started[c.Token] = true
		}
		for tok := range want {
			if !started[tok] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged starts never happened", missing, len(want))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Exactly once: the fake counts executions by token.
	for name, n := range fake.Started() {
		t.Logf("pipeline %s: %d executions for %d acknowledged deliveries", name, n, len(acked))
	}
	executions := map[string]int{}
	for _, c := range fake.Calls() {
		executions[c.Token]++
	}
	for tok := range want {
		if executions[tok] == 0 {
			t.Errorf("token %s not started", tok)
		}
	}
	// More than the acknowledged may have run: a delivery committed just
	// before the kill, whose 202 never reached the client, is processed too
	// (a redelivery would be answered as a duplicate), and its starts may
	// still be in flight now, so a and b need not be equal.
	if got := fake.Started(); got["a"] < len(acked) || got["b"] < len(acked) {
		t.Errorf("executions %v for %d acknowledged deliveries", got, len(acked))
	}
}

// TestShutdownFinishesRunningStart: SIGTERM while a pipeline start is in
// flight lets it finish (within --shutdown-timeout), records it, and exits
// 0; a start that outlasts the timeout is cancelled and the process still
// exits within the bound. On SQLite and on PostgreSQL.
func TestShutdownFinishesRunningStart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testShutdownFinishesRunningStart(t, nil) })
	t.Run("postgres", func(t *testing.T) {
		testShutdownFinishesRunningStart(t, []string{"MONOHOOK_DATABASE=" + pgtest.FreshDatabase(t)})
	})
}

func testShutdownFinishesRunningStart(t *testing.T, database []string) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	fake.SetDelay(time.Second)
	data := t.TempDir()
	env := append(append(awsEnv(fake), database...), "MONOHOOK_DATA_DIR="+data, "MONOHOOK_WEBHOOK_SECRET=drain-secret")
	if _, errOut, code := run(t, env, "rules", "put", "--repo", "monorepo", "--branch", "feature/login", "--pipeline", "slow", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	// called: the start of delivery id has reached the fake (the retry of
	// an earlier one may come after it).
	called := func(id string) func() bool {
		return func() bool {
			return slices.ContainsFunc(fake.Calls(), func(c fakeaws.Start) bool { return c.Token == trigger.StartToken(id, 0, "slow") })
		}
	}
	stopDuring := func(d *daemon, id string) time.Duration {
		t.Helper()
		if code := postSigned(d.url, "drain-secret", id, pushPayload); code != 202 {
			t.Fatalf("post %s: %d", id, code)
		}
		waitFor(t, "the start call to reach CodePipeline", called(id))
		began := time.Now()
		d.terminate(t)
		return time.Since(began)
	}

	d := startServe(t, env, "--listen", "127.0.0.1:0")
	stopDuring(d, "drain-1")
	if strings.Contains(d.log(), "context canceled") {
		t.Errorf("a running job was cancelled on SIGTERM:\n%s", d.log())
	}
	out, errOut, code := run(t, env, "deliveries", "show", "drain-1", "--json")
	if code != 0 || !strings.Contains(out, `"status": "started"`) || !strings.Contains(out, "exec-") {
		t.Errorf("the start in flight at SIGTERM was not recorded as started: %d %s %s", code, out, errOut)
	}

	// The bound: a start slower than --shutdown-timeout is cancelled.
	fake.SetDelay(time.Minute)
	d = startServe(t, env, "--listen", "127.0.0.1:0", "--shutdown-timeout", "500ms")
	if took := stopDuring(d, "drain-2"); took > 15*time.Second {
		t.Errorf("stopping took %s with --shutdown-timeout 500ms", took)
	}
	if log := d.log(); !strings.Contains(log, "jobs still running at the shutdown deadline") || strings.Contains(log, "could not record") {
		t.Errorf("the cancelled job is not told, or its outcome not recorded:\n%s", log)
	}
	out, _, _ = run(t, env, "deliveries", "show", "drain-2", "--json")
	if !strings.Contains(out, `"status": "retrying"`) || !strings.Contains(out, "context canceled") {
		t.Errorf("the start cancelled at the deadline is not shown as retrying: %s", out)
	}

	// A second signal does not wait for the timeout.
	d = startServe(t, env, "--listen", "127.0.0.1:0", "--shutdown-timeout", "1m")
	if code := postSigned(d.url, "drain-secret", "drain-3", pushPayload); code != 202 {
		t.Fatalf("post drain-3: %d", code)
	}
	waitFor(t, "the third start call", called("drain-3"))
	for range 2 {
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the shutdown to begin", func() bool { return strings.Contains(d.log(), "shutting down") })
	}
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second SIGTERM did not end the process")
	}
	_ = d.cmd.Wait()
}

// postSigned posts a push signed with secret and returns the status, or 0
// when the request failed (the server was killed).
func postSigned(url, secret, delivery, body string) int {
	sig256, _ := githubhook.Sign(secret, []byte(body))
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", sig256)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTwoReplicasOnPostgreSQL runs two serve processes on one PostgreSQL
// database and spreads 500 deliveries across them: each start happens
// exactly once.
func TestTwoReplicasOnPostgreSQL(t *testing.T) {
	dsn := pgtest.FreshDatabase(t)
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	rules := "file://" + filepath.ToSlash(t.TempDir()) + "?metadata=skip"
	env := append(awsEnv(fake), "MONOHOOK_DATABASE="+dsn, "MONOHOOK_STORE="+rules, "MONOHOOK_WEBHOOK_SECRET=replica-secret")
	for _, p := range []string{"a", "b"} {
		if _, errOut, code := run(t, env, "rules", "put", "--repo", "monorepo", "--branch", "feature/login", "--pipeline", p, "--match", ".*"); code != 0 {
			t.Fatal(errOut)
		}
	}
	replicas := []*daemon{
		startServe(t, env, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()),
		startServe(t, env, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()),
	}
	const n = 500
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if code := postSigned(replicas[i%2].url, "replica-secret", fmt.Sprintf("replica-%03d", i), pushPayload); code != 202 {
				t.Errorf("delivery %d: status %d", i, code)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "1,000 starts", func() bool { return len(fake.Calls()) >= 2*n })
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	perToken := map[string]int{}
	for _, c := range fake.Calls() {
		perToken[c.Token]++
	}
	for i := range n {
		for _, p := range []string{"a", "b"} {
			if c := perToken[trigger.StartToken(fmt.Sprintf("replica-%03d", i), 0, p)]; c != 1 {
				t.Errorf("delivery %d pipeline %s: started %d times", i, p, c)
			}
		}
	}
	if len(perToken) != 2*n {
		t.Errorf("%d distinct starts, want %d", len(perToken), 2*n)
	}
}

func TestDataDirectoryIsPrivate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "fresh")
	d := startServe(t, os.Environ(), "--listen", "127.0.0.1:0", "--data-dir", data, "--dry-run")
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
	st, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v, want 0700: it holds the secret and the deliveries", st.Mode().Perm())
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value is the counter or gauge of family name whose labels include labels.
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return 0
}
