package trigger

import (
	"context"
	"errors"
)

// Errors a delivery store answers to an accepted delivery; the webhook
// handler turns them into answers for GitHub.
var (
	// ErrDuplicate: the delivery id was accepted before; it is acknowledged
	// again and not processed a second time.
	ErrDuplicate = errors.New("delivery already accepted")
	// ErrBusy: the delivery could not be taken now; GitHub is told to
	// come back later.
	ErrBusy = errors.New("too many deliveries in flight")
	// ErrUnstorable: the database refuses this delivery's content; sending
	// it again cannot help, so it is refused (422), not answered 503.
	ErrUnstorable = errors.New("the database cannot store this delivery")
)

// DryRun is the Starter of a dry run: it calls out to nothing and answers
// that it started nothing, so that every start of a dry run is decided,
// queued and recorded like a real one, and nothing else has to know
// whether the run is dry.
type DryRun struct{}

// Start implements Starter.
func (DryRun) Start(context.Context, StartRequest) (Started, error) {
	return Started{DryRun: true}, nil
}
