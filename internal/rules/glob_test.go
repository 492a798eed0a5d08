package rules

import (
	"strings"
	"testing"
)

// TestGlobCheatSheet is GitHub's "Filter pattern cheat sheet" (Workflow
// syntax for GitHub Actions): each pattern with the names it documents as
// matching, plus names it must not match.
func TestGlobCheatSheet(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		// Branches and tags.
		{"feature/*", []string{"feature/my-branch", "feature/your-branch"}, []string{"feature/your/branch", "feature", "features/x"}},
		{"feature/**", []string{"feature/beta-a/my-branch", "feature/your-branch", "feature/mona/the/octocat"}, []string{"features/x", "feature"}},
		{"main", []string{"main"}, []string{"main2", "amain", "main/x"}},
		{"releases/mona-the-octocat", []string{"releases/mona-the-octocat"}, []string{"releases/mona-the-octocatx"}},
		{"*", []string{"main", "releases", "v2.0"}, []string{"feature/x"}},
		{"**", []string{"all/the/branches", "every/tag", "main"}, nil},
		{"*-alpha", []string{"v2.0-alpha", "x-alpha"}, []string{"a/x-alpha", "alpha"}},
		{"v2*", []string{"v2", "v2.0", "v2.9"}, []string{"v1", "v3.2"}},
		{"v[12].[0-9]+.[0-9]+", []string{"v1.10.1", "v2.0.0"}, []string{"v3.0.0", "v1.x.1", "v1.1"}},
		// Paths.
		{"*", []string{"README.md", "server.rb"}, []string{"docs/README.md"}},
		{"*.jsx?", []string{"page.js", "page.jsx"}, []string{"page.jsxx", "app/page.js"}},
		{"**", []string{"all/the/files.md"}, nil},
		{"*.js", []string{"app.js", "index.js"}, []string{"js/index.js", "app.jsx"}},
		{"**.js", []string{"index.js", "js/index.js", "src/js/app.js"}, []string{"index.jsx"}},
		{"docs/*", []string{"docs/README.md", "docs/file.txt"}, []string{"docs/mona/octocat.txt", "mydocs/x"}},
		{"docs/**", []string{"docs/README.md", "docs/mona/octocat.txt"}, []string{"src/docs/x", "docsx/y"}},
		{"docs/**/*.md", []string{"docs/README.md", "docs/mona/hello-world.md", "docs/a/markdown/file.md"}, []string{"docs/x.txt", "src/docs/a.md"}},
		{"**/docs/**", []string{"docs/hello.md", "dir/docs/my-file.txt", "space/docs/plan/space.doc"}, []string{"mydocs/x", "docs"}},
		{"**/README.md", []string{"README.md", "js/README.md"}, []string{"xREADME.md", "README.mdx"}},
		{"**/*src/**", []string{"a/src/app.js", "my-src/code/js/app.js"}, []string{"src-a/x"}},
		{"**/*-post.md", []string{"my-post.md", "path/their-post.md"}, []string{"post.md"}},
		{"**/migrate-*.sql", []string{"migrate-10909.sql", "db/migrate-v1.0.sql", "db/sept/migrate-v1.sql"}, []string{"migrate.sql", "db/migrate-1.sql.bak"}},
		// Metacharacters of regular expressions are literal; \ escapes ours.
		{"a.b(c)|d", []string{"a.b(c)|d"}, []string{"axb(c)|d", "a.bc"}},
		{`\*.md`, []string{"*.md"}, []string{"a.md"}},
		{"ü+x", []string{"üx", "üüx"}, []string{"x"}},
	}
	for _, tt := range tests {
		p, err := CompileGlob(tt.pattern)
		if err != nil {
			t.Errorf("%q: %v", tt.pattern, err)
			continue
		}
		for _, s := range tt.match {
			if !p.Match(s) || !p.re.MatchString(s) {
				t.Errorf("%q does not match %q", tt.pattern, s)
			}
		}
		for _, s := range tt.noMatch {
			if p.Match(s) || p.re.MatchString(s) {
				t.Errorf("%q matches %q", tt.pattern, s)
			}
		}
	}
}

