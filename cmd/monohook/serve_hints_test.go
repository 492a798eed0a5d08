package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The startup log counts v2 rules too, and on a first start says how to
// add a rule and where the secret for GitHub's settings is.
func TestServeStartupLogHints(t *testing.T) {
	help, _, _ := run(t, os.Environ(), "serve", "--help")
	if !strings.Contains(help, "/metrics") || !strings.Contains(help, "dashboard") {
		t.Errorf("serve --help does not name /metrics and the dashboard:\n%s", help)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	d := startServe(t, os.Environ(), "--listen", "127.0.0.1:0", "--data-dir", fresh, "--dry-run")
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
	for _, want := range []string{"rule_count=0", "no rules yet", "rules put", "secret_file=" + filepath.Join(fresh, "webhook-secret"), "Webhooks"} {
		if !strings.Contains(d.log(), want) {
			t.Errorf("a first start's log lacks %q:\n%s", want, d.log())
		}
	}

	data := t.TempDir()
	rule := filepath.Join(t.TempDir(), "api.yaml")
	if err := os.WriteFile(rule, []byte("repository: acme/monorepo\npaths: [\"services/**\"]\ntarget: {type: codepipeline, pipeline: api}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, os.Environ(), "rules", "put", "--data-dir", data, "--file", rule); code != 0 {
		t.Fatal(errOut)
	}
	d = startServe(t, os.Environ(), "--listen", "127.0.0.1:0", "--data-dir", data, "--dry-run", "--secret", "s")
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
	log := d.log()
	if !strings.Contains(log, "rule_count=1") || !strings.Contains(log, "v2_rule_count=1") || strings.Contains(log, "no rules yet") || strings.Contains(log, "secret_file=") {
		t.Errorf("a start with a v2 rule and --secret:\n%s", log)
	}
}
