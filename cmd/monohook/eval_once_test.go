package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A seed rule and a v2 rule naming one pipeline: eval says it starts once,
// as serve starts it, and counts in the singular where there is one.
func TestEvalStartsEachPipelineOnce(t *testing.T) {
	data := t.TempDir()
	env := os.Environ()
	if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--repo", "monorepo", "--branch", "feature/login", "--pipeline", "api", "--match", "services/api/.*"); code != 0 {
		t.Fatal(errOut)
	}
	rule := filepath.Join(t.TempDir(), "api.yaml")
	if err := os.WriteFile(rule, []byte("repository: acme/monorepo\npaths: [\"services/**\"]\ntarget: {type: codepipeline, pipeline: api}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, env, "rules", "put", "--data-dir", data, "--file", rule); code != 0 {
		t.Fatal(errOut)
	}
	payload := filepath.Join(t.TempDir(), "push.json")
	if err := os.WriteFile(payload, []byte(pushPayload), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, env, "eval", "--data-dir", data, payload)
	if code != 0 {
		t.Fatal(errOut)
	}
	if strings.Count(out, "START api") != 1 || !strings.Contains(out, "2 rules chose it: it starts once") || !strings.Contains(out, "1 pipeline would start") {
		t.Errorf("eval:\n%s", out)
	}
	if strings.Contains(out, "1 pipelines") || strings.Contains(out, "1 commits") || strings.Contains(out, "1 rules") {
		t.Errorf("eval counts in the plural:\n%s", out)
	}
}
