package githubhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

// Handles reports whether monohook may act on a delivery of event with
// action, as GitHub's list of deliveries shows them: pushes, and pull
// requests whose action can start pipelines ("closed" may be a merge,
// which only the payload tells).
func Handles(event, action string) bool {
	switch event {
	case "push":
		return true
	case "pull_request":
		return action == "closed" || PullRequestActs(action)
	case "merge_group":
		return action == "checks_requested"
	}
	return false
}

// Recovered is the delivery the webhook would have accepted for a request
// GitHub's deliveries API returned: the same checks of its id, the same
// parsing. ignored, when not empty, says why the webhook would have
// started nothing for it (an event or action monohook does not act on).
//
// Its signature is not checked: GitHub's API returns the payload parsed
// and re-serialized, not the bytes it signed. The request is trusted for
// having come from GitHub's API, over TLS, with monohook's credentials.
func Recovered(guid string, req trigger.HookRequest, received time.Time) (d trigger.Delivery, ignored string, err error) {
	event := header(req.Headers, "X-GitHub-Event")
	if id := header(req.Headers, "X-GitHub-Delivery"); id != "" && id != guid {
		return d, "", fmt.Errorf("delivery %s: its request names the delivery %q", clip(guid), clip(id))
	}
	if guid == "" || len(guid) > 256 || !printable(guid) {
		return d, "", fmt.Errorf("delivery id %q: not 1 to 256 bytes of printable UTF-8", clip(guid))
	}
	if event == "" {
		return d, "", fmt.Errorf("delivery %s: its request has no X-GitHub-Event header", guid)
	}
	if !Evaluated(event) {
		return d, "monohook evaluates push, pull_request and merge_group events only", nil
	}
	payload, err := recoveredPayload(header(req.Headers, "Content-Type"), req.Payload)
	if err != nil {
		return d, "", fmt.Errorf("delivery %s: %w", guid, err)
	}
	if len(payload) > MaxBody {
		// The webhook answers such a body 413; stored, it would not even
		// be read back (the queue's MaxPayload).
		return d, "", fmt.Errorf("delivery %s: payload of %d bytes, larger than the webhook takes (%d)", guid, len(payload), MaxBody)
	}
	push, err := ParseEvent(event, payload)
	if err != nil {
		return d, "", fmt.Errorf("delivery %s: malformed %s: %w", guid, event, err)
	}
	if why := startsNothing(event, push); why != "" {
		return d, why, nil
	}
	push.DeliveryID = guid
	return trigger.Delivery{ID: guid, Event: event, Received: received, Payload: payload, Push: push}, "", nil
}

// recoveredPayload is the JSON payload of a request as the API returns
// it: the payload object itself, whatever the hook's content type (a form
// hook's payload field held that JSON). Should the API give a form hook's
// payload as a string instead, the string is the body: its JSON, or the
// form holding it.
func recoveredPayload(contentType string, payload []byte) ([]byte, error) {
	if len(payload) == 0 || payload[0] != '"' {
		return payload, nil
	}
	var s string
	if err := json.Unmarshal(payload, &s); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") && !strings.HasPrefix(strings.TrimSpace(s), "{") {
		form, err := url.ParseQuery(s)
		if err != nil {
			return nil, fmt.Errorf("form payload: %w", err)
		}
		if !form.Has("payload") {
			return nil, errors.New("form payload has no payload field")
		}
		return []byte(form.Get("payload")), nil
	}
	return []byte(s), nil
}

// header is the value of a header GitHub recorded, its name in any case.
func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
