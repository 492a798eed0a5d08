package githubapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-github/v75/github"

	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/trigger"
)

// CheckRun is a check run as monohook writes it (see internal/report).
type CheckRun struct {
	Name       string
	HeadSHA    string
	ExternalID string
	Status     string // queued, in_progress, completed
	Conclusion string // with completed
	Title      string
	Summary    string
	DetailsURL string
}

func (cr CheckRun) output() *github.CheckRunOutput {
	return &github.CheckRunOutput{Title: github.Ptr(cr.Title), Summary: github.Ptr(cr.Summary)}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (cr CheckRun) completedAt() *github.Timestamp {
	if cr.Status != "completed" {
		return nil
	}
	return &github.Timestamp{Time: time.Now()}
}

// CreateCheckRun creates a check run in repository (owner/name) and
// returns its id. A 5xx is not retried here (the run may exist): the
// report job's retry finds it by its external id first.
func (c *Client) CreateCheckRun(ctx context.Context, repository string, cr CheckRun) (int64, error) {
	owner, repo, err := ownerRepo(repository)
	if err != nil {
		return 0, err
	}
	opts := github.CreateCheckRunOptions{Name: cr.Name, HeadSHA: cr.HeadSHA, ExternalID: optional(cr.ExternalID),
		Status: optional(cr.Status), Conclusion: optional(cr.Conclusion), DetailsURL: optional(cr.DetailsURL),
		CompletedAt: cr.completedAt(), Output: cr.output()}
	var run *github.CheckRun
	err = c.call(ctx, false, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		run, resp, err = c.gh.Checks.CreateCheckRun(ctx, owner, repo, opts)
		return resp, err
	})
	if err != nil {
		return 0, fmt.Errorf("create check run %q on %s: %w", cr.Name, cr.HeadSHA, err)
	}
	return run.GetID(), nil
}

// UpdateCheckRun sets check run id of repository to cr.
func (c *Client) UpdateCheckRun(ctx context.Context, repository string, id int64, cr CheckRun) error {
	owner, repo, err := ownerRepo(repository)
	if err != nil {
		return err
	}
	opts := github.UpdateCheckRunOptions{Name: cr.Name, ExternalID: optional(cr.ExternalID), Status: optional(cr.Status),
		Conclusion: optional(cr.Conclusion), DetailsURL: optional(cr.DetailsURL), CompletedAt: cr.completedAt(), Output: cr.output()}
	err = c.call(ctx, true, func() (*github.Response, error) {
		_, resp, err := c.gh.Checks.UpdateCheckRun(ctx, owner, repo, id, opts)
		return resp, err
	})
	if err != nil {
		return fmt.Errorf("update check run %d (%q): %w", id, cr.Name, err)
	}
	return nil
}

// maxCheckRunPages bounds the listing of one commit's check runs (100 a
// page): a commit with more of them than that has its older ones unseen.
const maxCheckRunPages = 20

// Listed are the check runs of one commit that this App wrote, by
// external id and by name.
type Listed struct {
	IDs   map[string]int64  // by external id
	Names map[string]string // name → the external id of its newest run
}

// CheckRuns lists the check runs of commit sha in repository, this App's
// only: what a report job finds after a crash between creating a check
// run and storing its id, and the names a commit has a check of already.
func (c *Client) CheckRuns(ctx context.Context, repository, sha string) (Listed, error) {
	out := Listed{IDs: map[string]int64{}, Names: map[string]string{}}
	owner, repo, err := ownerRepo(repository)
	if err != nil {
		return out, err
	}
	opts := &github.ListCheckRunsOptions{Filter: github.Ptr("all"), ListOptions: github.ListOptions{PerPage: 100}}
	if c.appID != 0 {
		opts.AppID = &c.appID
	}
	for range maxCheckRunPages {
		var res *github.ListCheckRunsResults
		var resp *github.Response
		err := c.call(ctx, true, func() (*github.Response, error) {
			var err error
			res, resp, err = c.gh.Checks.ListCheckRunsForRef(ctx, owner, repo, sha, opts)
			return resp, err
		})
		if err != nil {
			return out, fmt.Errorf("check runs of %s: %w", sha, err)
		}
		for _, run := range res.CheckRuns {
			ext := run.GetExternalID()
			if ext != "" {
				out.IDs[ext] = run.GetID()
			}
			if _, seen := out.Names[run.GetName()]; !seen {
				out.Names[run.GetName()] = ext // newest first
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out, nil
}

// StatusContexts returns the contexts commit sha has a status of.
func (c *Client) StatusContexts(ctx context.Context, repository, sha string) (map[string]bool, error) {
	owner, repo, err := ownerRepo(repository)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	opts := &github.ListOptions{PerPage: 100}
	for range maxCheckRunPages {
		var res *github.CombinedStatus
		var resp *github.Response
		err := c.call(ctx, true, func() (*github.Response, error) {
			var err error
			res, resp, err = c.gh.Repositories.GetCombinedStatus(ctx, owner, repo, sha, opts)
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("statuses of %s: %w", sha, err)
		}
		for _, st := range res.Statuses {
			out[st.GetContext()] = true
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out, nil
}

// Status is a commit status as monohook writes it.
type Status struct {
	Context     string
	State       string // pending, success, failure, error
	Description string // at most 140 characters
	TargetURL   string
}

// CreateStatus sets the status st.Context of commit sha in repository.
// The latest status of a context is the one GitHub shows, so posting one
// again is harmless and 5xx answers are retried.
func (c *Client) CreateStatus(ctx context.Context, repository, sha string, st Status) error {
	owner, repo, err := ownerRepo(repository)
	if err != nil {
		return err
	}
	s := &github.RepoStatus{State: github.Ptr(st.State), Context: github.Ptr(st.Context), Description: optional(st.Description), TargetURL: optional(st.TargetURL)}
	err = c.call(ctx, true, func() (*github.Response, error) {
		_, resp, err := c.gh.Repositories.CreateStatus(ctx, owner, repo, sha, s)
		return resp, err
	})
	if err != nil {
		return fmt.Errorf("status %q of %s: %w", st.Context, sha, err)
	}
	return nil
}

// RetryAt says, for an error of a call that hit a rate limit it could not
// wait out, when to try again.
func RetryAt(err error) (time.Time, bool) {
	var rl *github.RateLimitError
	if errors.As(err, &rl) {
		return rl.Rate.Reset.Add(time.Second), true
	}
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &abuse) {
		if abuse.RetryAfter != nil {
			return time.Now().Add(*abuse.RetryAfter), true
		}
		return time.Now().Add(time.Minute), true
	}
	return time.Time{}, false
}

// PostCheck posts c on the commit p reports on (p.After in p.FullName):
// as a commit status with statuses, else as a check run, created when id
// is 0 and updated otherwise. It returns the check run's id.
func (c *Client) PostCheck(ctx context.Context, p *trigger.Push, ch report.Check, statuses bool, id int64) (int64, error) {
	if statuses {
		state, desc, url := ch.CommitStatus()
		return 0, c.CreateStatus(ctx, p.FullName, p.After, Status{Context: ch.Name, State: state, Description: desc, TargetURL: url})
	}
	run := CheckRun{Name: ch.Name, HeadSHA: p.After, ExternalID: ch.ExternalID, Status: ch.Status, Conclusion: ch.Conclusion,
		Title: ch.Title, Summary: ch.Summary, DetailsURL: ch.DetailsURL}
	if id == 0 {
		return c.CreateCheckRun(ctx, p.FullName, run)
	}
	return id, c.UpdateCheckRun(ctx, p.FullName, id, run)
}
