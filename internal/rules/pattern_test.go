package rules

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSplitSeed(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"services/api/.*", []string{"services/api/.*"}},
		{" a/.* , b/.*\t", []string{"a/.*", "b/.*"}},
		{"a/.*,", []string{"a/.*", ""}},
		{"^.*$,.*", []string{"^.*$", ".*"}}, // the predecessor's own test vector
		{"\x1ca\x1f", []string{"a"}},        // Python's strip() removes these too
	}
	for _, tt := range tests {
		if got := SplitSeed(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("SplitSeed(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCompileSeedMatch(t *testing.T) {
	tests := []struct {
		expr  string
		path  string
		match bool
	}{
		// Anchored at the start, not at the end (Python re.match).
		{"services/api/.*", "services/api/main.go", true},
		{"services/api/", "services/api/main.go", true},
		{"services/api", "services/api-gateway/x", true},
		{"services/api/.*", "x/services/api/main.go", false},
		{"api/.*", "services/api/main.go", false},
		{".*org.py.*", "github-endpoint/webhook/org.py", true},
		{"^github-endpoint/.*", "github-endpoint/readme.md", true},
		{"^README.MD", "readme.md", false},
		{"^no-way-this-matches.sh", "readme.md", false},
		{"", "anything", true},
		{".*", "", true},
		{"docs$", "docs", true},
		{"docs$", "docs/x", false},
		{`docs\Z`, "docs", true},
		{`docs\Z`, "docs/x", false},
		{"a{,2}b", "aab", true},
		{"a{,2}b", "aaab", false},
		{"[{,]x", ",x", true},
		{"(api|web)/.*", "web/index.html", true},
		{"(api|web)/.*", "cli/main.go", false},
		{"[ab]c/.*", "bc/x", true},
		{"(?i)Services/.*", "services/x", true},
		{".*\\.md", "docs/guide.md", true},
		{".*\\.md", "docs/guide.txt", false},
		{".*\\.md", "docs/guide.mdx", true}, // not anchored at the end
		{"(foo/)+bar", "foo/foo/bar", true},
		{"(foo/){2}bar", "foo/bar", false},
		{"(foo/){2}bar", "foo/foo/bar", true},
		{"\\bx", "x", true},
		{"a|^b", "b", true},
	}
	for _, tt := range tests {
		p, err := CompileSeed(tt.expr)
		if err != nil {
			t.Fatalf("CompileSeed(%q): %v", tt.expr, err)
		}
		if got := p.Match(tt.path); got != tt.match {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.expr, tt.path, got, tt.match)
		}
		// The indexed path must agree with the pattern alone.
		ix := NewIndex([][]*Pattern{{p}})
		if got := len(ix.Match([]string{tt.path})) == 1; got != tt.match {
			t.Errorf("index of %q on %q = %v, want %v", tt.expr, tt.path, got, tt.match)
		}
	}
}

func TestCompileSeedErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"services/(?!legacy)", "look-around"},
		{"(?<=x)y", "look-around"},
		{`(a)\1`, "back-references"},
		{"services/[", "missing closing ]"},
		{"a)|(b", "unexpected )"},
		{`trailing\`, "trailing backslash"},
	}
	for _, tt := range tests {
		_, err := CompileSeed(tt.expr)
		if err == nil {
			t.Errorf("CompileSeed(%q) succeeded, want an error", tt.expr)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), strconv.Quote(tt.expr)) {
			t.Errorf("CompileSeed(%q) error %q, want it to name the expression and say %q", tt.expr, err, tt.want)
		}
	}
}

func TestPrefixAnalysis(t *testing.T) {
	tests := []struct {
		expr     string
		prefixes []string
		exact    bool
	}{
		{"services/api/.*", []string{"services/api/"}, true},
		{"^services/api/.*", []string{"services/api/"}, true},
		{"services/api/", []string{"services/api/"}, true},
		{"(api|web)/.*", []string{"api/", "web/"}, true},
		{"services/(api|web)/x", []string{"services/api/x", "services/web/x"}, true},
		{"services/.*\\.go", []string{"services/"}, false},
		{"docs$", []string{"docs"}, false},
		{".*\\.md", []string{""}, false},
		{"", []string{""}, true},
		{".*", []string{""}, true},
		{"[0-9]x", []string{"0x", "1x", "2x", "3x", "4x", "5x", "6x", "7x", "8x", "9x"}, true},
		{"[a-z]x", []string{""}, false},
	}
	for _, tt := range tests {
		p, err := CompileSeed(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Clone(p.prefixes)
		slices.Sort(got)
		if !slices.Equal(got, tt.prefixes) || p.exact != tt.exact {
			t.Errorf("%q: prefixes %q exact %v, want %q exact %v", tt.expr, got, p.exact, tt.prefixes, tt.exact)
		}
	}
}

func TestRequiredLiteral(t *testing.T) {
	p, err := CompileSeed(`.*/docs/.*\.md`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.contains, []string{"/docs/"}) {
		t.Errorf("required = %q, want /docs/", p.contains)
	}
}

// naiveMatch is the predecessor's algorithm: every expression of every rule
// against every path.
func naiveMatch(rules [][]string, paths []string) []int {
	var out []int
	for r, exprs := range rules {
	rule:
		for _, e := range exprs {
			re := regexp.MustCompile(`^(?:` + translatePython(e) + `)`)
			for _, p := range paths {
				if re.MatchString(p) {
					out = append(out, r)
					break rule
				}
			}
		}
	}
	return out
}

func checkAgainstNaive(t *testing.T, rules [][]string, paths []string) {
	t.Helper()
	compiled := make([][]*Pattern, len(rules))
	for r, exprs := range rules {
		for _, e := range exprs {
			p, err := CompileSeed(e)
			if err != nil {
				return // invalid rules are rejected before indexing
			}
			compiled[r] = append(compiled[r], p)
		}
	}
	hits := NewIndex(compiled).Match(paths)
	var got []int
	for _, h := range hits {
		got = append(got, h.Rule)
		if !compiled[h.Rule][h.Pattern].Match(h.Path) {
			t.Fatalf("hit %+v: the reported pattern does not match the reported path", h)
		}
		// The reported path is the first that the rule matches.
		for _, p := range paths {
			if p == h.Path {
				break
			}
			for _, pat := range compiled[h.Rule] {
				if pat.Match(p) {
					t.Fatalf("hit %+v: earlier path %q also matches", h, p)
				}
			}
		}
	}
	if want := naiveMatch(rules, paths); !slices.Equal(got, want) {
		t.Fatalf("rules %q paths %q: index matched %v, naive %v", rules, paths, got, want)
	}
}

var fragments = []string{"services/", "api", "web", "/", ".*", "\\.md", "(api|web)", "[ab]", "x", "$", "^", "(?i)A", "+", "?", "docs", "{2}", "|", ".", "[0-9]", "\\b", "(", ")", "lib",
	// Issue 20's shapes: case folding, leading classes and words,
	// alternations, a literal after .*, and runes whose case orbit is
	// larger than two (K, k and the Kelvin sign; s, S and ſ).
	"(?i)", "(?i:docs)", "[a-z]+", `\w+`, "[Dd]", "(services|deploy)", "(dev|prod)/", ".*/", `\.tf(vars)?`, "Dockerfile", "K", "\u212a", "ſ", "[sS]", "(?i)readme", `\x{FFFD}`, "[^/]+"}
var pathParts = []string{"services/", "api/", "web/", "docs/", "a", "b", "x.md", "X", "lib/", "1", "readme.md", "",
	"Docs/", "DOCS/", "deploy/", "dev/", "x.tfvars", "Dockerfile", "k", "\u212a", "ſ", "S", "README", "\xff", "é"}

func randomExpr(r *rand.Rand) string {
	var b strings.Builder
	for n := r.IntN(5); n >= 0; n-- {
		b.WriteString(fragments[r.IntN(len(fragments))])
	}
	return b.String()
}

func randomPath(r *rand.Rand) string {
	var b strings.Builder
	for n := r.IntN(5); n >= 0; n-- {
		b.WriteString(pathParts[r.IntN(len(pathParts))])
	}
	return b.String()
}

func TestIndexAgreesWithNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		rules := make([][]string, 1+r.IntN(6))
		for i := range rules {
			for n := r.IntN(4); n >= 0; n-- {
				rules[i] = append(rules[i], randomExpr(r))
			}
		}
		paths := make([]string, r.IntN(8))
		for i := range paths {
			paths[i] = randomPath(r)
		}
		checkAgainstNaive(t, rules, paths)
	}
}

func FuzzIndexAgreesWithNaive(f *testing.F) {
	f.Add("services/api/.*,(api|web)/x", "services/api/main.go\nweb/x")
	f.Add(".*\\.md,[ab]c$", "docs/a.md\nbc")
	f.Add("(?i)SERVICES/.*,", "services/x")
	// One seed per shape of issue 20, each with a path that matches and
	// one that nearly does.
	f.Add("(?i)docs/api/.*", "DOCS/api/x.md\nDocs/ap/x\ndocs/api/")
	f.Add("[a-z]+/api/Dockerfile", "images/api/Dockerfile\nimages/api/dockerfile\n1/api/Dockerfile")
	f.Add(`\w+/api/config/.*\.ya?ml`, "x_1/api/config/a/b.yml\napps/api/config/app.json\n/api/config/a.yaml")
	f.Add("(services|deploy)/api/.*;(infra|terraform)/(dev|prod)/api/.*", "deploy/api/k.yaml\nterraform/prod/api/main.tf\ninfra/staging/api/x")
	f.Add(`.*/api\.tf(vars)?`, "stacks/eu/api.tfvars\nmodules/api_test.tf\napi.tf")
	f.Add(`.*\.md;(?i).*readme.*`, "services/a/README.md\nReadMe.txt\nx.mdx")
	f.Add("(?i)k;[sS]vc;(?i)ſ", "\u212a\nſvc\nS")
	f.Add("[Ll]ibs/api/(?i:src)/.*", "Libs/api/SRC/util.go\nlibs/api/test/x")
	f.Fuzz(func(t *testing.T, exprs, paths string) {
		if len(exprs) > 200 || len(paths) > 2000 {
			return
		}
		var rules [][]string
		for _, rule := range strings.Split(exprs, ";") {
			rules = append(rules, SplitSeed(rule))
		}
		checkAgainstNaive(t, rules, strings.Split(paths, "\n"))
	})
}

func FuzzCompileSeed(f *testing.F) {
	for _, s := range []string{"services/.*", "(?!x)", `\Z`, "a{,3}", "[", "(?i)x|y", `[\Z]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := CompileSeed(expr)
		if err != nil {
			return
		}
		// Whatever compiled must match consistently through the index.
		for _, path := range []string{"", expr, "services/api/x", "docs/readme.md"} {
			want := p.re.MatchString(path)
			if got := p.Match(path); got != want {
				t.Fatalf("%q on %q: Match %v, regexp %v", expr, path, got, want)
			}
		}
	})
}

