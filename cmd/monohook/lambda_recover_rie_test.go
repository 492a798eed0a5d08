package main_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/fakegithub"
)

// TestLambdaRecoverUnderEmulator invokes the recover role as the
// schedule does: it asks GitHub to redeliver each push of the window no
// attempt delivered, once, and nothing else.
func TestLambdaRecoverUnderEmulator(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	now := time.Now()
	type entry struct {
		guid, event string
		code        int
		ago         time.Duration
	}
	entries := []entry{
		{"ok", "push", 202, 50 * time.Minute},
		{"down-1", "push", 0, 40 * time.Minute},
		{"down-2", "push", 503, 30 * time.Minute},
		{"down-2", "push", 0, 29 * time.Minute}, // a redelivery that failed too: redeliver its newest attempt
		{"healed", "push", 0, 20 * time.Minute},
		{"healed", "push", 202, 19 * time.Minute}, // redelivered since, and delivered
		{"ping", "ping", 0, 10 * time.Minute},
		{"refused", "push", 413, 35 * time.Minute}, // the webhook refused its content: the same bytes would be refused again
		{"too-old", "push", 0, 25 * time.Hour},     // before the window
	}
	for i, e := range entries {
		g.AddHookDelivery("acme", 42, fakegithub.HookDelivery{ID: int64(i + 1), GUID: e.guid, Event: e.event, StatusCode: e.code, DeliveredAt: now.Add(-e.ago),
			Headers: map[string]string{"X-GitHub-Event": e.event, "X-GitHub-Delivery": e.guid}, Payload: json.RawMessage(`{}`)})
	}
	invoke := lambdaFunction(t, []string{
		"MONOHOOK_LAMBDA_ROLE=recover", "MONOHOOK_GITHUB_API_URL=" + g.URL, "MONOHOOK_GITHUB_TOKEN=gh-token",
		"MONOHOOK_GITHUB_ORG=acme", "MONOHOOK_GITHUB_HOOK_ID=42", "MONOHOOK_RECOVER_WINDOW=24h",
	})
	scheduled := map[string]any{"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
		"time": now.UTC().Format(time.RFC3339), "resources": []string{"arn:aws:events:us-east-1:1:rule/recover"}, "detail": map[string]any{}}
	type answer struct {
		Listed      int      `json:"listed"`
		Failed      int      `json:"failed"`
		Redelivered []string `json:"redelivered"`
		Refused     int      `json:"refused"`
		Errors      int      `json:"errors"`
	}
	var out answer
	body := invoke(scheduled)
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if !slices.Equal(out.Redelivered, []string{"down-1", "down-2"}) || out.Listed != 8 || out.Refused != 1 {
		t.Errorf("answer %+v, want down-1 and down-2 redelivered of 8 listed, refused left alone", out)
	}
	if got := g.Redelivered(); !slices.Equal(got, []int64{2, 4}) {
		t.Errorf("redelivery asked for ids %v, want 2 (down-1) and 4 (down-2's newest attempt)", got)
	}

	// GitHub cannot redeliver down-1 now: down-2 is still asked for, and
	// the next invocation asks for down-1 again.
	g.FailRedelivery(2)
	body = invoke(scheduled)
	var again answer
	if err := json.Unmarshal(body, &again); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	if !slices.Equal(again.Redelivered, []string{"down-2"}) || again.Errors != 1 {
		t.Errorf("with down-1's redelivery failing: %+v, want down-2 redelivered and one error", again)
	}
	if got := g.Redelivered(); !slices.Equal(got, []int64{2, 4, 4}) {
		t.Errorf("redelivery asked for ids %v, want down-2's again after down-1 failed", got)
	}
	if len(g.Fetched()) != 0 {
		t.Errorf("the recover role fetched deliveries %v: it only asks GitHub to send them again", g.Fetched())
	}
}
