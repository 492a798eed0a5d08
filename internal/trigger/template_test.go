package trigger

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

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
		s, err := ParseSpec([]byte(doc))
		if err == nil {
			_, err = NewV2Rule("k", s)
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
		s := Spec{Repository: "a/b", Target: Target{Type: "http", URL: u}}
		if _, err := NewV2Rule("k", s); err == nil || !strings.Contains(err.Error(), "target.url") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s → %v\nwant an error containing %q", u, err, want)
		}
	}
	s := Spec{Repository: "a/b", Target: Target{Type: "http", URL: "https://ci.example/x", Headers: map[string]string{"X Bad": "1"}}}
	if _, err := NewV2Rule("k", s); err == nil || !strings.Contains(err.Error(), `headers: "X Bad" is not a valid header name`) {
		t.Errorf("header name: %v", err)
	}
	// The other targets' templates get the same checks.
	s = Spec{Repository: "a/b", Target: Target{Type: "exec", Command: []string{"sh", `{{range 10}}{{end}}`}}}
	if _, err := NewV2Rule("k", s); err == nil || !strings.Contains(err.Error(), "target.command[1]") {
		t.Errorf("exec: %v", err)
	}
	s = Spec{Repository: "a/b", Target: Target{Type: "codepipeline", Pipeline: "p", Variables: map[string]string{"V": `{{printf "%*d" 9 1}}`}}}
	if _, err := NewV2Rule("k", s); err == nil || !strings.Contains(err.Error(), "target.variables.V") {
		t.Errorf("variables: %v", err)
	}
	// What the README documents still passes.
	s = Spec{Repository: "a/b", Target: Target{Type: "http",
		URL:     `https://ci.example/job/{{.RepoName}}/buildWithParameters?token={{secret "T"}}&SHA={{.SHA}}#{{.Tag}}`,
		Headers: map[string]string{"Authorization": `Bearer {{secret "B"}}`},
		Body:    `{"sha": {{json .SHA}}, "n": {{.ChangedPathsCount}}, "pr": {{printf "%d" .PullRequest}}{{if .Tag}}, "tag": {{json .Tag}}{{end}}}`}}
	if _, err := NewV2Rule("k", s); err != nil {
		t.Errorf("a documented rule is refused: %v", err)
	}
}

// What passes the checks is still bounded when it runs: by the output
// cap, the work its functions do, the iterations of range and the job's
// deadline. Each failure is permanent and says why.
func TestRenderingIsBounded(t *testing.T) {
	d := TemplateData{SHA: strings.Repeat("a", 40), ChangedPathsCount: 20000, Branch: "%1000000d"}
	doubling := `{{$x := .SHA}}` + strings.Repeat(`{{$x = print $x $x}}`, 40) + `{{len $x}}`
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for _, c := range []struct {
		ctx   context.Context
		text  string
		limit int
		want  string
	}{
		{context.Background(), "{{range .ChangedPathsCount}}" + strings.Repeat("x", 200) + "{{end}}", MaxBody, "produces more than 1 MiB"},
		{context.Background(), "{{range .ChangedPathsCount}}{{.}}{{end}}", MaxValue, "produces more than 16 KiB"},
		{context.Background(), doubling, MaxBody, "produces more than 1 MiB"},
		{context.Background(), `{{print .SHA .SHA .SHA}}` + strings.Repeat(`{{$y := print .SHA}}`, 1000), MaxValue, "produces more than 16 KiB"},
		{context.Background(), "{{range .ChangedPathsCount}}{{end}}", MaxBody, "range runs more than 10000 times"},
		{context.Background(), `{{printf .Branch 1}}`, MaxBody, "widths, precisions and argument indexes are not allowed"},
		{expired, "{{.SHA}}", MaxBody, "rendering stopped at the job's deadline"},
		{expired, "{{range .ChangedPathsCount}}{{end}}", MaxBody, "rendering stopped at the job's deadline"},
		{context.Background(), `{{range 100000}}{{range 100000}}x{{end}}{{end}}`, MaxBody, "only over a field of the data"},
	} {
		_, err := Render(c.ctx, "body", c.text, c.limit, d, nil)
		if err == nil || !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "body") {
			t.Errorf("%.80s…: %v\nwant a permanent error containing %q", c.text, err, c.want)
		}
	}
	if got, err := Render(context.Background(), "body", "{{range .ChangedPathsCount}}.{{end}}", MaxBody, TemplateData{ChangedPathsCount: 3}, nil); err != nil || got != "..." {
		t.Errorf("a bounded range: %q, %v", got, err)
	}
}

