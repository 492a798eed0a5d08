package codebuild

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/trigger"
)

func newStarter(t *testing.T, fake *fakeaws.CodeBuild) *Starter {
	t.Helper()
	fake.Setenv(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return New(cfg)
}

func request(project string) trigger.StartRequest {
	return trigger.StartRequest{Name: "codebuild:" + project, Token: "monohook-tok",
		Target: trigger.NewTarget(Type, Spec{Project: project, Variables: map[string]string{"BRANCH": "{{.Branch}}"}}),
		Data:   trigger.TemplateData{Branch: "main", SHA: "0123abcd"}}
}

func TestStartBuildAtTheCommit(t *testing.T) {
	fake := fakeaws.NewCodeBuild()
	defer fake.Close()
	s := newStarter(t, fake)
	got, err := s.Start(context.Background(), request("api"))
	if err != nil {
		t.Fatal(err)
	}
	c := fake.Calls()[0]
	if got.ID != "api:build-0001" || c.Project != "api" || c.SourceVersion != "0123abcd" || c.Token != "monohook-tok" || c.Env["BRANCH"] != "main" {
		t.Errorf("got %+v, call %+v", got, c)
	}
	// The same token again is the same build.
	if again, err := s.Start(context.Background(), request("api")); err != nil || again != got || fake.Builds() != 1 {
		t.Errorf("repeat: %+v %v, %d builds", again, err, fake.Builds())
	}
}

func TestErrors(t *testing.T) {
	fake := fakeaws.NewCodeBuild()
	defer fake.Close()
	fake.OnlyProjects("api")
	s := newStarter(t, fake)
	if _, err := s.Start(context.Background(), request("missing")); !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("missing project: %v", err)
	}
	fake.FailNext("ThrottlingException", "ThrottlingException")
	if _, err := s.Start(context.Background(), request("api")); err != nil {
		t.Errorf("throttled twice, then fine: %v", err)
	}
}
