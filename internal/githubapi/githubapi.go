// Package githubapi talks to the GitHub REST API: the full change set of a
// push, pull request or merge group (when a payload's lists fall short),
// workflow_dispatch for the github-actions target
// (internal/targets/githubactions), and check runs and commit statuses
// (checks.go). It authenticates with a token or as a GitHub App
// installation (through ghinstallation), and waits out rate limits.
package githubapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v75/github"

	"github.com/monohook/monohook/internal/trigger"
)

// Limits of the GitHub API: a comparison lists at most 300 files, a pull
// request at most 3,000.
const (
	MaxCompareFiles     = 300
	MaxPullRequestFiles = 3000
)

// Config says how to reach and authenticate to GitHub. Token, or App with
// Installation and Key, must be set.
type Config struct {
	URL          string // API root; default https://api.github.com/
	Token        string
	App          int64
	Installation int64
	Key          []byte // the App's private key, PEM
	// MaxWait is the longest a call waits for a rate limit to reset;
	// past it the call fails and its job is retried later. Default 30 s.
	MaxWait time.Duration
}

// Client is an authenticated GitHub API client.
type Client struct {
	gh      *github.Client
	maxWait time.Duration
	sleep   func(context.Context, time.Duration) error
	// app: authenticated as a GitHub App installation, which may write
	// check runs (a token may not).
	app   bool
	appID int64
}

