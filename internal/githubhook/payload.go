package githubhook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/monohook/monohook/internal/trigger"
)

// maxDepth bounds nesting in a payload, so a hostile body cannot exhaust
// the stack. GitHub's payloads nest a handful of levels.
const maxDepth = 256

// ParsePush reads a push event payload. It decodes only the fields that
// evaluation needs (ref, before, after, created, deleted, forced,
// repository.name and full_name, and the added, removed and modified lists
// of every commit, concatenated in order) and
// skips the rest while still checking that the whole body is valid JSON.
// That is several times faster than encoding/json on the large payloads of
// big pushes, where most bytes are commit messages, URLs and user objects.
func ParsePush(body []byte) (*trigger.Push, error) {
	s := scanner{data: body}
	p := &trigger.Push{}
	// Every path is decoded into one arena and becomes a substring of one
	// string: one allocation for all of them instead of one each.
	var paths pathArena
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "ref":
			p.Ref, err = s.str()
		case "before":
			p.Before, err = s.strOrNull()
		case "after":
			p.After, err = s.strOrNull()
		case "created":
			p.Created, err = s.boolean()
		case "deleted":
			p.Deleted, err = s.boolean()
		case "forced":
			p.Forced, err = s.boolean()
		case "repository":
			err = s.object(func(key []byte) error {
				var err error
				switch string(key) {
				case "name":
					p.Repo, err = s.str()
				case "full_name":
					p.FullName, err = s.strOrNull()
				case "default_branch":
					p.DefaultBranch, err = s.strOrNull()
				default:
					err = s.skip()
				}
				return err
			})
		case "commits":
			paths.reset(len(body))
			p.Commits = 0
			err = s.array(func() error {
				p.Commits++
				first := len(paths.list)
				defer func() { p.MaxCommitFiles = max(p.MaxCommitFiles, len(paths.list)-first) }()
				return s.object(func(key []byte) error {
					switch string(key) {
					case "added", "removed", "modified":
						return s.array(func() error {
							if s.peek() != '"' {
								return s.want("a string")
							}
							raw, plain, err := s.rawString()
							if err != nil {
								return err
							}
							paths.add(raw, plain)
							return nil
						})
					}
					return s.skip()
				})
			})
		default:
			err = s.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("push payload: %w", err)
	}
	if err := s.end(); err != nil {
		return nil, fmt.Errorf("push payload: %w", err)
	}
	if p.Ref == "" {
		return nil, errors.New("push payload: no ref")
	}
	if p.Repo == "" {
		return nil, errors.New("push payload: no repository.name")
	}
	p.Paths = paths.list
	scrubNUL(p)
	return p, nil
}

// pathArena decodes paths into large chunks of memory instead of one
// allocation each: a big push lists thousands. A chunk is never
// reallocated, so each path is a string over its bytes, and a full chunk
// is simply left to the strings that use it. Repeated paths are kept:
// matching treats the paths as a set anyway, and a map to drop the few
// repeats of a big push costs more than the repeats do.
type pathArena struct {
	chunk     []byte
	chunkSize int
	list      []string
}

func (a *pathArena) reset(bodySize int) {
	a.chunkSize = min(max(bodySize/4, 512), 64<<10)
	a.list = make([]string, 0, 8+bodySize/128)
}

// add decodes one checked JSON string (see rawString) into the arena.
func (a *pathArena) add(raw []byte, plain bool) {
	need := len(raw)
	if !plain {
		need *= 3 // an invalid byte decodes to U+FFFD, three bytes
	}
	if need == 0 {
		a.list = append(a.list, "")
		return
	}
	if cap(a.chunk)-len(a.chunk) < need {
		a.chunk = make([]byte, 0, max(a.chunkSize, need))
	}
	start := len(a.chunk)
	if plain {
		a.chunk = append(a.chunk, raw...)
	} else {
		a.chunk = appendUnquoted(a.chunk, raw)
	}
	// The bytes are never written again (the chunk does not move and later
	// paths go after them), so a string can share them.
	a.list = append(a.list, unsafe.String(&a.chunk[start], len(a.chunk)-start)) //nolint:gosec // see above
}

