package trigger

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Caps of GitHub's push payload.
const (
	maxPayloadCommits     = 2048
	maxPayloadCommitFiles = 3000
)

// ChangeSource gives every path a push or pull request changed (the
// GitHub API). complete is false when its own list stops at a limit.
type ChangeSource interface {
	ChangedPaths(ctx context.Context, p *Push) (paths []string, complete bool, err error)
}

// IncompleteReason says why the paths of p's payload may not be all that
// it changed, or "" when they are.
func IncompleteReason(p *Push) string {
	switch {
	case p.Event == "pull_request" || p.Event == "merge_group":
		return p.Incomplete
	case p.Deleted, strings.HasPrefix(p.Ref, "refs/tags/"):
		return "" // nothing to start, or paths are not evaluated (tags)
	case p.Created || (p.Before != "" && strings.Trim(p.Before, "0") == ""):
		return "a new branch: the payload lists its commits, not its difference from the default branch"
	case p.Forced:
		return "a forced push: the payload does not list the difference from the replaced commit"
	case p.Commits >= maxPayloadCommits:
		return fmt.Sprintf("the payload holds GitHub's maximum of %d commits", maxPayloadCommits)
	case p.MaxCommitFiles >= maxPayloadCommitFiles:
		return fmt.Sprintf("a commit of the payload lists %d or more paths, where GitHub may cut the list", maxPayloadCommitFiles)
	}
	return ""
}

// ChangeSet asks s.Changes for p's full change set when its payload may
// lack some paths, and returns what it added and why the paths may still
// be incomplete (no credentials, the API's own limit). The error is non-nil
// when asking may succeed later (a rate limit, a 5xx): the evaluation
// should be retried.
func (s *Service) ChangeSet(ctx context.Context, p *Push) (ChangeSet, error) {
	reason := IncompleteReason(p)
	if reason == "" {
		return ChangeSet{}, nil
	}
	if s.Changes == nil {
		return Unasked(p, "no GitHub credentials are configured to fetch the full change set"), nil
	}
	paths, complete, err := s.Changes.ChangedPaths(ctx, p)
	if errors.Is(err, ErrPermanent) {
		return ChangeSet{Incomplete: reason + "; the GitHub API could not give the full change set: " + err.Error()}, nil
	}
	if err != nil {
		return ChangeSet{}, err
	}
	seen := make(map[string]bool, len(p.Paths))
	for _, path := range p.Paths {
		seen[path] = true
	}
	cs := ChangeSet{}
	for _, path := range paths {
		if !seen[path] {
			seen[path] = true
			cs.Fetched = append(cs.Fetched, path)
		}
	}
	if !complete {
		cs.Incomplete = reason + "; the GitHub API lists only part of the changed files"
	}
	return cs, nil
}
