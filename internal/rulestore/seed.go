package rulestore

import (
	"crypto/sha1" //nolint:gosec // the predecessor's key layout hashes with SHA-1; not a security use.
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Predecessor defaults (DESIGN.md §1).
const (
	DefaultBucket = "tools-monorepo-configuration"
	DefaultPrefix = "mono-repo/config"
)

// nameLen is how many code points of "{repo}-{branch}[-{pipeline}]" the
// predecessor kept in a key.
const nameLen = 52

// Document is a seed rule as stored: the predecessor's four fields.
type Document struct {
	GitHubRepo             string
	GitHubBranch           string
	ChangeMatchExpressions string
	CodePipelineName       string
}

// SeedName is the predecessor's object name for a rule, without prefix and
// extension: the first 52 code points of "{repo}-{branch}-{pipeline}", "-",
// and the first 8 upper-case hex digits of that full string's SHA-1.
func SeedName(repo, branch, pipeline string) string {
	full := repo + "-" + branch + "-" + pipeline
	sum := sha1.Sum([]byte(full)) //nolint:gosec // key layout, not security
	return firstCodePoints(full, nameLen) + "-" + strings.ToUpper(hex.EncodeToString(sum[:]))[:8]
}

// SeedKey is the object key of a rule under prefix.
func SeedKey(prefix, repo, branch, pipeline string) string {
	return prefix + "/" + SeedName(repo, branch, pipeline) + ".json"
}

// LookupPrefix is what the predecessor listed to find the rules of a
// repository and branch. Because of the 52 code point cut it can also list
// rules of other branches ("main" lists "main-old"); callers must check the
// documents' fields.
func LookupPrefix(prefix, repo, branch string) string {
	return prefix + "/" + firstCodePoints(repo+"-"+branch, nameLen)
}

func firstCodePoints(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// ParseDocument reads a stored document. Unknown fields are ignored; the
// four known ones must be strings when present.
func ParseDocument(b []byte) (Document, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return Document{}, fmt.Errorf("not a rule document: %w", err)
	}
	return d, nil
}

// Marshal writes d exactly as the predecessor's custom resource did, with
// Python's json.dumps: fields in this order, ", " and ": " separators, and
// every character outside ASCII escaped.
func (d Document) Marshal() []byte {
	var b strings.Builder
	b.WriteString(`{"GitHubRepo": `)
	pyQuote(&b, d.GitHubRepo)
	b.WriteString(`, "GitHubBranch": `)
	pyQuote(&b, d.GitHubBranch)
	b.WriteString(`, "ChangeMatchExpressions": `)
	pyQuote(&b, d.ChangeMatchExpressions)
	b.WriteString(`, "CodePipelineName": `)
	pyQuote(&b, d.CodePipelineName)
	b.WriteString(`}`)
	return []byte(b.String())
}

// pyQuote writes s as Python's json.dumps does with ensure_ascii=True.
func pyQuote(b *strings.Builder, s string) {
	const hexDigits = "0123456789abcdef"
	u4 := func(r rune) {
		b.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			b.WriteByte(hexDigits[(r>>shift)&0xf])
		}
	}
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20:
			u4(r)
		case r < 0x80:
			b.WriteRune(r)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			u4(hi)
			u4(lo)
		default:
			u4(r)
		}
	}
	b.WriteByte('"')
}