func TestGlobErrors(t *testing.T) {
	for pattern, want := range map[string]string{
		"":          "empty",
		"?.md":      "repeats the preceding character",
		"*+":        "repeats the preceding character",
		"a[bc":      "not closed",
		"[]":        "empty class",
		"[!a]":      "only letters, digits",
		"[z-a]":     "bad range",
		"[a-9]":     "bad range",
		`trailing\`: "escapes nothing",
	} {
		_, err := CompileGlob(pattern)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error saying %q", pattern, err, want)
		}
	}
}

// naiveGlob is a second, independent reading of GitHub's filter patterns:
// a backtracking matcher over the pattern text (ASCII only), for the
// differential fuzz test of CompileGlob. Its answers are memoized by
// position (p and s are always suffixes of the first ones): without that,
// a pattern of 32 stars took it exponential time and hung the fuzzer.
func naiveGlob(p, s string, segStart bool) bool {
	m := naive{memo: map[naiveState]bool{}}
	return m.match(p, s, segStart)
}

type naiveState struct {
	p, s     int // lengths of what is left of the pattern and the string
	segStart bool
}

type naive struct{ memo map[naiveState]bool }

func (m naive) match(p, s string, segStart bool) bool {
	k := naiveState{len(p), len(s), segStart}
	if v, ok := m.memo[k]; ok {
		return v
	}
	v := m.step(p, s, segStart)
	m.memo[k] = v
	return v
}

func (m naive) step(p, s string, segStart bool) bool {
	if p == "" {
		return s == ""
	}
	if strings.HasPrefix(p, "**") {
		rest := p[2:]
		if segStart && strings.HasPrefix(rest, "/") {
			// "**/": no directory, or any directories ending in "/".
			if m.match(rest[1:], s, true) {
				return true
			}
			for k := 0; k < len(s); k++ {
				if s[k] == '/' && m.match(rest[1:], s[k+1:], true) {
					return true
				}
			}
			return false
		}
		for k := 0; k <= len(s); k++ {
			if m.match(rest, s[k:], false) {
				return true
			}
		}
		return false
	}
	if p[0] == '*' {
		for k := 0; k <= len(s); k++ {
			if m.match(p[1:], s[k:], false) {
				return true
			}
			if k < len(s) && s[k] == '/' {
				break
			}
		}
		return false
	}
	// One atom: a literal, an escaped character or a class.
	var atom func(c byte) bool
	n := 1
	switch p[0] {
	case '\\':
		lit := p[1]
		atom, n = func(c byte) bool { return c == lit }, 2
	case '[':
		end := strings.IndexByte(p, ']')
		class := p[1:end]
		atom = func(c byte) bool {
			for i := 0; i < len(class); i++ {
				if i+2 < len(class) && class[i+1] == '-' {
					if c >= class[i] && c <= class[i+2] {
						return true
					}
					i += 2
				} else if c == class[i] {
					return true
				}
			}
			return false
		}
		n = end + 1
	default:
		lit := p[0]
		atom = func(c byte) bool { return c == lit }
	}
	rest := p[n:]
	switch {
	case strings.HasPrefix(rest, "?"):
		return m.match(rest[1:], s, segStart) || (s != "" && atom(s[0]) && m.match(rest[1:], s[1:], s[0] == '/'))
	case strings.HasPrefix(rest, "+"):
		if s == "" || !atom(s[0]) {
			return false
		}
		return m.match(rest[1:], s[1:], s[0] == '/') || m.match(p, s[1:], s[0] == '/')
	}
	return s != "" && atom(s[0]) && m.match(rest, s[1:], s[0] == '/')
}

func FuzzGlobAgreesWithNaive(f *testing.F) {
	for _, s := range []string{"docs/**/*.md", "**/README.md", "*.jsx?", "v[12].[0-9]+", "**.js", "a/**", `\*x`} {
		f.Add(s, "docs/a/b.md\nREADME.md\npage.jsx\nv1.10\nsrc/x.js\na/\n*x")
	}
	f.Fuzz(func(t *testing.T, pattern, paths string) {
		if len(pattern) > 40 || len(paths) > 400 {
			return
		}
		for i := 0; i < len(pattern); i++ {
			if pattern[i] >= 0x80 {
				return // the naive matcher reads bytes
			}
		}
		p, err := CompileGlob(pattern)
		if err != nil {
			return
		}
		for _, s := range strings.Split(paths, "\n") {
			want := naiveGlob(pattern, s, true)
			if got := p.Match(s); got != want {
				t.Fatalf("%q on %q: CompileGlob %v, naive %v (regexp %s)", pattern, s, got, want, p.re)
			}
			if got := NewIndex([][]*Pattern{{p}}).Match([]string{s}); (len(got) == 1) != want {
				t.Fatalf("%q on %q through the index: %v, want %v", pattern, s, got, want)
			}
		}
	})
}
