package codepipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/monohook/monohook/internal/fakeaws"
	"github.com/monohook/monohook/internal/trigger"
)

// newStarter points the real SDK at fake through the standard
// AWS_ENDPOINT_URL_CODEPIPELINE variable, as a deployment would.
func newStarter(t *testing.T, fake *fakeaws.CodePipeline) *Starter {
	t.Helper()
	fake.Setenv(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return New(cfg)
}

func TestStartSendsNameAndToken(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	s := newStarter(t, fake)
	id, err := s.Start(context.Background(), plain("api-deploy", "monohook-abc"))
	if err != nil {
		t.Fatal(err)
	}
	if id.ID == "" {
		t.Error("no execution id")
	}
	calls := fake.Calls()
	if len(calls) != 1 || calls[0].Name != "api-deploy" || calls[0].Token != "monohook-abc" || calls[0].Variables != nil || calls[0].SourceRevisions != nil {
		t.Errorf("calls %+v", calls)
	}
	// The same token again is the same execution.
	again, err := s.Start(context.Background(), plain("api-deploy", "monohook-abc"))
	if err != nil || again != id {
		t.Errorf("repeat: %+v %v, want %+v", again, err, id)
	}
}

func plain(pipeline, token string) trigger.StartRequest {
	return trigger.StartRequest{Name: pipeline, Token: token}
}

// A v2 target pins the run to the pushed commit and sets variables from
// templates.
func TestStartV2SourceRevisionAndVariables(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	s := newStarter(t, fake)
	spec := Spec{Pipeline: "api", SourceRevision: true, SourceAction: "Source",
		Variables: map[string]string{"COMMIT": "{{.SHA}}", "WHERE": "{{.Repo}}@{{.Branch}} ({{.ChangedPathsCount}})"},
	}
	req := trigger.StartRequest{Name: "api", Token: "tok", Target: trigger.NewTarget(Type, spec), Data: trigger.TemplateData{Repo: "acme/mono", Branch: "main", SHA: "0123abcd", ChangedPathsCount: 3}}
	if _, err := s.Start(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	c := fake.Calls()[0]
	if c.Variables["COMMIT"] != "0123abcd" || c.Variables["WHERE"] != "acme/mono@main (3)" {
		t.Errorf("variables %v", c.Variables)
	}
	if len(c.SourceRevisions) != 1 || c.SourceRevisions[0] != (fakeaws.SourceRevision{ActionName: "Source", RevisionType: "COMMIT_ID", RevisionValue: "0123abcd"}) {
		t.Errorf("source revisions %+v", c.SourceRevisions)
	}
	// A template that fails is permanent: retrying renders it the same.
	spec.Variables = map[string]string{"X": "{{.Nope}}"}
	req.Target = trigger.NewTarget(Type, spec)
	if _, err := s.Start(context.Background(), req); !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("bad template: %v", err)
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	fake.FailNext("p", "ThrottlingException", "ThrottlingException")
	s := newStarter(t, fake)
	if _, err := s.Start(context.Background(), plain("p", "t")); err != nil {
		t.Fatalf("throttled twice then fine: %v", err)
	}
	if n := len(fake.Calls()); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

func TestErrorNamesCode(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	fake.OnlyPipelines("exists")
	s := newStarter(t, fake)
	_, err := s.Start(context.Background(), plain("missing", "t"))
	if err == nil || !strings.HasPrefix(err.Error(), "PipelineNotFoundException") || !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("err %v", err)
	}
	if n := len(fake.Calls()); n != 1 {
		t.Errorf("a permanent error was retried: %d calls", n)
	}
	fake.FailNext("exists", "InternalFailure", "InternalFailure", "InternalFailure", "InternalFailure")
	if _, err := s.Start(context.Background(), plain("exists", "t2")); err == nil || errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("a 5xx after the SDK's retries: %v, want a transient error", err)
	}
}

// Credentials AWS does not accept, and a role without the permission, fail
// a start for good at once with a reason to act on: retrying with the same
// credentials only repeats the answer.
func TestAuthenticationErrorsArePermanent(t *testing.T) {
	for _, code := range []string{"UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException", "InvalidClientTokenId"} {
		t.Run(code, func(t *testing.T) {
			fake := fakeaws.NewCodePipeline()
			defer fake.Close()
			fake.FailNext("p", code, code, code)
			s := newStarter(t, fake)
			_, err := s.Start(context.Background(), plain("p", "t"))
			if err == nil || !errors.Is(err, trigger.ErrPermanent) || !strings.HasPrefix(err.Error(), code) || !strings.Contains(err.Error(), "credentials") {
				t.Errorf("err %v", err)
			}
			if n := len(fake.Calls()); n != 1 {
				t.Errorf("an authentication error was retried: %d calls", n)
			}
		})
	}
}
