package rules

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// CompileGlob compiles a GitHub Actions filter pattern (the syntax of
// on.push.paths and on.push.branches) to a Pattern that matches whole
// strings:
//
//   - zero or more characters, not "/"
//     **   zero or more of any character; "**/" also matches no directory at all
//     ?    zero or one of the preceding character
//   - one or more of the preceding character
//     […]  one character listed or in a range (a-z, A-Z, 0-9 only)
//     \c   the character c itself
//
// Every other character stands for itself. A leading "!" (negation) is the
// caller's business: strip it first.
//
// GitHub's "?" and "+" repeat the preceding character, unlike the shell's
// "?", so a shell glob library would match differently; the translation
// to RE2 keeps the index's literal prefixes.
func CompileGlob(src string) (*Pattern, error) {
	expr, err := globRegexp(src)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", src, err)
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", src, err)
	}
	re, err := regexp.Compile(`^(?:` + expr + `)`)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", src, err)
	}
	tree = tree.Simplify()
	return newPattern(src, re, tree, analyze(tree, true)), nil
}

// globRegexp translates a glob to an RE2 expression that must match the
// whole string (it ends in \z, or in (?s:.*), which reaches the end anyway
// and lets a literal prefix decide alone).
func globRegexp(src string) (string, error) {
	if src == "" {
		return "", fmt.Errorf("empty pattern")
	}
	var b strings.Builder
	canRepeat := false // the last token was one character that ? or + may repeat
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case '*':
			if i+1 < len(src) && src[i+1] == '*' {
				i++
				atStart := i == 1 || src[i-2] == '/'
				switch {
				case atStart && i+1 < len(src) && src[i+1] == '/':
					i++ // "**/": any directories, or none
					b.WriteString(`(?:(?s:.*)/)?`)
				default:
					b.WriteString(`(?s:.*)`)
				}
			} else {
				b.WriteString(`[^/]*`)
			}
			canRepeat = false
		case '?', '+':
			if !canRepeat {
				return "", fmt.Errorf("%q at offset %d repeats the preceding character, and there is none to repeat (GitHub's ? is not the shell's any-character)", c, i)
			}
			b.WriteByte(c)
			canRepeat = false
		case '[':
			end := strings.IndexByte(src[i+1:], ']')
			if end < 0 {
				return "", fmt.Errorf("[ at offset %d is not closed", i)
			}
			class := src[i+1 : i+1+end]
			if err := checkClass(class); err != nil {
				return "", fmt.Errorf("[%s]: %w", class, err)
			}
			b.WriteString("[" + class + "]")
			i += end + 1
			canRepeat = true
		case '\\':
			if i+1 == len(src) {
				return "", fmt.Errorf("a trailing \\ escapes nothing")
			}
			i++
			b.WriteString(regexp.QuoteMeta(src[i : i+1]))
			canRepeat = true
		default:
			// One UTF-8 character, quoted.
			n := 1
			for i+n < len(src) && src[i+n]&0xC0 == 0x80 {
				n++
			}
			b.WriteString(regexp.QuoteMeta(src[i : i+n]))
			if n > 1 {
				// ? and + must repeat the whole character, not its last byte.
				s := b.String()
				b.Reset()
				b.WriteString(s[:len(s)-n] + "(?:" + s[len(s)-n:] + ")")
			}
			i += n - 1
			canRepeat = true
		}
	}
	expr := b.String()
	if !strings.HasSuffix(expr, `(?s:.*)`) {
		expr += `\z`
	}
	return expr, nil
}

// checkClass accepts what GitHub documents inside brackets: letters,
// digits, and ranges between two of the same kind.
func checkClass(class string) error {
	if class == "" {
		return fmt.Errorf("an empty class matches nothing")
	}
	alnum := func(c byte) byte {
		switch {
		case c >= 'a' && c <= 'z':
			return 'a'
		case c >= 'A' && c <= 'Z':
			return 'A'
		case c >= '0' && c <= '9':
			return '0'
		}
		return 0
	}
	for i := 0; i < len(class); i++ {
		k := alnum(class[i])
		if k == 0 {
			return fmt.Errorf("only letters, digits and ranges such as a-z or 0-9 may appear in brackets, not %q", class[i])
		}
		if i+2 < len(class) && class[i+1] == '-' {
			if alnum(class[i+2]) != k || class[i+2] < class[i] {
				return fmt.Errorf("bad range %s", class[i:i+3])
			}
			i += 2
		}
	}
	return nil
}
