package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/httpserver"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/trigger"
)

const secret = "make sure you keep this one quiet"

func setenv(t *testing.T, env []string) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

type webhookFixture struct {
	fake    *fakeaws.Lambda
	bucket  *blob.Bucket
	webhook *Webhook
}

func newWebhookFixture(t *testing.T) *webhookFixture {
	f := &webhookFixture{fake: fakeaws.NewLambda()}
	t.Cleanup(f.fake.Close)
	setenv(t, f.fake.Environ())
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.bucket, err = fileblob.OpenBucket(t.TempDir(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.bucket.Close() })
	log := slog.New(slog.DiscardHandler)
	v, _ := githubhook.NewVerifier([]string{secret}, false)
	inv := &Invoker{Client: awslambda.NewFromConfig(cfg), Function: "monohook-eval", Bucket: f.bucket, Log: log}
	h := httpserver.Handler(httpserver.Config{Webhook: &githubhook.Handler{Verifier: v, Acceptor: inv, Log: log}, Ready: func(context.Context) error { return nil }, Log: log})
	f.webhook = NewWebhook(h)
	return f
}

func pushBody(paths int) string {
	list := make([]string, paths)
	for i := range list {
		list[i] = `"services/api/file` + strings.Repeat("x", 60) + string(rune('a'+i%26)) + `.go"`
	}
	return `{"ref":"refs/heads/main","after":"abc","repository":{"name":"repo"},"commits":[{"added":[` + strings.Join(list, ",") + `],"removed":[],"modified":[]}]}`
}

func v2Event(body string, base64Body bool) json.RawMessage {
	sig256, _ := githubhook.Sign(secret, []byte(body))
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /ghorg/push", RawPath: "/ghorg/push",
		Headers: map[string]string{"content-type": "application/json", "x-github-event": "push", "x-github-delivery": "d-1", "x-hub-signature-256": sig256},
		Body:    body,
	}
	ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path = http.MethodPost, "/ghorg/push"
	if base64Body {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(body)), true
	}
	raw, _ := json.Marshal(ev)
	return raw
}

func v1Event(body, sig string) json.RawMessage {
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: http.MethodPost, Path: "/ghorg/push", Resource: "/ghorg/push",
		Headers: map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature": sig},
		Body:    body,
	}
	raw, _ := json.Marshal(ev)
	return raw
}

func TestWebhookInvokesEval(t *testing.T) {
	f := newWebhookFixture(t)
	for _, b64 := range []bool{false, true} {
		out, err := f.webhook.Handle(context.Background(), v2Event(pushBody(2), b64))
		if err != nil {
			t.Fatal(err)
		}
		if resp := out.(events.APIGatewayV2HTTPResponse); resp.StatusCode != http.StatusAccepted {
			t.Errorf("base64=%v: %d %s", b64, resp.StatusCode, resp.Body)
		}
	}
	calls := f.fake.Calls()
	if len(calls) != 2 || calls[0].Function != "monohook-eval" || calls[0].Type != "Event" {
		t.Fatalf("invocations %+v", calls)
	}
	var ev EvalEvent
	if err := json.Unmarshal(calls[0].Payload, &ev); err != nil || ev.Push == nil || ev.Push.Repo != "repo" || ev.Push.DeliveryID != "d-1" || len(ev.Push.Paths) != 2 {
		t.Errorf("payload %s (%v)", calls[0].Payload, err)
	}
}

func TestWebhookV1AndBadSignature(t *testing.T) {
	f := newWebhookFixture(t)
	body := pushBody(1)
	_, sig1 := githubhook.Sign(secret, []byte(body))
	out, err := f.webhook.Handle(context.Background(), v1Event(body, strings.Replace(sig1, "=", " = ", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.APIGatewayProxyResponse); resp.StatusCode != http.StatusAccepted {
		t.Errorf("REST event: %d %s", resp.StatusCode, resp.Body)
	}
	out, _ = f.webhook.Handle(context.Background(), v1Event(body, "sha1=00"))
	if resp := out.(events.APIGatewayProxyResponse); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bad signature: %d", resp.StatusCode)
	}
	if n := len(f.fake.Calls()); n != 1 {
		t.Errorf("%d invocations, want 1", n)
	}
}

func TestFailedInvokeIsNotSuccess(t *testing.T) {
	f := newWebhookFixture(t)
	f.fake.Fail(10) // past the SDK's retries
	out, err := f.webhook.Handle(context.Background(), v2Event(pushBody(1), false))
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.APIGatewayV2HTTPResponse); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a failed invoke answered %d; GitHub must see a failure", resp.StatusCode)
	}
}

