package trigger

import (
	"strings"
	"time"
)

// Push is a verified GitHub push event reduced to what evaluation needs.
type Push struct {
	DeliveryID string `json:"delivery_id,omitempty"`
	// Repo is repository.name, which the predecessor's rules store as
	// GitHubRepo; FullName is owner/name.
	Repo     string `json:"repo"`
	FullName string `json:"full_name,omitempty"`
	Ref      string `json:"ref"`
	Before   string `json:"before,omitempty"`
	After    string `json:"after,omitempty"`
	Created  bool   `json:"created,omitempty"`
	Deleted  bool   `json:"deleted,omitempty"`
	Forced   bool   `json:"forced,omitempty"`
	Commits  int    `json:"commits"`
	// Paths are the added, removed and modified paths of every commit, in
	// payload order. A path changed by several commits appears once per
	// commit; matching treats the paths as a set (their union).
	Paths []string `json:"paths"`

	// Event is "push" (also when empty), "pull_request" or "merge_group"
	// (a merge queue's commit: Before is its base, After its head, and
	// BaseBranch the branch it merges into).
	Event string `json:"event,omitempty"`
	// A pull request: its number, action, base branch and head commit
	// (After); its changed paths come from the GitHub API.
	PullRequest int    `json:"pull_request,omitempty"`
	Action      string `json:"action,omitempty"`
	BaseBranch  string `json:"base_branch,omitempty"`
	// DefaultBranch is the repository's, the base a new branch is
	// compared with.
	DefaultBranch string `json:"default_branch,omitempty"`
	// MaxCommitFiles is the most paths one commit of the payload lists.
	MaxCommitFiles int `json:"max_commit_files,omitempty"`
	// Incomplete, when not empty, says why Paths may lack changed paths.
	Incomplete string `json:"incomplete,omitempty"`
}

// Branch returns the full branch name of a branch push: "feature/x" for
// refs/heads/feature/x. Tag pushes and other refs are not branches.
func (p *Push) Branch() (string, bool) {
	b, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	return b, ok && b != ""
}

// ShortSHA is the first 7 characters of the pushed commit, for logs.
func (p *Push) ShortSHA() string {
	if len(p.After) > 7 {
		return p.After[:7]
	}
	return p.After
}

// Delivery is one webhook delivery that passed verification.
type Delivery struct {
	ID       string    // X-GitHub-Delivery
	Event    string    // X-GitHub-Event
	Received time.Time // when monohook read it
	Payload  []byte    // the JSON payload (a form-encoded body already decoded)
	Push     *Push     // the parsed payload of a push event
}

// Rerun is a re-run GitHub asks for: a check run's (DeliveryID and
// Pipeline, from its external id) or a check suite's (every delivery of
// HeadSHA in the repository RepoName).
type Rerun struct {
	DeliveryID string
	Pipeline   string
	RepoName   string
	HeadSHA    string
	// AppID is the GitHub App whose check run or suite it is.
	AppID int64
}
