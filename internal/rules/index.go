package rules

import (
	"bytes"
	"slices"
	"sort"
	"sync"
)

// Index matches many rules, each a list of patterns, against the changed
// paths of a push. Build it once per rule set and reuse it for every push:
// it is immutable and safe for concurrent use.
//
// Each pattern is filed under literals that every path it matches holds,
// case-folded (fold.go): the literals it must start with, in a radix tree,
// or those it must contain, in an Aho-Corasick automaton. A path meets
// only the patterns whose literal it has, and each is then confirmed on
// the path itself (Pattern.Match). A pattern with no literal at all is
// tried on every path.
type Index struct {
	rules    [][]*Pattern // each rule's including patterns
	terms    [][]term     // each rule's filter, for rules with excludes
	patterns []*Pattern   // distinct by Source
	owners   [][]int32    // pattern id -> rules that include it
	tree     node         // folded literal prefixes
	substr   *substrings
	scan     []int32

	pool sync.Pool // *matcher, reused across calls to Match
}

// Hit says that rule Rule matched: its pattern number Pattern (an index into
// the rule's list) matched Path.
type Hit struct {
	Rule    int
	Pattern int
	Path    string
}

// maxShared is how many patterns that need confirming may share a literal
// before the index looks for a literal of theirs that fewer share: every
// path that holds a literal is confirmed against all of its patterns.
const maxShared = 8

// option is one way to find a pattern's paths: a set of folded literals,
// one of which every path it matches starts with (anchored) or contains.
type option struct {
	lits     []string
	anchored bool
}

// options lists p's options, its literal prefixes first.
func (p *Pattern) options() []option {
	var out []option
	if !isTrivial(p.starts) {
		out = append(out, option{p.starts, true})
	}
	for _, c := range append([][]string{p.contains}, p.others...) {
		if !isTrivial(c) {
			out = append(out, option{lits: c})
		}
	}
	return out
}

// choose picks the most selective of p's options; among those that more
// than maxShared patterns offer a literal of, the least shared. It
// reports false when p has no option: it is tried on every path.
func (p *Pattern) choose(shared map[string]int) (option, bool) {
	opts := p.options()
	if len(opts) == 0 {
		return option{}, false
	}
	cost := func(o option) int {
		if p.exact {
			return 0 // confirmed without the regular expression
		}
		n := 0
		for _, l := range o.lits {
			if o.anchored {
				l = "^" + l
			}
			n = max(n, shared[l])
		}
		return max(n, maxShared)
	}
	best := opts[0]
	for _, o := range opts[1:] {
		if c, b := cost(o), cost(best); c < b || (c == b && score(o.lits) > score(best.lits)) {
			best = o
		}
	}
	return best, true
}

// Term is one pattern of a filter (GitHub's paths filters): the last of a
// rule's terms that matches a path decides whether the rule takes it, and
// a path that an exclude term decides is not taken.
type Term struct {
	Pattern *Pattern
	Exclude bool
}

type term struct {
	id      int32
	exclude bool
}

// NewIndex builds an index over rules; rules[i] is the pattern list of rule
// i, which matches a path when one of its patterns does. A nil or empty
// list is a rule that never matches.
func NewIndex(rules [][]*Pattern) *Index {
	filters := make([][]Term, len(rules))
	for i, list := range rules {
		for _, p := range list {
			filters[i] = append(filters[i], Term{Pattern: p})
		}
	}
	return NewFilterIndex(filters)
}

