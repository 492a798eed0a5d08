package githubhook

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/trigger"
)

func TestParsePush(t *testing.T) {
	body := `{
	  "ref": "refs/heads/feature/x", "before": "0000000000000000000000000000000000000000",
	  "after": "d8a20fd5b86b1c08c9962573d21317ec70905b60", "created": true, "deleted": false, "forced": null,
	  "base_ref": null, "repository": {"id": 1, "name": "repo", "full_name": "Org/repo", "owner": {"login": "Org"}},
	  "commits": [
	    {"id": "a", "message": "x \"quoted\" \u00e9\ud83d\ude00", "added": ["one", "dir/two"], "removed": [], "modified": ["three"]},
	    {"id": "b", "added": [], "removed": ["dir/two", "four"], "modified": ["one", "caf\u00e9/x"]}
	  ],
	  "head_commit": {"added": ["ignored"]},
	  "numbers": [0, -1.5e10, 3E-2, 12]
	}`
	p, err := ParsePush([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := &trigger.Push{
		Repo: "repo", FullName: "Org/repo", Ref: "refs/heads/feature/x",
		Before: "0000000000000000000000000000000000000000", After: "d8a20fd5b86b1c08c9962573d21317ec70905b60",
		Created: true, Commits: 2,
		Paths: []string{"one", "dir/two", "three", "dir/two", "four", "one", "café/x"},
	}
	if p.Repo != want.Repo || p.FullName != want.FullName || p.Ref != want.Ref || p.Before != want.Before ||
		p.After != want.After || p.Created != want.Created || p.Forced || p.Deleted || p.Commits != 2 || !slices.Equal(p.Paths, want.Paths) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
	if b, _ := p.Branch(); b != "feature/x" {
		t.Errorf("branch %q: the full branch name, not its last segment", b)
	}
}

func TestParsePushRejects(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"empty", ``, "unexpected end of input"},
		{"not an object", `[]`, "expected an object"},
		{"truncated", `{"ref": "refs/heads/main", "repository": {"name": "r"}`, "expected ',' or '}'"},
		{"trailing data", `{"ref": "r", "repository": {"name": "r"}} x`, "after the top-level value"},
		{"no ref", `{"repository": {"name": "r"}}`, "no ref"},
		{"empty ref", `{"ref": "", "repository": {"name": "r"}}`, "no ref"},
		{"empty repository name", `{"ref": "r", "repository": {"name": ""}}`, "no repository.name"},
		{"no repository", `{"ref": "refs/heads/main"}`, "no repository.name"},
		{"ref not a string", `{"ref": 5, "repository": {"name": "r"}}`, "expected a string"},
		{"commits not an array", `{"ref": "r", "repository": {"name": "r"}, "commits": {}}`, "expected an array"},
		{"path not a string", `{"ref": "r", "repository": {"name": "r"}, "commits": [{"added": [1]}]}`, "expected a string"},
		{"bad escape", `{"ref": "\x", "repository": {"name": "r"}}`, "invalid escape"},
		{"control character", "{\"ref\": \"a\nb\", \"repository\": {\"name\": \"r\"}}", "control character"},
		{"bad number in a skipped field", `{"ref": "r", "repository": {"name": "r"}, "size": 01}`, "expected ',' or '}'"},
		{"bad literal", `{"ref": "r", "repository": {"name": "r"}, "private": tru}`, "invalid literal"},
		{"deep nesting", `{"x": ` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`, "nested too deeply"},
	}
	for _, tt := range tests {
		_, err := ParsePush([]byte(tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want it to say %q", tt.name, err, tt.want)
		}
	}
}

func TestParseBenchPayloads(t *testing.T) {
	for _, name := range []string{"push-8k.json", "push-200k.json"} {
		body, err := os.ReadFile("../../testdata/bench/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParsePush(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := stdParse(t, body)
		if !samePush(got, want) {
			t.Errorf("%s: fast parser and encoding/json disagree", name)
		}
	}
}

// stdPush is the push payload as encoding/json reads it: the reference the
// fast parser is checked against.
type stdPush struct {
	Ref        string `json:"ref"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Created    bool   `json:"created"`
	Deleted    bool   `json:"deleted"`
	Forced     bool   `json:"forced"`
	Repository *struct {
		Name          *string `json:"name"`
		FullName      string  `json:"full_name"`
		DefaultBranch string  `json:"default_branch"`
	} `json:"repository"`
	Commits []struct {
		Added    []string `json:"added"`
		Removed  []string `json:"removed"`
		Modified []string `json:"modified"`
	} `json:"commits"`
}

func stdParse(t *testing.T, body []byte) *trigger.Push {
	var s stdPush
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	p := &trigger.Push{Ref: s.Ref, Before: s.Before, After: s.After, Created: s.Created, Deleted: s.Deleted, Forced: s.Forced, Commits: len(s.Commits)}
	if s.Repository != nil && s.Repository.Name != nil {
		p.Repo, p.FullName, p.DefaultBranch = *s.Repository.Name, s.Repository.FullName, s.Repository.DefaultBranch
	}
	p.Paths = []string{}
	for _, c := range s.Commits {
		n := len(p.Paths)
		for _, list := range [][]string{c.Added, c.Removed, c.Modified} {
			p.Paths = append(p.Paths, list...)
		}
		p.MaxCommitFiles = max(p.MaxCommitFiles, len(p.Paths)-n)
	}
	// NUL, which GitHub and git never send, reads as U+FFFD (as invalid
	// UTF-8 does) in every name and path.
	nul := func(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }
	p.Ref, p.Before, p.After, p.Repo, p.FullName, p.DefaultBranch = nul(p.Ref), nul(p.Before), nul(p.After), nul(p.Repo), nul(p.FullName), nul(p.DefaultBranch)
	for i := range p.Paths {
		p.Paths[i] = nul(p.Paths[i])
	}
	return p
}

func samePush(a, b *trigger.Push) bool {
	return a.Ref == b.Ref && a.Before == b.Before && a.After == b.After && a.Created == b.Created &&
		a.Deleted == b.Deleted && a.Forced == b.Forced && a.Repo == b.Repo && a.FullName == b.FullName &&
		a.Commits == b.Commits && slices.Equal(a.Paths, b.Paths) && a.DefaultBranch == b.DefaultBranch && a.MaxCommitFiles == b.MaxCommitFiles
}

// caseVariantKey finds keys that encoding/json would match case-insensitively
// but GitHub never sends; the fast parser matches keys exactly.
var caseVariantKey = regexp.MustCompile(`(?i)"(ref|before|after|created|deleted|forced|repository|name|full_name|default_branch|commits|added|removed|modified)"`)

func FuzzParsePush(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main","repository":{"name":"r","full_name":"o/r","default_branch":"main"},"commits":[{"added":["a"],"removed":["b"],"modified":["a"]}]}`))
	f.Add([]byte(`{"ref":"refs/tags/v1","deleted":true,"repository":{"name":"r"},"commits":null,"x":[1,2.5e3,{"y":"\u00e9\ud800"}]}`))
	f.Add([]byte(`{"ref":"\ud83d\ude00","repository":{"name":"r\\"},"commits":[{"added":["\ud83d"]}]}`))
	f.Add([]byte(`{"ref":"","repository":{"name":"r"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := ParsePush(body)
		if err == nil && (got.Ref == "" || got.Repo == "") {
			t.Fatalf("accepted a push without ref or repository.name: %q", body)
		}
		var s stdPush
		stdErr := json.Unmarshal(body, &s)
		if err == nil {
			if stdErr != nil {
				t.Fatalf("accepted what encoding/json rejects (%v): %q", stdErr, body)
			}
			for _, m := range caseVariantKey.FindAllString(string(body), -1) {
				if m != strings.ToLower(m) {
					return
				}
			}
			if want := stdParse(t, body); !samePush(got, want) {
				t.Fatalf("disagree on %q:\n fast %+v\n std  %+v", body, got, want)
			}
			return
		}
		// Whatever encoding/json finds syntactically broken, so must we.
		if stdErr == nil && strings.Contains(err.Error(), "invalid JSON") && !strings.Contains(err.Error(), "nested too deeply") {
			t.Fatalf("rejected valid JSON: %v: %q", err, body)
		}
	})
}

func BenchmarkParsePush(b *testing.B) {
	for _, name := range []string{"push-8k.json", "push-200k.json"} {
		body, err := os.ReadFile("../../testdata/bench/" + name)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParsePush(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var s stdPush
				if err := json.Unmarshal(body, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
