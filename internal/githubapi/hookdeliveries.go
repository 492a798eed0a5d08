package githubapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v75/github"

	"github.com/monohook/monohook/internal/trigger"
)

// MaxDeliveryAnswer bounds one answer of the deliveries API read into
// memory: a delivery holds a payload of up to 25 MiB, which GitHub
// re-serializes (escapes can make it longer).
const MaxDeliveryAnswer = 64 << 20

// smallAnswer is how much of one answer any number of calls may read at
// once. Past it a call reads on only while it holds the process's one
// large-answer turn, until its caller is done with the payload
// (HookRequest.Done): the fetchers of a reconciliation run several at
// once for GitHub's latency, and without the turn each could hold a
// payload of tens of MiB (and its copies) at the same moment.
const smallAnswer = 1 << 20

// largeTurn is the one large-answer turn of the process.
var largeTurn = make(chan struct{}, 1)

// A turn is one call's hold on largeTurn, taken by its answer's reader
// and given back by done (once; later calls do nothing).
type turn struct {
	mu   sync.Mutex
	held bool
}

func (t *turn) take(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held {
		return nil
	}
	select {
	case largeTurn <- struct{}{}:
		t.held = true
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *turn) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held {
		t.held = false
		<-largeTurn
	}
}

type turnKey struct{}

// withTurn gives the call made with ctx a turn its caller ends; without
// one, an answer's reader gives its turn back when the answer is closed.
func withTurn(ctx context.Context) (context.Context, *turn) {
	t := &turn{}
	return context.WithValue(ctx, turnKey{}, t), t
}

// MaxListed bounds the deliveries one listing reads: an organization
// with 10,000 deliveries a day has 30,000 in GitHub's 3 days. A listing
// that goes on past it (an API that never stops giving pages) fails.
const MaxListed = 1_000_000

// Hook names a webhook whose deliveries are read: an organization's hook
// (Org, and its ID or the URL GitHub posts to, by which it is found), or,
// with no Org, the GitHub App's own webhook (/app/hook/deliveries,
// authenticated with the App's JWT).
type Hook struct {
	Org string
	ID  int64
	URL string
}

// App reports whether h is the GitHub App's own webhook.
func (h Hook) App() bool { return h.Org == "" }

func (h Hook) String() string {
	switch {
	case h.App():
		return "the GitHub App's webhook"
	case h.ID == 0:
		return fmt.Sprintf("the webhook of organization %s whose URL is %s", h.Org, h.URL)
	}
	return fmt.Sprintf("webhook %d of organization %s", h.ID, h.Org)
}

// Hooks reads one webhook's deliveries (trigger.HookDeliveries).
type Hooks struct {
	c         *Client
	maxListed int // MaxListed
	mu        sync.Mutex
	hook      Hook // its ID found on first use, when only its URL was given
}

// NewHooks returns a reader of hook's deliveries. An organization hook
// takes the token (admin:org_hook) or the App installation of cfg; the
// App's own webhook takes the App's id and key.
func NewHooks(cfg Config, hook Hook) (*Hooks, error) {
	if !hook.App() {
		if hook.ID <= 0 && hook.URL == "" {
			return nil, errors.New("an organization webhook needs its id, or its URL to be found by")
		}
		c, err := New(cfg)
		if err != nil {
			return nil, err
		}
		// The same authentication, its answers bounded.
		hc := c.gh.Client()
		hc.Transport = capAnswers(hc.Transport)
		base := c.gh.BaseURL
		c.gh = github.NewClient(hc)
		c.gh.BaseURL = base
		return &Hooks{c: c, hook: hook, maxListed: MaxListed}, nil
	}
	if cfg.App == 0 || len(cfg.Key) == 0 {
		return nil, errors.New("the GitHub App's webhook needs the App's id and private key")
	}
	api := cfg.URL
	if api == "" {
		api = "https://api.github.com/"
	}
	base, err := url.Parse(strings.TrimSuffix(api, "/") + "/")
	if err != nil {
		return nil, fmt.Errorf("GitHub API URL %q: %w", api, err)
	}
	t, err := ghinstallation.NewAppsTransport(http.DefaultTransport, cfg.App, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("GitHub App key: %w", err)
	}
	t.BaseURL = strings.TrimSuffix(base.String(), "/")
	gh := github.NewClient(&http.Client{Timeout: 30 * time.Second, Transport: capAnswers(t)})
	gh.BaseURL = base
	maxWait := cfg.MaxWait
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	return &Hooks{c: &Client{gh: gh, maxWait: maxWait, sleep: sleepCtx}, hook: hook, maxListed: MaxListed}, nil
}

