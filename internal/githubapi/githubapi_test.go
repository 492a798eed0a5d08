package githubapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/fakegithub"
	"github.com/monohook/monohook/internal/trigger"
)

func newClient(t *testing.T, g *fakegithub.GitHub) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := New(Config{URL: g.URL, Token: "gh-token"})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return c, &waits
}

func forced() *trigger.Push {
	return &trigger.Push{Repo: "mono", FullName: "acme/mono", Ref: "refs/heads/main", Before: "aaa", After: "bbb", Forced: true,
		Paths: []string{"api/a.go"}}
}

func TestComparePaginatesAndKeepsRenames(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	g.SetCompare("acme/mono", "aaa", "bbb", 3, "api/a.go", "web/x.ts", "old/name.go -> new/name.go")
	c, _ := newClient(t, g)
	paths, complete, err := c.ChangedPaths(context.Background(), forced())
	if err != nil {
		t.Fatal(err)
	}
	if !complete || !slices.Equal(paths, []string{"api/a.go", "web/x.ts", "new/name.go", "old/name.go"}) {
		t.Errorf("%v complete=%v", paths, complete)
	}
	if n := len(g.Requests()); n != 3 {
		t.Errorf("%d requests, want one per page (3): %v", n, g.Requests())
	}
}

func TestCompareAtItsLimitIsIncomplete(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	files := make([]string, MaxCompareFiles)
	for i := range files {
		files[i] = fmt.Sprintf("f/%d", i)
	}
	g.SetCompare("acme/mono", "aaa", "bbb", 1, files...)
	c, _ := newClient(t, g)
	if _, complete, err := c.ChangedPaths(context.Background(), forced()); err != nil || complete {
		t.Errorf("300 files: complete=%v err=%v", complete, err)
	}
}

func TestNewBranchComparesWithTheDefaultBranch(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	g.SetCompare("acme/mono", "main", "bbb", 1, "docs/x.md")
	c, _ := newClient(t, g)
	p := forced()
	p.Forced, p.Created, p.Before, p.DefaultBranch = false, true, strings.Repeat("0", 40), "main"
	if paths, complete, err := c.ChangedPaths(context.Background(), p); err != nil || !complete || !slices.Equal(paths, []string{"docs/x.md"}) {
		t.Errorf("%v %v %v", paths, complete, err)
	}
	p.DefaultBranch = ""
	if _, _, err := c.ChangedPaths(context.Background(), p); !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("no default branch: %v", err)
	}
}

func TestPullRequestFiles(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	files := make([]string, 250)
	for i := range files {
		files[i] = fmt.Sprintf("src/%03d.go", i)
	}
	g.SetPullRequestFiles("acme/mono", 7, files...)
	big := make([]string, 3500)
	for i := range big {
		big[i] = fmt.Sprintf("gen/%04d", i)
	}
	g.SetPullRequestFiles("acme/mono", 8, big...)
	c, _ := newClient(t, g)
	pr := &trigger.Push{Event: "pull_request", FullName: "acme/mono", PullRequest: 7}
	paths, complete, err := c.ChangedPaths(context.Background(), pr)
	if err != nil || !complete || !slices.Equal(paths, files) {
		t.Errorf("%d paths complete=%v err=%v", len(paths), complete, err)
	}
	pr.PullRequest = 8
	paths, complete, err = c.ChangedPaths(context.Background(), pr)
	if err != nil || complete || len(paths) != MaxPullRequestFiles {
		t.Errorf("3,500 files: %d paths complete=%v err=%v", len(paths), complete, err)
	}
}

func TestRateLimitIsWaitedOut(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	g.SetCompare("acme/mono", "aaa", "bbb", 1, "api/a.go")
	c, waits := newClient(t, g)
	g.RateLimitNext(1, 0)
	if _, _, err := c.ChangedPaths(context.Background(), forced()); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
	if len(*waits) != 1 || (*waits)[0] <= 0 || (*waits)[0] > 2*time.Second {
		t.Errorf("waits %v, want one until the reset", *waits)
	}
	// A reset further away than the call may wait: a transient error, so
	// the evaluation is retried later rather than given up.
	g.RateLimitNext(1, time.Hour)
	_, _, err := c.ChangedPaths(context.Background(), forced())
	if err == nil || errors.Is(err, trigger.ErrPermanent) || !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("long rate limit: %v", err)
	}
}

