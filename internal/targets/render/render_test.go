package render

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

// What passes the checks is still bounded when it runs: by the output
// cap, the work its functions do, the iterations of range and the job's
// deadline. Each failure is permanent and says why.
func TestRenderingIsBounded(t *testing.T) {
	d := trigger.TemplateData{SHA: strings.Repeat("a", 40), ChangedPathsCount: 20000, Branch: "%1000000d"}
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
		_, err := Text(c.ctx, "body", c.text, c.limit, d, nil)
		if err == nil || !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "body") {
			t.Errorf("%.80s…: %v\nwant a permanent error containing %q", c.text, err, c.want)
		}
	}
	if got, err := Text(context.Background(), "body", "{{range .ChangedPathsCount}}.{{end}}", MaxBody, trigger.TemplateData{ChangedPathsCount: 3}, nil); err != nil || got != "..." {
		t.Errorf("a bounded range: %q, %v", got, err)
	}
}

func TestURLValuesAreEscaped(t *testing.T) {
	d := trigger.TemplateData{Branch: "main&DEPLOY_ENV=prod&token=x", Repo: "acme/mono", Tag: "v1 #2"}
	got, err := URL(context.Background(), `https://ci.example/api/projects/{{.Repo}}/trigger?token={{secret "T"}}&BRANCH={{.Branch}}{{/* note */}}#{{.Tag}}`, d,
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
		_, err := URL(context.Background(), `https://ci.example/job/{{.Branch}}/build?b={{.Branch}}`, trigger.TemplateData{Branch: v}, nil)
		if err == nil || !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "climb out") {
			t.Errorf("%q: %v", v, err)
		}
	}
	got, err := URL(context.Background(), `https://ci.example/job/{{.Branch}}/build?b={{.Branch}}`, trigger.TemplateData{Branch: "v1..2"}, nil)
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
		got, err := URL(context.Background(), text, trigger.TemplateData{Branch: branch, Repo: repo}, nil)
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
