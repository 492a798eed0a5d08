// Package rulestest generates rule sets and pushes for the tests and
// benchmarks of evaluation: deterministic for a seed, with expression shapes
// that give the index no literal prefix to lean on, and the expected result
// of each from the naive evaluation (every expression against every path).
package rulestest

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"

	"github.com/monohook/monohook/internal/rules"
)

// Shape is one way of writing a rule's expression around the name of the
// component it watches.
type Shape struct {
	Name string
	// Seed is a seed expression (a regular expression matched at the
	// start of a path) for component x, already quoted; Glob is a v2
	// filter pattern, or "" when the shape has none.
	Seed, Glob func(x string) string
}

// Shapes are the expression shapes of issue 20: most have no literal
// prefix. Broad ones are listed apart in Broad.
var Shapes = []Shape{
	{"literal", func(x string) string { return "services/" + x + "/.*" }, func(x string) string { return "services/" + x + "/**" }},
	{"casefold", func(x string) string { return "(?i)docs/" + x + "/.*" }, func(x string) string { return "**/" + x + "/**" }},
	{"class", func(x string) string { return "[a-z]+/" + x + "/Dockerfile" }, func(x string) string { return "*/" + x + "/Dockerfile" }},
	{"word", func(x string) string { return `\w+/` + x + `/config/.*\.ya?ml` }, func(x string) string { return "*/" + x + "/config/**/*.ya?ml" }},
	{"alternation", func(x string) string { return "(services|deploy)/" + x + "/.*" }, func(x string) string { return "deploy/" + x + "/**" }},
	{"alternation2", func(x string) string { return "(infra|terraform)/(dev|prod)/" + x + "/.*" }, func(x string) string { return "infra/[dp]*/" + x + "/**" }},
	{"dotstar", func(x string) string { return `.*/` + x + `\.tf(vars)?` }, func(x string) string { return "**/" + x + ".tf*" }},
	{"mixedcase", func(x string) string { return "[Ll]ibs/" + x + "/(?i:src)/.*" }, func(x string) string { return "libs/" + x + "+/**" }},
}

// Broad are expressions that many pushes match, given to a few rules.
var Broad = []Shape{
	{"md", func(string) string { return `.*\.md` }, func(string) string { return "**.md" }},
	{"readme", func(string) string { return `(?i).*readme.*` }, func(string) string { return "**/README*" }},
}

// ShapeNamed returns the shape of that name from Shapes.
func ShapeNamed(name string) Shape {
	for _, s := range Shapes {
		if s.Name == name {
			return s
		}
	}
	panic("no shape " + name)
}

// Workload is a rule set and the changed paths of one push.
type Workload struct {
	Name string
	// Rules[i] is rule i's expressions (seed) or patterns (v2: a leading
	// "!" excludes).
	Rules [][]string
	Paths []string
}

// Config says what to generate.
type Config struct {
	Rules, Paths int
	Seed         uint64
	// Shapes are the shapes rules are written in, each rule's
	// expressions drawn among them; nil is all of Shapes.
	Shapes []Shape
	// PerRule is how many expressions a rule has (1 to PerRule).
	PerRule int
	// BroadEvery gives every BroadEvery-th rule a broad expression too
	// (0: none).
	BroadEvery int
	// Glob writes v2 patterns instead of seed expressions; Excludes adds
	// "!**/*.md" and "!**/testdata/**" to every rule.
	Glob, Excludes bool
}

var words = []string{"billing", "auth", "search", "payments", "api", "web", "gateway", "users", "orders", "cart", "catalog", "notify", "email", "sms", "ledger", "risk", "fraud", "report", "export", "import", "sync", "cache", "queue", "worker", "admin", "portal", "mobile", "ios", "android", "ml", "data", "etl", "stream", "events", "audit", "identity", "profile", "media", "video", "image"}