// Hook is the webhook h reads (its ID 0 until found by its URL).
func (h *Hooks) Hook() Hook {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hook
}

// target is the webhook, its id found by its URL the first time (not at
// start: serve receives webhooks whether GitHub's API answers or not).
func (h *Hooks) target(ctx context.Context) (Hook, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hook.App() || h.hook.ID != 0 {
		return h.hook, nil
	}
	id, err := h.c.FindOrgHook(ctx, h.hook.Org, h.hook.URL)
	if err != nil {
		return h.hook, err
	}
	h.hook.ID = id
	return h.hook, nil
}

// List lists the deliveries newest first, 100 a page, following GitHub's
// cursors.
func (h *Hooks) List(ctx context.Context, page func([]trigger.HookDelivery) bool) error {
	hook, err := h.target(ctx)
	if err != nil {
		return err
	}
	opts := &github.ListCursorOptions{PerPage: 100}
	// The cursors given so far: one given again would go round forever,
	// spending the token's rate limit until maxListed.
	cursors := map[string]bool{}
	for listed := 0; ; {
		var list []*github.HookDelivery
		var resp *github.Response
		err := h.c.call(ctx, true, func() (*github.Response, error) {
			var err error
			if hook.App() {
				list, resp, err = h.c.gh.Apps.ListHookDeliveries(ctx, opts)
			} else {
				list, resp, err = h.c.gh.Organizations.ListHookDeliveries(ctx, hook.Org, hook.ID, opts)
			}
			return resp, err
		})
		if err != nil {
			return fmt.Errorf("list the deliveries of %s: %w", hook, err)
		}
		out := make([]trigger.HookDelivery, 0, len(list))
		for _, d := range list {
			out = append(out, trigger.HookDelivery{
				ID: d.GetID(), GUID: d.GetGUID(), Event: d.GetEvent(), Action: d.GetAction(),
				Status: d.GetStatus(), StatusCode: d.GetStatusCode(), Redelivery: d.GetRedelivery(),
				DeliveredAt: d.GetDeliveredAt().Time,
			})
		}
		if !page(out) || resp.Cursor == "" || len(list) == 0 {
			return nil
		}
		if listed += len(list); listed >= h.maxListed {
			return fmt.Errorf("the deliveries of %s: more than %d listed, and GitHub gives more pages: list a shorter window", hook, h.maxListed)
		}
		if cursors[resp.Cursor] {
			return fmt.Errorf("the deliveries of %s: GitHub gave a page's cursor again, so its pages go round", hook)
		}
		cursors[resp.Cursor] = true
		opts.Cursor = resp.Cursor
	}
}

// Get fetches one delivery's request: its headers and payload.
func (h *Hooks) Get(ctx context.Context, id int64) (trigger.HookRequest, error) {
	hook, err := h.target(ctx)
	if err != nil {
		return trigger.HookRequest{}, err
	}
	var d *github.HookDelivery
	gone := false
	ctx, t := withTurn(ctx)
	keep := false
	defer func() {
		if !keep {
			t.done()
		}
	}()
	err = h.c.call(ctx, true, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		if hook.App() {
			d, resp, err = h.c.gh.Apps.GetHookDelivery(ctx, id)
		} else {
			d, resp, err = h.c.gh.Organizations.GetHookDelivery(ctx, hook.Org, hook.ID, id)
		}
		gone = resp != nil && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone)
		return resp, err
	})
	if gone {
		return trigger.HookRequest{}, fmt.Errorf("delivery %d of %s: %w: %w", id, hook, trigger.ErrDeliveryGone, err)
	}
	if err != nil {
		return trigger.HookRequest{}, fmt.Errorf("delivery %d of %s: %w", id, hook, err)
	}
	if d.Request == nil || d.Request.RawPayload == nil {
		// This delivery's own: asking again gives the same, and failing
		// on it would fail every reconciliation until GitHub forgets it.
		return trigger.HookRequest{}, fmt.Errorf("delivery %d of %s: GitHub's answer holds no request payload: %w", id, hook, trigger.ErrDeliveryGone)
	}
	keep = true
	return trigger.HookRequest{Headers: d.Request.Headers, Payload: *d.Request.RawPayload, Done: t.done}, nil
}

