package rulestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/monohook/monohook/internal/trigger"
)

const bucket = "tools-monorepo-configuration"

// fakeS3 is an in-process S3 server over real HTTP. gets counts object
// reads, so tests can see what the cache saves.
type fakeS3 struct {
	backend *s3mem.Backend
	url     string
	gets    atomic.Int64
	lists   atomic.Int64
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New()}
	if err := f.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	s3 := gofakes3.New(f.backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "" && strings.Count(r.URL.Path, "/") > 1 {
			f.gets.Add(1)
		}
		if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
			f.lists.Add(1)
		}
		s3.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	// gofakes3, like many S3-compatible stores, sends no response checksums.
	t.Setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
	return f
}

// put writes raw bytes the way another writer (the predecessor, a person
// with the AWS CLI) would.
func (f *fakeS3) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := f.backend.PutObject(bucket, key, map[string]string{"Content-Type": "application/json"}, bytes.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeS3) open(t *testing.T) *Store {
	t.Helper()
	u := "s3://" + bucket + "?" + url.Values{
		"endpoint":       {f.url},
		"use_path_style": {"true"},
		"region":         {"us-east-1"},
	}.Encode()
	s, err := Open(context.Background(), u, DefaultPrefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openFile(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), "file://"+filepath.ToSlash(dir)+"?create_dir=true&metadata=skip", DefaultPrefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pipelines(set *trigger.RuleSet) []string {
	var out []string
	for _, r := range set.Rules {
		out = append(out, r.Pipeline)
	}
	slices.Sort(out)
	return out
}

func TestStoreOnS3(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t)
	ctx := context.Background()

	// A document the predecessor wrote, read as is.
	py, err := os.ReadFile("testdata/python-dumps.json")
	if err != nil {
		t.Fatal(err)
	}
	f.put(t, SeedKey(DefaultPrefix, "GitHubRepositoryName", "MyBranchName", "cpname"), py)
	key, _, err := s.Put(ctx, Document{"GitHubRepositoryName", "MyBranchName", "web/.*", "web-deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if key != SeedKey(DefaultPrefix, "GitHubRepositoryName", "MyBranchName", "web-deploy") {
		t.Errorf("Put key %q", key)
	}
	obj, err := f.backend.GetObject(bucket, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	written, _ := io.ReadAll(obj.Contents)
	if want := (Document{"GitHubRepositoryName", "MyBranchName", "web/.*", "web-deploy"}).Marshal(); !bytes.Equal(written, want) {
		t.Errorf("stored %s, want %s", written, want)
	}
	if ct := obj.Metadata["Content-Type"]; ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	set, err := s.RuleSet(ctx, "GitHubRepositoryName", "MyBranchName")
	if err != nil {
		t.Fatal(err)
	}
	if got := pipelines(set); !slices.Equal(got, []string{"cpname", "web-deploy"}) {
		t.Fatalf("rules %v", got)
	}
	if got := set.Rules[0].Patterns[1].Source; got != "libs/.*" {
		t.Errorf("expressions are trimmed: got %q", got)
	}

	doc, err := s.Get(ctx, key)
	if err != nil || doc.CodePipelineName != "web-deploy" {
		t.Errorf("Get = %+v, %v", doc, err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	set, err = s.RuleSet(ctx, "GitHubRepositoryName", "MyBranchName")
	if err != nil {
		t.Fatal(err)
	}
	if got := pipelines(set); !slices.Equal(got, []string{"cpname"}) {
		t.Errorf("after delete: rules %v", got)
	}
}

func TestRuleSetCachesByVersion(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t)
	ctx := context.Background()
	for _, p := range []string{"a", "b", "c"} {
		if _, _, err := s.Put(ctx, Document{"repo", "main", p + "/.*", p}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.RuleSet(ctx, "repo", "main")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.gets.Load(); n != 3 {
		t.Fatalf("first load fetched %d documents, want 3", n)
	}
	again, err := s.RuleSet(ctx, "repo", "main")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.gets.Load(); n != 3 || again != first {
		t.Fatalf("unchanged rules were fetched again (%d GETs) or rebuilt (%v)", n, again != first)
	}
	// A changed rule counts from the very next push, and only it is fetched.
	if _, _, err := s.Put(ctx, Document{"repo", "main", "b2/.*", "b"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(ctx, Document{"repo", "main", "d/.*", "d"}); err != nil {
		t.Fatal(err)
	}
	next, err := s.RuleSet(ctx, "repo", "main")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.gets.Load(); n != 5 {
		t.Errorf("after changing one rule and adding one: %d GETs in all, want 5", n)
	}
	if got := pipelines(next); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("rules %v", got)
	}
	for _, r := range next.Rules {
		if r.Pipeline == "b" && r.Expressions != "b2/.*" {
			t.Errorf("changed rule still has %q", r.Expressions)
		}
	}
}

func TestRuleSetKeepsOnlyExactRepoAndBranch(t *testing.T) {
	s := openFile(t, t.TempDir())
	ctx := context.Background()
	long := strings.Repeat("x", 60)
	docs := []Document{
		{"repo", "main", "a/.*", "main-pipeline"},
		{"repo", "main-old", "a/.*", "old-pipeline"}, // listed by the "repo-main" prefix
		{"repo", long + "-1", "a/.*", "long-1"},      // same first 52 code points
		{"repo", long + "-2", "a/.*", "long-2"},
	}
	for _, d := range docs {
		if _, _, err := s.Put(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		branch string
		want   []string
	}{
		{"main", []string{"main-pipeline"}},
		{"main-old", []string{"old-pipeline"}},
		{long + "-1", []string{"long-1"}},
		{long + "-2", []string{"long-2"}},
		{"feature/x", nil},
	}
	for _, tt := range tests {
		set, err := s.RuleSet(ctx, "repo", tt.branch)
		if err != nil {
			t.Fatal(err)
		}
		if got := pipelines(set); !slices.Equal(got, tt.want) {
			t.Errorf("branch %q: rules %v, want %v", tt.branch, got, tt.want)
		}
	}
}

func TestBadRuleIsReportedAndSkipped(t *testing.T) {
	dir := t.TempDir()
	s := openFile(t, dir)
	ctx := context.Background()
	if _, _, err := s.Put(ctx, Document{"repo", "main", "good/.*", "good"}); err != nil {
		t.Fatal(err)
	}
	// Written by hand, bypassing validation, as the predecessor allowed.
	bad := map[string]string{
		SeedKey(DefaultPrefix, "repo", "main", "lookahead"): `{"GitHubRepo": "repo", "GitHubBranch": "main", "ChangeMatchExpressions": "x/(?!y)", "CodePipelineName": "lookahead"}`,
		SeedKey(DefaultPrefix, "repo", "main", "broken"):    `{"GitHubRepo": "repo", `,
		SeedKey(DefaultPrefix, "repo", "main", "nofield"):   `{"GitHubRepo": "repo", "GitHubBranch": "main", "ChangeMatchExpressions": "x/.*"}`,
	}
	for key, body := range bad {
		path := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := s.RuleSet(ctx, "repo", "main")
	if err != nil {
		t.Fatal(err)
	}
	if got := pipelines(set); !slices.Equal(got, []string{"good"}) {
		t.Errorf("usable rules %v, want [good]", got)
	}
	if len(set.Problems) != 3 {
		t.Fatalf("problems %+v, want 3", set.Problems)
	}
	for _, p := range set.Problems {
		if _, ok := bad[p.Key]; !ok || p.Error == "" {
			t.Errorf("problem %+v", p)
		}
	}

	entries, err := s.List(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	invalid := 0
	for _, e := range entries {
		if e.Problem != "" {
			invalid++
		}
	}
	if len(entries) != 4 || invalid != 3 {
		t.Errorf("List: %d entries, %d invalid; want 4 and 3", len(entries), invalid)
	}
}

func TestPutValidates(t *testing.T) {
	s := openFile(t, t.TempDir())
	ctx := context.Background()
	_, _, err := s.Put(ctx, Document{"repo", "main", "services/(?!legacy).*", "p"})
	if err == nil || !strings.Contains(err.Error(), "look-around") {
		t.Errorf("Put with look-ahead: %v", err)
	}
	_, _, err = s.Put(ctx, Document{"repo", "main", "x/.*", "bad name!"})
	if err == nil || !strings.Contains(err.Error(), "CodePipelineName") {
		t.Errorf("Put with a bad pipeline name: %v", err)
	}
	n, err := s.Count(ctx)
	if err != nil || n != 0 {
		t.Errorf("rejected rules were stored: %d, %v", n, err)
	}
	_, warnings, err := s.Put(ctx, Document{"repo", "main", "x/.*,", "p"})
	if err != nil || len(warnings) != 1 {
		t.Errorf("trailing comma: warnings %q, err %v", warnings, err)
	}
}

func TestListFlagsMisplacedKey(t *testing.T) {
	dir := t.TempDir()
	s := openFile(t, dir)
	// A document added by hand under a key the lookup never lists.
	path := filepath.Join(dir, "mono-repo", "config", "my-pipeline.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, (Document{"repo", "main", "x/.*", "p"}).Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := s.List(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.Contains(entries[0].Problem, "never lists") {
		t.Errorf("entries %+v", entries)
	}
}

func TestStoreUnreachable(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	u := "s3://b?" + url.Values{"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"}}.Encode()
	s, err := Open(context.Background(), u, DefaultPrefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.RuleSet(ctx, "repo", "main"); err == nil {
		t.Error("RuleSet on an unreachable store succeeded")
	}
}

func TestConcurrentPushesShareALIST(t *testing.T) {
	f := newFakeS3(t)
	s := f.open(t)
	ctx := context.Background()
	if _, _, err := s.Put(ctx, Document{"repo", "main", "a/.*", "a"}); err != nil {
		t.Fatal(err)
	}
	const callers = 64
	sets := make([]*trigger.RuleSet, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if sets[i], err = s.RuleSet(ctx, "repo", "main"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.lists.Load(); n >= callers {
		t.Errorf("%d LISTs for %d concurrent calls: not shared", n, callers)
	}
	for _, set := range sets {
		if set == nil || len(set.Rules) != 1 {
			t.Fatalf("a caller got %+v", set)
		}
	}
}

func TestRuleWrittenBeforeAPushIsSeenUnderLoad(t *testing.T) {
	s := openFile(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 8 { // other pushes evaluating all the time
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, _ = s.RuleSet(ctx, "repo", "main")
			}
		}()
	}
	for i := range 30 {
		name := fmt.Sprintf("p%d", i)
		if _, _, err := s.Put(context.Background(), Document{"repo", "main", "a/.*", name}); err != nil {
			t.Fatal(err)
		}
		set, err := s.RuleSet(context.Background(), "repo", "main")
		if err != nil {
			t.Fatal(err)
		}
		if got := pipelines(set); !slices.Contains(got, name) {
			t.Fatalf("rule %s written before the push is missing: %v", name, got)
		}
	}
	cancel()
	wg.Wait()
}

func TestS3EndpointFromStandardEnvironment(t *testing.T) {
	// No endpoint in the URL: the SDK's own AWS_ENDPOINT_URL_S3 finds the server.
	f := newFakeS3(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", f.url)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	s, err := Open(context.Background(), "s3://"+bucket+"?use_path_style=true", DefaultPrefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Put(context.Background(), Document{"repo", "main", "a/.*", "p"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(context.Background()); err != nil || n != 1 {
		t.Errorf("count %d, %v", n, err)
	}
}
