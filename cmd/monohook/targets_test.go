package main_test

import (
	"net/http"
	"strings"
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
