package rules

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxPrefixes bounds how many alternative literal prefixes one pattern may
// expand to ("(api|web)/" is two). Past it the pattern keeps a shorter prefix
// and its regular expression confirms each candidate path.
const maxPrefixes = 64

// maxClassRunes bounds the size of a character class that is expanded into
// literal prefixes ("[ab]c/" becomes "ac/" and "bc/").
const maxClassRunes = 16

// Pattern is one compiled expression. It is immutable and safe for concurrent use.
type Pattern struct {
	// Source is the expression as the rule wrote it.
	Source string

	re *regexp.Regexp // ^(?:Source) in RE2 syntax

	// Every path the pattern matches starts with one of prefixes. When exact
	// is true the converse holds too, so a prefix test decides without
	// running the regular expression.
	prefixes []string
	exact    bool

	// Every path the pattern matches, case-folded (fold.go), starts with a
	// member of starts and contains a member of contains, and of each of
	// others: how the index finds the paths worth confirming. A set {""}
	// says nothing.
	starts, contains []string
	others           [][]string
}

// Match reports whether the pattern matches at the start of path, as
// Python's re.match does.
func (p *Pattern) Match(path string) bool {
	if p.exact {
		for _, pre := range p.prefixes {
			if strings.HasPrefix(path, pre) {
				return true
			}
		}
		return false
	}
	return p.re.MatchString(path)
}

// SplitSeed splits a seed ChangeMatchExpressions value into its expressions:
// split on ",", each part trimmed of white space the way Python's str.strip
// trims it. Empty parts are kept: the predecessor compiled them, and an empty
// expression matches every path.
func SplitSeed(expressions string) []string {
	parts := strings.Split(expressions, ",")
	for i, p := range parts {
		parts[i] = strings.TrimFunc(p, pythonSpace)
	}
	return parts
}

