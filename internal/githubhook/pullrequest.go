package githubhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/monohook/monohook/internal/trigger"
)

// IncompletePullRequest is why a pull request's change set is incomplete
// before the GitHub API is asked: its payload lists no files.
const IncompletePullRequest = "a pull_request payload lists no files"

// ParsePullRequest reads a pull_request event. Its changed paths are not
// in the payload: they are asked of the GitHub API when it is evaluated.
// Pull request events are far rarer than pushes, so encoding/json does.
func ParsePullRequest(body []byte) (*trigger.Push, error) {
	var pl struct {
		Action      string `json:"action"`
		Number      int    `json:"number"`
		PullRequest *struct {
			Merged bool `json:"merged"`
			Base   struct {
				Ref string `json:"ref"`
				SHA string `json:"sha"`
			} `json:"base"`
			Head struct {
				SHA string `json:"sha"`
			} `json:"head"`
		} `json:"pull_request"`
		Repository *struct {
			Name          string `json:"name"`
			FullName      string `json:"full_name"`
			DefaultBranch string `json:"default_branch"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(body, &pl); err != nil {
		return nil, fmt.Errorf("pull_request payload: %w", err)
	}
	switch {
	case pl.PullRequest == nil:
		return nil, errors.New("pull_request payload: no pull_request")
	case pl.Repository == nil || pl.Repository.Name == "" || pl.Repository.FullName == "":
		return nil, errors.New("pull_request payload: no repository.name or full_name")
	case pl.Number <= 0:
		return nil, errors.New("pull_request payload: no number")
	case pl.PullRequest.Base.Ref == "":
		// The branch the rules are matched against.
		return nil, errors.New("pull_request payload: no pull_request.base.ref")
	case pl.PullRequest.Head.SHA == "":
		// The commit whose files are asked of the API and reported on.
		return nil, errors.New("pull_request payload: no pull_request.head.sha")
	}
	action := pl.Action
	if action == "closed" && pl.PullRequest.Merged {
		action = "merged"
	}
	p := &trigger.Push{
		Event: "pull_request", Action: action, PullRequest: pl.Number,
		Repo: pl.Repository.Name, FullName: pl.Repository.FullName, DefaultBranch: pl.Repository.DefaultBranch,
		Ref:        "refs/pull/" + strconv.Itoa(pl.Number) + "/head",
		BaseBranch: pl.PullRequest.Base.Ref, Before: pl.PullRequest.Base.SHA, After: pl.PullRequest.Head.SHA,
		Incomplete: IncompletePullRequest,
	}
	scrubNUL(p)
	return p, nil
}

// scrubNUL replaces NUL in the payload's names and paths with U+FFFD, as
// invalid UTF-8 is replaced. GitHub and git never put NUL there (git
// allows none in a ref, a repository name or a path), so such a payload is
// made by hand; it is stored and evaluated like any other, but its values
// travel on into start jobs and PostgreSQL, whose text and jsonb hold no
// NUL: left in, one such push would fail its evaluation batch for ever.
// The raw payload is stored as received.
func scrubNUL(p *trigger.Push) {
	for _, f := range []*string{&p.Repo, &p.FullName, &p.DefaultBranch, &p.Ref, &p.BaseBranch, &p.Before, &p.After} {
		*f = strings.ReplaceAll(*f, "\x00", "\uFFFD")
	}
	for i, path := range p.Paths {
		if strings.IndexByte(path, 0) >= 0 {
			p.Paths[i] = strings.ReplaceAll(path, "\x00", "\uFFFD")
		}
	}
}

// PullRequestActs reports whether a pull request action can start
// pipelines: opened, synchronize (new commits), reopened, and closed when
// merged ("merged"). Labels, reviews, edits and the like start nothing.
func PullRequestActs(action string) bool {
	switch action {
	case "opened", "synchronize", "reopened", "merged":
		return true
	}
	return false
}

// Evaluated reports whether monohook stores and evaluates deliveries of
// event (others are answered, and re-run requests replay what is stored).
func Evaluated(event string) bool {
	switch event {
	case "push", "pull_request", "merge_group":
		return true
	}
	return false
}

// startsNothing says why a parsed delivery of an evaluated event starts
// nothing, or "" when it is evaluated: the one decision of the webhook
// and of recovered deliveries.
func startsNothing(event string, push *trigger.Push) string {
	switch {
	case event == "pull_request" && !PullRequestActs(push.Action):
		return "pull_request action " + push.Action + " starts nothing"
	case event == "merge_group" && push.Action != "checks_requested":
		return "merge_group action " + push.Action + " starts nothing"
	}
	return ""
}

// ParseEvent parses the payload of an event monohook stores.
func ParseEvent(event string, payload []byte) (*trigger.Push, error) {
	switch event {
	case "pull_request":
		return ParsePullRequest(payload)
	case "merge_group":
		return ParseMergeGroup(payload)
	}
	return ParsePush(payload)
}