// scanner is a strict JSON reader over a byte slice (RFC 8259 grammar;
// invalid UTF-8 in strings is replaced by U+FFFD, as encoding/json does).
type scanner struct {
	data  []byte
	pos   int
	depth int
}

type syntaxError struct {
	msg string
	pos int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.pos, e.msg) }

func (s *scanner) fail(msg string) error { return &syntaxError{msg: msg, pos: s.pos} }

// want reports valid JSON of the wrong type for a field.
func (s *scanner) want(what string) error {
	if s.pos >= len(s.data) {
		return s.fail("unexpected end of input")
	}
	return fmt.Errorf("at byte %d: expected %s", s.pos, what)
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) end() error {
	if s.peek() != 0 || s.pos < len(s.data) {
		return s.fail("data after the top-level value")
	}
	return nil
}

// object reads an object, calling field with each key; field must consume
// the value.
func (s *scanner) object(field func(key []byte) error) error {
	if s.peek() != '{' {
		return s.want("an object")
	}
	s.pos++
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested too deeply")
	}
	defer func() { s.depth-- }()
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.fail("expected a string key")
		}
		key, plain, err := s.rawString()
		if err != nil {
			return err
		}
		if !plain {
			key = appendUnquoted(nil, key)
		}
		if s.peek() != ':' {
			return s.fail("expected ':' after a key")
		}
		s.pos++
		if err := field(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.fail("expected ',' or '}' in an object")
		}
	}
}

// array reads an array, calling elem once per element; elem must consume it.
// null is read as an empty array.
func (s *scanner) array(elem func() error) error {
	switch s.peek() {
	case 'n':
		return s.null()
	case '[':
	default:
		return s.want("an array")
	}
	s.pos++
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested too deeply")
	}
	defer func() { s.depth-- }()
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.fail("expected ',' or ']' in an array")
		}
	}
}

// skip consumes one value of any type, checked as strictly as the rest,
// without recursion or a call per element: most of a big payload is
// skipped (commit messages, URLs, user objects), so this loop is hot.
func (s *scanner) skip() error {
	var buf [32]byte
	open := buf[:0] // the containers we are in: '{' or '['
	for {
		// A value starts here.
		done := true
		switch c := s.peek(); c {
		case '{', '[':
			s.pos++
			if s.depth+len(open) >= maxDepth {
				return s.fail("nested too deeply")
			}
			if closer := c + 2; s.peek() == closer { // '{'+2 is '}', '['+2 is ']'
				s.pos++
				break // an empty container is a complete value
			}
			open = append(open, c)
			if c == '{' {
				if err := s.key(); err != nil {
					return err
				}
			}
			done = false
		case '"':
			if _, _, err := s.rawString(); err != nil {
				return err
			}
		case 't':
			if err := s.literal("true"); err != nil {
				return err
			}
		case 'f':
			if err := s.literal("false"); err != nil {
				return err
			}
		case 'n':
			if err := s.literal("null"); err != nil {
				return err
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if err := s.number(); err != nil {
				return err
			}
		case 0:
			return s.fail("unexpected end of input")
		default:
			return s.fail("unexpected character")
		}
		if !done {
			continue // the first element of a container
		}
		// A value ended: close containers until one continues.
		for {
			if len(open) == 0 {
				return nil
			}
			top := open[len(open)-1]
			c := s.peek()
			if c == ',' {
				s.pos++
				if top == '{' {
					if err := s.key(); err != nil {
						return err
					}
				}
				break
			}
			if top == '{' && c == '}' || top == '[' && c == ']' {
				s.pos++
				open = open[:len(open)-1]
				continue
			}
			if top == '{' {
				return s.fail("expected ',' or '}' in an object")
			}
			return s.fail("expected ',' or ']' in an array")
		}
	}
}

// key consumes an object key and its colon.
func (s *scanner) key() error {
	if s.peek() != '"' {
		return s.fail("expected a string key")
	}
	if _, _, err := s.rawString(); err != nil {
		return err
	}
	if s.peek() != ':' {
		return s.fail("expected ':' after a key")
	}
	s.pos++
	return nil
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return s.fail("invalid literal")
	}
	s.pos += len(word)
	return nil
}