// TestCaseFoldedLiterals: the index finds paths through case-folded
// literals; whatever the spelling of case on either side, it agrees with
// the expression.
func TestCaseFoldedLiterals(t *testing.T) {
	exprs := []string{"(?i)docs/.*", "(?i)DOCS/api/.*", "[Dd]ocs/.*", "docs/.*", "Docs/.*", "(?i)kelvin", "(?i).*readme.*",
		"(?i)[a-z]+/k/x", "(?i)ſ", "(?i)s/.*", "\u212a", ".*\\x{FFFD}", "(?i)é/.*", "[^a]*K", "(?i:a)b", "a(?i:b)"}
	paths := []string{"docs/x", "Docs/x", "DOCS/api/x", "dOcS/API/x", "\u212aelvin", "KELVIN", "x/ReadMe.txt", "a/K/X", "q/\u212a/x",
		"s", "S/", "ſ/", "\u212a", "a/\xff", "É/x", "É/x", "ab", "AB", "aB", "Ab", "xK"}
	for _, e := range exprs {
		p, err := CompileSeed(e)
		if err != nil {
			t.Fatal(err)
		}
		ix := NewIndex([][]*Pattern{{p}})
		for _, path := range paths {
			want := p.re.MatchString(path)
			if got := len(ix.Match([]string{path})) == 1; got != want {
				t.Errorf("%q on %q: index %v, regexp %v (starts %q, contains %q)", e, path, got, want, p.starts, p.contains)
			}
		}
	}
}

func TestFoldRune(t *testing.T) {
	for in, want := range map[rune]rune{'A': 'a', 'a': 'a', 'K': 'k', '\u212a': 'k', 'ſ': 's', 'S': 's', 'É': foldRune('é'), '/': '/', 'Σ': foldRune('σ')} {
		if got := foldRune(in); got != want {
			t.Errorf("foldRune(%q) = %q, want %q", in, got, want)
		}
	}
	if got := string(foldPath("A\xffß\u212a", nil)); got != "a\ufffd"+string(foldRune('ß'))+"k" {
		t.Errorf("foldPath = %q", got)
	}
}
