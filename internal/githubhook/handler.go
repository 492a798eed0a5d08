package githubhook

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/monohook/monohook/internal/metrics"
	"github.com/monohook/monohook/internal/trigger"
)

// MaxBody is GitHub's largest webhook payload (25 MiB); larger bodies get 413.
const MaxBody = 25 << 20

// Acceptor takes a verified delivery for processing off the request path.
// When Accept returns nil the delivery is the Acceptor's to keep, except
// Payload: its memory is reused once Accept returns, so an Acceptor that
// keeps the payload must copy it.
type Acceptor interface {
	Accept(ctx context.Context, d trigger.Delivery) error
}

// Errors an Acceptor returns that the handler answers specially.
var (
	// They are the domain's (trigger): the stores that answer them know
	// nothing of this package.
	ErrDuplicate  = trigger.ErrDuplicate
	ErrBusy       = trigger.ErrBusy
	ErrUnstorable = trigger.ErrUnstorable
)

// Rerunner replays what GitHub asks to run again (a check run's or a
// check suite's re-run). request is the webhook delivery's id: a request
// seen before is ErrDuplicate. It returns how many deliveries it replays.
type Rerunner interface {
	Rerun(ctx context.Context, request string, r trigger.Rerun) (int, error)
}

// Handler serves POST requests from GitHub.
type Handler struct {
	Verifier *Verifier
	Acceptor Acceptor
	// Rerunner takes check_run and check_suite re-run requests of the
	// GitHub App AppID (monohook's, which writes the check runs); nil, or
	// AppID 0, ignores them all.
	Rerunner Rerunner
	AppID    int64
	Log      *slog.Logger
	// MaxBody caps the request body; 0 means MaxBody.
	MaxBody int64
	// Metrics counts deliveries by event and outcome; nil counts nothing.
	Metrics *metrics.Metrics
	// Budget bounds the bodies held in memory at once by every request
	// that shares it; nil bounds nothing (see BodyBudget.reserve).
	Budget *BodyBudget
	// AllowFrom, when not empty, lists the only source networks whose
	// requests are read; others get 403. It is checked against the
	// connection's address: behind a proxy, filter at the proxy.
	AllowFrom []netip.Prefix
}

