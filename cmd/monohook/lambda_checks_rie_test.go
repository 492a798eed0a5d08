package main_test

import (
	"bytes"
	"strings"
	"testing"
)

// The eval function posts the initial checks after its starts: the
// selected pipeline's in progress, a push that selects nothing gets its
// check completed skipped; GitHub down fails nothing.
func TestLambdaEvalPostsChecksUnderEmulator(t *testing.T) {
	g, appFlags := githubApp(t)
	env := []string{"MONOHOOK_GITHUB_APP_ID=" + appFlags[1], "MONOHOOK_GITHUB_INSTALLATION_ID=" + appFlags[3],
		"MONOHOOK_GITHUB_APP_KEY_FILE=" + appFlags[5], "MONOHOOK_GITHUB_API_URL=" + appFlags[7]}
	invoke, cp := evalFunction(t, env...)
	push := func(id, sha, path string) []byte {
		return invoke(map[string]any{"push": map[string]any{"delivery_id": id, "repo": "monorepo", "full_name": "acme/monorepo",
			"ref": "refs/heads/main", "after": sha, "paths": []string{path}}})
	}
	if out := push("d-1", "aaa", "services/api/x.go"); bytes.Contains(out, []byte("errorMessage")) {
		t.Fatalf("function answered %s", out)
	}
	if cp.Started()["api"] != 1 {
		t.Fatalf("started %v", cp.Started())
	}
	if r, ok := latestRun(g, "monohook/api", "aaa"); !ok || r.Status != "in_progress" || !strings.Contains(r.Summary, "services/api/x.go") {
		t.Errorf("selected: %+v %v", r, ok)
	}
	push("d-2", "bbb", "docs/readme.md")
	if r, ok := latestRun(g, "monohook/api", "bbb"); !ok || r.Status != "completed" || r.Conclusion != "skipped" {
		t.Errorf("not selected: %+v %v", r, ok)
	}
	g.FailNext(1000)
	if out := push("d-3", "ccc", "services/api/y.go"); bytes.Contains(out, []byte("errorMessage")) || cp.Started()["api"] != 2 {
		t.Errorf("GitHub down: started %v; function answered %s", cp.Started(), out)
	}
}
