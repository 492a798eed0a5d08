package githubapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/trigger"
)

func TestCheckRunCreatedFoundAndUpdated(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	c, _ := newClient(t, g)
	ctx := context.Background()
	id, err := c.CreateCheckRun(ctx, "acme/mono", CheckRun{Name: "monohook/api", HeadSHA: "bbb", ExternalID: "ext-1", Status: "queued", Title: "queued", Summary: "waiting"})
	if err != nil || id == 0 {
		t.Fatalf("create: %d %v", id, err)
	}
	listed, err := c.CheckRuns(ctx, "acme/mono", "bbb")
	if err != nil || listed.IDs["ext-1"] != id || listed.Names["monohook/api"] != "ext-1" {
		t.Fatalf("find by external id: %+v %v", listed, err)
	}
	if err := c.UpdateCheckRun(ctx, "acme/mono", id, CheckRun{Name: "monohook/api", ExternalID: "ext-1", Status: "completed", Conclusion: "success", Title: "done", Summary: "ok", DetailsURL: "https://example.com/x"}); err != nil {
		t.Fatal(err)
	}
	runs := g.CheckRuns()
	if len(runs) != 1 || runs[0].Status != "completed" || runs[0].Conclusion != "success" || runs[0].DetailsURL != "https://example.com/x" {
		t.Errorf("runs %+v", runs)
	}
	// What GitHub refuses is permanent: a completed run without conclusion.
	_, err = c.CreateCheckRun(ctx, "acme/mono", CheckRun{Name: "x", HeadSHA: "bbb", Status: "completed", Title: "t", Summary: "s"})
	if !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "conclusion") {
		t.Errorf("completed without conclusion: %v", err)
	}
	_, err = c.CreateCheckRun(ctx, "acme/mono", CheckRun{Name: "x", HeadSHA: "bbb", Title: "t", Summary: strings.Repeat("x", 70000)})
	if !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("summary over 65,535: %v", err)
	}
}

func TestCommitStatus(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	c, _ := newClient(t, g)
	ctx := context.Background()
	if err := c.CreateStatus(ctx, "acme/mono", "bbb", Status{Context: "monohook/api", State: "success", Description: "no watched path changed"}); err != nil {
		t.Fatal(err)
	}
	if st := g.Statuses(); len(st) != 1 || st[0].Context != "monohook/api" || st[0].State != "success" || st[0].SHA != "bbb" {
		t.Errorf("%+v", st)
	}
	if got, err := c.StatusContexts(ctx, "acme/mono", "bbb"); err != nil || !got["monohook/api"] || len(got) != 1 {
		t.Errorf("contexts %v %v", got, err)
	}
	if err := c.CreateStatus(ctx, "acme/mono", "bbb", Status{Context: "c", State: "skipped"}); !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("state skipped: %v", err)
	}
	if err := c.CreateStatus(ctx, "acme/mono", "bbb", Status{Context: "c", State: "success", Description: strings.Repeat("x", 141)}); !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("description of 141: %v", err)
	}
}

func TestRateLimitPastTheWaitSaysWhenToRetry(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	c, _ := newClient(t, g)
	g.RateLimitNext(1, time.Hour)
	err := c.CreateStatus(context.Background(), "acme/mono", "bbb", Status{Context: "c", State: "success"})
	at, ok := RetryAt(err)
	if !ok || time.Until(at) < 50*time.Minute {
		t.Errorf("retry at %v (%v): %v", at, ok, err)
	}
	if _, ok := RetryAt(errors.New("other")); ok {
		t.Error("RetryAt of another error")
	}
}