// pythonSpace is str.isspace for one rune: Unicode white space plus the
// ASCII information separators U+001C..U+001F, which Python also strips.
func pythonSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// CompileSeed compiles one seed expression with Python re.match semantics.
// The error explains what RE2 does not support, so a person can fix the rule.
func CompileSeed(src string) (*Pattern, error) {
	translated := translatePython(src)
	tree, err := syntax.Parse(translated, syntax.Perl)
	if err != nil {
		return nil, explainSyntaxError(src, err)
	}
	re, err := regexp.Compile(`^(?:` + translated + `)`)
	if err != nil {
		// Unreachable for a source that parsed alone; kept so a surprise is an
		// error and not a panic.
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	tree = tree.Simplify()
	info := analyze(stripLeadingBeginText(tree), true)
	return newPattern(src, re, tree, info), nil
}

func newPattern(src string, re *regexp.Regexp, tree *syntax.Regexp, info literals) *Pattern {
	f := foldFacts(tree)
	return &Pattern{Source: src, re: re, prefixes: info.set, exact: info.exact, starts: f.prefix, contains: f.inner, others: f.others}
}

// translatePython rewrites the few Python spellings that RE2 reads
// differently: `\Z` (end of text) becomes `\z`, and `{,n}` (Python: zero to
// n repetitions; RE2: the literal text) becomes `{0,n}`. Everything else is
// passed through for the RE2 parser to accept or reject.
func translatePython(src string) string {
	if !strings.Contains(src, `\Z`) && !strings.Contains(src, "{,") {
		return src
	}
	var b strings.Builder
	inClass := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src):
			if src[i+1] == 'Z' && !inClass {
				b.WriteString(`\z`)
			} else {
				b.WriteByte(c)
				b.WriteByte(src[i+1])
			}
			i++
			continue
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal member of the class.
			if i+1 < len(src) && src[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(src) && src[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
			continue
		case c == ']' && inClass:
			inClass = false
		case c == '{' && !inClass && i+1 < len(src) && src[i+1] == ',' && isRepeatTail(src[i+1:]):
			b.WriteString("{0")
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isRepeatTail reports whether s starts with ",n}" for digits n.
func isRepeatTail(s string) bool {
	if len(s) < 3 || s[0] != ',' {
		return false
	}
	j := 1
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	return j > 1 && j < len(s) && s[j] == '}'
}

func explainSyntaxError(src string, err error) error {
	var se *syntax.Error
	if errors.As(err, &se) {
		switch {
		case strings.Contains(src, "(?=") || strings.Contains(src, "(?!") || strings.Contains(src, "(?<=") || strings.Contains(src, "(?<!"):
			return fmt.Errorf("expression %q: look-around assertions (?=…) (?!…) (?<=…) (?<!…) are not supported by RE2; write an expression for the paths to include instead (only a v2 rule's paths globs can exclude, with \"!\"): %w", src, err)
		case se.Code == syntax.ErrInvalidEscape && hasBackReference(src):
			return fmt.Errorf("expression %q: back-references (\\1, \\g<name>) are not supported by RE2: %w", src, err)
		}
	}
	return fmt.Errorf("expression %q: %w", src, err)
}

func hasBackReference(src string) bool {
	for i := 0; i+1 < len(src); i++ {
		if src[i] == '\\' {
			if n := src[i+1]; (n >= '1' && n <= '9') || n == 'g' {
				return true
			}
			i++
		}
	}
	return false
}

// stripLeadingBeginText drops a leading ^ or \A: matching is anchored at the
// start already.
func stripLeadingBeginText(re *syntax.Regexp) *syntax.Regexp {
	if re.Op == syntax.OpConcat && len(re.Sub) > 0 && re.Sub[0].Op == syntax.OpBeginText {
		return &syntax.Regexp{Op: syntax.OpConcat, Flags: re.Flags, Sub: re.Sub[1:]}
	}
	if re.Op == syntax.OpBeginText {
		return &syntax.Regexp{Op: syntax.OpEmptyMatch}
	}
	return re
}

// literals describes what a regular expression's matches start with.
type literals struct {
	set   []string // every string of the language starts with one of these
	exact bool     // each member of set is itself in the language
	full  bool     // the language is exactly set
}

var anything = literals{set: []string{""}}

// analyze computes the literal prefixes of re. It must be sound: a path that
// re matches always starts with a member of set. atStart tells whether re is
// at the start of the text, where ^ matches the empty string.
func analyze(re *syntax.Regexp, atStart bool) literals {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return literals{set: []string{""}, exact: true, full: true}
	case syntax.OpBeginText:
		if atStart {
			return literals{set: []string{""}, exact: true, full: true}
		}
		return anything
	case syntax.OpLiteral:
		if slices.Contains(re.Rune, utf8.RuneError) {
			// RE2 reads each byte that is not UTF-8 as U+FFFD: a path
			// need not start with its encoding to match.
			return anything
		}
		if re.Flags&syntax.FoldCase == 0 {
			return literals{set: []string{string(re.Rune)}, exact: true, full: true}
		}
		subs := make([]*syntax.Regexp, len(re.Rune))
		for i, r := range re.Rune {
			subs[i] = &syntax.Regexp{Op: syntax.OpCharClass, Rune: foldOrbit(r)}
		}
		return analyzeConcat(subs, atStart)
	case syntax.OpCharClass:
		return analyzeClass(re.Rune)
	case syntax.OpCapture:
		return analyze(re.Sub[0], atStart)
	case syntax.OpConcat:
		return analyzeConcat(re.Sub, atStart)
	case syntax.OpAlternate:
		out := literals{exact: true, full: true}
		for _, sub := range re.Sub {
			l := analyze(sub, atStart)
			out.set = append(out.set, l.set...)
			out.exact = out.exact && l.exact
			out.full = out.full && l.full
			if len(out.set) > maxPrefixes {
				return anything
			}
		}
		return out
	case syntax.OpStar, syntax.OpQuest:
		// The empty string is in the language, so "" is an exact prefix.
		return literals{set: []string{""}, exact: true}
	case syntax.OpPlus:
		l := analyze(re.Sub[0], atStart)
		return literals{set: l.set, exact: l.exact}
	case syntax.OpRepeat:
		if re.Min == 0 {
			return literals{set: []string{""}, exact: true}
		}
		l := analyze(re.Sub[0], atStart)
		// With Min > 1 one copy of the sub-expression is not yet a match.
		return literals{set: l.set, exact: l.exact && re.Min == 1}
	}
	return anything
}

func analyzeConcat(subs []*syntax.Regexp, atStart bool) literals {
	acc := []string{""}
	for i, sub := range subs {
		start := atStart && len(acc) == 1 && acc[0] == ""
		l := analyze(sub, start)
		prod := product(acc, l.set)
		if prod == nil {
			// Too many alternatives: keep what is known so far.
			return literals{set: acc, exact: allNullable(subs[i:])}
		}
		if !l.full {
			return literals{set: prod, exact: l.exact && allNullable(subs[i+1:])}
		}
		acc = prod
	}
	return literals{set: acc, exact: true, full: true}
}

func analyzeClass(ranges []rune) literals {
	n := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] <= utf8.RuneError && utf8.RuneError <= ranges[i+1] {
			return anything // as for literals
		}
		n += int(ranges[i+1]-ranges[i]) + 1
		if n > maxClassRunes {
			return anything
		}
	}
	set := make([]string, 0, n)
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			set = append(set, string(r))
		}
	}
	return literals{set: set, exact: true, full: true}
}

// foldOrbit returns r and its simple case foldings as a rune-range list.
func foldOrbit(r rune) []rune {
	out := []rune{r, r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		out = append(out, f, f)
	}
	return out
}

// product concatenates every member of a with every member of b, or returns
// nil when the result would exceed maxPrefixes.
func product(a, b []string) []string {
	if len(a)*len(b) > maxPrefixes {
		return nil
	}
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out
}

func allNullable(subs []*syntax.Regexp) bool {
	for _, s := range subs {
		if !nullable(s) {
			return false
		}
	}
	return true
}

// nullable reports whether re matches the empty string unconditionally
// (empty-width assertions such as $ or \b are conditions, so not nullable).
func nullable(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpRepeat:
		return re.Min == 0 || nullable(re.Sub[0])
	case syntax.OpPlus, syntax.OpCapture:
		return nullable(re.Sub[0])
	case syntax.OpConcat:
		return allNullable(re.Sub)
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if nullable(s) {
				return true
			}
		}
	}
	return false
}
