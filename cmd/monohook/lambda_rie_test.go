package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/rulestore"
)

// rie finds the Lambda Runtime Interface Emulator; .ci/run installs it and
// sets MONOHOOK_REQUIRE_RIE so that CI fails rather than skips without it.
func rie(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "aws-lambda-rie")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("MONOHOOK_REQUIRE_RIE") != "" {
		t.Fatal("aws-lambda-rie is not installed")
	}
	t.Skip("aws-lambda-rie is not installed (go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d)")
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lambdaFunction runs the built binary under the emulator with env and
// returns a function that invokes it with an event.
func lambdaFunction(t *testing.T, env []string) func(event any) []byte {
	t.Helper()
	emu := rie(t)
	addr := freeAddr(t)
	cmd := exec.Command(emu, "--log-level", "error", "--runtime-interface-emulator-address", addr, "--runtime-api-address", freeAddr(t), binary)
	cmd.Env = append(os.Environ(), env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("emulator and function output:\n%s", logs.String())
		}
	})
	return func(event any) []byte {
		body, _ := json.Marshal(event)
		var resp *http.Response
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			resp, err = http.Post("http://"+addr+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(body))
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("invoke: %v\n%s", err, logs.String())
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return out
	}
}

// s3Env starts an in-process S3 with a bucket and returns its environment
// for a function.
func s3Env(t *testing.T) (*s3mem.Backend, []string) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("rules"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return backend, []string{
		"MONOHOOK_STORE=s3://rules?" + url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"}}.Encode(),
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/nonexistent",
		"AWS_RESPONSE_CHECKSUM_VALIDATION=when_required",
	}
}

func TestLambdaCustomResourceUnderEmulator(t *testing.T) {
	backend, env := s3Env(t)
	responses := make(chan map[string]any, 1)
	cf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var resp map[string]any
		_ = json.NewDecoder(r.Body).Decode(&resp)
		responses <- resp
	}))
	defer cf.Close()
	invoke := lambdaFunction(t, append(env, "MONOHOOK_LAMBDA_ROLE=cfn"))
	invoke(map[string]any{
		"RequestType": "Create", "RequestId": "req-1", "ResponseURL": cf.URL, "StackId": "stack", "LogicalResourceId": "Trigger",
		"ResourceType": "Custom::MonoRepoTrigger",
		"ResourceProperties": map[string]any{"ServiceToken": "arn", "GitHubRepo": "GitHubRepositoryName", "GitHubBranch": "MyBranchName",
			"CodePipelineName": "cpname", "ChangeMatchExpressions": "services/.*"},
	})
	select {
	case resp := <-responses:
		key := rulestore.SeedKey(rulestore.DefaultPrefix, "GitHubRepositoryName", "MyBranchName", "cpname")
		if resp["Status"] != "SUCCESS" || resp["PhysicalResourceId"] != key {
			t.Errorf("response %v", resp)
		}
		obj, err := backend.GetObject("rules", key, nil)
		if err != nil {
			t.Fatalf("document not in S3 under the seed key: %v", err)
		}
		b, _ := io.ReadAll(obj.Contents)
		if !strings.Contains(string(b), `"CodePipelineName": "cpname"`) {
			t.Errorf("document %s", b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no response PUT to the ResponseURL")
	}
}

// evalFunction runs the eval function under the emulator, with env, over
// one seed rule (pipeline api: services/api/.* of monorepo@main) and a
// CodePipeline fake.
func evalFunction(t *testing.T, env ...string) (invoke func(event any) []byte, cp *fakeaws.CodePipeline) {
	t.Helper()
	backend, s3 := s3Env(t)
	doc := rulestore.Document{GitHubRepo: "monorepo", GitHubBranch: "main", ChangeMatchExpressions: "services/api/.*", CodePipelineName: "api"}.Marshal()
	if _, err := backend.PutObject("rules", rulestore.SeedKey(rulestore.DefaultPrefix, "monorepo", "main", "api"), nil, bytes.NewReader(doc), int64(len(doc)), nil); err != nil {
		t.Fatal(err)
	}
	cp = fakeaws.NewCodePipeline()
	t.Cleanup(cp.Close)
	return lambdaFunction(t, append(append(s3, "MONOHOOK_LAMBDA_ROLE=eval", "AWS_ENDPOINT_URL_CODEPIPELINE="+cp.URL), env...)), cp
}

func TestLambdaEvalUnderEmulator(t *testing.T) {
	invoke, cp := evalFunction(t)
	out := invoke(map[string]any{"push": map[string]any{"delivery_id": "d-1", "repo": "monorepo", "ref": "refs/heads/main", "paths": []string{"services/api/x.go", "docs/y.md"}}})
	if got := cp.Started(); got["api"] != 1 {
		t.Errorf("started %v; function answered %s", got, out)
	}
}

// The eval function with MONOHOOK_DRY_RUN decides as a live one and
// starts nothing: its starter is the dry run's.
func TestLambdaEvalDryRunUnderEmulator(t *testing.T) {
	invoke, cp := evalFunction(t, "MONOHOOK_DRY_RUN=true")
	out := invoke(map[string]any{"push": map[string]any{"delivery_id": "d-1", "repo": "monorepo", "ref": "refs/heads/main", "paths": []string{"services/api/x.go"}}})
	if n := len(cp.Calls()); n != 0 || bytes.Contains(out, []byte("errorMessage")) {
		t.Errorf("dry run: %d calls to CodePipeline; function answered %s", n, out)
	}
}

func TestLambdaWebhookUnderEmulator(t *testing.T) {
	_, env := s3Env(t)
	lam := fakeaws.NewLambda()
	defer lam.Close()
	invoke := lambdaFunction(t, append(env, "MONOHOOK_LAMBDA_ROLE=webhook", "MONOHOOK_WEBHOOK_SECRET=s3cret",
		"MONOHOOK_EVAL_FUNCTION=monohook-eval", "AWS_ENDPOINT_URL_LAMBDA="+lam.URL))
	body := `{"ref":"refs/heads/main","repository":{"name":"monorepo"},"commits":[{"added":["services/api/x.go"],"removed":[],"modified":[]}]}`
	sig256, _ := githubhook.Sign("s3cret", []byte(body))
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/ghorg/push", Body: body,
		Headers: map[string]string{"content-type": "application/json", "x-github-event": "push", "x-github-delivery": "d-7", "x-hub-signature-256": sig256}}
	ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path = "POST", "/ghorg/push"
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(invoke(ev), &resp); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("response %+v (%v)", resp, err)
	}
	calls := lam.Calls()
	if len(calls) != 1 || calls[0].Function != "monohook-eval" || calls[0].Type != "Event" || !strings.Contains(string(calls[0].Payload), `"delivery_id":"d-7"`) {
		t.Errorf("invocations %+v", calls)
	}
	// A bad signature is refused, and nothing is invoked.
	ev.Headers["x-hub-signature-256"] = "sha256=" + strings.Repeat("0", 64)
	if err := json.Unmarshal(invoke(ev), &resp); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("bad signature: %+v (%v)", resp, err)
	}
	if n := len(lam.Calls()); n != 1 {
		t.Errorf("%d invocations", n)
	}
}
