package codebuild

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

// A build moves IN_PROGRESS → its end as the fake is scripted; a failure
// names the phase that failed and what CodeBuild said.
func TestFollowBuildToTheEnd(t *testing.T) {
	for _, tt := range []struct {
		status, phase, conclusion, detail string
	}{
		{"SUCCEEDED", "", trigger.Success, "SUCCEEDED"},
		{"FAILED", "BUILD", trigger.Failure, "FAILED in phase BUILD: COMMAND_EXECUTION_ERROR: make test: exit status 2"},
		{"FAULT", "", trigger.Failure, "FAULT"},
		{"TIMED_OUT", "", trigger.TimedOut, "TIMED_OUT"},
		{"STOPPED", "", trigger.Cancelled, "STOPPED"},
	} {
		t.Run(tt.status, func(t *testing.T) {
			fake := fakeaws.NewCodeBuild()
			defer fake.Close()
			s := newStarter(t, fake)
			f := newFollower(t)
			fake.Script("api", fakeaws.Outcome{InProgress: 1, Status: tt.status, Phase: tt.phase, Summary: "make test: exit status 2"})
			req := request("api")
			started, err := s.Start(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			want := "https://us-east-1.console.aws.amazon.com/codesuite/codebuild/projects/api/build/api:build-0001/?region=us-east-1"
			if started.Progress.URL != want {
				t.Errorf("start's URL %q, want %q", started.Progress.URL, want)
			}
			if p, err := f.Follow(context.Background(), req, started); err != nil || p.Done || p.Detail != "IN_PROGRESS" {
				t.Fatalf("first poll: %+v %v", p, err)
			}
			p, err := f.Follow(context.Background(), req, started)
			if err != nil || !p.Done || p.Conclusion != tt.conclusion || p.Detail != tt.detail || p.URL != want {
				t.Errorf("%+v %v; want %s %q", p, err, tt.conclusion, tt.detail)
			}
		})
	}
}

// Builds followed while a BatchGetBuilds is out are asked about together
// in the next call.
func TestFollowsAreBatched(t *testing.T) {
	fake := fakeaws.NewCodeBuild()
	defer fake.Close()
	s := newStarter(t, fake)
	f := newFollower(t)
	fake.Script("api", fakeaws.Outcome{Status: "SUCCEEDED"})
	var started []trigger.Started
	for i := range 6 {
		req := request("api")
		req.Token = fmt.Sprintf("tok-%d", i)
		st, err := s.Start(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, st)
	}
	release := fake.Hold()
	defer release()
	var wg sync.WaitGroup
	follow := func(st trigger.Started) {
		defer wg.Done()
		if p, err := f.Follow(context.Background(), request("api"), st); err != nil || p.Conclusion != trigger.Success {
			t.Errorf("%s: %+v %v", st.ID, p, err)
		}
	}
	wg.Add(1)
	go follow(started[0])
	waitUntil(t, func() bool { return len(fake.Batches()) == 1 })
	for _, st := range started[1:] {
		wg.Add(1)
		go follow(st)
	}
	waitUntil(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.waiting) == 5 })
	release()
	wg.Wait()
	b := fake.Batches()
	if len(b) != 2 || len(b[0]) != 1 || len(b[1]) != 5 {
		t.Errorf("calls %v: want one for the first build, one for the five asked meanwhile", b)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		sleep()
	}
	t.Fatal("timed out")
}

// A build CodeBuild does not know is permanent; throttling is not.
func TestFollowBuildErrors(t *testing.T) {
	fake := fakeaws.NewCodeBuild()
	defer fake.Close()
	fake.Setenv(t)
	f := newFollower(t)
	_, err := f.Follow(context.Background(), request("api"), trigger.Started{ID: "api:gone"})
	if !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "does not know") {
		t.Errorf("unknown build: %v", err)
	}
	fake.FailNextGets("ThrottlingException", "ThrottlingException", "ThrottlingException", "ThrottlingException")
	_, err = f.Follow(context.Background(), request("api"), trigger.Started{ID: "api:gone"})
	if err == nil || errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("throttled: %v", err)
	}
}

func sleep() { time.Sleep(10 * time.Millisecond) }
