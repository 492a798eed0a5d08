package main_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/rulestore"
)

// statusSetup is a bucket with rules, a fake GitHub that takes the App's
// installation token, CodePipeline and CodeBuild fakes, and the
// environment the eval and status functions share.
type statusSetup struct {
	s3  *s3mem.Backend
	gh  *fakegithub.GitHub
	cp  *fakeaws.CodePipeline
	cb  *fakeaws.CodeBuild
	env []string
}

func newStatusSetup(t *testing.T) *statusSetup {
	t.Helper()
	backend, env := s3Env(t)
	put := func(key string, doc []byte) {
		if _, err := backend.PutObject("rules", key, nil, bytes.NewReader(doc), int64(len(doc)), nil); err != nil {
			t.Fatal(err)
		}
	}
	put(rulestore.SeedKey(rulestore.DefaultPrefix, "monorepo", "main", "api"),
		rulestore.Document{GitHubRepo: "monorepo", GitHubBranch: "main", ChangeMatchExpressions: "services/api/.*", CodePipelineName: "api"}.Marshal())
	put(rulestore.SeedKey(rulestore.DefaultPrefix, "monorepo", "main", "docs"),
		rulestore.Document{GitHubRepo: "monorepo", GitHubBranch: "main", ChangeMatchExpressions: "docs/.*", CodePipelineName: "docs"}.Marshal())
	put("monohook/rules/web.yaml", []byte("repository: acme/monorepo\npaths: [\"web/**\"]\ntarget: {type: codebuild, project: web}\n"))
	// An http target's answer is its result.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	t.Cleanup(receiver.Close)
	put("monohook/rules/hook.yaml", []byte("repository: acme/monorepo\npaths: [\"services/**\"]\nreport: {name: ci/hook}\ntarget: {type: http, url: '"+receiver.URL+"/hook'}\n"))

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	gh := fakegithub.New("installation-token")
	t.Cleanup(gh.Close)
	gh.AppKey, gh.InstallationToken = &key.PublicKey, "installation-token"
	cp, cb := fakeaws.NewCodePipeline(), fakeaws.NewCodeBuild()
	t.Cleanup(cp.Close)
	t.Cleanup(cb.Close)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	env = append(env, "MONOHOOK_GITHUB_API_URL="+gh.URL, "MONOHOOK_GITHUB_APP_ID=42", "MONOHOOK_GITHUB_INSTALLATION_ID=7",
		"MONOHOOK_GITHUB_APP_KEY="+string(pemKey), "MONOHOOK_HTTP_ALLOW_PRIVATE=true", "AWS_ENDPOINT_URL_CODEPIPELINE="+cp.URL, "AWS_ENDPOINT_URL_CODEBUILD="+cb.URL)
	return &statusSetup{s3: backend, gh: gh, cp: cp, cb: cb, env: env}
}

func (s *statusSetup) function(t *testing.T, role string) func(any) []byte {
	return lambdaFunction(t, append(append([]string(nil), s.env...), "MONOHOOK_LAMBDA_ROLE="+role))
}

// runs are the fake's check runs by name.
func (s *statusSetup) runs() map[string]fakegithub.CheckRun {
	out := map[string]fakegithub.CheckRun{}
	for _, r := range s.gh.CheckRuns() {
		out[r.Name] = r
	}
	return out
}

const statusSHA = "0123456789abcdef0123456789abcdef01234567"

func statusPush() map[string]any {
	return map[string]any{"push": map[string]any{"delivery_id": "d-1", "repo": "monorepo", "full_name": "acme/monorepo", "ref": "refs/heads/main",
		"before": "1111111111111111111111111111111111111111", "after": statusSHA, "commits": 1,
		"paths": []string{"services/api/x.go", "web/index.html"}}}
}

func pipelineEvent(pipeline, id string, state events.CodePipelineState, at time.Time) events.CodePipelineEventBridgeEvent {
	return events.CodePipelineEventBridgeEvent{Version: "0", ID: "ev-" + string(state), DetailType: events.CodePipelineExecutionEventDetailType,
		Source: "aws.codepipeline", AccountID: "123456789012", Time: at, Region: "us-east-1",
		Resources: []string{"arn:aws:codepipeline:us-east-1:123456789012:" + pipeline},
		Detail:    events.CodePipelineEventDetail{Pipeline: pipeline, Version: 1, ExecutionID: id, State: state}}
}

func buildEvent(project, id string, status events.CodeBuildPhaseStatus, at time.Time) events.CodeBuildEvent {
	arn := "arn:aws:codebuild:us-east-1:123456789012:build/" + id
	return events.CodeBuildEvent{AccountID: "123456789012", Region: "us-east-1", DetailType: events.CodeBuildStateChangeDetailType,
		Source: events.CodeBuildEventSource, Version: "0", Time: at, ID: "ev-" + string(status), Resources: []string{arn},
		Detail: events.CodeBuildEventDetail{BuildStatus: status, ProjectName: project, BuildID: arn, CurrentPhase: events.CodeBuildPhaseTypeCompleted,
			AdditionalInformation: events.CodeBuildEventAdditionalInformation{BuildComplete: status != events.CodeBuildPhaseStatusInProgress,
				BuildStartTime: events.CodeBuildTime(at)}}}
}

