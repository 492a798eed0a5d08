package trigger

import (
	"context"
	"fmt"
)

// Conclusions of an execution that ended, named as GitHub's check runs
// name them.
const (
	Success   = "success"
	Failure   = "failure"
	Cancelled = "cancelled"
	TimedOut  = "timed_out"
)

// Progress is how an execution a target started is doing.
type Progress struct {
	// Done: the execution ended, and Conclusion says how (Success,
	// Failure, Cancelled, TimedOut).
	Done       bool   `json:"done,omitempty"`
	Conclusion string `json:"conclusion,omitempty"`
	// Detail is a line for people: the state the target reported, the
	// stage or phase that failed.
	Detail string `json:"detail,omitempty"`
	// URL is where a person sees the execution (a console page, a
	// workflow run); empty when there is none.
	URL string `json:"url,omitempty"`
}

// A Follower looks up how an execution its kind's Starter started is
// doing. An error that asking again cannot fix wraps ErrPermanent.
type Follower interface {
	Follow(ctx context.Context, req StartRequest, started Started) (Progress, error)
}

// Followers sends each follow to the Follower of its target type.
type Followers map[string]Follower

// Follow implements Follower. A kind without a Follower cannot be
// followed: that is permanent.
func (f Followers) Follow(ctx context.Context, req StartRequest, started Started) (Progress, error) {
	fl := f[req.Type()]
	if fl == nil {
		return Progress{}, fmt.Errorf("target type %s cannot be followed in this process (%w)", req.Type(), ErrPermanent)
	}
	return fl.Follow(ctx, req, started)
}
