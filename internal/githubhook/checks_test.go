package githubhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/trigger"
)

// kept keeps what it is handed: accepted deliveries, re-run requests.
type kept struct {
	mu         sync.Mutex
	deliveries []trigger.Delivery
	reruns     []trigger.Rerun
	seen       map[string]bool
}

func (k *kept) Accept(_ context.Context, d trigger.Delivery) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.deliveries = append(k.deliveries, d)
	return nil
}

func (k *kept) Rerun(_ context.Context, request string, r trigger.Rerun) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen[request] {
		return 0, githubhook.ErrDuplicate
	}
	if k.seen == nil {
		k.seen = map[string]bool{}
	}
	k.seen[request] = true
	k.reruns = append(k.reruns, r)
	return 1, nil
}

func postEvent(t *testing.T, h http.Handler, event, id, body string) *httptest.ResponseRecorder {
	t.Helper()
	sig, _ := githubhook.Sign(secret, []byte(body))
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", sig)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func checksHandler(k *kept) http.Handler {
	v, _ := githubhook.NewVerifier([]string{secret}, false)
	return &githubhook.Handler{Verifier: v, Acceptor: k, Rerunner: k, AppID: 42, Log: slog.New(slog.DiscardHandler)}
}

const mergeGroup = `{"action":"checks_requested","merge_group":{"head_sha":"hhh","head_ref":"refs/heads/gh-readonly-queue/main/pr-7-bbb","base_sha":"bbb","base_ref":"refs/heads/main"},
"repository":{"name":"mono","full_name":"acme/mono","default_branch":"main"}}`

func TestMergeGroupIsAccepted(t *testing.T) {
	k := &kept{}
	h := checksHandler(k)
	if w := postEvent(t, h, "merge_group", "mg-1", mergeGroup); w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	p := k.deliveries[0].Push
	if p.Event != "merge_group" || p.Before != "bbb" || p.After != "hhh" || p.BaseBranch != "main" || p.FullName != "acme/mono" || p.Incomplete == "" {
		t.Errorf("%+v", p)
	}
	if w := postEvent(t, h, "merge_group", "mg-2", strings.Replace(mergeGroup, "checks_requested", "destroyed", 1)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "ignored") {
		t.Errorf("destroyed: %d %s", w.Code, w.Body)
	}
	if w := postEvent(t, h, "merge_group", "mg-3", strings.Replace(mergeGroup, `"head_sha":"hhh",`, "", 1)); w.Code != http.StatusBadRequest {
		t.Errorf("no head_sha: %d %s", w.Code, w.Body)
	}
	if w := postEvent(t, h, "merge_group", "mg-4", strings.Replace(mergeGroup, `refs/heads/main"`, `refs/tags/v1"`, 1)); w.Code != http.StatusBadRequest {
		t.Errorf("a tag as base: %d %s", w.Code, w.Body)
	}
	if len(k.deliveries) != 1 {
		t.Errorf("%d deliveries accepted", len(k.deliveries))
	}
}

func checkRunEvent(action, externalID string) string { return appCheckRunEvent(42, action, externalID) }

func appCheckRunEvent(app int64, action, externalID string) string {
	b, _ := json.Marshal(map[string]any{"action": action, "check_run": map[string]any{"head_sha": "abc", "external_id": externalID, "app": map[string]any{"id": app}},
		"repository": map[string]any{"name": "mono"}})
	return string(b)
}

func TestCheckRerunRequests(t *testing.T) {
	k := &kept{}
	h := checksHandler(k)
	ours := report.ExternalID("d-1", 2, "api")
	if w := postEvent(t, h, "check_run", "r-1", checkRunEvent("rerequested", ours)); w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := postEvent(t, h, "check_run", "r-1", checkRunEvent("rerequested", ours)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "duplicate") {
		t.Errorf("redelivered: %d %s", w.Code, w.Body)
	}
	// Another App's check run or suite, whatever its external id says,
	// re-runs nothing: an external id of monohook's form is anyone's to
	// write, and naming a delivery it replays that delivery's pipelines.
	otherSuite := `{"action":"rerequested","check_suite":{"head_sha":"abc","app":{"id":7}},"repository":{"name":"mono"}}`
	if w := postEvent(t, h, "check_suite", "s-0", otherSuite); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "ignored") {
		t.Errorf("another App's suite: %d %s", w.Code, w.Body)
	}
	for _, body := range []string{checkRunEvent("created", ours), checkRunEvent("completed", ours), checkRunEvent("rerequested", "someone else's"),
		appCheckRunEvent(7, "rerequested", ours), appCheckRunEvent(0, "rerequested", ours)} {
		if w := postEvent(t, h, "check_run", "r-x", body); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "ignored") {
			t.Errorf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	suite := `{"action":"rerequested","check_suite":{"head_sha":"abc","app":{"id":42}},"repository":{"name":"mono"}}`
	if w := postEvent(t, h, "check_suite", "s-1", suite); w.Code != http.StatusAccepted {
		t.Errorf("check_suite: %d %s", w.Code, w.Body)
	}
	if w := postEvent(t, h, "check_suite", "s-2", `{"action":"rerequested","repository":{"name":"mono"}}`); w.Code != http.StatusBadRequest {
		t.Errorf("no check_suite: %d %s", w.Code, w.Body)
	}
	want := []trigger.Rerun{{DeliveryID: "d-1", Pipeline: "api", RepoName: "mono", HeadSHA: "abc", AppID: 42}, {RepoName: "mono", HeadSHA: "abc", AppID: 42}}
	if len(k.reruns) != 2 || k.reruns[0] != want[0] || k.reruns[1] != want[1] {
		t.Errorf("re-runs %+v, want %+v", k.reruns, want)
	}
}

func FuzzParseRerequest(f *testing.F) {
	f.Add("check_run", []byte(checkRunEvent("rerequested", report.ExternalID("d", 0, "p"))))
	f.Add("check_suite", []byte(`{"action":"rerequested","check_suite":{"head_sha":"abc"},"repository":{"name":"mono"}}`))
	f.Add("merge_group", []byte(mergeGroup))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		if event == "merge_group" {
			p, err := githubhook.ParseMergeGroup(body)
			if err == nil && (p.After == "" || p.Before == "" || p.BaseBranch == "" || p.Repo == "" || p.FullName == "") {
				t.Fatalf("accepted a merge group without its commits or branch: %+v", p)
			}
			return
		}
		r, ok, err := githubhook.ParseRerequest(event, body)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
		if ok && (r.HeadSHA == "" || r.RepoName == "" || (r.DeliveryID == "") != (r.Pipeline == "")) {
			t.Fatalf("ok without what a re-run needs: %+v", r)
		}
	})
}