// The eval function posts every rule's check (the pipeline not selected
// completed as skipped, the started ones in progress with their link) and
// records the executions; the status function, fed EventBridge's state
// changes, completes those checks with the execution's result, ignores
// executions monohook did not start, and never reopens a completed check
// for an event that arrives late.
func TestLambdaStatusUnderEmulator(t *testing.T) {
	s := newStatusSetup(t)
	eval, status := s.function(t, "eval"), s.function(t, "status")
	if out := eval(statusPush()); bytes.Contains(out, []byte("errorMessage")) {
		t.Fatalf("eval: %s", out)
	}
	runs := s.runs()
	api, docs, web := runs["monohook/api"], runs["monohook/docs"], runs["monohook/codebuild:web"]
	if docs.Status != "completed" || docs.Conclusion != "skipped" || !strings.Contains(docs.Title, "Not selected") {
		t.Errorf("docs, not selected: %+v", docs)
	}
	if api.Status != "in_progress" || !strings.Contains(api.DetailsURL, "/pipelines/api/executions/exec-0001-api/") || api.HeadSHA != statusSHA {
		t.Errorf("api, started: %+v", api)
	}
	if web.Status != "in_progress" || !strings.Contains(web.DetailsURL, "/projects/web/build/web:build-0001/") {
		t.Errorf("web, started: %+v", web)
	}
	if hook := runs["ci/hook"]; hook.Status != "completed" || hook.Conclusion != "success" {
		t.Errorf("ci/hook, an http target answered 202: %+v", hook)
	}
	if _, err := s.s3.HeadObject("rules", "monohook/executions/codepipeline/api/exec-0001-api.json"); err != nil {
		t.Errorf("no record of the api execution: %v", err)
	}

	// Lambda retries an invocation (and GitHub may deliver twice): the
	// check runs are found by their external id and updated.
	if out := eval(statusPush()); bytes.Contains(out, []byte("errorMessage")) || len(s.gh.CheckRuns()) != 4 {
		t.Fatalf("eval again: %d check runs, want 4 (%s)", len(s.gh.CheckRuns()), out)
	}

	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	invoke := func(ev any) {
		t.Helper()
		if out := status(ev); bytes.Contains(out, []byte("errorMessage")) {
			t.Fatalf("status: %s", out)
		}
	}
	invoke(pipelineEvent("api", "exec-0001-api", events.CodePipelineStateStarted, t0))
	invoke(pipelineEvent("api", "exec-0001-api", events.CodePipelineStateSucceeded, t0.Add(time.Minute)))
	if api = s.runs()["monohook/api"]; api.Status != "completed" || api.Conclusion != "success" || api.ID != runs["monohook/api"].ID {
		t.Errorf("api after SUCCEEDED: %+v", api)
	}
	// A STARTED delivered after the SUCCEEDED does not reopen the check.
	n := len(s.gh.CheckEvents())
	invoke(pipelineEvent("api", "exec-0001-api", events.CodePipelineStateStarted, t0))
	if got := len(s.gh.CheckEvents()); got != n || s.runs()["monohook/api"].Status != "completed" {
		t.Errorf("a late STARTED: %d check writes (want %d), api %+v", got, n, s.runs()["monohook/api"])
	}
	// Nor does the eval function retried (after another start failed,
	// say): the status function keeps a recorded execution's check.
	eval(statusPush())
	if api = s.runs()["monohook/api"]; api.Status != "completed" || api.Conclusion != "success" {
		t.Errorf("api after the eval function ran again: %+v", api)
	}
	n = len(s.gh.CheckEvents())
	// An execution monohook did not start has no record: nothing is posted.
	invoke(pipelineEvent("other", "exec-9999", events.CodePipelineStateFailed, t0))
	if got := len(s.gh.CheckEvents()); got != n {
		t.Errorf("an execution monohook did not start: %d check writes, want %d", got, n)
	}

	invoke(buildEvent("web", "web:build-0001", events.CodeBuildPhaseStatusInProgress, t0))
	invoke(buildEvent("web", "web:build-0001", events.CodeBuildPhaseStatusTimedOut, t0.Add(2*time.Minute)))
	if web = s.runs()["monohook/codebuild:web"]; web.Status != "completed" || web.Conclusion != "timed_out" || !strings.Contains(web.Title, "timed out") {
		t.Errorf("web after TIMED_OUT: %+v", web)
	}
	if got := len(s.gh.CheckRuns()); got != 4 {
		t.Errorf("%d check runs, want 4 (updated, never created twice)", got)
	}
}

// A CodePipeline retry of a failed stage resumes the execution: a
// RESUMED later than the FAILED reopens the check, and its end completes
// it again. Any other event is refused with a clear error.
func TestLambdaStatusResumedAndBadEvents(t *testing.T) {
	s := newStatusSetup(t)
	eval, status := s.function(t, "eval"), s.function(t, "status")
	eval(statusPush())
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	status(pipelineEvent("api", "exec-0001-api", events.CodePipelineStateFailed, t0))
	if api := s.runs()["monohook/api"]; api.Conclusion != "failure" {
		t.Errorf("after FAILED: %+v", api)
	}
	status(pipelineEvent("api", "exec-0001-api", events.CodePipelineStateResumed, t0.Add(time.Minute)))
	if api := s.runs()["monohook/api"]; api.Status != "in_progress" {
		t.Errorf("after RESUMED: %+v", api)
	}
	status(pipelineEvent("api", "exec-0001-api", events.CodePipelineStateCanceled, t0.Add(2*time.Minute)))
	if api := s.runs()["monohook/api"]; api.Conclusion != "cancelled" {
		t.Errorf("after CANCELED: %+v", api)
	}

	for name, ev := range map[string]any{
		"another source": map[string]any{"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": map[string]any{}},
		"a key outside":  pipelineEvent("api", "../../rules/x", events.CodePipelineStateFailed, t0),
		"a bad detail":   map[string]any{"source": "aws.codepipeline", "detail-type": events.CodePipelineExecutionEventDetailType, "detail": "x"},
	} {
		var resp struct{ ErrorMessage string }
		if err := json.Unmarshal(status(ev), &resp); err != nil || resp.ErrorMessage == "" {
			t.Errorf("%s: no error (%v)", name, err)
		}
	}
}
