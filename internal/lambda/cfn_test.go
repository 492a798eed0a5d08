package lambda

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/monohook/monohook/internal/rulestore"
)

// cloudFormation captures the responses PUT to the ResponseURL, as
// CloudFormation's pre-signed S3 URL would receive them.
type cloudFormation struct {
	*httptest.Server
	mu        sync.Mutex
	responses []cfn.Response
}

func newCloudFormation(t *testing.T) *cloudFormation {
	cf := &cloudFormation{}
	cf.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			http.Error(w, "PUT expected", http.StatusMethodNotAllowed)
			return
		}
		var resp cfn.Response
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &resp); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cf.mu.Lock()
		cf.responses = append(cf.responses, resp)
		cf.mu.Unlock()
	}))
	t.Cleanup(cf.Close)
	return cf
}

func (cf *cloudFormation) last(t *testing.T) cfn.Response {
	t.Helper()
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if len(cf.responses) == 0 {
		t.Fatal("no response was sent to CloudFormation")
	}
	return cf.responses[len(cf.responses)-1]
}

type fixture struct {
	dir   string
	store *rulestore.Store
	cf    *cloudFormation
	fn    cfn.CustomResourceLambdaFunction
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir(), cf: newCloudFormation(t)}
	var err error
	f.store, err = rulestore.Open(context.Background(), "file://"+filepath.ToSlash(f.dir)+"?metadata=skip", rulestore.DefaultPrefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	f.fn = cfn.LambdaWrap((&CustomResource{Store: f.store, Log: slog.New(slog.DiscardHandler)}).Handle)
	return f
}

func props(repo, branch, pipeline, match string) map[string]any {
	return map[string]any{"ServiceToken": "arn:aws:lambda:eu-west-1:123:function:tools-MonoRepoTrigger",
		"GitHubRepo": repo, "GitHubBranch": branch, "CodePipelineName": pipeline, "ChangeMatchExpressions": match}
}

func (f *fixture) send(t *testing.T, ev cfn.Event) cfn.Response {
	t.Helper()
	ev.ResponseURL = f.cf.URL + "/response"
	ev.RequestID, ev.StackID, ev.LogicalResourceID = "req-1", "arn:aws:cloudformation:eu-west-1:123:stack/app/1", "Trigger"
	ev.ResourceType = "Custom::MonoRepoTrigger"
	if _, err := f.fn(context.Background(), ev); err != nil {
		t.Fatalf("sending the response: %v", err)
	}
	resp := f.cf.last(t)
	if resp.RequestID != "req-1" || resp.LogicalResourceID != "Trigger" || resp.StackID != ev.StackID {
		t.Errorf("response does not echo the request: %+v", resp)
	}
	return resp
}

func (f *fixture) stored(t *testing.T, key string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(key)))
	if err != nil {
		return "", false
	}
	return string(b), true
}

func TestCreateUpdateDelete(t *testing.T) {
	f := newFixture(t)
	resp := f.send(t, cfn.Event{RequestType: cfn.RequestCreate, ResourceProperties: props("repo", "main", "api", "services/api/.*")})
	key := rulestore.SeedKey(rulestore.DefaultPrefix, "repo", "main", "api")
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != key || resp.Data["Key"] != key {
		t.Fatalf("create: %+v", resp)
	}
	doc, ok := f.stored(t, key)
	want := string(rulestore.Document{GitHubRepo: "repo", GitHubBranch: "main", ChangeMatchExpressions: "services/api/.*", CodePipelineName: "api"}.Marshal())
	if !ok || doc != want {
		t.Errorf("stored %q, want the predecessor's four fields %q (ServiceToken never stored)", doc, want)
	}

	// Update, same key: the document changes in place.
	resp = f.send(t, cfn.Event{RequestType: cfn.RequestUpdate, PhysicalResourceID: key,
		ResourceProperties: props("repo", "main", "api", "services/api/.*,libs/.*"), OldResourceProperties: props("repo", "main", "api", "services/api/.*")})
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != key {
		t.Fatalf("update: %+v", resp)
	}
	if doc, _ := f.stored(t, key); !strings.Contains(doc, "libs/.*") {
		t.Errorf("not updated: %s", doc)
	}

	// Update that changes the key: a replacement. The new id makes
	// CloudFormation delete the old one afterwards; until then both exist.
	resp = f.send(t, cfn.Event{RequestType: cfn.RequestUpdate, PhysicalResourceID: key,
		ResourceProperties: props("repo", "main", "api-v2", "services/api/.*"), OldResourceProperties: props("repo", "main", "api", "services/api/.*,libs/.*")})
	newKey := rulestore.SeedKey(rulestore.DefaultPrefix, "repo", "main", "api-v2")
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != newKey {
		t.Fatalf("replacing update: %+v", resp)
	}
	if _, ok := f.stored(t, newKey); !ok {
		t.Error("new document missing")
	}
	resp = f.send(t, cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: key, ResourceProperties: props("repo", "main", "api", "services/api/.*,libs/.*")})
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("delete of the replaced resource: %+v", resp)
	}
	if _, ok := f.stored(t, key); ok {
		t.Error("old document not deleted")
	}
	if _, ok := f.stored(t, newKey); !ok {
		t.Error("deleting the old resource removed the new document")
	}

	// Delete again, or of a document removed by hand: success.
	resp = f.send(t, cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: key, ResourceProperties: props("repo", "main", "api", "x")})
	if resp.Status != cfn.StatusSuccess {
		t.Errorf("delete of a missing document: %+v", resp)
	}
}