func TestURLValuesAreEscaped(t *testing.T) {
	d := TemplateData{Branch: "main&DEPLOY_ENV=prod&token=x", Repo: "acme/mono", Tag: "v1 #2"}
	got, err := RenderURL(context.Background(), `https://ci.example/api/projects/{{.Repo}}/trigger?token={{secret "T"}}&BRANCH={{.Branch}}{{/* note */}}#{{.Tag}}`, d,
		func(string) (string, error) { return "a+b", nil })
	want := "https://ci.example/api/projects/acme%2Fmono/trigger?token=a%2Bb&BRANCH=main%26DEPLOY_ENV%3Dprod%26token%3Dx#v1+%232"
	if err != nil || got != want {
		t.Errorf("got %s, %v\nwant %s", got, err, want)
	}
}

// A path value of dots alone would climb out of its segment (PathEscape
// leaves dots as they are): the render fails for good instead.
func TestDotSegmentsAreRefused(t *testing.T) {
	for _, v := range []string{".", "..", "..."} {
		_, err := RenderURL(context.Background(), `https://ci.example/job/{{.Branch}}/build?b={{.Branch}}`, TemplateData{Branch: v}, nil)
		if err == nil || !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "climb out") {
			t.Errorf("%q: %v", v, err)
		}
	}
	got, err := RenderURL(context.Background(), `https://ci.example/job/{{.Branch}}/build?b={{.Branch}}`, TemplateData{Branch: "v1..2"}, nil)
	if err != nil || got != "https://ci.example/job/v1..2/build?b=v1..2" {
		t.Errorf("v1..2: %s, %v", got, err)
	}
}

// FuzzURLTemplate: whatever the substituted values hold, the rendered URL
// keeps the template's scheme, host, path segments and query keys, and
// each value comes back intact.
func FuzzURLTemplate(f *testing.F) {
	f.Add("main&DEPLOY_ENV=prod&token=x", "acme/mono")
	f.Add("../../admin?x=1#y", "a b%2F")
	f.Add("\x00\r\n\xff", "@evil.example:80/")
	const text = `https://ci.example:8443/job/{{.Branch}}/x{{.Repo}}/build?token=t&BRANCH={{.Branch}}&R={{.Repo}}#{{.Branch}}`
	f.Fuzz(func(t *testing.T, branch, repo string) {
		got, err := RenderURL(context.Background(), text, TemplateData{Branch: branch, Repo: repo}, nil)
		if err != nil {
			// Escaped, a byte takes at most three; the branch stands three
			// times in the URL, the repository twice. Only a URL that could
			// be over the budget may be refused for its size.
			if most := len(text) + 3*(3*len(branch)+2*len(repo)); most > MaxValue && strings.Contains(err.Error(), "produces more than") {
				return
			}
			dots := func(s string) bool { return s != "" && strings.Trim(s, ".") == "" }
			if (dots(branch) || dots(repo)) && strings.Contains(err.Error(), "would climb out of its place") {
				return
			}
			t.Fatalf("render: %v", err)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if u.Scheme != "https" || u.Host != "ci.example:8443" || u.User != nil {
			t.Fatalf("%s: scheme %q host %q user %v", got, u.Scheme, u.Host, u.User)
		}
		segs := strings.Split(u.EscapedPath(), "/")
		if len(segs) != 5 || segs[1] != "job" || segs[4] != "build" {
			t.Fatalf("%s: path segments %q", got, segs)
		}
		if s, _ := url.PathUnescape(segs[2]); s != branch {
			t.Fatalf("%s: branch segment %q, want %q", got, s, branch)
		}
		if s, _ := url.PathUnescape(segs[3]); s != "x"+repo {
			t.Fatalf("%s: repo segment %q", got, s)
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil || len(q) != 3 || len(q["token"]) != 1 || q.Get("token") != "t" || len(q["BRANCH"]) != 1 || q.Get("BRANCH") != branch || q.Get("R") != repo {
			t.Fatalf("%s: query %v (%v)", got, q, err)
		}
		if frag, _ := url.QueryUnescape(u.EscapedFragment()); frag != branch {
			t.Fatalf("%s: fragment %q", got, frag)
		}
	})
}
