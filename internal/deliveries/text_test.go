package deliveries

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzText: whatever a target answers, what is stored is UTF-8 without
// NUL, at most the limit (and the ellipsis), and a prefix of the cleaned
// answer.
func FuzzText(f *testing.F) {
	f.Add("queued\x00 \xff\xfe build", 8)
	f.Add(strings.Repeat("é", 10), 5)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit = max(limit%2048, 0)
		got := text(s, limit)
		if !utf8.ValidString(got) || strings.ContainsRune(got, 0) {
			t.Fatalf("text(%q) = %q", s, got)
		}
		clean, cut := strings.CutSuffix(got, "…")
		if len(clean) > limit || (cut && !strings.HasPrefix(text(s, 1<<30), clean)) {
			t.Fatalf("text(%q, %d) = %q", s, limit, got)
		}
	})
}
