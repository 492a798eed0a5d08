package githubactions

import (
	"context"
	"fmt"
	"strconv"

	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/trigger"
)

// Follower asks GitHub how a dispatched run is doing (GET
// /repos/{owner}/{repo}/actions/runs/{id}; the "Actions: read"
// permission).
type Follower struct{ *githubapi.Client }

// Follow implements trigger.Follower. A start without a run id (a server
// that answered the dispatch 204, without the run) cannot be followed.
func (f Follower) Follow(ctx context.Context, req trigger.StartRequest, started trigger.Started) (trigger.Progress, error) {
	var t Spec
	if err := req.Target.Decode(&t); err != nil {
		return trigger.Progress{}, err
	}
	id, err := strconv.ParseInt(started.ID, 10, 64)
	if err != nil || id <= 0 {
		return trigger.Progress{}, fmt.Errorf("GitHub did not say which run the dispatch of %s started (a server without return_run_details), so it cannot be followed (%w)",
			t.Workflow, trigger.ErrPermanent)
	}
	run, err := f.WorkflowRun(ctx, t.Repository, id)
	if err != nil {
		return trigger.Progress{}, err
	}
	p := trigger.Progress{URL: run.GetHTMLURL(), Detail: run.GetStatus()}
	if run.GetStatus() != "completed" {
		return p, nil
	}
	p.Done, p.Detail = true, "completed: "+run.GetConclusion()
	p.Conclusion = conclusion(run.GetConclusion())
	return p, nil
}

// conclusion is a completed run's conclusion as a trigger conclusion:
// neutral and skipped pass, as they do for a required check; a run that
// waits for a person (action_required) or never started is a failure; a
// stale run was replaced, like a cancelled one.
func conclusion(c string) string {
	switch c {
	case "success", "neutral", "skipped":
		return trigger.Success
	case "cancelled", "stale":
		return trigger.Cancelled
	case "timed_out":
		return trigger.TimedOut
	default:
		return trigger.Failure
	}
}
