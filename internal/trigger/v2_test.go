package trigger_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/rules"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/targets/codepipeline"
	"github.com/monohook/monohook/internal/targets/render"
	"github.com/monohook/monohook/internal/trigger"
)

func v2rule(t *testing.T, key, doc string) trigger.Rule {
	t.Helper()
	s, err := trigger.ParseSpec([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	r, err := trigger.NewV2Rule(key, s, targets.Registry{})
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return r
}

func pushTo(ref string, paths ...string) *trigger.Push {
	return &trigger.Push{Repo: "mono", FullName: "Acme/Mono", Ref: ref, After: "abc", Paths: paths}
}

func v2Started(p *trigger.Push, rs ...trigger.Rule) []string {
	return trigger.EvaluateRules(p, trigger.Rules{V2: trigger.NewV2Set(rs, nil)}, false).Start
}

func TestV2RefFilters(t *testing.T) {
	any := `repository: acme/mono
target: {type: codepipeline, pipeline: any}`
	mainOnly := `repository: acme/mono
branches: [main, "release/**", "!release/old/**"]
target: {type: codepipeline, pipeline: main}`
	tagsOnly := `repository: acme/mono
tags: ["v[0-9]+.*"]
target: {type: codepipeline, pipeline: tags}`
	both := `repository: acme/mono
branches: [main]
tags: ["v*"]
target: {type: codepipeline, pipeline: both}`
	prOnly := `repository: acme/mono
events: [pull_request]
branches: [main]
target: {type: codepipeline, pipeline: pr}`
	other := `repository: acme/other
target: {type: codepipeline, pipeline: other}`
	rs := []trigger.Rule{v2rule(t, "a", any), v2rule(t, "b", mainOnly), v2rule(t, "c", tagsOnly), v2rule(t, "d", both), v2rule(t, "e", prOnly), v2rule(t, "f", other)}
	pr := pushTo("refs/pull/7/merge", "x")
	pr.Event, pr.BaseBranch = "pull_request", "main"
	prOther := pushTo("refs/pull/8/merge", "x")
	prOther.Event, prOther.BaseBranch = "pull_request", "dev"
	deleted := pushTo("refs/heads/main")
	deleted.Deleted = true
	tests := []struct {
		p    *trigger.Push
		want []string
	}{
		{pushTo("refs/heads/main", "x"), []string{"any", "both", "main"}},
		{pushTo("refs/heads/release/1.2", "x"), []string{"any", "main"}},
		{pushTo("refs/heads/release/old/1", "x"), []string{"any"}},
		{pushTo("refs/heads/feature/x", "x"), []string{"any"}},
		{pushTo("refs/tags/v1.2"), []string{"both", "tags"}}, // no tags filter: no tags
		{pushTo("refs/tags/nightly"), nil},
		{pr, []string{"pr"}},
		{prOther, nil},
		{deleted, nil},
	}
	for _, tt := range tests {
		got := v2Started(tt.p, rs...)
		if !slices.Equal(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
			t.Errorf("%s %s: %v, want %v", tt.p.Event, tt.p.Ref, got, tt.want)
		}
	}
}

// TestV2PathFilters follows GitHub's documented examples of negative
// patterns: the last matching pattern decides.
func TestV2PathFilters(t *testing.T) {
	md := v2rule(t, "md", `repository: acme/mono
paths: ["*.md", "!README.md"]
target: {type: codepipeline, pipeline: md}`)
	readmeBack := v2rule(t, "readme", `repository: acme/mono
paths: ["*.md", "!README.md", "README*"]
target: {type: codepipeline, pipeline: readme}`)
	api := v2rule(t, "api", `repository: acme/mono
paths: ["services/api/**", "!services/api/docs/**", "libs/**"]
target: {type: codepipeline, pipeline: api}`)
	regex := v2rule(t, "re", `repository: acme/mono
path_regex: ["web/.*\\.tsx?$"]
target: {type: codepipeline, pipeline: web}`)
	rs := []trigger.Rule{md, readmeBack, api, regex}
	tests := []struct {
		paths []string
		want  []string
	}{
		{[]string{"hello.md"}, []string{"md", "readme"}},
		{[]string{"README.md"}, []string{"readme"}},
		{[]string{"README.doc"}, []string{"readme"}},
		{[]string{"docs/hello.md"}, nil},
		{[]string{"services/api/docs/a.md"}, nil},
		{[]string{"services/api/docs/a.md", "services/api/main.go"}, []string{"api"}},
		{[]string{"libs/x/y.go"}, []string{"api"}},
		{[]string{"web/app.ts", "web/app.js"}, []string{"web"}},
	}
	for _, tt := range tests {
		got := v2Started(pushTo("refs/heads/main", tt.paths...), rs...)
		if !slices.Equal(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
			t.Errorf("%v: %v, want %v", tt.paths, got, tt.want)
		}
	}

	// Explain names the exclude that vetoed a rule, and the path.
	res := trigger.EvaluateRules(pushTo("refs/heads/main", "README.md", "services/api/docs/x.md"), trigger.Rules{V2: trigger.NewV2Set(rs, nil)}, true)
	byRule := map[string]trigger.Decision{}
	for _, d := range res.Decisions {
		byRule[d.Rule] = d
	}
	if d := byRule["api"]; d.Matched || !d.Vetoed || d.Path != "services/api/docs/x.md" || d.Expression != "!services/api/docs/**" {
		t.Errorf("api: %+v", d)
	}
	if d := byRule["md"]; d.Matched || !d.Vetoed || d.Path != "README.md" || d.Expression != "!README.md" {
		t.Errorf("md: %+v", d)
	}
	if d := byRule["readme"]; !d.Matched || d.Path != "README.md" || d.Expression != "README*" {
		t.Errorf("readme: %+v", d)
	}
	if d := byRule["re"]; d.Matched || d.Vetoed || d.Path != "" {
		t.Errorf("re: %+v", d)
	}
}

func TestV2OnIncomplete(t *testing.T) {
	run := v2rule(t, "run", `repository: acme/mono
paths: ["api/**"]
target: {type: codepipeline, pipeline: run}`)
	skip := v2rule(t, "skip", `repository: acme/mono
paths: ["api/**"]
on_incomplete: skip
target: {type: codepipeline, pipeline: skip}`)
	p := pushTo("refs/heads/main", "docs/x")
	if got := v2Started(p, run, skip); len(got) != 0 {
		t.Errorf("complete change set: %v", got)
	}
	p.Incomplete = "forced push"
	res := trigger.EvaluateRules(p, trigger.Rules{V2: trigger.NewV2Set([]trigger.Rule{run, skip}, nil)}, true)
	if !slices.Equal(res.Start, []string{"run"}) || res.Incomplete != "forced push" {
		t.Errorf("incomplete: %+v", res)
	}
	for _, d := range res.Decisions {
		if !strings.Contains(d.Reason, "forced push") {
			t.Errorf("%s: reason %q", d.Rule, d.Reason)
		}
	}
	// A known path that matches starts the rule under either policy.
	p.Paths = []string{"api/x"}
	if got := v2Started(p, run, skip); !slices.Equal(got, []string{"run", "skip"}) {
		t.Errorf("matched and incomplete: %v", got)
	}
}

func TestV2AndSeedStartAPipelineOnce(t *testing.T) {
	seed, err := trigger.NewSeedRule("seed.json", "mono", "main", "api", "api/.*")
	if err != nil {
		t.Fatal(err)
	}
	v2 := v2rule(t, "v2", `repository: acme/mono
paths: ["api/**"]
target: {type: codepipeline, pipeline: api, variables: {COMMIT: "{{.SHA}}"}}`)
	res := trigger.EvaluateRules(pushTo("refs/heads/main", "api/x"), trigger.Rules{Seed: trigger.NewRuleSet("mono", "main", []trigger.Rule{seed}, nil), V2: trigger.NewV2Set([]trigger.Rule{v2}, nil)}, false)
	var kept codepipeline.Spec
	if err := res.Targets["api"].Decode(&kept); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Start, []string{"api"}) || len(res.Decisions) != 2 || kept.Variables["COMMIT"] != "{{.SHA}}" {
		t.Errorf("%+v", res)
	}
}

func TestV2Validation(t *testing.T) {
	for doc, want := range map[string]string{
		`repository: mono
target: {type: codepipeline, pipeline: p}`: `repository "mono": want owner/name`,
		`repository: a/b
branch: [main]
target: {type: codepipeline, pipeline: p}`: `unknown field "branch"`,
		`repository: a/b
paths: ["src/[!x]"]
target: {type: codepipeline, pipeline: p}`: `paths[0]: pattern "src/[!x]"`,
		`repository: a/b
paths: ["!docs/**"]
target: {type: codepipeline, pipeline: p}`: `only "!" patterns`,
		`repository: a/b
path_regex: ["a(?=b)"]
target: {type: codepipeline, pipeline: p}`: `path_regex[0]: expression "a(?=b)": look-around`,
		`repository: a/b
paths: [x]
path_regex: [x]
target: {type: codepipeline, pipeline: p}`: `paths and path_regex`,
		`repository: a/b
events: [issues]
target: {type: codepipeline, pipeline: p}`: `events: "issues"`,
		`repository: a/b
on_incomplete: maybe
target: {type: codepipeline, pipeline: p}`: `on_incomplete: "maybe"`,
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

// FuzzV2AgreesWithNaive checks indexed v2 evaluation (includes found by
// the index, excludes vetoing through it) against the filter semantics
// read literally: a rule matches when some path's last matching pattern
// includes it.
func FuzzV2AgreesWithNaive(f *testing.F) {
	f.Add("api/**;!**/*.md|docs/*;!docs/x|**;!a/**;a/b/**", "api/x.md\napi/y.go\ndocs/x\na/b/c")
	f.Add("*.md;!README.md;README*", "README.md\nx/README.md")
	f.Fuzz(func(t *testing.T, ruleText, pathText string) {
		if len(ruleText) > 200 || len(pathText) > 1000 {
			return
		}
		var rs []trigger.Rule
		var lists [][]string
		var globs [][]*rules.Pattern // each pattern without its "!"
		for i, list := range strings.Split(ruleText, "|") {
			pats := strings.Split(list, ";")
			r, err := trigger.NewV2Rule(fmt.Sprintf("r%03d", i), trigger.Spec{Repository: "a/b", Paths: pats, Target: trigger.NewTarget(codepipeline.Type, codepipeline.Spec{Pipeline: fmt.Sprintf("p%03d", i)})}, targets.Registry{})
			if err != nil {
				continue
			}
			rs = append(rs, r)
			lists = append(lists, pats)
			g := make([]*rules.Pattern, len(pats))
			for j, src := range pats {
				g[j], _ = rules.CompileGlob(strings.TrimPrefix(src, "!")) // the rule compiled it
			}
			globs = append(globs, g)
		}
		paths := strings.Split(pathText, "\n")
		p := &trigger.Push{FullName: "a/b", Ref: "refs/heads/main", Paths: paths}
		var want []string
		for i, r := range rs {
		paths:
			for _, path := range paths {
				for j := len(lists[i]) - 1; j >= 0; j-- {
					if globs[i][j].Match(path) {
						if !strings.HasPrefix(lists[i][j], "!") {
							want = append(want, r.Pipeline)
							break paths
						}
						break
					}
				}
			}
		}
		res := trigger.EvaluateRules(p, trigger.Rules{V2: trigger.NewV2Set(rs, nil)}, true)
		var got []string
		for _, d := range res.Decisions {
			if d.Matched {
				got = append(got, d.Pipeline)
				if !slices.Contains(paths, d.Path) {
					t.Fatalf("%s matched by %q, not a changed path", d.Rule, d.Path)
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("rules %q paths %q: got %v, want %v", ruleText, pathText, got, want)
		}
	})
}

// FuzzParseSpec: any document is either refused with an error or becomes a
// rule whose templates render; nothing panics.
func FuzzParseSpec(f *testing.F) {
	f.Add([]byte("repository: a/b\npaths: [\"x/**\", \"!x/y\"]\ntarget: {type: codepipeline, pipeline: p}\n"))
	f.Add([]byte(`{"repository":"a/b","tags":["v*"],"target":{"type":"http","url":"https://x/{{.SHA}}","body":"{{json .Repo}}"}}`))
	f.Add([]byte("repository: a/b\ntarget:\n  type: exec\n  command: [sh, -c, 'echo {{.Branch}}']\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := trigger.ParseSpec(doc)
		if err != nil {
			return
		}
		r, err := trigger.NewV2Rule("k", s, targets.Registry{})
		if err != nil {
			return
		}
		p := &trigger.Push{FullName: s.Repository, Ref: "refs/heads/main", Paths: []string{"x/y", "a.md"}}
		res := trigger.EvaluateRules(p, trigger.Rules{V2: trigger.NewV2Set([]trigger.Rule{r}, nil)}, true)
		if len(res.Decisions) > 1 {
			t.Fatalf("one rule, %d decisions", len(res.Decisions))
		}
		var vars struct{ Variables map[string]string }
		if err := r.V2.Spec.Target.Decode(&vars); err != nil {
			t.Fatal(err)
		}
		if _, err := render.Map(context.Background(), vars.Variables, trigger.TemplateData{}, nil); err != nil {
			t.Fatalf("validated variables do not render: %v", err)
		}
	})
}
