package main_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/fakeaws"
)

// A serve --dry-run on a database that holds start jobs of a live run
// works them with the dry-run starter: each is recorded, none is dropped
// and nothing is started. (With no starter, every such job panicked until
// River discarded it.)
func TestDryRunKeepsStartsOfALiveRun(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	fake.SetDelay(time.Minute)
	data := t.TempDir()
	env := append(awsEnv(fake), "MONOHOOK_DATA_DIR="+data, "MONOHOOK_WEBHOOK_SECRET=dry-secret")
	if _, errOut, code := run(t, env, "rules", "put", "--repo", "monorepo", "--branch", "feature/login", "--pipeline", "slow", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	// The live run's start is cut short at its shutdown: its job waits to
	// be retried.
	d := startServe(t, env, "--listen", "127.0.0.1:0", "--shutdown-timeout", "500ms", "--retry-base", "50ms", "--retry-max", "50ms")
	if code := postSigned(d.url, "dry-secret", "live-1", pushPayload); code != 202 {
		t.Fatalf("post: %d", code)
	}
	waitFor(t, "the start call to reach CodePipeline", func() bool { return len(fake.Calls()) == 1 })
	d.terminate(t)
	status := func() string {
		out, _, _ := run(t, env, "deliveries", "show", "--json", "live-1")
		var shown struct {
			Starts []struct{ Status string } `json:"starts"`
		}
		if err := json.Unmarshal([]byte(out), &shown); err != nil || len(shown.Starts) != 1 {
			t.Fatalf("deliveries show: %v %s", err, out)
		}
		return shown.Starts[0].Status
	}
	if s := status(); s != "retrying" {
		t.Fatalf("the cut-short start is %q, want retrying", s)
	}

	d = startServe(t, env, "--listen", "127.0.0.1:0", "--dry-run")
	waitFor(t, "the dry run to record the start", func() bool { return status() != "retrying" })
	if s := status(); s == "failed" || s == "pending" {
		t.Errorf("the live run's start is %q after the dry run worked it", s)
	}
	d.terminate(t)
	if log := d.log(); strings.Contains(log, "panic") {
		t.Errorf("the dry run panicked on the live run's job:\n%s", log)
	}
	if n := len(fake.Calls()); n != 1 {
		t.Errorf("the dry run called CodePipeline: %d calls in all", n)
	}
}
