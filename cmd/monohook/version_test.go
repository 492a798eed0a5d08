package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestVersion builds the binary once as a release build sets its version
// and build time (-ldflags), the commit left to the VCS stamp, and checks
// that `version` and `--version` print them.
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "monohook")
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", bin,
		"-ldflags", "-X main.version=v1.2.3-test -X main.buildTime=2026-11-30T12:00:00Z", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	version, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	flag, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(flag) != string(version) {
		t.Errorf("--version prints\n%s\nversion prints\n%s", flag, version)
	}
	out := string(version)
	for _, want := range []string{"monohook v1.2.3-test\n", "built: 2026-11-30T12:00:00Z\n", "go: go1."} {
		if !strings.Contains(out, want) {
			t.Errorf("version prints\n%s\nwithout %q", out, want)
		}
	}

	// The commit comes from go build's VCS stamp, which needs a .git
	// directory at the module's root (a clone: not a git worktree, whose
	// .git is a file, nor an exported tree).
	st, err := os.Stat("../../.git")
	if err != nil || !st.IsDir() {
		t.Logf("no .git directory at the module's root: the VCS stamp is not checked; version prints\n%s", out)
		if !strings.Contains(out, "commit: unknown\n") {
			t.Errorf("no commit known, yet version prints\n%s", out)
		}
		return
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	if want := "commit: " + strings.TrimSpace(string(head)); !strings.Contains(out, want) {
		t.Errorf("version prints\n%s\nwithout %q (the VCS stamp)", out, want)
	}
}

// TestBuildInfoInLogAndMetrics: serve's startup log and /metrics name the
// same build as `monohook version`.
func TestBuildInfoInLogAndMetrics(t *testing.T) {
	out, _, code := run(t, os.Environ(), "version")
	if code != 0 {
		t.Fatalf("version exits %d", code)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			fields[k] = strings.TrimSuffix(v, " (modified)")
		}
	}
	fields["version"] = strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "monohook ")

	d := startServe(t, os.Environ(), "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--dry-run")
	for _, want := range []string{"version=" + fields["version"], "commit=" + fields["commit"], "built=" + fields["built"]} {
		if !strings.Contains(d.log(), want) {
			t.Errorf("startup log without %s:\n%s", want, d.log())
		}
	}
	families := scrape(t, strings.Replace(d.url, "/webhook", "/metrics", 1))
	if v := value(families, "monohook_build_info", map[string]string{"version": fields["version"], "commit": fields["commit"], "built": fields["built"]}); v != 1 {
		t.Errorf("monohook_build_info{version=%q,commit=%q,built=%q} = %v", fields["version"], fields["commit"], fields["built"], v)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
}
