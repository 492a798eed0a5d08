package rules

import (
	"cmp"
	"slices"
)

// substrings finds, in one pass over a folded path, every pattern one of
// whose literals occurs in it: an Aho-Corasick automaton. Patterns with no
// usable literal prefix ("\w+/api/config/.*", ".*/main\.tf") are found
// this way instead of being tried on every path, so their cost does not
// grow with their number.
//
// States are stored sparsely (a sorted edge list and a failure link each):
// a full transition table would take states × alphabet entries, tens of
// megabytes for ten thousand rules. The root and states with many edges
// get a dense row, so the states a scan spends most of its time in are
// one load per byte.
type substrings struct {
	root   [256]int32 // the root's transitions
	first  []int32    // state -> its edges are edges[first[s]:first[s+1]]
	edges  []edge
	dense  []int32 // state -> its row in rows, for states with denseFlag
	rows   []int32 // row*stride + class[c] -> next state, or -1
	class  [256]uint16
	stride int
	fail   []int32 // state -> longest proper suffix state
	dict   []int32 // state -> nearest suffix state (itself included) with outputs, or -1
	out    []int32 // state -> its outputs are ids[out[s]:out[s+1]]
	ids    []int32
}

// Transitions and failure links hold a state number with two flags, so
// that a scan reads nothing more for a state that reports nothing.
const (
	outFlag   = 1 << 30 // the state or one of its suffixes has outputs
	denseFlag = 1 << 29 // the state has a row in rows
	stateMask = denseFlag - 1
)

type edge struct {
	b    byte
	next int32
}

// literal is one literal of a pattern, folded.
type literal struct {
	s  string
	id int32
}

// denseEdges is how many edges a state needs for a dense row; states at
// most fullDepth bytes deep get a complete row (failure links followed in
// advance), so that leaving a deep state costs one lookup more.
const (
	denseEdges = 8
	fullDepth  = 2
)

// newSubstrings builds the automaton for lits, which must be non-empty
// strings: the trie, its byte classes, its layout, the failure links, the
// completed shallow rows, then the flags on every stored state number.
func newSubstrings(lits []literal) *substrings {
	t := newTrie(lits)
	a := &substrings{}
	a.classify(lits)
	a.layout(t)
	order := a.link(t)
	a.complete(t, order)
	a.flagStates()
	return a
}

// trie is the automaton's trie while it is built: each state's edges kept
// sorted, the ids of the literals ending there, and its depth.
type trie struct {
	children [][]edge
	own      [][]int32
	depth    []int
}

func newTrie(lits []literal) *trie {
	t := &trie{children: [][]edge{nil}, own: [][]int32{nil}, depth: []int{0}}
	for _, l := range lits {
		s := int32(0)
		for i := 0; i < len(l.s); i++ {
			c := l.s[i]
			k, found := slices.BinarySearchFunc(t.children[s], c, func(e edge, c byte) int { return cmp.Compare(e.b, c) })
			if found {
				s = t.children[s][k].next
				continue
			}
			next := int32(len(t.children)) //nolint:gosec // states <= total literal bytes, far below 2^29
			t.children = append(t.children, nil)
			t.own = append(t.own, nil)
			t.depth = append(t.depth, t.depth[s]+1)
			t.children[s] = slices.Insert(t.children[s], k, edge{c, next})
			s = next
		}
		if o := t.own[s]; len(o) == 0 || o[len(o)-1] != l.id {
			t.own[s] = append(o, l.id)
		}
	}
	return t
}

// classify numbers the bytes of the literals: dense rows are indexed by
// byte class (bytes that occur in no literal share class 0), so that a
// row is a few dozen entries, not 256.
func (a *substrings) classify(lits []literal) {
	a.stride = 1
	for _, l := range lits {
		for i := 0; i < len(l.s); i++ {
			if a.class[l.s[i]] == 0 {
				a.class[l.s[i]] = uint16(a.stride) //nolint:gosec // at most 256 byte values: stride <= 257
				a.stride++
			}
		}
	}
}

// layout stores t's edges and outputs flat, and gives the root and the
// states with many edges or near the root a dense row.
func (a *substrings) layout(t *trie) {
	n := len(t.children)
	a.first, a.dense, a.fail, a.dict, a.out = make([]int32, n+1), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n+1)
	for s := range n {
		a.first[s] = int32(len(a.edges)) //nolint:gosec // as in newTrie
		a.edges = append(a.edges, t.children[s]...)
		a.out[s] = int32(len(a.ids)) //nolint:gosec // as in newTrie
		a.ids = append(a.ids, t.own[s]...)
		a.dense[s] = -1
		if s > 0 && (len(t.children[s]) >= denseEdges || t.depth[s] <= fullDepth) {
			row := len(a.rows)
			for range a.stride {
				a.rows = append(a.rows, -1)
			}
			for _, e := range t.children[s] {
				a.rows[row+int(a.class[e.b])] = e.next
			}
			a.dense[s] = int32(row / a.stride) //nolint:gosec // as in newTrie
		}
	}
	a.first[n] = int32(len(a.edges)) //nolint:gosec // as in newTrie
	a.out[n] = int32(len(a.ids))     //nolint:gosec // as in newTrie
	for _, e := range t.children[0] {
		a.root[e.b] = e.next
	}
}

