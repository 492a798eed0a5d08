package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// printable returns s with every control character, and every character
// that reorders how a terminal shows text (bidirectional controls), written
// as a Go escape (\x1b, \n, \u202e). Human-readable output is made of
// values from payloads and rule documents that anyone who can push, or
// write a rule, chooses: raw, a repository name could carry escape
// sequences that move the cursor or retitle the terminal, or a newline
// that forges a row of a table.
func printable(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// printableLines is printable for a text of several lines (an error that
// joins several, a stored document): its line breaks and tabs stay, every
// other control is escaped.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		cells := strings.Split(l, "\t")
		for j, c := range cells {
			cells[j] = printable(c)
		}
		lines[i] = strings.Join(cells, "\t")
	}
	return strings.Join(lines, "\n")
}

// printf is fmt.Fprintf for human-readable output: every string, error or
// Stringer argument is made printable first. The format itself is ours.
func printf(w io.Writer, format string, args ...any) {
	for i, a := range args {
		switch v := a.(type) {
		case string:
			args[i] = printable(v)
		case error:
			args[i] = printableLines(v.Error())
		case fmt.Stringer:
			args[i] = printable(v.String())
		}
	}
	fmt.Fprintf(w, format, args...)
}

// jsonOut writes JSON with printable's characters as \u escapes. In a JSON
// text they can only stand inside strings, where the escape means the same
// character: a script reads the same value, and a person who prints it to a
// terminal sees the escape rather than its effect. (encoding/json already
// escapes the controls below U+0020, not DEL, C1 or bidirectional ones.)
func jsonOut(w io.Writer) io.Writer { return jsonWriter{w} }

type jsonWriter struct{ w io.Writer }

// unsafeInJSON leaves the white space between JSON's tokens alone; inside
// strings encoding/json has already escaped it.
func unsafeInJSON(r rune) bool { return r != '\n' && r != '\t' && r != '\r' && unsafeRune(r) }

// Write expects whole encoded values, as json.Encoder writes them.
func (j jsonWriter) Write(p []byte) (int, error) {
	s := string(p)
	if !strings.ContainsFunc(s, unsafeInJSON) {
		return j.w.Write(p)
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeInJSON(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	if _, err := io.WriteString(j.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// plural is n with the singular or the plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
