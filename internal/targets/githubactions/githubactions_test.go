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

func TestDispatch(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	c, err := githubapi.New(githubapi.Config{URL: g.URL, Token: "gh-token"})
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Repository: "acme/deploy", Workflow: "deploy.yml", Inputs: map[string]string{"sha": "{{.SHA}}", "service": "api"}}
	req := trigger.StartRequest{
		Target: trigger.NewTarget(Type, spec),
		Data:   trigger.TemplateData{Ref: "refs/heads/main", SHA: "0123abcd"},
	}
	got, err := (Starter{c}).Start(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	d := g.Dispatches()
	if len(d) != 1 || d[0].Repo != "acme/deploy" || d[0].Workflow != "deploy.yml" || d[0].Ref != "refs/heads/main" || d[0].Inputs["sha"] != "0123abcd" || !strings.Contains(got.Output, "deploy.yml") {
		t.Errorf("dispatch %+v, answer %+v", d, got)
	}
	spec.Ref = "release"
	req.Target = trigger.NewTarget(Type, spec)
	if _, err := (Starter{c}).Start(context.Background(), req); err != nil || g.Dispatches()[1].Ref != "release" {
		t.Errorf("ref template: %v %+v", err, g.Dispatches())
	}
	// A 5xx on a dispatch is not retried here: the run may exist.
	g.FailNext(1)
	if _, err := (Starter{c}).Start(context.Background(), req); err == nil || errors.Is(err, trigger.ErrPermanent) || len(g.Dispatches()) != 2 {
		t.Errorf("5xx dispatch: %v, %d dispatches", err, len(g.Dispatches()))
	}
}