// link sets the failure and dictionary links, breadth first, on plain
// state numbers (no flags yet), and returns the states in that order.
func (a *substrings) link(t *trie) []int32 {
	queue := make([]int32, 0, len(t.children))
	for _, e := range t.children[0] {
		queue = append(queue, e.next)
	}
	a.dict[0] = -1
	var order []int32
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		order = append(order, s)
		if len(t.own[s]) > 0 {
			a.dict[s] = s
		} else {
			a.dict[s] = a.dict[a.fail[s]]
		}
		for _, e := range t.children[s] {
			a.fail[e.next] = a.failure(a.fail[s], e.b)
			queue = append(queue, e.next)
		}
	}
	return order
}

// failure is the failure link of a state reached on c from a state whose
// failure link is f: the longest suffix state that has an edge on c.
func (a *substrings) failure(f int32, c byte) int32 {
	for {
		if next := a.child(f, c); next >= 0 {
			return next
		}
		if f == 0 {
			return 0
		}
		f = a.fail[f]
	}
}

// complete fills the rows of shallow states with the transitions their
// failure links lead to, in breadth-first order so that a failure state's
// row is complete first.
func (a *substrings) complete(t *trie, order []int32) {
	var sample [257]byte // class -> a byte of it
	for c := 255; c >= 0; c-- {
		sample[a.class[c]] = byte(c)
	}
	for _, s := range order {
		if t.depth[s] > fullDepth || a.dense[s] < 0 {
			continue
		}
		row := int(a.dense[s]) * a.stride
		for k := 1; k < a.stride; k++ {
			if a.rows[row+k] < 0 {
				a.rows[row+k] = a.next(a.fail[s], sample[k])
			}
		}
		if a.rows[row] < 0 {
			a.rows[row] = 0 // a byte in no literal leads back to the root
		}
	}
}

// flagStates flags every stored state number with whether it reports
// (outFlag) and has a dense row (denseFlag).
func (a *substrings) flagStates() {
	flag := func(s int32) int32 {
		if s == 0 {
			return 0
		}
		v := s
		if a.dict[s] >= 0 {
			v |= outFlag
		}
		if a.dense[s] >= 0 {
			v |= denseFlag
		}
		return v
	}
	for i := range a.root {
		a.root[i] = flag(a.root[i])
	}
	for i := range a.edges {
		a.edges[i].next = flag(a.edges[i].next)
	}
	for i, v := range a.rows {
		if v >= 0 {
			a.rows[i] = flag(v)
		}
	}
	for i := range a.fail {
		a.fail[i] = flag(a.fail[i])
	}
}

// next is the transition from plain state s on byte c, before flags.
func (a *substrings) next(s int32, c byte) int32 {
	for {
		if d := a.dense[s]; d >= 0 && s > 0 {
			if v := a.rows[int(d)*a.stride+int(a.class[c])]; v >= 0 {
				return v
			}
		} else if v := a.child(s, c); v >= 0 {
			return v
		}
		if s == 0 {
			return 0
		}
		s = a.fail[s]
	}
}

// child is the trie edge of plain state s on byte c, or -1.
func (a *substrings) child(s int32, c byte) int32 {
	if s == 0 {
		if next := a.root[c]; next > 0 {
			return next
		}
		return -1
	}
	for _, e := range a.edges[a.first[s]:a.first[s+1]] {
		if e.b == c {
			return e.next
		}
	}
	return -1
}

// step is the transition from flagged state s on byte c.
func (a *substrings) step(s int32, c byte) int32 {
	for s != 0 {
		st := s & stateMask
		if s&denseFlag != 0 {
			if next := a.rows[int(a.dense[st])*a.stride+int(a.class[c])]; next >= 0 {
				return next
			}
		} else {
			for _, e := range a.edges[a.first[st]:a.first[st+1]] {
				if e.b == c {
					return e.next
				}
			}
		}
		s = a.fail[st]
	}
	return a.root[c]
}

// find calls found for every pattern one of whose literals occurs in
// path, once per occurrence.
func (a *substrings) find(path []byte, found func(int32)) {
	s := int32(0)
	for _, c := range path {
		s = a.step(s, c)
		if s&outFlag == 0 {
			continue
		}
		for o := a.dict[s&stateMask]; o > 0; o = a.dict[a.fail[o]&stateMask] {
			for _, id := range a.ids[a.out[o]:a.out[o+1]] {
				found(id)
			}
		}
	}
}
