package targets_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/targets/exectarget"
	"github.com/monohook/monohook/internal/targets/httptarget"
	"github.com/monohook/monohook/internal/trigger"
)

// A rule's target is refused when it is written, naming the field.
func TestValidation(t *testing.T) {
	for doc, want := range map[string]string{
		`repository: a/b
target: {type: jenkins}`: `target.type "jenkins"`,
		`repository: a/b
target: {type: codepipeline, pipeline: "bad name"}`: `target.pipeline "bad name"`,
		`repository: a/b
target: {type: codepipeline, pipeline: p, source_revision: true}`: `target.source_action`,
		`repository: a/b
target:
  type: http
  url: "https://x/{{.Nope"`: `target.url`,
		`repository: a/b
target: {type: exec, command: [], timeout: soon}`: `target.command`,
		`repository: a/b
target:
  type: exec
  command: [deploy, '{{secret "TOKEN"}}']`: `secrets are only available to http targets`,
		`repository: a/b
target:
  type: codepipeline
  pipeline: p
  variables: {C: "{{.Sha}}"}`: `target.variables.C: template: variables.C:1:2: executing "variables.C" at <.Sha>: can't evaluate field Sha`,
		`repository: a/b
target: {type: github-actions, repository: a/b}`: `target.workflow`,
		`repository: a/b
target: {type: codebuild, project: "-x"}`: `target.project`,
	} {
		s, err := trigger.ParseSpec([]byte(doc))
		if err == nil {
			_, err = trigger.NewV2Rule("k", s, targets.Registry{})
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n→ %v\nwant an error containing %q", doc, err, want)
		}
	}
}