func TestServerErrorsAreRetriedAndNotFoundIsPermanent(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	g.SetCompare("acme/mono", "aaa", "bbb", 1, "api/a.go")
	c, _ := newClient(t, g)
	g.FailNext(2)
	if _, _, err := c.ChangedPaths(context.Background(), forced()); err != nil {
		t.Errorf("two 502s, then fine: %v", err)
	}
	g.FailNext(4) // every attempt of one call
	if _, _, err := c.ChangedPaths(context.Background(), forced()); err == nil || errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("502s throughout: %v, want a transient error", err)
	}
	p := forced()
	p.After = "unknown"
	if _, _, err := c.ChangedPaths(context.Background(), p); !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("404: %v", err)
	}
	bad, _ := New(Config{URL: g.URL, Token: "wrong"})
	if _, _, err := bad.ChangedPaths(context.Background(), forced()); !errors.Is(err, trigger.ErrPermanent) {
		t.Errorf("bad credentials: %v", err)
	}
}

func TestGitHubAppInstallationToken(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	g := fakegithub.New("installation-token")
	defer g.Close()
	g.AppKey, g.InstallationToken = &key.PublicKey, "installation-token"
	g.SetCompare("acme/mono", "aaa", "bbb", 1, "api/a.go")
	c, err := New(Config{URL: g.URL, App: 12345, Installation: 678, Key: pemKey})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := c.ChangedPaths(context.Background(), forced()); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.TokensIssued(); n != 1 {
		t.Errorf("%d installation tokens, want 1 reused", n)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	c, _ = New(Config{URL: g.URL, App: 12345, Installation: 678, Key: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})})
	if _, _, err := c.ChangedPaths(context.Background(), forced()); err == nil {
		t.Error("a JWT signed with another key was accepted")
	}
}

// GitHub Enterprise Server serves its API under /api/v3/: the App's
// installation token is asked of that root too, not of api.github.com.
func TestGitHubAppOnEnterpriseServer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	g := fakegithub.New("installation-token")
	defer g.Close()
	g.AppKey, g.InstallationToken = &key.PublicKey, "installation-token"
	g.SetCompare("acme/mono", "aaa", "bbb", 1, "api/a.go")
	ghes := httptest.NewServer(http.StripPrefix("/api/v3", g.Config.Handler))
	defer ghes.Close()
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	c, err := New(Config{URL: ghes.URL + "/api/v3", App: 12345, Installation: 678, Key: pemKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ChangedPaths(context.Background(), forced()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(g.Requests(), "POST /app/installations/678/access_tokens") || g.TokensIssued() != 1 {
		t.Errorf("requests %v", g.Requests())
	}
}

// Service.ChangeSet adds the API's paths to the payload's.
func TestServiceCompletesChangeSets(t *testing.T) {
	g := fakegithub.New("gh-token")
	defer g.Close()
	g.SetCompare("acme/mono", "aaa", "bbb", 1, "api/a.go", "web/x.ts")
	c, _ := newClient(t, g)
	p := forced()
	cs, err := (&trigger.Service{Changes: c}).ChangeSet(context.Background(), p)
	got := cs.Apply(p)
	if err != nil || !slices.Equal(cs.Fetched, []string{"web/x.ts"}) || !slices.Equal(got.Paths, []string{"api/a.go", "web/x.ts"}) || got.Incomplete != "" {
		t.Errorf("added %v, paths %v, incomplete %q, err %v", cs.Fetched, got.Paths, got.Incomplete, err)
	}
	p = forced()
	if cs, err := (&trigger.Service{}).ChangeSet(context.Background(), p); err != nil || !strings.Contains(cs.Incomplete, "no GitHub credentials") {
		t.Errorf("without credentials: %q %v", cs.Incomplete, err)
	}
	p = forced()
	p.Forced = false
	if cs, err := (&trigger.Service{Changes: c}).ChangeSet(context.Background(), p); err != nil || cs.Incomplete != "" || len(g.Requests()) != 1 {
		t.Errorf("a complete payload asked the API: %v", g.Requests())
	}
}