// names returns n distinct component names: half numbered ("svc17"),
// half made of words ("billing-api-3"), so names share prefixes and
// substrings with each other as real ones do.
func names(r *rand.Rand, n int) []string {
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	for len(out) < n {
		var s string
		if len(out)%2 == 0 {
			s = fmt.Sprintf("svc%d", len(out)/2)
		} else {
			s = words[r.IntN(len(words))] + "-" + words[r.IntN(len(words))]
			if seen[s] {
				s = fmt.Sprintf("%s-%d", s, len(out))
			}
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// pathTemplates place component x in the places the shapes watch, and in
// places near them that they must not match.
var pathTemplates = []func(r *rand.Rand, x string) string{
	func(r *rand.Rand, x string) string {
		return "services/" + x + "/" + pick(r, "api", "store", "worker") + "/" + pick(r, "main", "handler", "db") + ".go"
	},
	func(r *rand.Rand, x string) string {
		return pick(r, "docs", "Docs", "DOCS", "doc") + "/" + x + "/" + pick(r, "index.md", "guide.txt", "a/b.md")
	},
	func(r *rand.Rand, x string) string {
		return pick(r, "services", "images", "build", "Build") + "/" + x + "/" + pick(r, "Dockerfile", "dockerfile", "Dockerfile.dev")
	},
	func(r *rand.Rand, x string) string {
		return pick(r, "apps", "services", "x_1") + "/" + x + "/config/" + pick(r, "app.yaml", "prod/db.yml", "app.json")
	},
	func(r *rand.Rand, x string) string {
		return pick(r, "deploy", "deployments") + "/" + x + "/k8s/" + pick(r, "svc.yaml", "hpa.yaml")
	},
	func(r *rand.Rand, x string) string {
		return pick(r, "infra", "terraform", "infra2") + "/" + pick(r, "dev", "prod", "staging") + "/" + x + "/main.tf"
	},
	func(r *rand.Rand, x string) string {
		return pick(r, "modules", "stacks/eu") + "/" + x + pick(r, ".tf", ".tfvars", ".tf.json", "_test.tf")
	},
	func(r *rand.Rand, x string) string {
		return pick(r, "libs", "Libs", "lib") + "/" + x + "/" + pick(r, "src", "SRC", "test") + "/util.go"
	},
	func(r *rand.Rand, x string) string {
		return pick(r, "", "services/"+x+"/", "tools/") + pick(r, "README.md", "Readme.txt", "CHANGELOG.md", "go.mod")
	},
	func(r *rand.Rand, x string) string {
		return "services/" + x + "/testdata/" + pick(r, "in.json", "notes.md")
	},
}

func pick(r *rand.Rand, options ...string) string { return options[r.IntN(len(options))] }

// Generate makes a workload. Rule i watches component names[i]; paths
// mention components with and without rules, so that a few percent of the
// rules match.
func Generate(c Config) Workload {
	r := rand.New(rand.NewPCG(c.Seed, uint64(c.Rules)<<32|uint64(c.Paths))) //nolint:gosec // a workload must be the same for the same seed
	shapes := c.Shapes
	if shapes == nil {
		shapes = Shapes
	}
	per := max(c.PerRule, 1)
	all := names(r, 4*c.Rules+10)
	w := Workload{Rules: make([][]string, c.Rules)}
	for i := range w.Rules {
		x := regexp.QuoteMeta(all[i])
		n := 1 + r.IntN(per)
		for k := range n {
			s := shapes[(i+k)%len(shapes)]
			if k > 0 {
				s = shapes[r.IntN(len(shapes))]
			}
			w.Rules[i] = append(w.Rules[i], write(s, x, c.Glob))
		}
		if c.BroadEvery > 0 && i%c.BroadEvery == c.BroadEvery-1 {
			w.Rules[i] = append(w.Rules[i], write(Broad[(i/c.BroadEvery)%len(Broad)], x, c.Glob))
		}
		if c.Glob && c.Excludes {
			w.Rules[i] = append(w.Rules[i], "!**/*.md", "!**/testdata/**")
		}
	}
	// Paths: a push touches a few components of those with rules, and
	// many without.
	touched := make([]string, 0, 64)
	for range max(c.Rules/20, 8) {
		touched = append(touched, all[r.IntN(c.Rules)])
	}
	for range c.Paths {
		var x string
		if r.IntN(4) == 0 {
			x = touched[r.IntN(len(touched))]
		} else {
			x = all[c.Rules+r.IntN(len(all)-c.Rules)]
		}
		w.Paths = append(w.Paths, pathTemplates[r.IntN(len(pathTemplates))](r, x))
	}
	kind := "seed"
	if c.Glob {
		kind = "glob"
		if c.Excludes {
			kind += "-excl"
		}
	}
	w.Name = fmt.Sprintf("%s-r%d-p%d", kind, c.Rules, c.Paths)
	return w
}

func write(s Shape, x string, glob bool) string {
	if glob {
		return s.Glob(strings.ReplaceAll(x, `\`, ""))
	}
	return s.Seed(x)
}

// NaiveSeed is the predecessor's evaluation: every expression of every rule
// against every path, until the rule matches. It returns the numbers of the
// rules that match.
func NaiveSeed(set [][]string, paths []string) []int {
	var out []int
	for i, exprs := range set {
	rule:
		for _, e := range exprs {
			re := regexp.MustCompile(`^(?:` + e + `)`)
			for _, p := range paths {
				if re.MatchString(p) {
					out = append(out, i)
					break rule
				}
			}
		}
	}
	return out
}

// Names returns the rules' numbers as sorted strings, the way a result's
// pipelines are listed when rule i starts pipeline "p<i>".
func Names(matched []int) []string {
	out := make([]string, len(matched))
	for i, r := range matched {
		out[i] = fmt.Sprintf("p%d", r)
	}
	slices.Sort(out)
	return out
}

// NaiveGlob decides v2 rules by the filter semantics, path by path: the
// last of a rule's patterns that matches a path decides it, and a rule
// matches when one of its paths is included.
func NaiveGlob(set [][]string, paths []string) []int {
	var out []int
	for i, list := range set {
		pats := make([]*rules.Pattern, len(list))
		for j, g := range list {
			p, err := rules.CompileGlob(strings.TrimPrefix(g, "!"))
			if err != nil {
				panic(err)
			}
			pats[j] = p
		}
	paths:
		for _, path := range paths {
			for j := len(pats) - 1; j >= 0; j-- {
				if pats[j].Match(path) {
					if !strings.HasPrefix(list[j], "!") {
						out = append(out, i)
						break paths
					}
					break
				}
			}
		}
	}
	return out
}
