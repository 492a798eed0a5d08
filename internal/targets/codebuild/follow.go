package codebuild

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/codebuild/types"

	"github.com/monohook/monohook/internal/awserr"
	"github.com/monohook/monohook/internal/trigger"
)

// maxBatch is the most ids BatchGetBuilds takes in one call.
const maxBatch = 100

// Follower asks BatchGetBuilds how builds are doing
// (codebuild:BatchGetBuilds). The builds asked about while a call is out
// go in the next call together, up to maxBatch: many builds followed at
// once cost a call per batch, not one each.
type Follower struct {
	client *codebuild.Client
	region string

	mu      sync.Mutex
	waiting []*ask
	sending bool // a caller is sending the waiting asks
}

// ask is one build asked about, and its answer once there.
type ask struct {
	id    string
	build *types.Build // nil: not found
	err   error
	done  chan struct{}
}

// NewFollower returns a Follower using cfg, as New does.
func NewFollower(cfg aws.Config) *Follower {
	return &Follower{client: codebuild.NewFromConfig(cfg), region: cfg.Region}
}

// Follow implements trigger.Follower.
func (f *Follower) Follow(ctx context.Context, req trigger.StartRequest, started trigger.Started) (trigger.Progress, error) {
	var t Spec
	if err := req.Target.Decode(&t); err != nil {
		return trigger.Progress{}, err
	}
	a := &ask{id: started.ID, done: make(chan struct{})}
	f.mu.Lock()
	f.waiting = append(f.waiting, a)
	lead := !f.sending
	f.sending = true
	f.mu.Unlock()
	if lead {
		f.send()
	}
	select {
	case <-a.done:
	case <-ctx.Done():
		return trigger.Progress{}, fmt.Errorf("follow build %s: %w", started.ID, ctx.Err())
	}
	switch {
	case a.err != nil:
		return trigger.Progress{}, a.err
	case a.build == nil:
		return trigger.Progress{}, fmt.Errorf("follow build %s: CodeBuild does not know it (%w)", started.ID, trigger.ErrPermanent)
	}
	return progress(a.build, consoleURL(f.region, t.Project, started.ID)), nil
}

// send asks about the waiting builds, a batch at a time, until none wait.
// The batches are others' asks too, so they do not end with the caller's
// context.
func (f *Follower) send() {
	for {
		f.mu.Lock()
		n := min(len(f.waiting), maxBatch)
		if n == 0 {
			f.sending = false
			f.mu.Unlock()
			return
		}
		batch := f.waiting[:n:n]
		f.waiting = f.waiting[n:]
		f.mu.Unlock()
		f.batch(batch)
	}
}

func (f *Follower) batch(asks []*ask) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := make([]string, 0, len(asks))
	seen := map[string]bool{}
	for _, a := range asks {
		if !seen[a.id] {
			seen[a.id] = true
			ids = append(ids, a.id)
		}
	}
	out, err := f.client.BatchGetBuilds(ctx, &codebuild.BatchGetBuildsInput{Ids: ids})
	builds := map[string]*types.Build{}
	if err == nil {
		for i := range out.Builds {
			builds[aws.ToString(out.Builds[i].Id)] = &out.Builds[i]
		}
	} else {
		err = awserr.Classify(err, fmt.Sprintf("follow %d builds", len(ids)), "InvalidInputException")
	}
	for _, a := range asks {
		a.build, a.err = builds[a.id], err
		close(a.done)
	}
}

// progress says what a build's status means; a status this code does not
// know yet is taken for one still running.
func progress(b *types.Build, url string) trigger.Progress {
	p := trigger.Progress{URL: url, Detail: string(b.BuildStatus)}
	switch b.BuildStatus {
	case types.StatusTypeSucceeded:
		p.Done, p.Conclusion = true, trigger.Success
	case types.StatusTypeFailed, types.StatusTypeFault:
		p.Done, p.Conclusion = true, trigger.Failure
	case types.StatusTypeTimedOut:
		p.Done, p.Conclusion = true, trigger.TimedOut
	case types.StatusTypeStopped:
		p.Done, p.Conclusion = true, trigger.Cancelled
	}
	if p.Done && p.Conclusion != trigger.Success {
		p.Detail += failedPhase(b.Phases)
	}
	return p
}

// failedPhase names the phase that did not succeed, and what CodeBuild
// said of it.
func failedPhase(phases []types.BuildPhase) string {
	for _, ph := range phases {
		if ph.PhaseStatus == "" || ph.PhaseStatus == types.StatusTypeSucceeded {
			continue
		}
		s := " in phase " + string(ph.PhaseType)
		for _, c := range ph.Contexts {
			if m := aws.ToString(c.Message); m != "" {
				s += ": " + aws.ToString(c.StatusCode) + ": " + m
				break
			}
		}
		return s
	}
	return ""
}
