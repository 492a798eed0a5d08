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
	case p.Event == "pull_request":
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

// Complete makes p's paths the full change set when its payload may lack
// some: it asks s.Changes and adds what the payload did not list. p.Incomplete
// then says why the paths may still be incomplete (no credentials, the
// API's own limit), or is empty. The error is non-nil when asking may
// succeed later (a rate limit, a 5xx): the evaluation should be retried.
// It returns the paths added.
func (s *Service) Complete(ctx context.Context, p *Push) ([]string, error) {
	reason := IncompleteReason(p)
	p.Incomplete = reason
	if reason == "" {
		return nil, nil
	}
	if s.Changes == nil {
		p.Incomplete = reason + "; no GitHub credentials are configured to fetch the full change set"
		return nil, nil
	}
	paths, complete, err := s.Changes.ChangedPaths(ctx, p)
	if errors.Is(err, ErrPermanent) {
		p.Incomplete = reason + "; the GitHub API could not give the full change set: " + err.Error()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(p.Paths))
	for _, path := range p.Paths {
		seen[path] = true
	}
	var added []string
	for _, path := range paths {
		if !seen[path] {
			seen[path] = true
			added = append(added, path)
		}
	}
	// A fresh slice: p.Paths may share the payload parser's arena.
	p.Paths = append(append(make([]string, 0, len(p.Paths)+len(added)), p.Paths...), added...)
	if complete {
		p.Incomplete = ""
	} else {
		p.Incomplete = reason + "; the GitHub API lists only part of the changed files"
	}
	return added, nil
}
