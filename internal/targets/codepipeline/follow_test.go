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

func newFollower(t *testing.T) *Follower {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return NewFollower(cfg)
}

// An execution moves InProgress → Succeeded / Failed / Stopped as the fake
// is scripted; each poll is one GetPipelineExecution, and the result says
// the status, the summary for a failure, and the console page.
func TestFollowToTheEnd(t *testing.T) {
	for _, tt := range []struct {
		status, summary, conclusion, detail string
	}{
		{"Succeeded", "", trigger.Success, "Succeeded"},
		{"Failed", "Action Deploy failed: access denied to bucket", trigger.Failure, "Failed: Action Deploy failed: access denied to bucket"},
		{"Stopped", "", trigger.Cancelled, "Stopped"},
		{"Superseded", "", trigger.Cancelled, "Superseded"},
	} {
		t.Run(tt.status, func(t *testing.T) {
			fake := fakeaws.NewCodePipeline()
			defer fake.Close()
			s := newStarter(t, fake)
			f := newFollower(t)
			fake.Script("api", fakeaws.Outcome{InProgress: 2, Status: tt.status, Summary: tt.summary})
			req := followed("api")
			started, err := s.Start(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			want := "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/api/executions/" + started.ID + "/timeline?region=us-east-1"
			if started.Progress.URL != want {
				t.Errorf("start's URL %q, want %q", started.Progress.URL, want)
			}
			for i := range 2 {
				p, err := f.Follow(context.Background(), req, started)
				if err != nil || p.Done || p.Detail != "InProgress" || p.URL != want {
					t.Fatalf("poll %d: %+v %v; want still in progress", i, p, err)
				}
			}
			p, err := f.Follow(context.Background(), req, started)
			if err != nil || !p.Done || p.Conclusion != tt.conclusion || p.Detail != tt.detail || p.URL != want {
				t.Errorf("%+v %v; want %s %q", p, err, tt.conclusion, tt.detail)
			}
			if n := fake.Gets(); n != 3 {
				t.Errorf("%d calls, want 3", n)
			}
		})
	}
}

func followed(pipeline string) trigger.StartRequest {
	return trigger.StartRequest{Name: pipeline, Token: "monohook-" + pipeline}
}

// No such execution is permanent; throttling is not.
func TestFollowErrors(t *testing.T) {
	fake := fakeaws.NewCodePipeline()
	defer fake.Close()
	fake.Setenv(t)
	f := newFollower(t)
	_, err := f.Follow(context.Background(), followed("api"), trigger.Started{ID: "exec-gone"})
	if !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "PipelineExecutionNotFoundException") {
		t.Errorf("no such execution: %v", err)
	}
	// More throttling than the SDK's retries absorb.
	fake.FailNextGets("ThrottlingException", "ThrottlingException", "ThrottlingException", "ThrottlingException")
	_, err = f.Follow(context.Background(), followed("api"), trigger.Started{ID: "exec-gone"})
	if err == nil || errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("throttled: %v", err)
	}
}
