package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// hostile is what a pusher (or a rule's author) can put into a name: an
// escape sequence that retitles the terminal and clears it, a bell, a
// newline that would forge a row, and a right-to-left override.
const hostile = "evil\x1b]0;pwned\x07\x1b[2J\nFAKE ROW\u202e\u0085"

func noRawControls(t *testing.T, what, out string) {
	t.Helper()
	for _, c := range []string{"\x1b", "\x07", "\u202e", "\u0085", "\nFAKE ROW"} {
		if strings.Contains(out, c) {
			t.Errorf("%s prints %q raw:\n%s", what, c, out)
		}
	}
}

// Every human-readable CLI output escapes control characters from stored
// data; JSON output escapes them too and still reads back as the same
// value.
func TestCLIEscapesControlCharacters(t *testing.T) {
	data := t.TempDir()
	env := append(os.Environ(), "MONOHOOK_DATA_DIR="+data)
	d := startServe(t, env, "--listen", "127.0.0.1:0", "--dry-run", "--secret", "s")
	name, err := json.Marshal(hostile)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(pushPayload, `"name": "monorepo"`, `"name": `+string(name), 1)
	if !strings.Contains(body, "FAKE ROW") {
		t.Fatal("the payload's repository name was not replaced")
	}
	if code := postSigned(d.url, "s", "hostile-1", body); code != 202 {
		t.Fatalf("post: %d\n%s", code, d.log())
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done

	out, errOut, code := run(t, env, "deliveries", "list")
	if code != 0 || !strings.Contains(out, `evil\x1b]0;pwned\a\x1b[2J\nFAKE ROW\u202e\u0085`) {
		t.Errorf("deliveries list: exit %d\n%s%s", code, out, errOut)
	}
	noRawControls(t, "deliveries list", out)

	out, errOut, code = run(t, env, "deliveries", "show", "hostile-1")
	if code != 0 || !strings.Contains(out, `FAKE ROW\u202e`) {
		t.Errorf("deliveries show: exit %d\n%s%s", code, out, errOut)
	}
	noRawControls(t, "deliveries show", out)

	out, _, code = run(t, env, "deliveries", "list", "--json")
	noRawControls(t, "deliveries list --json", out)
	var list []struct{ Repo string }
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 1 || !strings.HasSuffix(list[0].Repo, hostile) {
		t.Errorf("deliveries list --json: exit %d, %v, %+v", code, err, list)
	}

	// A seed document written by hand with such a branch: listed escaped,
	// refused as unusable, and not converted into a v2 rule.
	doc, _ := json.Marshal(map[string]string{"GitHubRepo": "mono", "GitHubBranch": "main\ntags: [\"**\"]\non_incomplete: skip\x1b[2J",
		"ChangeMatchExpressions": "a/.*", "CodePipelineName": "p"})
	key := "mono-repo/config/mono-main-p-00000000.json"
	if err := os.MkdirAll(filepath.Join(data, "mono-repo", "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, filepath.FromSlash(key)), doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, _ = run(t, env, "rules", "list")
	noRawControls(t, "rules list", out)
	if !strings.Contains(out, `main\ntags`) {
		t.Errorf("rules list:\n%s", out)
	}
	out, errOut, code = run(t, env, "rules", "validate")
	noRawControls(t, "rules validate", out+errOut)
	if code == 0 || !strings.Contains(out, "control character") {
		t.Errorf("rules validate: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = run(t, env, "rules", "convert", key, "--owner", "acme")
	noRawControls(t, "rules convert", out+errOut)
	if code == 0 || strings.Contains(out, "on_incomplete") || !strings.Contains(errOut, "control character") {
		t.Errorf("rules convert of an unusable rule: exit %d\n%s%s", code, out, errOut)
	}
}
