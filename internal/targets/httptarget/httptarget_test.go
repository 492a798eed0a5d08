package httptarget

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/monohook/monohook/internal/netguard"
	"github.com/monohook/monohook/internal/trigger"
)

type received struct {
	method, path, query, body string
	header                    http.Header
}

func receiver(t *testing.T, status int, answer string) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Clone()})
		mu.Unlock()
		w.Header().Set("Location", "/queue/item/42/")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }
}

// allowLoopback lets the tests' receivers, on 127.0.0.1, be reached.
var allowLoopback = netguard.Policy{AllowPrivate: true}

var data = trigger.TemplateData{Event: "push", Repo: "acme/mono", RepoName: "mono", Branch: "main", SHA: "0123abcd", ChangedPathsCount: 2}

// A Jenkins-style trigger: the token from the environment in the query, a
// header and a JSON body from templates.
func TestRequestFromTemplates(t *testing.T) {
	srv, calls := receiver(t, http.StatusCreated, "queued")
	t.Setenv("MONOHOOK_SECRET_JENKINS_TOKEN", "s3cr3t-jenkins")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "BUILDKITE"), []byte("bk-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Starter{SecretsDir: dir, Network: allowLoopback}
	req := trigger.StartRequest{Name: "http:x", Token: "monohook-tok", Data: data, Target: target(Spec{
		URL:     srv.URL + `/job/api/buildWithParameters?token={{secret "JENKINS_TOKEN"}}&SHA={{.SHA}}`,
		Headers: map[string]string{"Authorization": `Bearer {{secret "BUILDKITE"}}`},
		Body:    `{"commit": {{json .SHA}}, "branch": {{json .Branch}}, "paths": {{.ChangedPathsCount}}}`,
	})}
	got, err := s.Start(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "201 Created /queue/item/42/" || got.Output != "queued" {
		t.Errorf("answer %+v", got)
	}
	// The answer is the result; its Location, resolved, is where to see
	// it, without the request's query (the token).
	if p := got.Progress; !p.Done || p.Conclusion != trigger.Success || p.Detail != "201 Created" || p.URL != srv.URL+"/queue/item/42/" {
		t.Errorf("progress %+v", p)
	}
	c := calls()[0]
	if c.method != "POST" || c.path != "/job/api/buildWithParameters" || c.query != "token=s3cr3t-jenkins&SHA=0123abcd" {
		t.Errorf("request %s %s?%s", c.method, c.path, c.query)
	}
	if c.header.Get("Authorization") != "Bearer bk-token" || c.header.Get("Idempotency-Key") != "monohook-tok" || c.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", c.header)
	}
	if c.body != `{"commit": "0123abcd", "branch": "main", "paths": 2}` {
		t.Errorf("body %s", c.body)
	}
}

func TestDefaultBodyIsThePush(t *testing.T) {
	srv, calls := receiver(t, http.StatusOK, "")
	if _, err := (&Starter{Network: allowLoopback}).Start(context.Background(), trigger.StartRequest{Data: data, Target: target(Spec{URL: srv.URL})}); err != nil {
		t.Fatal(err)
	}
	if b := calls()[0].body; !strings.Contains(b, `"SHA":"0123abcd"`) || !strings.Contains(b, `"Repo":"acme/mono"`) {
		t.Errorf("body %s", b)
	}
}

func TestAnswersAreClassified(t *testing.T) {
	for status, permanent := range map[int]bool{400: true, 401: true, 404: true, 408: false, 429: false, 500: false, 503: false} {
		srv, _ := receiver(t, status, "no")
		_, err := (&Starter{Network: allowLoopback}).Start(context.Background(), trigger.StartRequest{Data: data, Target: target(Spec{URL: srv.URL})})
		if err == nil || errors.Is(err, trigger.ErrPermanent) != permanent {
			t.Errorf("%d: %v, permanent %v", status, err, permanent)
		}
	}
}

// Secrets never appear in errors, even when the server is unreachable and
// the secret is in the URL.
func TestSecretsStayOutOfErrors(t *testing.T) {
	t.Setenv("MONOHOOK_SECRET_TOKEN", "very-secret-value")
	srv, _ := receiver(t, 200, "")
	srv.Close() // nothing listens any more
	_, err := (&Starter{Network: allowLoopback}).Start(context.Background(), trigger.StartRequest{Data: data, Target: target(Spec{URL: srv.URL + `/x?t={{secret "TOKEN"}}`})})
	if err == nil || strings.Contains(err.Error(), "very-secret-value") || errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("unreachable: %v", err)
	}
	_, err = (&Starter{Network: allowLoopback}).Start(context.Background(), trigger.StartRequest{Data: data, Target: target(Spec{URL: srv.URL + `/x?t={{secret "MISSING"}}`})})
	if err == nil || !strings.Contains(err.Error(), "MONOHOOK_SECRET_MISSING") || !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("missing secret: %v", err)
	}
	_, err = (&Starter{Network: allowLoopback}).Start(context.Background(), trigger.StartRequest{Data: data, Target: target(Spec{URL: srv.URL + `/x?t={{secret "../etc/passwd"}}`})})
	if err == nil || !strings.Contains(err.Error(), "secret name") {
		t.Errorf("bad secret name: %v", err)
	}
}

