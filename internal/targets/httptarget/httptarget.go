// Package httptarget is the http target: a pipeline started by an HTTP
// request, to the Jenkins, Buildkite and GitLab trigger APIs or any
// webhook receiver. It validates a target's fields (Check) and sends the
// request (Starter); looking up the result of what it started belongs
// here as well.
package httptarget

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/targets/render"
	"github.com/monohook/monohook/internal/trigger"
)

// Type is how rules name this kind.
const Type = "http"

// Spec is an http target's fields: a POST (or Method) of Body (a
// template, JSON) to URL with Headers (templates). Secrets come from
// {{secret "NAME"}}, read from the environment (MONOHOOK_SECRET_NAME) or
// the secrets directory, never from the rule.
type Spec struct {
	URL     string            `json:"url,omitempty"`
	Method  string            `json:"method,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")

// Check validates an http target; its starts go by http:URL, without the
// URL's query (it may hold a token).
func Check(t trigger.Target) (trigger.Target, string, error) {
	var s Spec
	if err := t.DecodeStrict(&s); err != nil {
		return t, "", err
	}
	c := render.NewCheck(true)
	if !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") {
		c.Failf("url %q: want an http:// or https:// URL", s.URL)
	}
	switch s.Method {
	case "", http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		c.Failf("method %q: POST, PUT or PATCH", s.Method)
	}
	// The host is literal (render.URL refuses a templated one), so an
	// address that is never allowed is refused now.
	if rendered, ok := c.URL("url", s.URL); ok {
		u, err := url.Parse(rendered)
		switch {
		case err != nil:
			c.Failf("url: %v", err)
		case u.Hostname() == "":
			c.Failf("url: no host")
		default:
			if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
				if err := netguard.Always(ip); err != nil {
					c.Failf("url: %v", err)
				}
			}
		}
	}
	for k, v := range s.Headers {
		if !headerName.MatchString(k) {
			c.Failf("headers: %q is not a valid header name", k)
		}
		c.Template("headers."+k, v)
	}
	c.Body("body", s.Body)
	name := s.URL
	if i := strings.IndexAny(name, "?#"); i >= 0 {
		name = name[:i]
	}
	return trigger.NewTarget(Type, s), Type + ":" + name, c.Err()
}

// maxOutput is how much of a response body is kept with the start.
const maxOutput = 4 << 10

var secretName = regexp.MustCompile(`^[A-Z0-9_]{1,64}$`)

// Starter sends a target's request. Secrets in its templates
// ({{secret "NAME"}}) come from the environment variable
// MONOHOOK_SECRET_NAME, else from the file NAME in SecretsDir; rules
// never hold them, and errors never show them.
type Starter struct {
	SecretsDir string
	// Network is what requests may connect to besides public addresses.
	// It is checked for the address actually dialled, after DNS, for
	// every connection, redirects included.
	Network netguard.Policy

	once   sync.Once
	client *http.Client
}

// httpClient connects only where s.Network allows. It uses no proxy: the
// address checked must be the one connected to.
func (s *Starter) httpClient() *http.Client {
	s.once.Do(func() {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: s.Network.Control}
		s.client = &http.Client{Timeout: 30 * time.Second, CheckRedirect: sameOrigin, Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        16,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}}
	})
	return s.client
}

// sameOrigin follows a redirect only to the scheme and host of the
// request: the target's headers (tokens among them) and its body go with
// a redirect, so one to another host, or from https to http, is answered
// as it stands (a 3xx fails the start for good) rather than followed.
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// Start implements trigger.Starter. A 2xx answer is a start; 408, 429,
// 5xx and network errors are retried; any other answer is permanent.
func (s *Starter) Start(ctx context.Context, req trigger.StartRequest) (trigger.Started, error) {
	var t Spec
	if err := req.Target.Decode(&t); err != nil {
		return trigger.Started{}, err
	}
	var secrets []string
	secret := func(name string) (string, error) {
		v, err := s.secret(name)
		if err == nil && v != "" {
			secrets = append(secrets, v)
		}
		return v, err
	}
	target, err := render.URL(ctx, t.URL, req.Data, secret)
	if err != nil {
		return trigger.Started{}, err
	}
	body := t.Body
	var b []byte
	if body == "" {
		// No template: the push as JSON.
		b, _ = json.Marshal(req.Data)
	} else {
		rendered, err := render.Text(ctx, "body", body, render.MaxBody, req.Data, secret)
		if err != nil {
			return trigger.Started{}, err
		}
		b = []byte(rendered)
	}
	headers, err := render.Map(ctx, t.Headers, req.Data, secret)
	if err != nil {
		return trigger.Started{}, err
	}
	for k, v := range headers {
		// A line break would end the header and begin another one.
		if strings.ContainsAny(v, "\r\n\x00") {
			return trigger.Started{}, fmt.Errorf("headers.%s: the rendered value holds a line break or NUL (%w)", k, trigger.ErrPermanent)
		}
	}
	method := t.Method
	if method == "" {
		method = http.MethodPost
	}
	hr, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(b))
	if err != nil {
		return trigger.Started{}, fmt.Errorf("request to %s: %s (%w)", redact(t.URL), redactAll(err.Error(), secrets), trigger.ErrPermanent)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "monohook")
	// Receivers that honour it ignore a repeat of the same start.
	hr.Header.Set("Idempotency-Key", req.Token)
	for k, v := range headers {
		hr.Header.Set(k, v)
	}
	resp, err := s.httpClient().Do(hr)
	if err != nil {
		refused := errors.Is(err, netguard.ErrRefused)
		// The error text of net/http includes the URL, which may carry a
		// secret: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		err = fmt.Errorf("%s %s: %s", method, redact(t.URL), redactAll(err.Error(), secrets))
		if refused {
			// The address stays refused however often it is tried.
			err = fmt.Errorf("%w (%w)", err, trigger.ErrPermanent)
		}
		return trigger.Started{}, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	answer := trigger.Started{ID: resp.Status, Output: redactAll(strings.TrimSpace(string(out)), secrets)}
	if loc := resp.Header.Get("Location"); loc != "" {
		answer.ID += " " + redactAll(loc, secrets)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		// The answer is the result: a receiver that runs a pipeline of its
		// own says so at its Location, which is shown, not followed.
		answer.Progress = trigger.Progress{Done: true, Conclusion: trigger.Success, Detail: resp.Status, URL: location(resp.Request.URL, resp.Header.Get("Location"), secrets)}
		return answer, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return answer, fmt.Errorf("%s %s answered %s", method, redact(t.URL), resp.Status)
	default:
		return answer, fmt.Errorf("%s %s answered %s (%w)", method, redact(t.URL), resp.Status, trigger.ErrPermanent)
	}
}

func (s *Starter) secret(name string) (string, error) {
	if !secretName.MatchString(name) {
		return "", fmt.Errorf("secret name %q: use A-Z, 0-9 and _", name)
	}
	if v, ok := os.LookupEnv("MONOHOOK_SECRET_" + name); ok {
		return v, nil
	}
	if s.SecretsDir != "" {
		b, err := os.ReadFile(filepath.Join(s.SecretsDir, name))
		if err == nil {
			return strings.TrimSpace(string(b)), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("secret %s: %w", name, err)
		}
	}
	return "", fmt.Errorf("secret %s is not configured: set MONOHOOK_SECRET_%s or put it in the secrets directory", name, name)
}

// location is where an answer's Location header points, resolved against
// the request's URL: an http(s) URL without the request's query (a token
// may be in it), or "" when there is none.
func location(req *url.URL, loc string, secrets []string) string {
	if loc == "" {
		return ""
	}
	u, err := req.Parse(loc)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	if u.RawQuery == req.RawQuery {
		u.RawQuery = ""
	}
	u.User, u.Fragment = nil, ""
	return redactAll(u.String(), secrets)
}

// redact drops the query of a URL template: it may carry a token.
func redact(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// redactAll hides each secret in s as it was substituted, and in the
// escaped forms a URL gives it (a receiver may echo the request back).
func redactAll(s string, secrets []string) string {
	for _, v := range secrets {
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			s = strings.ReplaceAll(s, form, "[secret]")
		}
	}
	return s
}
