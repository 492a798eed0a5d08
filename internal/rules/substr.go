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
// strings.
func newSubstrings(lits []literal) *substrings {
	// The trie, with each state's edges kept sorted.
	children := [][]edge{nil}
	own := [][]int32{nil}
	depth := []int{0}
	for _, l := range lits {
		s := int32(0)
		for i := 0; i < len(l.s); i++ {
			c := l.s[i]
			k, found := slices.BinarySearchFunc(children[s], c, func(e edge, c byte) int { return cmp.Compare(e.b, c) })
			if found {
				s = children[s][k].next
				continue
			}
			next := int32(len(children)) //nolint:gosec // states <= total literal bytes, far below 2^29
			children = append(children, nil)
			own = append(own, nil)
			depth = append(depth, depth[s]+1)
			children[s] = slices.Insert(children[s], k, edge{c, next})
			s = next
		}
		if o := own[s]; len(o) == 0 || o[len(o)-1] != l.id {
			own[s] = append(o, l.id)
		}
	}
	// Dense rows are indexed by byte class (bytes that occur in no literal
	// share class 0), so that a row is a few dozen entries, not 256.
	a := &substrings{stride: 1}
	for _, l := range lits {
		for i := 0; i < len(l.s); i++ {
			if a.class[l.s[i]] == 0 {
				a.class[l.s[i]] = uint16(a.stride) //nolint:gosec // at most 256 byte values: stride <= 257
				a.stride++
			}
		}
	}
	n := len(children)
	*a = substrings{class: a.class, stride: a.stride, first: make([]int32, n+1), dense: make([]int32, n), fail: make([]int32, n), dict: make([]int32, n), out: make([]int32, n+1)}
	for s := range n {
		a.first[s] = int32(len(a.edges)) //nolint:gosec // as above
		a.edges = append(a.edges, children[s]...)
		a.out[s] = int32(len(a.ids)) //nolint:gosec // as above
		a.ids = append(a.ids, own[s]...)
		a.dense[s] = -1
		if s > 0 && (len(children[s]) >= denseEdges || depth[s] <= fullDepth) {
			row := len(a.rows)
			for range a.stride {
				a.rows = append(a.rows, -1)
			}
			for _, e := range children[s] {
				a.rows[row+int(a.class[e.b])] = e.next
			}
			a.dense[s] = int32(row / a.stride) //nolint:gosec // as above
		}
	}
	a.first[n] = int32(len(a.edges)) //nolint:gosec // as above
	a.out[n] = int32(len(a.ids))     //nolint:gosec // as above
	for _, e := range children[0] {
		a.root[e.b] = e.next
	}
	// Failure links, breadth first, on plain state numbers (no flags yet).
	queue := make([]int32, 0, n)
	for _, e := range children[0] {
		queue = append(queue, e.next)
	}
	a.dict[0] = -1
	var order []int32 // breadth first
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		order = append(order, s)
		if len(own[s]) > 0 {
			a.dict[s] = s
		} else {
			a.dict[s] = a.dict[a.fail[s]]
		}
		for _, e := range children[s] {
			f := a.fail[s]
			for {
				if next := a.child(f, e.b); next >= 0 {
					a.fail[e.next] = next
					break
				}
				if f == 0 {
					a.fail[e.next] = 0
					break
				}
				f = a.fail[f]
			}
			queue = append(queue, e.next)
		}
	}
	// Complete the rows of shallow states, in breadth-first order so that
	// a failure state's row is complete first.
	var sample [257]byte // class -> a byte of it
	for c := 255; c >= 0; c-- {
		sample[a.class[c]] = byte(c)
	}
	for _, s := range order {
		if depth[s] > fullDepth || a.dense[s] < 0 {
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
	// Now flag every stored state number.
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
	return a
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