// Redeliver asks GitHub to deliver id again (POST …/attempts). It is not
// retried on a 5xx: the attempt may be under way.
func (h *Hooks) Redeliver(ctx context.Context, id int64) error {
	hook, err := h.target(ctx)
	if err != nil {
		return err
	}
	err = h.c.call(ctx, false, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		if hook.App() {
			_, resp, err = h.c.gh.Apps.RedeliverHookDelivery(ctx, id)
		} else {
			_, resp, err = h.c.gh.Organizations.RedeliverHookDelivery(ctx, hook.Org, hook.ID, id)
		}
		var accepted *github.AcceptedError
		if errors.As(err, &accepted) { // 202: the attempt is queued
			return resp, nil
		}
		return resp, err
	})
	if err != nil {
		return fmt.Errorf("redeliver delivery %d of %s: %w", id, hook, err)
	}
	return nil
}

// maxHookPages bounds the pages of an organization's webhooks read to
// find one: an API that always names a next page is not followed forever.
const maxHookPages = 100

// FindOrgHook returns the id of org's webhook whose URL is url.
func (c *Client) FindOrgHook(ctx context.Context, org, url string) (int64, error) {
	opts := &github.ListOptions{PerPage: 100}
	for pages := 1; ; pages++ {
		var hooks []*github.Hook
		var resp *github.Response
		err := c.call(ctx, true, func() (*github.Response, error) {
			var err error
			hooks, resp, err = c.gh.Organizations.ListHooks(ctx, org, opts)
			return resp, err
		})
		if err != nil {
			return 0, fmt.Errorf("list the webhooks of organization %s: %w", org, err)
		}
		for _, h := range hooks {
			if h.GetConfig().GetURL() == url {
				return h.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, fmt.Errorf("organization %s has no webhook with the URL %s: pass --github-hook-id", org, url)
		}
		if pages >= maxHookPages || resp.NextPage <= opts.Page {
			return 0, fmt.Errorf("list the webhooks of organization %s: GitHub gives more than %d pages, or a next page that is not further (%d after %d): pass --github-hook-id",
				org, maxHookPages, resp.NextPage, opts.Page)
		}
		opts.Page = resp.NextPage
	}
}

// capAnswers bounds the answers read through t (MaxDeliveryAnswer).
func capAnswers(t http.RoundTripper) http.RoundTripper {
	if t == nil {
		t = http.DefaultTransport
	}
	return capTransport{t, MaxDeliveryAnswer}
}

type capTransport struct {
	base http.RoundTripper
	max  int64
}

func (t capTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b := &cappedBody{rc: resp.Body, left: t.max + 1, ctx: r.Context()} // one more: an answer of exactly the cap reads to its end
	if tr, ok := r.Context().Value(turnKey{}).(*turn); ok {
		b.turn = tr
	} else {
		b.turn, b.own = &turn{}, true
	}
	resp.Body = b
	return resp, nil
}

type cappedBody struct {
	rc   io.ReadCloser
	left int64
	read int64
	ctx  context.Context //nolint:containedctx // the request's, for waiting on the large-answer turn while it is read
	turn *turn
	own  bool // the turn is the body's: given back on Close
}

// errAnswerTooLarge is an answer past the cap.
var errAnswerTooLarge = errors.New("GitHub's answer is larger than monohook reads")

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errAnswerTooLarge
	}
	if b.read >= smallAnswer {
		if err := b.turn.take(b.ctx); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	b.read += int64(n)
	return n, err
}

func (b *cappedBody) Close() error {
	if b.own {
		b.turn.done()
	}
	return b.rc.Close()
}
