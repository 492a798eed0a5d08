package rules

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// The index looks for literals in case-folded paths, so that one entry
// serves an expression however it spells case: (?i)docs/ and [Dd]ocs/ and
// docs/ all file under "docs/". Folding maps every rune to one member of
// its simple case-folding orbit, the orbit RE2's (?i) matches ("k", "K"
// and the Kelvin sign U+212A all fold to "k"). Folding is a filter only:
// a path found through a folded literal is confirmed with the expression.

// foldRune returns the representative of r's orbit: its ASCII lower-case
// letter when the orbit has one, else the orbit's smallest rune.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	if 'A' <= least && least <= 'Z' {
		return least + 'a' - 'A'
	}
	return least
}

// foldRunes is the folded UTF-8 spelling of runes.
func foldRunes(runes []rune) string {
	b := make([]byte, 0, len(runes))
	for _, r := range runes {
		b = utf8.AppendRune(b, foldRune(r))
	}
	return string(b)
}

// foldPath returns path folded, in buf's memory. A byte that is not
// UTF-8 folds to U+FFFD, the rune RE2 reads it as.
func foldPath(path string, buf []byte) []byte {
	buf = slices.Grow(buf[:0], len(path))[:len(path)]
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c >= utf8.RuneSelf {
			return foldRest(path, buf[:i], i)
		}
		buf[i] = asciiFold[c]
	}
	return buf
}

// foldRest folds path[i:], which is not all ASCII, onto buf.
func foldRest(path string, buf []byte, i int) []byte {
	for i < len(path) {
		c := path[i]
		if c < utf8.RuneSelf {
			buf = append(buf, asciiFold[c])
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(path[i:])
		buf = utf8.AppendRune(buf, foldRune(r))
		i += n
	}
	return buf
}

// asciiFold is foldRune for the ASCII bytes.
var asciiFold = func() (t [utf8.RuneSelf]byte) {
	for c := range t {
		t[c] = byte(foldRune(rune(c))) //nolint:gosec // an ASCII rune folds to an ASCII rune
	}
	return t
}()