// A pusher names the branch: whatever it holds, it stays one query value
// and one path segment, so it cannot add parameters (a token, a deploy
// target) to the request.
func TestTemplatedURLValuesAreEscaped(t *testing.T) {
	srv, calls := receiver(t, http.StatusCreated, "")
	t.Setenv("MONOHOOK_SECRET_T", "tok&en")
	d := data
	d.Branch = "main&DEPLOY_ENV=prod&token=x#/../admin?y=1"
	req := trigger.StartRequest{Data: d, Target: target(Spec{URL: srv.URL + `/job/{{.Branch}}/buildWithParameters?token={{secret "T"}}&BRANCH={{.Branch}}`})}
	if _, err := (&Starter{Network: allowLoopback}).Start(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	c := calls()[0]
	q, err := url.ParseQuery(c.query)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 2 || q.Get("token") != "tok&en" || q.Get("BRANCH") != d.Branch || len(q["token"]) != 1 {
		t.Errorf("query %q parsed as %v", c.query, q)
	}
	if c.path != "/job/"+d.Branch+"/buildWithParameters" {
		t.Errorf("path %q", c.path)
	}
}

// A rendered header value with a line break is refused: it would end the
// header and begin another.
func TestHeaderLineBreaksAreRefused(t *testing.T) {
	srv, calls := receiver(t, http.StatusOK, "")
	d := data
	d.Branch = "main\r\nX-Injected: 1"
	_, err := (&Starter{Network: allowLoopback}).Start(context.Background(), trigger.StartRequest{Data: d, Target: target(Spec{URL: srv.URL, Headers: map[string]string{"X-Branch": "{{.Branch}}"}})})
	if err == nil || !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "headers.X-Branch: the rendered value holds a line break") {
		t.Errorf("err %v", err)
	}
	if len(calls()) != 0 {
		t.Error("the request was sent")
	}
}

// A body over MaxBody is not sent: the start fails for good, saying why.
func TestBodyOverTheCapIsRefused(t *testing.T) {
	srv, calls := receiver(t, http.StatusOK, "")
	d := data
	d.ChangedPathsCount = 300
	_, err := (&Starter{Network: allowLoopback}).Start(context.Background(), trigger.StartRequest{Data: d, Target: target(Spec{URL: srv.URL, Body: "{{range .ChangedPathsCount}}" + strings.Repeat("x", 4096) + "{{end}}"})})
	if err == nil || !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "body: the template produces more than 1 MiB") {
		t.Errorf("err %v", err)
	}
	if len(calls()) != 0 {
		t.Error("the request was sent")
	}
}

// The address check is made when connecting, after DNS: loopback is
// refused unless allowed, by address or by name, and link-local
// (metadata) addresses are refused even when private ones are allowed,
// redirects included.
func TestOutboundAddresses(t *testing.T) {
	srv, calls := receiver(t, http.StatusOK, "")
	start := func(p netguard.Policy, u string) error {
		_, err := (&Starter{Network: p}).Start(context.Background(), trigger.StartRequest{Data: data, Target: target(Spec{URL: u})})
		return err
	}
	refused := func(err error, why string) bool {
		return err != nil && errors.Is(err, trigger.ErrPermanent) && strings.Contains(err.Error(), why)
	}
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	if err := start(netguard.Policy{}, srv.URL+"/x"); !refused(err, "127.0.0.1: loopback and private addresses need --http-allow-private") {
		t.Errorf("127.0.0.1 without the flag: %v", err)
	}
	if err := start(netguard.Policy{}, "http://localhost"+port+"/x"); !refused(err, "loopback and private addresses need") {
		t.Errorf("localhost without the flag: %v", err)
	}
	if len(calls()) != 0 {
		t.Fatalf("a refused address was reached: %v", calls())
	}
	if err := start(netguard.Policy{AllowPrivate: true}, srv.URL+"/x"); err != nil {
		t.Errorf("with --http-allow-private: %v", err)
	}
	if err := start(netguard.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "http://localhost"+port+"/x"); err != nil {
		t.Errorf("with --http-allow-cidr 127.0.0.0/8: %v", err)
	}
	if len(calls()) != 2 {
		t.Errorf("%d requests arrived, want 2", len(calls()))
	}
	all := netguard.Policy{AllowPrivate: true, Allow: []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")}}
	if err := start(all, "http://169.254.169.254/latest/meta-data/"); !refused(err, "link-local and metadata addresses are never allowed") {
		t.Errorf("169.254.169.254: %v", err)
	}
	// A receiver that redirects to the metadata service, or to any other
	// host: the target's headers and body would go along, so the redirect
	// is not followed, and the start fails for good.
	redirect := httptest.NewServer(http.RedirectHandler("http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect))
	defer redirect.Close()
	if err := start(all, redirect.URL); err == nil || !errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "307") {
		t.Errorf("redirect to 169.254.169.254: %v", err)
	}
	// A redirect on the same host is followed.
	var arrived []string
	same := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived = append(arrived, r.URL.Path)
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/here", http.StatusTemporaryRedirect)
		}
	}))
	defer same.Close()
	if err := start(all, same.URL+"/moved"); err != nil || strings.Join(arrived, " ") != "/moved /here" {
		t.Errorf("redirect on the same host: %v, requests %v", err, arrived)
	}
}

func target(s Spec) trigger.Target { return trigger.NewTarget(Type, s) }