// IsApp reports whether c authenticates as a GitHub App installation.
func (c *Client) IsApp() bool { return c.app }

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	api := cfg.URL
	if api == "" {
		api = "https://api.github.com/"
	}
	if !strings.HasSuffix(api, "/") {
		api += "/"
	}
	base, err := url.Parse(api)
	if err != nil {
		return nil, fmt.Errorf("GitHub API URL %q: %w", api, err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	var gh *github.Client
	app := false
	switch {
	case cfg.Token != "":
		gh = github.NewClient(hc).WithAuthToken(cfg.Token)
	case cfg.App != 0:
		if cfg.Installation == 0 || len(cfg.Key) == 0 {
			return nil, errors.New("a GitHub App needs its installation id and private key")
		}
		t, err := appTransport(http.DefaultTransport, base, cfg.App, cfg.Installation, cfg.Key)
		if err != nil {
			return nil, err
		}
		app = true
		hc.Transport = t
		gh = github.NewClient(hc)
	default:
		return nil, errors.New("no GitHub credentials: a token, or a GitHub App")
	}
	gh.BaseURL = base
	maxWait := cfg.MaxWait
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	return &Client{gh: gh, maxWait: maxWait, sleep: sleepCtx, app: app, appID: cfg.App}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call runs f, waiting out rate limits (up to maxWait) and retrying 5xx
// answers of reads. A 401, 403 (other than a rate limit), 404 or 422 is
// permanent.
func (c *Client) call(ctx context.Context, read bool, f func() (*github.Response, error)) error {
	for attempt := 1; ; attempt++ {
		resp, err := f()
		if err == nil {
			return nil
		}
		var wait time.Duration
		var rl *github.RateLimitError
		var abuse *github.AbuseRateLimitError
		switch {
		case errors.As(err, &rl):
			wait = time.Until(rl.Rate.Reset.Time) + time.Second
		case errors.As(err, &abuse):
			wait = time.Minute
			if abuse.RetryAfter != nil {
				wait = *abuse.RetryAfter
			}
		case resp != nil && resp.StatusCode >= 500 && read && attempt < 4:
			wait = time.Duration(attempt) * time.Second
		case resp != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests:
			return fmt.Errorf("GitHub API: %w (%w)", err, trigger.ErrPermanent)
		default:
			return fmt.Errorf("GitHub API: %w", err)
		}
		if wait > c.maxWait {
			return fmt.Errorf("GitHub API rate limit: next try in %s, longer than the %s this call may wait: %w", wait.Round(time.Second), c.maxWait, err)
		}
		if wait > 0 {
			if err := c.sleep(ctx, wait); err != nil {
				return err
			}
		}
	}
}

func ownerRepo(fullName string) (string, string, error) {
	owner, repo, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || repo == "" {
		return "", "", fmt.Errorf("repository %q is not owner/name (%w)", fullName, trigger.ErrPermanent)
	}
	return owner, repo, nil
}

// ChangedPaths returns every path p changed: the files of a pull request,
// or of the comparison of a push's before and after commits (a new
// branch: the repository's default branch and after). complete is false
// when GitHub's list stops at its limit.
func (c *Client) ChangedPaths(ctx context.Context, p *trigger.Push) ([]string, bool, error) {
	owner, repo, err := ownerRepo(p.FullName)
	if err != nil {
		return nil, false, err
	}
	var paths []string
	seen := map[string]bool{}
	add := func(f *github.CommitFile) {
		for _, name := range []string{f.GetFilename(), f.GetPreviousFilename()} {
			if name != "" && !seen[name] {
				seen[name] = true
				paths = append(paths, name)
			}
		}
	}
	opts := &github.ListOptions{PerPage: 100}
	if p.Event == "pull_request" {
		n := 0
		for {
			var files []*github.CommitFile
			var resp *github.Response
			err := c.call(ctx, true, func() (*github.Response, error) {
				var err error
				files, resp, err = c.gh.PullRequests.ListFiles(ctx, owner, repo, p.PullRequest, opts)
				return resp, err
			})
			if err != nil {
				return nil, false, fmt.Errorf("files of pull request #%d: %w", p.PullRequest, err)
			}
			n += len(files)
			for _, f := range files {
				add(f)
			}
			if resp.NextPage == 0 {
				return paths, n < MaxPullRequestFiles, nil
			}
			opts.Page = resp.NextPage
		}
	}
	base := p.Before
	if p.Created || strings.Trim(base, "0") == "" {
		if p.DefaultBranch == "" {
			return nil, false, fmt.Errorf("a new branch, and the payload names no default branch to compare with (%w)", trigger.ErrPermanent)
		}
		base = p.DefaultBranch
	}
	n := 0
	for {
		var cmp *github.CommitsComparison
		var resp *github.Response
		err := c.call(ctx, true, func() (*github.Response, error) {
			var err error
			cmp, resp, err = c.gh.Repositories.CompareCommits(ctx, owner, repo, base, p.After, opts)
			return resp, err
		})
		if err != nil {
			return nil, false, fmt.Errorf("compare %s...%s: %w", base, p.After, err)
		}
		// Files come with the first page; later pages carry more commits.
		n += len(cmp.Files)
		for _, f := range cmp.Files {
			add(f)
		}
		if resp.NextPage == 0 {
			return paths, n < MaxCompareFiles, nil
		}
		opts.Page = resp.NextPage
	}
}

// Run is the workflow run a dispatch started, as GitHub tells it (ID 0:
// it did not say).
type Run struct {
	ID  int64
	URL string // the run's page
}

// dispatchRequest is a workflow_dispatch asking for the run it starts
// (return_run_details: GitHub answers 200 with the run's id and URLs; a
// server that ignores the parameter answers 204, as before; one that
// refuses it answers 422, and is asked again without it).
type dispatchRequest struct {
	github.CreateWorkflowDispatchEventRequest
	ReturnRunDetails bool `json:"return_run_details,omitempty"`
}

// Dispatch starts a workflow_dispatch run of workflow (a file name or an
// id) in repository (owner/name) at ref, with inputs, and returns the run
// when GitHub says which it is. GitHub gives such a request no
// idempotency key, so a 5xx answer is not retried here (the run may
// exist); the start job's retry decides.
func (c *Client) Dispatch(ctx context.Context, repository, workflow, ref string, inputs map[string]string) (Run, error) {
	owner, repo, err := ownerRepo(repository)
	if err != nil {
		return Run{}, err
	}
	event := dispatchRequest{github.CreateWorkflowDispatchEventRequest{Ref: ref, Inputs: map[string]any{}}, true}
	for k, v := range inputs {
		event.Inputs[k] = v
	}
	u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/dispatches", url.PathEscape(owner), url.PathEscape(repo), url.PathEscape(workflow))
	run, err := c.dispatch(ctx, u, event)
	if err != nil && strings.Contains(err.Error(), "return_run_details") {
		// Refused for the key alone (422: nothing started).
		event.ReturnRunDetails = false
		run, err = c.dispatch(ctx, u, event)
	}
	if err != nil {
		return Run{}, fmt.Errorf("workflow_dispatch of %s in %s: %w", workflow, repository, err)
	}
	return run, nil
}

func (c *Client) dispatch(ctx context.Context, u string, event dispatchRequest) (Run, error) {
	var details struct {
		ID      int64  `json:"workflow_run_id"`
		HTMLURL string `json:"html_url"`
	}
	err := c.call(ctx, false, func() (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodPost, u, event)
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, &details)
	})
	return Run{ID: details.ID, URL: details.HTMLURL}, err
}

// WorkflowRun returns the workflow run id of repository (owner/name).
func (c *Client) WorkflowRun(ctx context.Context, repository string, id int64) (*github.WorkflowRun, error) {
	owner, repo, err := ownerRepo(repository)
	if err != nil {
		return nil, err
	}
	var run *github.WorkflowRun
	err = c.call(ctx, true, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		run, resp, err = c.gh.Actions.GetWorkflowRunByID(ctx, owner, repo, id)
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("workflow run %d of %s: %w", id, repository, err)
	}
	return run, nil
}