// NewFilterIndex builds an index over rules given as filters: an exclude
// is decided inside the index, where each pattern runs at most once per
// path however many rules list it, and a rule that a path was excluded
// from stays open for later paths.
func NewFilterIndex(filters [][]Term) *Index {
	ix := &Index{rules: make([][]*Pattern, len(filters))}
	ids := make(map[string]int32)
	for r, list := range filters {
		r32 := int32(r) //nolint:gosec // rule sets are far below 2^31 rules
		var terms []term
		excludes := false
		for _, t := range list {
			p := t.Pattern
			id, ok := ids[p.Source]
			if !ok {
				id = int32(len(ix.patterns)) //nolint:gosec // as many patterns as rules × expressions, far below 2^31
				ids[p.Source] = id
				ix.patterns = append(ix.patterns, p)
				ix.owners = append(ix.owners, nil)
			}
			terms = append(terms, term{id, t.Exclude})
			excludes = excludes || t.Exclude
			if t.Exclude {
				continue
			}
			ix.rules[r] = append(ix.rules[r], p)
			if o := ix.owners[id]; len(o) == 0 || o[len(o)-1] != r32 {
				ix.owners[id] = append(o, r32)
			}
		}
		if excludes {
			if ix.terms == nil {
				ix.terms = make([][]term, len(filters))
			}
			ix.terms[r] = terms
		}
	}
	// How many patterns that need confirming offer each literal ("^" marks
	// a prefix).
	shared := make(map[string]int)
	for _, p := range ix.patterns {
		if p.exact {
			continue
		}
		offered := make(map[string]bool)
		for _, o := range p.options() {
			for _, l := range o.lits {
				k := l
				if o.anchored {
					k = "^" + l
				}
				if !offered[k] {
					offered[k] = true
					shared[k]++
				}
			}
		}
	}
	var lits []literal
	for id, p := range ix.patterns {
		id32 := int32(id) //nolint:gosec // as above
		o, ok := p.choose(shared)
		switch {
		case !ok:
			ix.scan = append(ix.scan, id32)
		case o.anchored:
			for _, l := range o.lits {
				ix.tree.insert(l, id32)
			}
		default:
			for _, l := range o.lits {
				lits = append(lits, literal{l, id32})
			}
		}
	}
	if len(lits) > 0 {
		ix.substr = newSubstrings(lits)
	}
	return ix
}

// Rules returns how many rules the index holds.
func (ix *Index) Rules() int { return len(ix.rules) }

// Match returns one Hit for every rule that matches any of paths, ordered by
// rule number. The reported path is the first in paths that the rule
// matches; the reported pattern is the rule's first including pattern that
// matches it. Each pattern is tested at most once per path, and not at all
// once every rule that includes it has matched.
func (ix *Index) Match(paths []string) []Hit {
	if ix == nil {
		return nil // no rules
	}
	m, _ := ix.pool.Get().(*matcher)
	if m == nil {
		m = &matcher{
			ix:      ix,
			ruleHit: make([]int32, len(ix.rules)),
			patDone: make([]bool, len(ix.patterns)),
			seen:    make([]int32, len(ix.patterns)),
			ran:     make([]int32, len(ix.patterns)),
			result:  make([]bool, len(ix.patterns)),
			folded:  make([]byte, 0, 256),
		}
		m.collect = m.collectPattern
	}
	defer func() {
		m.path = "" // do not keep the push's paths alive in the pool
		ix.pool.Put(m)
	}()
	m.remaining = len(ix.rules)
	for i := range m.ruleHit {
		m.ruleHit[i] = -1
	}
	for i := range m.seen {
		m.seen[i], m.ran[i] = -1, -1
	}
	clear(m.patDone)
	collect := m.collect
	for pi, path := range paths {
		if m.remaining == 0 {
			break
		}
		m.path, m.pathIndex = path, int32(pi) //nolint:gosec // a 25 MiB payload holds far fewer than 2^31 paths
		// First every pattern whose literal the path holds (a pattern not
		// among them cannot match it), then the rules that include them.
		m.candidates = m.candidates[:0]
		m.folded = foldPath(path, m.folded)
		ix.tree.walk(m.folded, collect)
		if ix.substr != nil {
			ix.substr.find(m.folded, collect)
		}
		for _, id := range ix.scan {
			collect(id)
		}
		for _, id := range m.candidates {
			m.tryPattern(id)
		}
	}
	var hits []Hit
	for r, pi := range m.ruleHit {
		if pi < 0 {
			continue
		}
		path := paths[pi]
		for k, p := range ix.rules[r] {
			if p.Match(path) { // the first of the rule's patterns that matches
				hits = append(hits, Hit{Rule: r, Pattern: k, Path: path})
				break
			}
		}
	}
	return hits
}