func (s *scanner) null() error { s.ws(); return s.literal("null") }

// boolean reads true or false; null is false.
func (s *scanner) boolean() (bool, error) {
	switch s.peek() {
	case 't':
		return true, s.literal("true")
	case 'f':
		return false, s.literal("false")
	case 'n':
		return false, s.null()
	}
	return false, s.want("a boolean")
}

func (s *scanner) number() error {
	d, i := s.data, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return s.fail("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.pos = i
			return s.fail("invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.pos = i
			return s.fail("invalid number")
		}
	}
	s.pos = i
	return nil
}

func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", s.want("a string")
	}
	raw, plain, err := s.rawString()
	if err != nil {
		return "", err
	}
	return unquote(raw, plain), nil
}

func (s *scanner) strOrNull() (string, error) {
	if s.peek() == 'n' {
		return "", s.null()
	}
	return s.str()
}

// rawString reads a string at s.pos (which is '"') and returns its bytes
// between the quotes, escapes undecoded but checked. plain reports that it
// has no escapes and no bytes outside ASCII, so it needs no decoding.
func (s *scanner) rawString() (raw []byte, plain bool, err error) {
	d := s.data
	start := s.pos + 1
	i := start
	var high uint64 // OR of every 8-byte word scanned: bit 7 set means non-ASCII
	plain = true
	for {
		// Fast path: eight ordinary bytes at a time.
		for i+8 <= len(d) {
			w := binary.LittleEndian.Uint64(d[i:])
			if special(w) {
				break
			}
			high |= w
			i += 8
		}
		for i < len(d) && d[i] >= 0x20 && d[i] != '"' && d[i] != '\\' {
			high |= uint64(d[i])
			i++
		}
		if i >= len(d) {
			s.pos = i
			return nil, false, s.fail("unterminated string")
		}
		switch d[i] {
		case '"':
			s.pos = i + 1
			return d[start:i], plain && high&0x8080808080808080 == 0, nil
		case '\\':
			plain = false
			if i+1 >= len(d) {
				s.pos = i
				return nil, false, s.fail("unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					s.pos = i
					return nil, false, s.fail(`invalid \u escape`)
				}
				i += 6
			default:
				s.pos = i
				return nil, false, s.fail("invalid escape")
			}
		default:
			s.pos = i
			return nil, false, s.fail("control character in string")
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special reports whether any byte of w is '"', '\\' or below 0x20 (the
// bytes that end the fast path of a string), with the classic
// "has a zero byte" bit trick.
func special(w uint64) bool {
	quote := w ^ (ones * '"')
	backslash := w ^ (ones * '\\')
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(w-ones*0x20)&^w)&highs != 0
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// unquote decodes the checked contents of a JSON string.
func unquote(raw []byte, plain bool) string {
	if plain {
		return string(raw)
	}
	return string(appendUnquoted(make([]byte, 0, len(raw)), raw))
}

// appendUnquoted appends the decoded contents of a checked JSON string to
// b the way encoding/json decodes it: invalid UTF-8 bytes and unpaired
// surrogates become U+FFFD.
func appendUnquoted(b, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(raw[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, hex4(raw[i+2:])); dec != unicode.ReplacementChar {
							i += 6
							b = utf8.AppendRune(b, dec)
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\', '/'
				b = append(b, raw[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, unicode.ReplacementChar)
			} else {
				b = append(b, raw[i:i+size]...)
			}
			i += size
		}
	}
	return b
}

func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b[:4]), 16, 32)
	return rune(n)
}
