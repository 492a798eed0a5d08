package trigger

import (
	"context"
	"errors"
	"time"
)

// ErrDeliveryGone is GitHub answering that it no longer has a delivery
// (past the days it keeps them), or has it without its request's payload.
var ErrDeliveryGone = errors.New("GitHub no longer has this delivery")

// HookDelivery is one delivery of the webhook as GitHub lists it. A
// redelivery is an entry of its own with its original's GUID.
type HookDelivery struct {
	ID          int64  // GitHub's id of this attempt
	GUID        string // the X-GitHub-Delivery header it was sent with
	Event       string
	Action      string
	Status      string // GitHub's word for the outcome: "OK", "Invalid HTTP Response: 503", …
	StatusCode  int    // the receiver's answer; 0 when none came (refused, timed out)
	Redelivery  bool
	DeliveredAt time.Time
}

// Failed reports whether the receiver did not acknowledge the delivery.
func (d HookDelivery) Failed() bool { return d.StatusCode < 200 || d.StatusCode > 299 }

// HookRequest is the request GitHub sent for a delivery: its headers and
// its payload, the JSON object GitHub re-serialized (for a form-encoded
// hook too: the payload field's JSON, not the form).
type HookRequest struct {
	Headers map[string]string
	Payload []byte
	// Done, when set, is called once the payload is no longer held (it
	// was stored or left alone): a large payload holds the fetching
	// client's one large-answer turn until then.
	Done func()
}

// HookDeliveries is GitHub's record of the webhook's deliveries.
type HookDeliveries interface {
	// List calls page with the deliveries, newest first, a page at a
	// time, until page returns false or none are left.
	List(ctx context.Context, page func([]HookDelivery) bool) error
	// Get returns the request of the delivery GitHub calls id.
	Get(ctx context.Context, id int64) (HookRequest, error)
	// Redeliver asks GitHub to send the delivery id again.
	Redeliver(ctx context.Context, id int64) error
}