// matcher is the state of one Match call.
type matcher struct {
	ix         *Index
	ruleHit    []int32 // rule -> index of the first path it matched, or -1
	patDone    []bool  // every rule that includes the pattern has matched
	seen       []int32 // pattern -> last path index it was a candidate for
	ran        []int32 // pattern -> last path index its expression ran on
	result     []bool  // pattern -> whether it matched that path
	candidates []int32 // this path's candidates that some open rule includes
	remaining  int     // rules not matched yet
	path       string
	folded     []byte // path, case-folded
	pathIndex  int32
	collect    func(int32) // collectPattern, bound once
}

func (m *matcher) collectPattern(id int32) {
	if m.seen[id] == m.pathIndex {
		return
	}
	m.seen[id] = m.pathIndex
	if !m.patDone[id] && len(m.ix.owners[id]) > 0 {
		m.candidates = append(m.candidates, id)
	}
}

// matches reports whether pattern id matches the path, running it at most
// once per path.
func (m *matcher) matches(id int32) bool {
	if m.seen[id] != m.pathIndex {
		return false // not a candidate: the path lacks its literals
	}
	if m.ran[id] != m.pathIndex {
		m.ran[id] = m.pathIndex
		m.result[id] = m.ix.patterns[id].Match(m.path)
	}
	return m.result[id]
}

func (m *matcher) tryPattern(id int32) {
	owners := m.ix.owners[id]
	open := false
	for _, r := range owners {
		if m.ruleHit[r] < 0 {
			open = true
			break
		}
	}
	if !open {
		m.patDone[id] = true
		return
	}
	if !m.matches(id) {
		return
	}
	done := true
	for _, r := range owners {
		if m.ruleHit[r] >= 0 {
			continue
		}
		if m.ix.terms != nil && m.ix.terms[r] != nil && !m.takes(r) {
			done = false // excluded from this path; a later path may do
			continue
		}
		m.ruleHit[r] = m.pathIndex
		m.remaining--
	}
	m.patDone[id] = done
}

// takes reports whether rule r's filter takes the path: its last term
// that matches decides.
func (m *matcher) takes(r int32) bool {
	terms := m.ix.terms[r]
	for i := len(terms) - 1; i >= 0; i-- {
		if m.matches(terms[i].id) {
			return !terms[i].exclude
		}
	}
	return false
}

// node is a radix tree node: the path from the root spells a literal
// prefix, and ids are the patterns that have that prefix.
type node struct {
	label    string
	firsts   []byte  // firsts[i] == children[i].label[0]: searched without touching the children
	children []*node // sorted by first byte
	ids      []int32
}

func (n *node) insert(key string, id int32) {
	for {
		if key == "" {
			n.ids = append(n.ids, id)
			return
		}
		i := sort.Search(len(n.firsts), func(i int) bool { return n.firsts[i] >= key[0] })
		if i == len(n.children) || n.firsts[i] != key[0] {
			child := &node{label: key, ids: []int32{id}}
			n.children = slices.Insert(n.children, i, child)
			n.firsts = slices.Insert(n.firsts, i, key[0])
			return
		}
		child := n.children[i]
		common := commonPrefixLen(key, child.label)
		if common < len(child.label) {
			// Split the edge: child keeps the tail of its label under a new
			// node that holds the common part.
			mid := &node{label: child.label[:common], children: []*node{child}, firsts: []byte{child.label[common]}}
			child.label = child.label[common:]
			n.children[i] = mid
			child = mid
		}
		n = child
		key = key[common:]
	}
}

// walk calls visit for the ids of every node whose prefix path starts with.
func (n *node) walk(path []byte, visit func(int32)) {
	for {
		for _, id := range n.ids {
			visit(id)
		}
		if len(path) == 0 {
			return
		}
		i := bytes.IndexByte(n.firsts, path[0])
		if i < 0 || len(path) < len(n.children[i].label) || string(path[:len(n.children[i].label)]) != n.children[i].label {
			return
		}
		n = n.children[i]
		path = path[len(n.label):]
	}
}

func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