type answer struct {
	Status   string `json:"status,omitempty"`
	Delivery string `json:"delivery,omitempty"`
	Event    string `json:"event,omitempty"`
	Message  string `json:"message,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	event := r.Header.Get("X-GitHub-Event")
	delivery := r.Header.Get("X-GitHub-Delivery")
	// Both headers are anyone's to make up until the signature checks out:
	// logged clipped, and never a metric label (see metrics.Delivery).
	log := h.Log.With("delivery", clip(delivery), "event", clip(event), "remote", r.RemoteAddr)
	verified := false
	reply := func(code int, a answer, msg string, attrs ...any) {
		writeJSON(w, code, a)
		took := time.Since(began)
		o := outcome(code, a)
		h.Metrics.Delivery(event, verified, o)
		if o == "accepted" || o == "duplicate" {
			h.Metrics.Acknowledged(took)
		}
		attrs = append(attrs, "status", code, "took", took)
		level := slog.LevelInfo
		if code >= 400 {
			level = slog.LevelWarn
		}
		log.Log(r.Context(), level, msg, attrs...)
	}
	if len(h.AllowFrom) > 0 && !allowed(h.AllowFrom, r.RemoteAddr) {
		reply(http.StatusForbidden, answer{Status: "address_refused", Error: "source address not allowed"}, "webhook rejected: source address")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(http.StatusMethodNotAllowed, answer{Error: "use POST"}, "webhook rejected: method", "method", r.Method)
		return
	}

	limit := h.MaxBody
	if limit <= 0 {
		limit = MaxBody
	}
	body, reserved, err := h.readBody(w, r, limit)
	// The body's memory is reused and its reservation returned only once
	// the Acceptor is done with it (Accept has returned: see Acceptor).
	defer func() {
		releaseBody(body)
		h.Budget.release(reserved)
	}()
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			reply(http.StatusRequestEntityTooLarge, answer{Error: fmt.Sprintf("body larger than %d bytes", limit)}, "webhook rejected: body too large")
		case errors.Is(err, errBudget):
			w.Header().Set("Retry-After", "5")
			reply(http.StatusServiceUnavailable, answer{Error: "too many request bodies in memory, retry later"}, "webhook refused: body memory budget full",
				"content_length", r.ContentLength, "budget", h.Budget.Limit())
		default:
			reply(http.StatusBadRequest, answer{Error: "could not read the request body"}, "webhook rejected: body unreadable", "err", err)
		}
		return
	}

	if err := h.Verifier.Verify(body, r.Header.Get("X-Hub-Signature-256"), r.Header.Get("X-Hub-Signature")); err != nil {
		// The reason goes to the log only; the caller learns nothing.
		reply(http.StatusForbidden, answer{Error: "signature verification failed"}, "webhook rejected: signature", "reason", err.Error(), "bytes", len(body))
		return
	}
	verified = true
	if event == "" {
		reply(http.StatusBadRequest, answer{Error: "missing X-GitHub-Event header"}, "webhook rejected: no event header")
		return
	}
	if len(delivery) > 256 {
		reply(http.StatusBadRequest, answer{Error: "X-GitHub-Delivery longer than 256 bytes"}, "webhook rejected: delivery id")
		return
	}
	if !printable(delivery) {
		// One rule for both databases: PostgreSQL cannot store invalid
		// UTF-8, and a control character in an id garbles logs and pages.
		reply(http.StatusBadRequest, answer{Error: "X-GitHub-Delivery must be printable UTF-8"}, "webhook rejected: delivery id")
		return
	}
	payload, err := decodePayload(r.Header.Get("Content-Type"), body)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errMediaType) {
			code = http.StatusUnsupportedMediaType
		}
		reply(code, answer{Error: err.Error()}, "webhook rejected: payload", "err", err)
		return
	}

	switch {
	case event == "ping":
		reply(http.StatusOK, answer{Status: "ok", Event: event, Message: "pong"}, "ping received")
		return
	case Evaluated(event):
	case event == "check_run" || event == "check_suite":
		code, a, msg, attrs := h.rerequest(r.Context(), event, delivery, payload)
		reply(code, a, msg, attrs...)
		return
	default:
		reply(http.StatusOK, answer{Status: "ignored", Event: event, Message: "monohook acts on push, pull_request, merge_group and check re-run events only"}, "event ignored")
		return
	}

	push, err := ParseEvent(event, payload)
	if err != nil {
		reply(http.StatusBadRequest, answer{Error: err.Error()}, "webhook rejected: malformed "+event, "err", err)
		return
	}
	if why := startsNothing(event, push); why != "" {
		reply(http.StatusOK, answer{Status: "ignored", Event: event, Message: why}, "event ignored", "action", push.Action)
		return
	}
	if delivery == "" {
		// GitHub always sends one; a hand-made request may not. Give it an id
		// so its starts are still idempotent and its log lines traceable.
		delivery = "local-" + rand.Text()
		log = log.With("assigned_delivery", delivery)
	}
	push.DeliveryID = delivery
	d := trigger.Delivery{ID: delivery, Event: event, Received: began, Payload: payload, Push: push}
	switch err := h.Acceptor.Accept(r.Context(), d); {
	case err == nil:
		reply(http.StatusAccepted, answer{Status: "accepted", Delivery: delivery, Event: event},
			event+" accepted", "repo", push.Repo, "ref", push.Ref, "sha", push.ShortSHA(), "paths", len(push.Paths))
	case errors.Is(err, ErrDuplicate):
		reply(http.StatusOK, answer{Status: "duplicate", Delivery: delivery, Event: event, Message: "this delivery was accepted before; not processed again"}, "duplicate delivery")
	case errors.Is(err, ErrUnstorable):
		reply(http.StatusUnprocessableEntity, answer{Delivery: delivery, Event: event, Error: "the database cannot store this delivery's content"}, "webhook rejected: unstorable", "err", err)
	case r.Context().Err() != nil:
		// The sender hung up while the commit was under way: it sees no
		// answer, and the delivery may be stored all the same (a
		// redelivery is then answered as a duplicate).
		reply(http.StatusServiceUnavailable, answer{Error: "delivery not accepted, redeliver it later"}, "sender gone before the answer; the delivery may be stored", "err", err)
	default:
		w.Header().Set("Retry-After", "5")
		reply(http.StatusServiceUnavailable, answer{Error: "delivery not accepted, redeliver it later"}, "webhook not accepted", "err", err)
	}
}

// rerequest answers a check_run or check_suite event: a re-run request of
// monohook's is handed to the Rerunner (in one transaction, so it is
// answered at once), anything else acknowledged and ignored.
func (h *Handler) rerequest(ctx context.Context, event, delivery string, payload []byte) (int, answer, string, []any) {
	rr, ok, err := ParseRerequest(event, payload)
	switch {
	case err != nil:
		return http.StatusBadRequest, answer{Error: err.Error()}, "webhook rejected: malformed " + event, []any{"err", err}
	case !ok || h.Rerunner == nil || rr.AppID != h.AppID || h.AppID == 0:
		// Another App's check run or suite (an external id of monohook's
		// form is anyone's to write) re-runs nothing of monohook's.
		return http.StatusOK, answer{Status: "ignored", Event: event, Message: "not a re-run request of monohook's"}, "event ignored", nil
	}
	if delivery == "" {
		delivery = "local-" + rand.Text()
	}
	attrs := []any{"of_delivery", rr.DeliveryID, "pipeline", rr.Pipeline, "sha", rr.HeadSHA}
	n, err := h.Rerunner.Rerun(ctx, delivery, rr)
	switch {
	case errors.Is(err, ErrDuplicate):
		return http.StatusOK, answer{Status: "duplicate", Delivery: delivery, Event: event, Message: "this re-run request was accepted before"}, "duplicate delivery", attrs
	case err != nil:
		return http.StatusServiceUnavailable, answer{Error: "re-run not accepted, ask again later"}, "re-run not accepted", append(attrs, "err", err)
	case n == 0:
		return http.StatusOK, answer{Status: "ignored", Event: event, Message: "no stored delivery to re-run"}, "re-run: nothing stored to replay", attrs
	}
	return http.StatusAccepted, answer{Status: "accepted", Delivery: delivery, Event: event}, "re-run accepted", append(attrs, "deliveries", n)
}

// printable reports whether s is valid UTF-8 without control characters,
// nor format characters (bidirectional overrides, zero-width ones) and
// line or paragraph separators, which would make an id show as another
// on a page or a terminal.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
	})
}

// outcome names how a delivery was answered, for the metrics.
func outcome(code int, a answer) string {
	switch code {
	case http.StatusAccepted:
		return "accepted"
	case http.StatusOK:
		if a.Status == "ok" {
			return "ping"
		}
		return a.Status // duplicate, ignored
	case http.StatusForbidden:
		if a.Status == "address_refused" {
			return a.Status
		}
		return "bad_signature"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusMethodNotAllowed:
		return "bad_method"
	}
	return "bad_request"
}

// readBody reads the whole body, failing with *http.MaxBytesError past
// limit and with errBudget when the budget cannot hold it. It returns the
// bytes it reserved, which the caller releases when done with the body.
//
// What is reserved is what is held, and what is held is what has arrived
// (plus at most as much again while a buffer is enlarged): announcing a
// large body reserves nothing beyond a first step, so that a sender cannot
// take the budget, and with it every delivery's room, with headers alone.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, reserved int64, err error) {
	n := r.ContentLength
	if n > limit {
		return nil, 0, &http.MaxBytesError{Limit: limit}
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	// Nothing is reserved before the body's first byte has arrived: a
	// connection that sends its headers and waits holds no room. (One
	// byte: the server reads the body through a buffer anyway, and a
	// larger scratch would be one more allocation per delivery.)
	var first [1]byte
	k, err := readFirst(rd, first[:], n)
	ended := errors.Is(err, io.EOF)
	if err != nil && !ended {
		return nil, 0, err
	}
	if n >= 0 && n <= firstStep || ended {
		// Most payloads: read at once into a reused buffer of the size,
		// reserved with all its capacity, which it holds.
		size := int(n)
		if ended {
			size = k
		}
		buf := pooledBuffer(size)
		held := int64(cap(buf))
		if !h.Budget.reserve(held) {
			releaseBody(buf)
			return nil, 0, errBudget
		}
		copy(buf, first[:k])
		if _, err := io.ReadFull(rd, buf[k:]); err != nil {
			releaseBody(buf)
			h.Budget.release(held)
			return nil, 0, err
		}
		// A body longer than announced is an error for the server already;
		// this read sees EOF.
		return buf, held, nil
	}
	// Larger or unannounced: the buffer grows as bytes arrive, each larger
	// one reserved before it is made (both count while the bytes are
	// copied). It never grows past the announced size (the server's body
	// reader ends there) or one byte past limit (the read that crosses it
	// fails).
	ceiling := limit + 1
	if n >= 0 {
		ceiling = n
	}
	buf := first[:k:k]
	for {
		if n >= 0 && int64(len(buf)) == n {
			return buf, reserved, nil
		}
		if len(buf) == cap(buf) {
			grown := min(max(2*int64(cap(buf)), firstStep), ceiling)
			if !h.Budget.reserve(grown) {
				h.Budget.release(reserved)
				return nil, 0, errBudget
			}
			next := append(pooledBuffer(int(grown))[:0], buf...)
			if reserved > 0 {
				releaseBody(buf)
			}
			h.Budget.release(reserved)
			// A reused buffer may be larger than asked for: it holds its
			// capacity.
			buf = next
			if extra := int64(cap(buf)) - grown; extra > 0 && !h.Budget.reserve(extra) {
				releaseBody(buf)
				h.Budget.release(grown)
				return nil, 0, errBudget
			}
			reserved = int64(cap(buf))
		}
		k, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if errors.Is(err, io.EOF) {
			return buf, reserved, nil
		}
		if err != nil {
			releaseBody(buf)
			h.Budget.release(reserved)
			return nil, 0, err
		}
	}
}

// readFirst reads the body's first bytes into scratch (at most the
// announced size n, when known): at least one unless the body is empty,
// and io.EOF when that is the whole body.
func readFirst(rd io.Reader, scratch []byte, n int64) (int, error) {
	if n >= 0 && n < int64(len(scratch)) {
		scratch = scratch[:n]
	}
	if len(scratch) == 0 {
		return 0, io.EOF
	}
	k, err := io.ReadAtLeast(rd, scratch, 1)
	switch {
	case k == 0 && errors.Is(err, io.EOF) && n > 0:
		return 0, io.ErrUnexpectedEOF // announced, then cut short
	case err == nil && n >= 0 && int64(k) == n:
		return k, io.EOF // all of an announced body: nothing more to wait for
	}
	return k, err
}

// firstStep is the most a request reserves before its bytes arrive: a
// body announced as larger grows from here as it is received.
const firstStep = 64 << 10

// allowed reports whether the connection's address is in one of nets.
func allowed(nets []netip.Prefix, remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, n := range nets {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// clip shortens a header value for the log.
func clip(s string) string {
	const most = 256
	if len(s) > most {
		return s[:most] + "…"
	}
	return s
}

// Request bodies up to maxPooled bytes are read into reused buffers: at
// thousands of deliveries a second, allocating (and zeroing) each body is
// a large part of the work and of the garbage.
const maxPooled = 1 << 20

var bodies sync.Pool // *[]byte

// pooledBuffer returns a buffer of n bytes, a reused one when one fits
// without being much larger: a buffer holds (and is reserved by) its whole
// capacity, so a small body does not take a large one.
func pooledBuffer(n int) []byte {
	if b, ok := bodies.Get().(*[]byte); ok && cap(*b) >= n {
		if cap(*b) <= 2*n+4<<10 {
			return (*b)[:n]
		}
		bodies.Put(b)
	}
	return make([]byte, n)
}

func releaseBody(b []byte) {
	if b != nil && cap(b) <= maxPooled {
		bodies.Put(&b)
	}
}

var errMediaType = errors.New("Content-Type must be application/json or application/x-www-form-urlencoded")

// decodePayload returns the JSON payload of a body in either of GitHub's
// content types.
func decodePayload(contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, errMediaType
	}
	switch mt {
	case "application/json":
		return body, nil
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("form body: %w", err)
		}
		if !form.Has("payload") {
			return nil, errors.New("form body has no payload field")
		}
		return []byte(form.Get("payload")), nil
	}
	return nil, errMediaType
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
