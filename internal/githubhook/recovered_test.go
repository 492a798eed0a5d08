package githubhook

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

const recoveredPush = `{"ref":"refs/heads/main","after":"abc","repository":{"name":"r","full_name":"o/r"},"commits":[{"added":["a/b"],"removed":[],"modified":[]}]}`

func TestRecoveredIsParsedAsTheWebhookWould(t *testing.T) {
	at := time.Unix(1700000000, 0)
	headers := func(event, id, ct string) map[string]string {
		return map[string]string{"x-github-event": event, "X-GitHub-Delivery": id, "content-type": ct}
	}
	form, _ := json.Marshal("payload=" + url.QueryEscape(recoveredPush))
	for _, c := range []struct {
		name    string
		guid    string
		req     trigger.HookRequest
		ignored string
		err     string
	}{
		{"json", "g1", trigger.HookRequest{Headers: headers("push", "g1", "application/json"), Payload: []byte(recoveredPush)}, "", ""},
		{"form hook, payload as its object", "g2", trigger.HookRequest{Headers: headers("push", "g2", "application/x-www-form-urlencoded"), Payload: []byte(recoveredPush)}, "", ""},
		{"form hook, payload as the body", "g3", trigger.HookRequest{Headers: headers("push", "g3", "application/x-www-form-urlencoded"), Payload: form}, "", ""},
		{"another delivery's request", "g4", trigger.HookRequest{Headers: headers("push", "other", "application/json"), Payload: []byte(recoveredPush)}, "", "names the delivery"},
		{"control character in the id", "g\x1b5", trigger.HookRequest{Headers: headers("push", "", "application/json"), Payload: []byte(recoveredPush)}, "", "printable"},
		{"no event", "g6", trigger.HookRequest{Headers: map[string]string{}, Payload: []byte(recoveredPush)}, "", "X-GitHub-Event"},
		{"other event", "g7", trigger.HookRequest{Headers: headers("issues", "g7", "application/json"), Payload: []byte(`{}`)}, "push, pull_request and merge_group", ""},
		{"malformed", "g8", trigger.HookRequest{Headers: headers("push", "g8", "application/json"), Payload: []byte(`{"ref":`)}, "", "malformed push"},
		{"closed, not merged", "g9", trigger.HookRequest{Headers: headers("pull_request", "g9", "application/json"),
			Payload: []byte(`{"action":"closed","number":1,"pull_request":{"merged":false,"base":{"ref":"main"},"head":{"sha":"abc"}},"repository":{"name":"r","full_name":"o/r"}}`)}, "starts nothing", ""},
		{"merge group destroyed", "g10", trigger.HookRequest{Headers: headers("merge_group", "g10", "application/json"),
			Payload: []byte(`{"action":"destroyed","merge_group":{"head_sha":"` + strings.Repeat("b", 40) + `","base_sha":"` + strings.Repeat("a", 40) + `","base_ref":"refs/heads/main","head_ref":"refs/heads/gh-readonly-queue/main/pr-1"},"repository":{"name":"r","full_name":"o/r"}}`)}, "starts nothing", ""},
	} {
		d, ignored, err := Recovered(c.guid, c.req, at)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
		case c.ignored != "":
			if err != nil || !strings.Contains(ignored, c.ignored) {
				t.Errorf("%s: ignored %q err %v, want %q", c.name, ignored, err, c.ignored)
			}
		default:
			if err != nil || ignored != "" || d.ID != c.guid || d.Event != "push" || !d.Received.Equal(at) || d.Push == nil || d.Push.DeliveryID != c.guid ||
				d.Push.Repo != "r" || len(d.Push.Paths) != 1 || string(d.Payload) != recoveredPush {
				t.Errorf("%s: %+v ignored %q err %v", c.name, d, ignored, err)
			}
		}
	}
	// A merge group the queue asks checks of is recovered as the webhook
	// takes it: evaluated on base...head.
	mg := `{"action":"checks_requested","merge_group":{"head_sha":"` + strings.Repeat("b", 40) + `","base_sha":"` + strings.Repeat("a", 40) + `","base_ref":"refs/heads/main","head_ref":"refs/heads/gh-readonly-queue/main/pr-1"},"repository":{"name":"r","full_name":"o/r"}}`
	d, ignored, err := Recovered("g11", trigger.HookRequest{Headers: headers("merge_group", "g11", "application/json"), Payload: []byte(mg)}, at)
	if err != nil || ignored != "" || d.Event != "merge_group" || d.Push == nil || d.Push.After != strings.Repeat("b", 40) {
		t.Errorf("merge group: %+v ignored %q err %v", d, ignored, err)
	}
}

func TestHandles(t *testing.T) {
	for _, c := range []struct {
		event, action string
		want          bool
	}{{"push", "", true}, {"pull_request", "opened", true}, {"pull_request", "closed", true}, {"pull_request", "labeled", false}, {"merge_group", "checks_requested", true}, {"merge_group", "destroyed", false}, {"ping", "", false}, {"issues", "opened", false}} {
		if got := Handles(c.event, c.action); got != c.want {
			t.Errorf("Handles(%q, %q) = %v", c.event, c.action, got)
		}
	}
}

// FuzzRecovered: whatever GitHub's API (or someone in its place) returns,
// Recovered answers a delivery, a reason to ignore it, or an error, and
// a delivery it answers is the one asked for, parsed.
func FuzzRecovered(f *testing.F) {
	f.Add("g1", "push", "application/json", []byte(recoveredPush))
	f.Add("g2", "push", "application/x-www-form-urlencoded", []byte(`"payload=%7B%7D"`))
	f.Add("g3", "pull_request", "application/json", []byte(`{"action":"opened"}`))
	f.Fuzz(func(t *testing.T, guid, event, contentType string, payload []byte) {
		req := trigger.HookRequest{Headers: map[string]string{"X-GitHub-Event": event, "Content-Type": contentType}, Payload: payload}
		d, ignored, err := Recovered(guid, req, time.Unix(0, 0))
		if err != nil || ignored != "" {
			return
		}
		if d.ID != guid || d.Push == nil || d.Push.DeliveryID != guid || (d.Event != "push" && d.Event != "pull_request") {
			t.Fatalf("delivery %+v for %q", d, guid)
		}
	})
}