func TestLegacyResourceKeepsThePredecessorsSemantics(t *testing.T) {
	f := newFixture(t)
	oldKey := rulestore.SeedKey(rulestore.DefaultPrefix, "repo", "main", "old")
	if _, _, err := f.store.Put(context.Background(), rulestore.Document{GitHubRepo: "repo", GitHubBranch: "main", ChangeMatchExpressions: "a/.*", CodePipelineName: "old"}); err != nil {
		t.Fatal(err)
	}
	resp := f.send(t, cfn.Event{RequestType: cfn.RequestUpdate, PhysicalResourceID: LegacyPhysicalID,
		ResourceProperties: props("repo", "main", "new", "b/.*"), OldResourceProperties: props("repo", "main", "old", "a/.*")})
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != LegacyPhysicalID {
		t.Fatalf("legacy update: %+v", resp)
	}
	if _, ok := f.stored(t, oldKey); ok {
		t.Error("legacy update keeps the old document; the predecessor removed it")
	}
	newKey := rulestore.SeedKey(rulestore.DefaultPrefix, "repo", "main", "new")
	if _, ok := f.stored(t, newKey); !ok {
		t.Error("legacy update did not store the new document")
	}
	resp = f.send(t, cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: LegacyPhysicalID, ResourceProperties: props("repo", "main", "new", "b/.*")})
	if resp.Status != cfn.StatusSuccess || resp.PhysicalResourceID != LegacyPhysicalID {
		t.Fatalf("legacy delete: %+v", resp)
	}
	if _, ok := f.stored(t, newKey); ok {
		t.Error("legacy delete left the document")
	}
}

func TestFailuresHaveReasons(t *testing.T) {
	f := newFixture(t)
	missing := props("repo", "main", "p", "a/.*")
	delete(missing, "GitHubBranch")
	resp := f.send(t, cfn.Event{RequestType: cfn.RequestCreate, ResourceProperties: missing})
	if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "GitHubBranch") {
		t.Errorf("missing property: %+v", resp)
	}
	resp = f.send(t, cfn.Event{RequestType: cfn.RequestCreate, ResourceProperties: props("repo", "main", "p", "services/(?!legacy).*")})
	if resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "look-around") || !strings.Contains(resp.Reason, "services/(?!legacy)") {
		t.Errorf("bad expression: %+v", resp)
	}
	// The Delete CloudFormation sends after a failed Create (its physical id
	// is the request id) succeeds: nothing was written.
	resp = f.send(t, cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: "req-0", ResourceProperties: missing})
	if resp.Status != cfn.StatusSuccess {
		t.Errorf("delete after a failed create: %+v", resp)
	}
	// An empty expression list is legal, as before (it matches every path).
	resp = f.send(t, cfn.Event{RequestType: cfn.RequestCreate, ResourceProperties: props("repo", "main", "all", "")})
	if resp.Status != cfn.StatusSuccess {
		t.Errorf("empty expressions: %+v", resp)
	}
}

func TestStoreFailureIsReported(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	st, err := rulestore.Open(context.Background(), "s3://bucket?"+url.Values{"endpoint": {dead.URL}, "use_path_style": {"true"}, "region": {"us-east-1"}}.Encode(), rulestore.DefaultPrefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cf := newCloudFormation(t)
	fn := cfn.LambdaWrap((&CustomResource{Store: st, Log: slog.New(slog.DiscardHandler)}).Handle)
	ev := cfn.Event{RequestType: cfn.RequestCreate, RequestID: "r", ResponseURL: cf.URL, ResourceProperties: props("repo", "main", "p", "a/.*")}
	if _, err := fn(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if resp := cf.last(t); resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "write") {
		t.Errorf("store failure: %+v", resp)
	}
}

func TestPanicStillAnswers(t *testing.T) {
	cf := newCloudFormation(t)
	fn := cfn.LambdaWrap((&CustomResource{Store: nil, Log: slog.New(slog.DiscardHandler)}).Handle) // a nil store panics
	ev := cfn.Event{RequestType: cfn.RequestCreate, RequestID: "r", ResponseURL: cf.URL, ResourceProperties: props("repo", "main", "p", "a/.*")}
	func() {
		defer func() { _ = recover() }() // the Lambda runtime reports the panic; CloudFormation was answered first
		_, _ = fn(context.Background(), ev)
	}()
	if resp := cf.last(t); resp.Status != cfn.StatusFailed {
		t.Errorf("panic: %+v", resp)
	}
}
