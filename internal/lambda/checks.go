package lambda

import (
	"context"
	"time"

	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/report"
	"github.com/monohook/monohook/internal/trigger"
)

// Checks posts the eval function's initial checks: the skipped ones
// completed, the started ones in progress, the failed starts failed. The
// EventBridge-driven status function completes the started ones.
type Checks struct {
	GitHub *githubapi.Client
	// Statuses posts commit statuses instead of check runs.
	Statuses bool
	// Timeout bounds all of one push's reporting (default 20 s): GitHub
	// being slow or down never holds up the function for long, and never
	// fails it.
	Timeout time.Duration
}

// post posts the checks of out, the outcome of push. Errors are logged,
// never returned: the starts are made, and reporting them must not make
// Lambda retry the event.
func (e *Eval) postChecks(ctx context.Context, push *trigger.Push, out trigger.Outcome) {
	c := e.Checks
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in := report.Input{Event: out.Recorded().Apply(push), Result: out.Result, Starts: map[string]report.Start{}}
	for _, s := range out.Starts {
		in.Starts[s.Pipeline] = startOf(s)
	}
	log := e.Log.With("delivery", push.DeliveryID)
	checks := report.Checks(in)
	recorded := e.recordExecutions(ctx, in, out, checks, log)
	if len(checks) == 0 {
		return
	}
	// A retried event (a failed start) posts again: the check runs of the
	// first attempt are updated, not doubled; and a pipeline not selected
	// never covers another push's check of its name (report.Check.Posts).
	var listed githubapi.Listed
	var err error
	if c.Statuses {
		var contexts map[string]bool
		contexts, err = c.GitHub.StatusContexts(ctx, in.Event.FullName, in.Event.After)
		listed.Names = map[string]string{}
		for name := range contexts {
			listed.Names[name] = ""
		}
	} else {
		listed, err = c.GitHub.CheckRuns(ctx, in.Event.FullName, in.Event.After)
	}
	if err != nil {
		log.Warn("GitHub checks not posted: the commit's checks could not be listed", "err", err)
		return
	}
	for _, ch := range checks {
		if ext, exists := listed.Names[ch.Name]; !ch.Posts(ext, exists) || recorded[ch.Name] {
			continue
		}
		if _, err := c.GitHub.PostCheck(ctx, in.Event, ch, c.Statuses, listed.IDs[ch.ExternalID]); err != nil {
			log.Warn("GitHub check not posted", "check", ch.Name, "err", err)
			if ctx.Err() != nil {
				return
			}
		}
	}
}
