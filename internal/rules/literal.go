package rules

import (
	"regexp/syntax"
	"slices"
)

// maxLiterals bounds each set of literals the analysis keeps; a larger
// set is shortened (its members cut and merged) until it fits.
const maxLiterals = 64

// facts are what is known of the folded matches of an expression (see
// fold.go). Each set is a necessary condition: a set holding "" says
// nothing.
type facts struct {
	// exact, when not nil, is every folded match; "" may be one.
	exact []string
	// Every folded match starts with a member of prefix, ends with a
	// member of suffix, and contains a member of inner.
	prefix, suffix, inner []string
	// others are more conditions like inner, less selective: the index
	// may prefer one that fewer patterns share.
	others [][]string
}

// maxOthers bounds facts.others.
const maxOthers = 8

var trivial = []string{""}

var unknown = facts{prefix: trivial, suffix: trivial, inner: trivial}

func exactly(set []string) facts {
	set = dedupe(set)
	c := condition(set)
	return facts{exact: set, prefix: c, suffix: c, inner: c}
}

// condition is set as a necessary condition: nothing is known when the
// empty string is a member.
func condition(set []string) []string {
	if len(set) == 0 || slices.Contains(set, "") {
		return trivial
	}
	return set
}

// foldFacts analyses an expression (simplified, as syntax.Simplify leaves
// it). It must be sound: a match whose folding lacks what the facts say
// is a bug that makes the index miss it.
func foldFacts(re *syntax.Regexp) facts {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return exactly([]string{""})
	case syntax.OpLiteral:
		// Case-sensitive or not, the folding of the match is the folding
		// of the literal.
		return exactly([]string{foldRunes(re.Rune)})
	case syntax.OpCharClass:
		if set := classFolds(re.Rune); set != nil {
			return exactly(set)
		}
	case syntax.OpCapture:
		return foldFacts(re.Sub[0])
	case syntax.OpQuest:
		if sub := foldFacts(re.Sub[0]); sub.exact != nil {
			return exactly(append(slices.Clone(sub.exact), ""))
		}
	case syntax.OpPlus:
		sub := foldFacts(re.Sub[0])
		return facts{prefix: sub.prefix, suffix: sub.suffix, inner: sub.inner, others: sub.others}
	case syntax.OpRepeat:
		if re.Min > 0 {
			sub := foldFacts(re.Sub[0])
			return facts{prefix: sub.prefix, suffix: sub.suffix, inner: sub.inner, others: sub.others}
		}
	case syntax.OpConcat:
		acc := exactly([]string{""})
		for _, sub := range re.Sub {
			acc = concatFacts(acc, foldFacts(sub))
		}
		return acc
	case syntax.OpAlternate:
		var out facts
		exact := true
		for _, sub := range re.Sub {
			f := foldFacts(sub)
			exact = exact && f.exact != nil
			out.exact = append(out.exact, f.exact...)
			out.prefix = append(out.prefix, f.prefix...)
			out.suffix = append(out.suffix, f.suffix...)
			out.inner = append(out.inner, f.inner...)
		}
		if exact && len(dedupe(out.exact)) <= maxLiterals {
			return exactly(out.exact)
		}
		return facts{prefix: shorten(out.prefix, false), suffix: shorten(out.suffix, true), inner: shorten(out.inner, false)}
	}
	return unknown
}

// concatFacts is what is known of l followed by r.
func concatFacts(l, r facts) facts {
	if l.exact != nil && r.exact != nil {
		if p := cross(l.exact, r.exact); len(p) <= maxLiterals {
			return exactly(p)
		}
	}
	var out facts
	if l.exact != nil {
		out.prefix = shorten(cross(l.exact, r.prefix), false)
	} else {
		out.prefix = l.prefix
	}
	if r.exact != nil {
		out.suffix = shorten(cross(l.suffix, r.exact), true)
	} else {
		out.suffix = r.suffix
	}
	candidates := append([][]string{l.inner, r.inner, shorten(cross(l.suffix, r.prefix), false), out.prefix, out.suffix}, l.others...)
	candidates = append(candidates, r.others...)
	out.inner = best(candidates...)
	for _, c := range candidates {
		if !isTrivial(c) && !slices.ContainsFunc(out.others, func(o []string) bool { return slices.Equal(o, c) }) && !slices.Equal(c, out.inner) {
			out.others = append(out.others, c)
		}
	}
	// Keep the most selective.
	slices.SortStableFunc(out.others, func(a, b []string) int { return score(b) - score(a) })
	if len(out.others) > maxOthers {
		out.others = out.others[:maxOthers]
	}
	return out
}

// classFolds is the folded members of a character class, or nil when
// there are too many to be useful.
func classFolds(ranges []rune) []string {
	n := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		n += int(ranges[i+1]-ranges[i]) + 1
		if n > 4*maxClassRunes {
			return nil
		}
	}
	var set []string
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			set = append(set, foldRunes([]rune{r}))
		}
	}
	set = dedupe(set)
	if len(set) == 0 || len(set) > maxClassRunes {
		return nil
	}
	return set
}

// cross concatenates every member of a with every member of b.
func cross(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out
}

func dedupe(set []string) []string {
	set = slices.Clone(set)
	slices.Sort(set)
	return slices.Compact(set)
}

// shorten returns a condition of at most maxLiterals members implied by
// set: its members cut to their first (or, keepEnd, last) n bytes for the
// largest n that merges them enough. Cutting a folded string mid-rune is
// sound: the index compares bytes.
func shorten(set []string, keepEnd bool) []string {
	set = condition(dedupe(set))
	for len(set) > maxLiterals {
		n := 0
		for _, s := range set {
			n = max(n, len(s))
		}
		n--
		for i, s := range set {
			if len(s) > n {
				if keepEnd {
					set[i] = s[len(s)-n:]
				} else {
					set[i] = s[:n]
				}
			}
		}
		set = condition(dedupe(set))
	}
	return set
}

// score is how selective a condition is: the length of its shortest
// member, the one a path most easily contains.
func score(set []string) int {
	n := -1
	for _, s := range set {
		if n < 0 || len(s) < n {
			n = len(s)
		}
	}
	return max(n, 0)
}

// best returns the most selective of the sets, the smaller on a tie.
func best(sets ...[]string) []string {
	out := sets[0]
	for _, s := range sets[1:] {
		if a, b := score(s), score(out); a > b || (a == b && len(s) < len(out)) {
			out = s
		}
	}
	return out
}

func isTrivial(set []string) bool { return len(set) == 1 && set[0] == "" }