// What can be judged when a rule is written is refused then, with the
// reason: unbounded loops, recursion, padding, and URLs whose scheme or
// host a value could change.
func TestTemplatesAreCheckedWhenWritten(t *testing.T) {
	for body, want := range map[string]string{
		`{{range 100000}}{{range 100000}}x{{end}}{{end}}`:                              `only over a field of the data`,
		`{{range .ChangedPathsCount}}{{range .ChangedPathsCount}}x{{end}}{{end}}`:      `range inside range is not allowed`,
		`{{range $x := .ChangedPathsCount}}{{with .}}{{range .}}{{end}}{{end}}{{end}}`: `range inside range is not allowed`,
		`{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`:                        `define and block are not allowed`,
		`{{block "b" .}}x{{end}}`:                            `define and block are not allowed`,
		`{{template "x"}}`:                                   `{{template}} is not allowed`,
		`{{printf "%999999d" 1}}`:                            `widths, precisions and argument indexes are not allowed`,
		`{{if .Tag}}{{printf "%.900000s%[1]s" .SHA}}{{end}}`: `widths, precisions and argument indexes are not allowed`,
		`{{call .SHA}}`:                                      `function "call" is not available`,
		`{{_iteration}}`:                                     `function "_iteration" is not available`,
	} {
		doc := "repository: a/b\ntarget:\n  type: http\n  url: https://ci.example/x\n  body: '" + body + "'\n"
		s, err := trigger.ParseSpec([]byte(doc))
		if err == nil {
			_, err = trigger.NewV2Rule("k", s, targets.Registry{})
		}
		if err == nil || !strings.Contains(err.Error(), "target.body") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n→ %v\nwant an error containing %q", body, err, want)
		}
	}
	for u, want := range map[string]string{
		`https://{{.Branch}}.ci.example/x`:         `host (and port and user) must be written out`,
		`https://ci.example:{{.PullRequest}}/x`:    `host (and port and user) must be written out`,
		`https://{{secret "U"}}@ci.example/x`:      `host (and port and user) must be written out`,
		`{{secret "URL"}}`:                         `scheme and host must be written out`,
		`https://ci.example/{{if .Tag}}t{{end}}`:   `a URL takes only text and {{…}} values`,
		`http://169.254.169.254/latest/meta-data/`: `link-local and metadata addresses are never allowed`,
		`http://[fd00:ec2::254]/latest/`:           `link-local and metadata addresses are never allowed`,
		`http://0.0.0.0:8080/`:                     `unspecified address is never allowed`,
		`https:///x`:                               `url: no host`,
	} {
		s := trigger.Spec{Repository: "a/b", Target: trigger.NewTarget(httptarget.Type, httptarget.Spec{URL: u})}
		if _, err := trigger.NewV2Rule("k", s, targets.Registry{}); err == nil || !strings.Contains(err.Error(), "target.url") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s → %v\nwant an error containing %q", u, err, want)
		}
	}
	s := trigger.Spec{Repository: "a/b", Target: trigger.NewTarget(httptarget.Type, httptarget.Spec{URL: "https://ci.example/x", Headers: map[string]string{"X Bad": "1"}})}
	if _, err := trigger.NewV2Rule("k", s, targets.Registry{}); err == nil || !strings.Contains(err.Error(), `headers: "X Bad" is not a valid header name`) {
		t.Errorf("header name: %v", err)
	}
	// The other targets' templates get the same checks.
	s = trigger.Spec{Repository: "a/b", Target: trigger.NewTarget(exectarget.Type, exectarget.Spec{Command: []string{"sh", `{{range 10}}{{end}}`}})}
	if _, err := trigger.NewV2Rule("k", s, targets.Registry{}); err == nil || !strings.Contains(err.Error(), "target.command[1]") {
		t.Errorf("exec: %v", err)
	}
	s = trigger.Spec{Repository: "a/b", Target: trigger.NewTarget(codepipeline.Type, codepipeline.Spec{Pipeline: "p", Variables: map[string]string{"V": `{{printf "%*d" 9 1}}`}})}
	if _, err := trigger.NewV2Rule("k", s, targets.Registry{}); err == nil || !strings.Contains(err.Error(), "target.variables.V") {
		t.Errorf("variables: %v", err)
	}
	// What the README documents still passes.
	s = trigger.Spec{Repository: "a/b", Target: trigger.NewTarget(httptarget.Type, httptarget.Spec{
		URL:     `https://ci.example/job/{{.RepoName}}/buildWithParameters?token={{secret "T"}}&SHA={{.SHA}}#{{.Tag}}`,
		Headers: map[string]string{"Authorization": `Bearer {{secret "B"}}`},
		Body:    `{"sha": {{json .SHA}}, "n": {{.ChangedPathsCount}}, "pr": {{printf "%d" .PullRequest}}{{if .Tag}}, "tag": {{json .Tag}}{{end}}}`})}
	if _, err := trigger.NewV2Rule("k", s, targets.Registry{}); err != nil {
		t.Errorf("a documented rule is refused: %v", err)
	}
}

// A target is stored flat, as the one struct of every kind's fields
// stored it: a compiled rule's target, which start jobs and results
// hold, writes the same bytes, and its starts keep their names.
func TestTargetsKeepTheirStoredShapeAndNames(t *testing.T) {
	for stored, name := range map[string]string{
		`{"type":"codepipeline","pipeline":"api","source_revision":true,"source_action":"Source","variables":{"C":"{{.SHA}}"}}`: "api",
		`{"type":"codebuild","variables":{"B":"{{.Branch}}"},"project":"api"}`:                                                  "codebuild:api",
		`{"type":"github-actions","repository":"acme/deploy","workflow":"deploy.yml","ref":"main","inputs":{"sha":"{{.SHA}}"}}`: "github-actions:acme/deploy/deploy.yml",
		`{"type":"http","url":"https://ci.example/x?t={{secret \"T\"}}","method":"PUT","headers":{"A":"b"},"body":"{}"}`:        "http:https://ci.example/x",
		`{"type":"exec","command":["sh","-c","echo"],"timeout":"1m"}`:                                                           "exec:sh",
	} {
		s, err := trigger.ParseSpec([]byte(`{"repository": "a/b", "target": ` + stored + `}`))
		if err != nil {
			t.Fatal(err)
		}
		r, err := trigger.NewV2Rule("k", s, targets.Registry{})
		if err != nil {
			t.Fatalf("%s: %v", stored, err)
		}
		if b, err := json.Marshal(r.V2.Spec.Target); err != nil || string(b) != stored || r.Pipeline != name {
			t.Errorf("%s\ncompiled to %s (%v), named %q, want %q", stored, b, err, r.Pipeline, name)
		}
		// Read back as a start job reads it, it is the same object.
		var job trigger.Target
		if err := json.Unmarshal([]byte(stored), &job); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(job)
		var got, want any
		_ = json.Unmarshal(b, &got)
		_ = json.Unmarshal([]byte(stored), &want)
		if !reflect.DeepEqual(got, want) || job.Type != r.V2.Spec.Target.Type {
			t.Errorf("%s read back as %s", stored, b)
		}
	}
	if b, err := json.Marshal(trigger.Target{}); err != nil || string(b) != `{"type":""}` {
		t.Errorf("the zero target: %s %v", b, err)
	}
}

