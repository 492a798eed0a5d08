package main

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/pflag"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/githubapi"
	"github.com/monohook/monohook/internal/targets"
	"github.com/monohook/monohook/internal/trigger"
)

// registerFollow adds serve's flags for following started executions.
func registerFollow(f *pflag.FlagSet, o *deliveries.Options) {
	f.DurationVar(&o.FollowFor, "follow-for", 24*time.Hour, "how long a started CodePipeline execution, CodeBuild build or workflow run is followed; after it its result is timed_out (the pipeline itself may still run)")
	f.IntVar(&o.FollowWorkers, "follow-workers", 16, "executions asked about at once by this process (following has its own workers: it never holds up evaluations or starts)")
	f.DurationVar(&o.FollowPoll, "follow-poll", 10*time.Second, "wait before an execution is first asked about; the wait doubles at each poll, with jitter, up to --follow-poll-max")
	f.DurationVar(&o.FollowPollMax, "follow-poll-max", 5*time.Minute, "longest wait between two polls of one execution")
}

// checkFollow refuses follow flags that would follow nothing or poll
// without pause.
func checkFollow(o deliveries.Options) error {
	switch {
	case o.FollowFor <= 0:
		return fmt.Errorf("--follow-for %s: must be positive", o.FollowFor)
	case o.FollowWorkers < 1:
		return fmt.Errorf("--follow-workers %d: must be at least 1", o.FollowWorkers)
	case o.FollowPoll < time.Second:
		return fmt.Errorf("--follow-poll %s: must be at least 1s", o.FollowPoll)
	case o.FollowPollMax < o.FollowPoll:
		return fmt.Errorf("--follow-poll-max %s: must be at least --follow-poll (%s)", o.FollowPollMax, o.FollowPoll)
	}
	return nil
}

// followers returns a Follower per target type that has one; awsCfg and
// gh configure them as they do the starters.
func (f *targetFlags) followers(awsCfg *aws.Config, gh *githubapi.Client) trigger.Followers {
	return targets.Followers(targets.Config{AWS: awsCfg, GitHub: gh})
}
