// Package githubactions is the github-actions target: a workflow_dispatch
// of a GitHub Actions workflow, sent by the GitHub client
// (internal/githubapi). It validates a target's fields (Check) and
// dispatches (Starter), and follows the run it started (Follower).
package githubactions

import (
	"context"
	"strconv"

	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/targets/render"
	"github.com/monohook/monohook/internal/trigger"
)

// Type is how rules name this kind.
const Type = "github-actions"

// Spec is a github-actions target's fields: a workflow_dispatch of
// Workflow (file name or id) in Repository (owner/name) at Ref (a
// template; default the pushed ref), with Inputs (templates).
type Spec struct {
	Repository string            `json:"repository,omitempty"`
	Workflow   string            `json:"workflow,omitempty"`
	Ref        string            `json:"ref,omitempty"`
	Inputs     map[string]string `json:"inputs,omitempty"`
}

// Check validates a github-actions target; its starts go by
// github-actions:OWNER/NAME/WORKFLOW.
func Check(t trigger.Target) (trigger.Target, string, error) {
	var s Spec
	if err := t.DecodeStrict(&s); err != nil {
		return t, "", err
	}
	c := render.NewCheck(false)
	if !trigger.ValidRepository(s.Repository) {
		c.Failf("repository %q: want owner/name", s.Repository)
	}
	if s.Workflow == "" {
		c.Failf("workflow: the workflow file name (deploy.yml) or id")
	}
	c.Template("ref", s.Ref)
	for k, v := range s.Inputs {
		c.Template("inputs."+k, v)
	}
	return trigger.NewTarget(Type, s), Type + ":" + s.Repository + "/" + s.Workflow, c.Err()
}

// Starter dispatches the target's workflow.
type Starter struct{ *githubapi.Client }

// Start implements trigger.Starter.
func (s Starter) Start(ctx context.Context, req trigger.StartRequest) (trigger.Started, error) {
	var t Spec
	if err := req.Target.Decode(&t); err != nil {
		return trigger.Started{}, err
	}
	ref := req.Data.Ref
	if t.Ref != "" {
		var err error
		if ref, err = render.Text(ctx, "ref", t.Ref, render.MaxValue, req.Data, nil); err != nil {
			return trigger.Started{}, err
		}
	}
	inputs, err := render.Map(ctx, t.Inputs, req.Data, nil)
	if err != nil {
		return trigger.Started{}, err
	}
	run, err := s.Dispatch(ctx, t.Repository, t.Workflow, ref, inputs)
	if err != nil {
		return trigger.Started{}, err
	}
	if run.ID == 0 {
		// A server without return_run_details: which run is not known.
		return trigger.Started{ID: "dispatched " + t.Workflow + " at " + ref}, nil
	}
	return trigger.Started{ID: strconv.FormatInt(run.ID, 10), Output: "dispatched " + t.Workflow + " at " + ref,
		Progress: trigger.Progress{URL: run.URL}}, nil
}
