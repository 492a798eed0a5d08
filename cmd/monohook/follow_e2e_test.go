package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/fakeaws"
)

// shownStart is a start as deliveries show --json prints it.
type shownStart struct {
	Pipeline     string  `json:"pipeline"`
	Status       string  `json:"status"`
	ExecutionID  string  `json:"execution_id"`
	URL          string  `json:"url"`
	Result       string  `json:"result"`
	ResultDetail string  `json:"result_detail"`
	Finished     string  `json:"finished"`
	Duration     float64 `json:"duration_seconds"`
}

func showStart(t *testing.T, env []string, id string) shownStart {
	t.Helper()
	s, ok := shownStartOf(t, env, id)
	if !ok {
		t.Fatalf("deliveries show %s: no start", id)
	}
	return s
}

// shownStartOf is delivery id's one start, if it has one yet.
func shownStartOf(t *testing.T, env []string, id string) (shownStart, bool) {
	t.Helper()
	out, errOut, code := run(t, env, "deliveries", "show", id, "--json")
	var d struct {
		Starts []shownStart `json:"starts"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || len(d.Starts) > 1 {
		t.Fatalf("deliveries show %s: %d %s %s", id, code, out, errOut)
	}
	if len(d.Starts) == 0 {
		return shownStart{}, false
	}
	return d.Starts[0], true
}

// hasResult says whether delivery id's start has a result yet.
func hasResult(t *testing.T, env []string, id string) bool {
	s, ok := shownStartOf(t, env, id)
	return ok && s.Result != ""
}

// TestFollowToTheResult: a push starts a CodePipeline pipeline whose
// execution goes InProgress → Succeeded, with a restart of monohook while
// it runs; another goes → Failed. Each result is recorded once, shown by
// deliveries show, and counted.
func TestFollowToTheResult(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	data := t.TempDir()
	env := append(awsEnv(fake), "MONOHOOK_DATA_DIR="+data, "MONOHOOK_WEBHOOK_SECRET=follow-secret",
		"MONOHOOK_FOLLOW_POLL=1s", "MONOHOOK_FOLLOW_POLL_MAX=1s")
	if _, errOut, code := run(t, env, "rules", "put", "--repo", "monorepo", "--branch", "feature/login", "--pipeline", "api", "--match", ".*"); code != 0 {
		t.Fatal(errOut)
	}
	d := startServe(t, env, "--listen", "127.0.0.1:0")
	if code := postSigned(d.url, "follow-secret", "follow-1", pushPayload); code != 202 {
		t.Fatalf("push answered %d", code)
	}
	waitFor(t, "the execution to be followed", func() bool { return fake.Gets() >= 2 })
	first := showStart(t, env, "follow-1")
	if first.Status != "started" || first.Result != "" || !strings.Contains(first.URL, "/codepipeline/pipelines/api/executions/"+first.ExecutionID) {
		t.Fatalf("while it runs: %+v", first)
	}

	// Restarted while the execution runs: the next process follows it on.
	d.terminate(t)
	fake.ScriptExecution(first.ExecutionID, fakeaws.Outcome{Status: "Succeeded"})
	d = startServe(t, env, "--listen", "127.0.0.1:0")
	waitFor(t, "the first result", func() bool { return hasResult(t, env, "follow-1") })
	first = showStart(t, env, "follow-1")
	if first.Result != "success" || first.ResultDetail != "Succeeded" || first.Finished == "" || first.Duration <= 0 {
		t.Errorf("first: %+v", first)
	}

	fake.Script("api", fakeaws.Outcome{InProgress: 1, Status: "Failed", Summary: "Action Deploy failed"})
	if code := postSigned(d.url, "follow-secret", "follow-2", strings.Replace(pushPayload, "2222222", "3333333", 1)); code != 202 {
		t.Fatalf("second push answered %d", code)
	}
	waitFor(t, "the second result", func() bool { return hasResult(t, env, "follow-2") })
	if second := showStart(t, env, "follow-2"); second.Result != "failure" || second.ResultDetail != "Failed: Action Deploy failed" {
		t.Errorf("second: %+v", second)
	}
	text, _, _ := run(t, env, "deliveries", "show", "follow-2")
	if !strings.Contains(text, "failure") || !strings.Contains(text, "Failed: Action Deploy failed") || !strings.Contains(text, "console.aws.amazon.com") {
		t.Errorf("deliveries show:\n%s", text)
	}

	families := scrape(t, strings.Replace(d.url, "/webhook", "/metrics", 1))
	for conclusion, want := range map[string]float64{"success": 1, "failure": 1} {
		if got := value(families, "monohook_pipeline_results_total", map[string]string{"target": "codepipeline", "conclusion": conclusion}); got != want {
			t.Errorf("%s counted %v, want %v", conclusion, got, want)
		}
	}
	if h := families["monohook_push_to_result_seconds"]; h == nil || h.GetMetric()[0].GetHistogram().GetSampleCount() != 2 {
		t.Errorf("push to result: %v", h)
	}
	if n := strings.Count(d.log(), "pipeline finished"); n != 2 {
		t.Errorf("%d results logged by the second process, want 2:\n%s", n, d.log())
	}
	d.terminate(t)
	if n := len(fake.Calls()); n != 2 {
		t.Errorf("%d starts", n)
	}
}
