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
	id, err := s.Start(context.Background(), "api-deploy", "monohook-abc")
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Error("no execution id")
	}
	calls := fake.Calls()
	if len(calls) != 1 || calls[0] != (fakeaws.Start{Name: "api-deploy", Token: "monohook-abc"}) {
		t.Errorf("calls %+v", calls)
	}
	// The same token again is the same execution.
	again, err := s.Start(context.Background(), "api-deploy", "monohook-abc")
	if err != nil || again != id {
		t.Errorf("repeat: %q %v, want %q", again, err, id)
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	fake.FailNext("p", "ThrottlingException", "ThrottlingException")
	s := newStarter(t, fake)
	if _, err := s.Start(context.Background(), "p", "t"); err != nil {
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
	_, err := s.Start(context.Background(), "missing", "t")
	if err == nil || !strings.HasPrefix(err.Error(), "PipelineNotFoundException") || !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("err %v", err)
	}
	if n := len(fake.Calls()); n != 1 {
		t.Errorf("a permanent error was retried: %d calls", n)
	}
	fake.FailNext("exists", "InternalFailure", "InternalFailure", "InternalFailure", "InternalFailure")
	if _, err := s.Start(context.Background(), "exists", "t2"); err == nil || errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("a 5xx after the SDK's retries: %v, want a transient error", err)
	}
}
