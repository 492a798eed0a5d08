package trigger

import (
	"strings"
	"testing"
)

func TestIncompleteReason(t *testing.T) {
	zeros := strings.Repeat("0", 40)
	tests := []struct {
		name string
		p    Push
		want string // a word of the reason; "" for complete
	}{
		{"ordinary push", Push{Ref: "refs/heads/main", Before: "a", Commits: 3, MaxCommitFiles: 10}, ""},
		{"forced", Push{Ref: "refs/heads/main", Before: "a", Forced: true}, "forced"},
		{"created", Push{Ref: "refs/heads/x", Before: "a", Created: true}, "new branch"},
		{"before all zeros", Push{Ref: "refs/heads/x", Before: zeros}, "new branch"},
		{"2048 commits", Push{Ref: "refs/heads/main", Before: "a", Commits: 2048}, "2048 commits"},
		{"3000 paths in a commit", Push{Ref: "refs/heads/main", Before: "a", Commits: 1, MaxCommitFiles: 3000}, "3000 or more paths"},
		{"deleted", Push{Ref: "refs/heads/x", Before: "a", After: zeros, Deleted: true, Forced: true}, ""},
		{"new tag", Push{Ref: "refs/tags/v1", Before: zeros, Created: true}, ""},
		{"pull request", Push{Event: "pull_request", Incomplete: "no files"}, "no files"},
	}
	for _, tt := range tests {
		got := IncompleteReason(&tt.p)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
