package main_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestSystemdUnit checks deploy/systemd/monohook.service with
// systemd-analyze: it parses without a warning, and its sandbox keeps the
// exposure systemd scores at 2.0 or less ("OK").
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	b, err := os.ReadFile("../../deploy/systemd/monohook.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify wants the binary the unit names to exist.
	unit := filepath.Join(t.TempDir(), "monohook.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(b, []byte("/usr/local/bin/monohook"), []byte(binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte(unit)) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The threshold is on systemd's scale of 0 to 100: 20 is "2.0".
	if out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", unit).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze security: exposure over 2.0 (%v)\n%s", err, out)
	}
}

// TestKubernetesManifests parses deploy/kubernetes and checks what ties
// its parts together: the probes' paths, the ports, the claim, and that
// every MONOHOOK_* variable set (there and in the Containerfile) is one
// serve reads.
func TestKubernetesManifests(t *testing.T) {
	help, _, _ := run(t, os.Environ(), "serve", "--help")
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`\[\$(MONOHOOK_[A-Z0-9_]+)\]`).FindAllStringSubmatch(help, -1) {
		known[m[1]] = true
	}
	if len(known) < 10 {
		t.Fatalf("serve --help names %d variables:\n%s", len(known), help)
	}
	checkEnv := func(where string, names ...string) {
		for _, n := range names {
			if strings.HasPrefix(n, "MONOHOOK_") && !known[n] {
				t.Errorf("%s sets %s, which serve does not read", where, n)
			}
		}
	}

	for _, file := range []string{"monohook.yaml", "monohook-replicas.yaml"} {
		docs := readYAML(t, filepath.Join("../../deploy/kubernetes", file))
		kinds := map[string]map[string]any{}
		for _, d := range docs {
			kind, _ := d["kind"].(string)
			if d["apiVersion"] == nil || kind == "" || dig(d, "metadata", "name") == nil {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name: %v", file, d)
			}
			kinds[kind] = d
		}
		dep, svc := kinds["Deployment"], kinds["Service"]
		if dep == nil || svc == nil {
			t.Fatalf("%s: kinds %v, want a Deployment and a Service", file, kinds)
		}
		pod := dig(dep, "spec", "template", "spec").(map[string]any)
		c := pod["containers"].([]any)[0].(map[string]any)
		if args := c["args"].([]any); len(args) == 0 || args[0] != "serve" {
			t.Errorf("%s: container args %v", file, args)
		}
		env := map[string]bool{}
		var names []string
		for _, e := range c["env"].([]any) {
			n := e.(map[string]any)["name"].(string)
			env[n] = true
			names = append(names, n)
		}
		checkEnv(file, names...)
		port := c["ports"].([]any)[0].(map[string]any)
		if port["name"] != "http" || port["containerPort"] != 8080 {
			t.Errorf("%s: container port %v (MONOHOOK_LISTEN is 0.0.0.0:8080)", file, port)
		}
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
			if got := dig(c, probe, "httpGet", "path"); got != path || dig(c, probe, "httpGet", "port") != "http" {
				t.Errorf("%s: %s %v, want %s on port http", file, probe, c[probe], path)
			}
		}
		if dig(svc, "spec", "ports").([]any)[0].(map[string]any)["targetPort"] != "http" {
			t.Errorf("%s: the Service does not target the container's http port", file)
		}
		if dig(pod, "securityContext", "runAsNonRoot") != true || dig(c, "securityContext", "readOnlyRootFilesystem") != true {
			t.Errorf("%s: the pod may run as root or write its image", file)
		}
		replicas := dig(dep, "spec", "replicas").(int)
		claims := 0
		for _, v := range pod["volumes"].([]any) {
			if claim := dig(v.(map[string]any), "persistentVolumeClaim", "claimName"); claim != nil {
				claims++
				if pvc := kinds["PersistentVolumeClaim"]; pvc == nil || dig(pvc, "metadata", "name") != claim {
					t.Errorf("%s: claim %v is not defined in the file", file, claim)
				}
			}
		}
		switch {
		case replicas == 1 && (claims != 1 || dig(dep, "spec", "strategy", "type") != "Recreate"):
			t.Errorf("%s: one replica on SQLite needs its claim and the Recreate strategy (two pods on one database)", file)
		case replicas > 1 && (claims != 0 || !env["MONOHOOK_DATABASE"] || !env["MONOHOOK_STORE"] || !env["MONOHOOK_WEBHOOK_SECRET"]):
			t.Errorf("%s: %d replicas need a shared database, store and secret, and no ReadWriteOnce claim", file, replicas)
		}
	}

	b, err := os.ReadFile("../../deploy/container/Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	checkEnv("the Containerfile", regexp.MustCompile(`MONOHOOK_[A-Z0-9_]+`).FindAllString(string(b), -1)...)
}

func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
}

// dig follows keys through nested maps; nil where one is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