// Each kind reads its own fields strictly: a misspelt field, or one of
// another kind, is refused as a misspelt field of the rule is. A start
// reads them leniently: a job may hold a target that an earlier version
// let carry another kind's fields.
func TestKindsReadTheirFieldsStrictly(t *testing.T) {
	for doc, want := range map[string]string{
		`{repository: a/b, target: {type: codepipeline, pipline: p}}`:                  `rule document: json: unknown field "pipline"`,
		`{repository: a/b, target: {type: http, url: "https://x/", pipeline: p}}`:      `rule document: json: unknown field "pipeline"`,
		`{repository: a/b, target: {type: exec, command: [x], variables: {A: b}}}`:     `rule document: json: unknown field "variables"`,
		`{repository: a/b, branch: [main], target: {type: codepipeline, pipeline: p}}`: `rule document: json: unknown field "branch"`,
	} {
		s, err := trigger.ParseSpec([]byte(doc))
		if err == nil {
			_, err = trigger.NewV2Rule("k", s, targets.Registry{})
		}
		if err == nil || err.Error() != want {
			t.Errorf("%s\n→ %v\nwant %q", doc, err, want)
		}
	}
	var job trigger.Target
	if err := json.Unmarshal([]byte(`{"type":"http","url":"https://ci.example/x","variables":{"A":"b"}}`), &job); err != nil {
		t.Fatal(err)
	}
	var s httptarget.Spec
	if err := job.Decode(&s); err != nil || s.URL != "https://ci.example/x" {
		t.Errorf("a start job's target: %+v %v", s, err)
	}
}

// benchRules are rule documents as the README writes them.
var benchRules = []struct{ name, doc string }{
	{"codepipeline", `repository: acme/monorepo
events: [push, pull_request]
branches: [main, "release/**", "!release/old/**"]
paths: ["services/api/**", "libs/**", "!**/*.md"]
target:
  type: codepipeline
  pipeline: api-deploy
  source_revision: true
  source_action: Source
  variables: {COMMIT: "{{.SHA}}", CHANGED: "{{.ChangedPathsCount}}"}
`},
	{"http", `repository: acme/monorepo
paths: ["services/api/**"]
target:
  type: http
  url: 'https://ci.example/job/{{.RepoName}}/buildWithParameters?token={{secret "T"}}&SHA={{.SHA}}'
  headers: {Authorization: 'Bearer {{secret "B"}}'}
  body: '{"sha": {{json .SHA}}, "n": {{.ChangedPathsCount}}}'
`},
}

// BenchmarkCompileRule is reading and validating one rule document, as
// the store does for each new or changed document.
func BenchmarkCompileRule(b *testing.B) {
	for _, r := range benchRules {
		b.Run(r.name, func(b *testing.B) {
			for b.Loop() {
				s, err := trigger.ParseSpec([]byte(r.doc))
				if err == nil {
					_, err = trigger.NewV2Rule("k", s, targets.Registry{})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
