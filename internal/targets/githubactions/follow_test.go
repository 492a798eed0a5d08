package githubactions

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/trigger"
)

func client(t *testing.T, g *fakegithub.GitHub) *githubapi.Client {
	t.Helper()
	c, err := githubapi.New(githubapi.Config{URL: g.URL, Token: "gh-token"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dispatchRequest() trigger.StartRequest {
	return trigger.StartRequest{Target: trigger.NewTarget(Type, Spec{Repository: "acme/deploy", Workflow: "deploy.yml"}),
		Data: trigger.TemplateData{Ref: "refs/heads/main"}}
}

// The dispatch asks for its run (return_run_details), and the run is
// followed until it completes.
func TestFollowTheDispatchedRun(t *testing.T) {
	for conclusion, want := range map[string]string{"success": trigger.Success, "failure": trigger.Failure, "cancelled": trigger.Cancelled, "timed_out": trigger.TimedOut} {
		t.Run(conclusion, func(t *testing.T) {
			g := fakegithub.New("gh-token")
			defer g.Close()
			c := client(t, g)
			g.ScriptRuns("deploy.yml", fakegithub.RunOutcome{InProgress: 1, Conclusion: conclusion})
			req := dispatchRequest()
			started, err := (Starter{c}).Start(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			page := g.URL + "/acme/deploy/actions/runs/" + started.ID
			if started.ID != "9001" || started.Progress.URL != page {
				t.Fatalf("started %+v", started)
			}
			f := Follower{c}
			if p, err := f.Follow(context.Background(), req, started); err != nil || p.Done || p.Detail != "in_progress" || p.URL != page {
				t.Fatalf("first poll %+v %v", p, err)
			}
			p, err := f.Follow(context.Background(), req, started)
			if err != nil || !p.Done || p.Conclusion != want || p.Detail != "completed: "+conclusion {
				t.Errorf("%+v %v; want %s", p, err, want)
			}
		})
	}
}

// A GitHub Enterprise Server that answers the dispatch 204, without the
// run: the start works, the run cannot be followed (permanent, no
// failure), and nothing is asked.
func TestRunWithoutDetailsCannotBeFollowed(t *testing.T) {
	for name, server := range map[string]func(*fakegithub.GitHub){
		"ignores the key (204)":            (*fakegithub.GitHub).WithoutRunDetails,
		"refuses the key (422, GHES 3.19)": (*fakegithub.GitHub).RefuseRunDetails,
	} {
		t.Run(name, func(t *testing.T) {
			g := fakegithub.New("gh-token")
			defer g.Close()
			server(g)
			c := client(t, g)
			req := dispatchRequest()
			started, err := (Starter{c}).Start(context.Background(), req)
			if err != nil || started.ID != "dispatched deploy.yml at refs/heads/main" || started.Progress.URL != "" || len(g.Dispatches()) != 1 {
				t.Fatalf("started %+v %v, %d dispatches", started, err, len(g.Dispatches()))
			}
			_, err = (Follower{c}).Follow(context.Background(), req, started)
			if !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "cannot be followed") || g.RunPolls() != 0 {
				t.Errorf("%v, %d polls", err, g.RunPolls())
			}
		})
	}
}
