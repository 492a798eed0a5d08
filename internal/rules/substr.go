package rules

import "slices"

// substrings finds, in one pass over a path, every pattern whose required
// literal occurs in it: an Aho-Corasick automaton compiled to a DFA over
// byte classes. Patterns with no literal prefix ("(?:.*)/docs/.*\.md") are
// found this way instead of being tried on every path, so their cost does
// not grow with their number.
type substrings struct {
	class  [256]uint16 // byte -> class; 0 for bytes that occur in no literal
	stride int         // classes
	delta  []int32     // state*stride + class -> next state
	own    [][]int32   // state -> pattern ids whose literal ends here
	dict   []int32     // state -> nearest proper suffix state with own ids, or 0
}

// newSubstrings builds the automaton for lits (pattern id -> literal);
// literals must be non-empty.
func newSubstrings(lits map[int32]string) *substrings {
	a := &substrings{}
	classes := 1
	for _, lit := range lits {
		for i := 0; i < len(lit); i++ {
			if a.class[lit[i]] == 0 {
				a.class[lit[i]] = uint16(classes) //nolint:gosec // at most 256 byte values, so classes <= 257
				classes++
			}
		}
	}
	a.stride = classes
	newState := func() int32 {
		for range classes {
			a.delta = append(a.delta, -1)
		}
		a.own = append(a.own, nil)
		return int32(len(a.own) - 1) //nolint:gosec // states <= total literal bytes, far below 2^31
	}
	newState() // root
	// The trie, in id order so the build is deterministic.
	ids := make([]int32, 0, len(lits))
	for id := range lits {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		lit := lits[id]
		s := int32(0)
		for i := 0; i < len(lit); i++ {
			c := int(a.class[lit[i]])
			next := a.delta[int(s)*classes+c]
			if next < 0 {
				next = newState()
				a.delta[int(s)*classes+c] = next
			}
			s = next
		}
		a.own[s] = append(a.own[s], id)
	}
	// Breadth first: failure links, then missing transitions follow them.
	fail := make([]int32, len(a.own))
	a.dict = make([]int32, len(a.own))
	queue := make([]int32, 0, len(a.own))
	for c := 0; c < classes; c++ {
		if next := a.delta[c]; next > 0 {
			queue = append(queue, next)
		} else {
			a.delta[c] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := fail[s]
		if len(a.own[f]) > 0 {
			a.dict[s] = f
		} else {
			a.dict[s] = a.dict[f]
		}
		for c := 0; c < classes; c++ {
			i := int(s)*classes + c
			if next := a.delta[i]; next >= 0 {
				fail[next] = a.delta[int(f)*classes+c]
				queue = append(queue, next)
			} else {
				a.delta[i] = a.delta[int(f)*classes+c]
			}
		}
	}
	return a
}

// find calls found for every pattern whose literal occurs in path, once
// per occurrence.
func (a *substrings) find(path string, found func(int32)) {
	s := int32(0)
	for i := 0; i < len(path); i++ {
		s = a.delta[int(s)*a.stride+int(a.class[path[i]])]
		for o := s; o != 0; o = a.dict[o] {
			for _, id := range a.own[o] {
				found(id)
			}
		}
	}
}
