package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

// MaxRedeliveries bounds the redeliveries one invocation asks for, so that
// one invocation ends within its timeout; the next takes the rest.
const MaxRedeliveries = 1000

// Redeliver is the recover role, invoked by a schedule: it asks GitHub to
// deliver again each delivery of the last Window that never reached the
// webhook. Lambda mode has no database: it remembers nothing, and goes by
// what GitHub reports (a GUID with any acknowledged attempt, the original
// or a redelivery, was delivered).
type Redeliver struct {
	GitHub  trigger.HookDeliveries
	Window  time.Duration
	Handles func(event, action string) bool
	Log     *slog.Logger
}

// Redelivered is an invocation's account.
type Redelivered struct {
	Listed      int      `json:"listed"`
	Failed      int      `json:"failed"`
	Redelivered []string `json:"redelivered"`
	Left        int      `json:"left,omitempty"` // past MaxRedeliveries: for the next invocation
	// Refused counts the failed deliveries left alone because the webhook
	// refused their content (see refusedForGood); Errors the redeliveries
	// GitHub could not be asked for this time (the next invocation asks
	// again, as they are still failed).
	Refused int `json:"refused,omitempty"`
	Errors  int `json:"errors,omitempty"`
}

// refusedForGood reports whether the webhook's answer to a delivery
// refused its content: a malformed payload (400), one too large (413), of
// a content type it does not read (415) or that it could not use (422).
// The same bytes get the same answer, so redelivering them every run of
// the window would only repeat it. A refused signature (401, 403), a
// missing route (404) or a server error may succeed once the
// configuration or the service is mended, and are redelivered.
func refusedForGood(d trigger.HookDelivery) bool {
	switch d.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// Handle takes the schedule's event (its content is not needed).
func (r *Redeliver) Handle(ctx context.Context, _ json.RawMessage) (Redelivered, error) {
	var out Redelivered
	failed, err := r.failed(ctx, &out)
	if err != nil {
		return out, err
	}
	out.Failed = len(failed)
	for i, d := range failed {
		if i == MaxRedeliveries {
			out.Left = len(failed) - i
			r.Log.Warn("more failed deliveries than one invocation redelivers; the next invocation asks for the rest", "left", out.Left)
			break
		}
		if refusedForGood(d) {
			out.Refused++
			r.Log.Info("not redelivered: the webhook refused its content", "delivery", d.GUID, "github_id", d.ID, "status_code", d.StatusCode)
			continue
		}
		if err := r.GitHub.Redeliver(ctx, d.ID); err != nil {
			if ctx.Err() != nil {
				return out, fmt.Errorf("redeliver %s: %w", d.GUID, err)
			}
			// One delivery GitHub will not redeliver now must not keep the
			// others of the window from being asked for.
			out.Errors++
			r.Log.Warn("redelivery not asked for; the next invocation asks again", "delivery", d.GUID, "github_id", d.ID, "permanent", errors.Is(err, trigger.ErrPermanent), "err", err)
			continue
		}
		r.Log.Info("redelivery asked for", "delivery", d.GUID, "github_id", d.ID, "event", d.Event, "delivered_at", d.DeliveredAt, "github_status", d.Status)
		out.Redelivered = append(out.Redelivered, d.GUID)
	}
	r.Log.Info("recover done", "listed", out.Listed, "failed", out.Failed, "redelivered", len(out.Redelivered), "refused", out.Refused, "errors", out.Errors)
	return out, nil
}

// failed lists the window's deliveries, newest first, and returns, oldest
// first, the newest attempt of each GUID monohook acts on that no attempt
// delivered.
func (r *Redeliver) failed(ctx context.Context, out *Redelivered) ([]trigger.HookDelivery, error) {
	since := time.Now().Add(-r.Window)
	delivered := map[string]bool{}
	newest := map[string]trigger.HookDelivery{}
	var order []string
	err := r.GitHub.List(ctx, func(page []trigger.HookDelivery) bool {
		for _, d := range page {
			if d.DeliveredAt.Before(since) {
				return false
			}
			out.Listed++
			if !r.Handles(d.Event, d.Action) {
				continue
			}
			if !d.Failed() {
				delivered[d.GUID] = true
			}
			if _, ok := newest[d.GUID]; !ok {
				newest[d.GUID] = d
				order = append(order, d.GUID)
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	var failed []trigger.HookDelivery
	for i := len(order) - 1; i >= 0; i-- {
		if g := order[i]; !delivered[g] {
			failed = append(failed, newest[g])
		}
	}
	return failed, nil
}