func TestLargePushIsParkedAndEvaluated(t *testing.T) {
	f := newWebhookFixture(t)
	body := pushBody(16000) // ~1.2 MB of paths: more than an async invoke takes
	out, err := f.webhook.Handle(context.Background(), v2Event(body, false))
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.APIGatewayV2HTTPResponse); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	calls := f.fake.Calls()
	var ev EvalEvent
	if err := json.Unmarshal(calls[0].Payload, &ev); err != nil || ev.ParkedKey == "" || ev.Push != nil || len(calls[0].Payload) > maxAsyncPayload {
		t.Fatalf("event %s", calls[0].Payload)
	}

	// The eval function reads it back, evaluates, starts, and removes it.
	cp := fakeaws.NewCodePipeline()
	defer cp.Close()
	cp.Setenv(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, err := rulestore.Open(context.Background(), "file://"+filepath.ToSlash(t.TempDir())+"?metadata=skip", rulestore.DefaultPrefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.Put(context.Background(), rulestore.Document{GitHubRepo: "repo", GitHubBranch: "main", ChangeMatchExpressions: "services/api/.*", CodePipelineName: "api"}); err != nil {
		t.Fatal(err)
	}
	eval := &Eval{Service: &trigger.Service{Rules: st, Starter: codepipeline.New(cfg), Log: slog.New(slog.DiscardHandler)}, Bucket: f.bucket, Log: slog.New(slog.DiscardHandler)}
	if err := eval.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if got := cp.Started(); got["api"] != 1 {
		t.Errorf("started %v", got)
	}
	if ok, _ := f.bucket.Exists(context.Background(), ev.ParkedKey); ok {
		t.Error("parked push not removed")
	}
	// A failing start makes the invocation fail, so Lambda retries it.
	cp.OnlyPipelines()
	if err := eval.Handle(context.Background(), EvalEvent{Push: &trigger.Push{DeliveryID: "d-2", Repo: "repo", Ref: "refs/heads/main", Paths: []string{"services/api/x"}}}); err == nil {
		t.Error("a failed start did not fail the invocation")
	}
}

// A push over the old 256 KB limit but under 1 MB is passed in the event:
// nothing is parked.
func TestPushUnderAMegabyteIsPassed(t *testing.T) {
	if maxAsyncPayload >= 1_000_000 {
		t.Fatalf("maxAsyncPayload %d leaves no room under Lambda's 1 MB", maxAsyncPayload)
	}
	f := newWebhookFixture(t)
	body := pushBody(4000) // ~300 KB of paths
	out, err := f.webhook.Handle(context.Background(), v2Event(body, false))
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.APIGatewayV2HTTPResponse); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	calls := f.fake.Calls()
	var ev EvalEvent
	if err := json.Unmarshal(calls[0].Payload, &ev); err != nil || ev.ParkedKey != "" || ev.Push == nil || len(ev.Push.Paths) != 4000 {
		t.Fatalf("event of %d bytes: parked %q, push %v (%v)", len(calls[0].Payload), ev.ParkedKey, ev.Push != nil, err)
	}
	if len(calls[0].Payload) < 256<<10 {
		t.Fatalf("the push is %d bytes: not over the old limit", len(calls[0].Payload))
	}
	iter := f.bucket.List(&blob.ListOptions{Prefix: ParkedPrefix})
	if obj, err := iter.Next(context.Background()); err == nil {
		t.Errorf("parked %s", obj.Key)
	}
}
