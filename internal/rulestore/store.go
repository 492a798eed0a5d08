package rulestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// URLs
	_ "gocloud.dev/blob/memblob"  // mem:// URLs
	_ "gocloud.dev/blob/s3blob"   // s3:// URLs
	"gocloud.dev/gcerrors"

	"github.com/monohook/monohook/internal/trigger"
)

// ErrNotFound is returned for a rule that is not stored.
var ErrNotFound = errors.New("rule not found")

// maxDocument caps a rule document; real ones are a few hundred bytes.
const maxDocument = 1 << 20

// fetchParallel bounds concurrent GETs when many documents changed at once
// (the first push after a start reads every rule of its branch).
const fetchParallel = 16

// Store keeps seed rules in a blob bucket under the predecessor's key layout.
type Store struct {
	bucket *blob.Bucket
	prefix string
	log    *slog.Logger

	mu       sync.Mutex
	sets     map[string]*cached[*trigger.RuleSet] // repo + "\x00" + branch
	groups   map[string]*group                    // same key, or "\x00v2"
	v2prefix string
	v2       *cached[*trigger.V2Set]

	lists atomic.Int64 // lists of the bucket, each a request on S3
}

// group coalesces the LISTs of one repository and branch. A caller joins
// the flight that has not started yet, so the LIST it gets began after it
// arrived: a rule written before a push is seen by that push. Under load,
// one LIST serves every push that arrived while the previous one ran.
type group struct {
	running *flight
	waiting *flight
}

type flight struct {
	started bool // guarded by Store.mu
	done    chan struct{}
	val     any
	err     error
}

// listTimeout bounds one shared LIST, which does not belong to any one
// caller's context.
const listTimeout = time.Minute

// cached is compiled rules (one repository and branch's seed rules, or
// the v2 rules), valid while a LIST returns the same keys with the same
// versions.
type cached[T any] struct {
	listed []listed
	docs   map[string]cachedDoc
	set    T
}

// reuse returns the cached set when objs is what was listed for it, and
// otherwise the documents to refresh from (none without a cache).
func (c *cached[T]) reuse(objs []listed) (set T, docs map[string]cachedDoc, ok bool) {
	if c == nil {
		return set, nil, false
	}
	if slices.Equal(c.listed, objs) {
		return c.set, nil, true
	}
	return set, c.docs, false
}

type listed struct{ key, version string }

// cachedDoc is one document's outcome: a rule, a problem, or neither (a
// document of another repository or branch that shares the prefix).
type cachedDoc struct {
	version string
	rule    *trigger.Rule
	problem *trigger.Problem
}

// Open opens the bucket at url (file://, s3://, mem://, or any gocloud blob
// URL) with rules under prefix.
func Open(ctx context.Context, url, prefix string, log *slog.Logger) (*Store, error) {
	b, err := blob.OpenBucket(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open rule store %s: %w", redactURL(url), err)
	}
	return New(b, prefix, log), nil
}

// New uses an open bucket.
func New(b *blob.Bucket, prefix string, log *slog.Logger) *Store {
	return &Store{bucket: b, prefix: strings.TrimSuffix(prefix, "/"), v2prefix: DefaultV2Prefix, log: log, sets: make(map[string]*cached[*trigger.RuleSet]), groups: make(map[string]*group)}
}

// Close closes the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// Bucket is the bucket the rules live in; Lambda mode parks large pushes
// in it too (under their own prefix).
func (s *Store) Bucket() *blob.Bucket { return s.bucket }

// Prefix is the key prefix the rules live under.
func (s *Store) Prefix() string { return s.prefix }

// Ping checks that the bucket answers.
func (s *Store) Ping(ctx context.Context) error {
	_, _, err := s.bucket.ListPage(ctx, blob.FirstPageToken, 1, &blob.ListOptions{Prefix: s.prefix + "/"})
	return err
}

// RuleSet returns the rules for repo and branch: one LIST of their lookup
// prefix, begun after this call, then only documents that are new or
// changed since the last call are fetched and compiled. When nothing
// changed the previous RuleSet, index included, is returned as is.
func (s *Store) RuleSet(ctx context.Context, repo, branch string) (*trigger.RuleSet, error) {
	v, err := s.shared(ctx, repo+"\x00"+branch, func(ctx context.Context) (any, error) { return s.ruleSet(ctx, repo, branch) })
	if err != nil {
		return nil, err
	}
	return v.(*trigger.RuleSet), nil
}

// shared runs load for the group id, coalesced as group describes: the
// caller joins the flight that has not started yet, or starts it.
func (s *Store) shared(ctx context.Context, id string, load func(context.Context) (any, error)) (any, error) {
	s.mu.Lock()
	g := s.groups[id]
	if g == nil {
		g = &group{}
		s.groups[id] = g
	}
	if g.waiting == nil {
		g.waiting = &flight{done: make(chan struct{})}
	}
	f := g.waiting
	for g.running != nil && !f.started {
		r := g.running
		s.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
	if f.started {
		// Another caller started our flight.
		s.mu.Unlock()
		select {
		case <-f.done:
			return f.val, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.started = true
	g.running, g.waiting = f, nil
	s.mu.Unlock()

	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), listTimeout)
	f.val, f.err = load(lctx)
	cancel()
	s.mu.Lock()
	g.running = nil
	if g.waiting == nil {
		delete(s.groups, id)
	}
	s.mu.Unlock()
	close(f.done)
	return f.val, f.err
}

func (s *Store) ruleSet(ctx context.Context, repo, branch string) (*trigger.RuleSet, error) {
	objs, err := s.listDocs(ctx, LookupPrefix(s.prefix, repo, branch), isSeedKey)
	if err != nil {
		return nil, err
	}
	id := repo + "\x00" + branch
	s.mu.Lock()
	old := s.sets[id]
	s.mu.Unlock()
	set, oldDocs, ok := old.reuse(objs)
	if ok {
		return set, nil
	}
	docs, fetched, err := refresh(ctx, objs, oldDocs, func(o listed) cachedDoc { return s.load(ctx, o, repo, branch) })
	if err != nil {
		return nil, err
	}
	rules, problems, cacheable := collect(objs, docs)
	set = trigger.NewRuleSet(repo, branch, rules, problems)
	s.mu.Lock()
	s.sets[id] = &cached[*trigger.RuleSet]{listed: cacheable, docs: docs, set: set}
	s.mu.Unlock()
	s.log.Debug("rules loaded", "repo", repo, "branch", branch, "rules", len(rules), "invalid", len(problems), "fetched", fetched)
	return set, nil
}

func isSeedKey(key string) bool { return strings.HasSuffix(key, ".json") }

// listDocs lists the documents under prefix whose keys keep accepts.
func (s *Store) listDocs(ctx context.Context, prefix string, keep func(key string) bool) ([]listed, error) {
	s.lists.Add(1)
	var objs []listed
	it := s.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		if !obj.IsDir && keep(obj.Key) {
			objs = append(objs, listed{key: obj.Key, version: version(obj)})
		}
	}
}

// refresh returns the documents of objs: those whose version is unchanged
// since old as they were, the others loaded anew, fetchParallel at a time.
// It also says how many were loaded.
func refresh(ctx context.Context, objs []listed, old map[string]cachedDoc, load func(listed) cachedDoc) (map[string]cachedDoc, int, error) {
	docs := make(map[string]cachedDoc, len(objs))
	var stale []listed
	for _, o := range objs {
		if d, ok := old[o.key]; ok && d.version == o.version {
			docs[o.key] = d
			continue
		}
		stale = append(stale, o)
	}
	fetched := make([]cachedDoc, len(stale))
	sem := make(chan struct{}, fetchParallel)
	var wg sync.WaitGroup
	for i, o := range stale {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fetched[i] = load(o)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	for i, o := range stale {
		docs[o.key] = fetched[i]
	}
	return docs, len(stale), nil
}

// collect splits the documents of objs into usable rules and problems.
// cacheable is the listing a later unchanged LIST may reuse the result
// for: nil when a read failed, so the next call tries again.
func collect(objs []listed, docs map[string]cachedDoc) (rules []trigger.Rule, problems []trigger.Problem, cacheable []listed) {
	cacheable = objs
	for _, o := range objs {
		d := docs[o.key]
		if d.version == "" {
			cacheable = nil
		}
		switch {
		case d.rule != nil:
			rules = append(rules, *d.rule)
		case d.problem != nil:
			problems = append(problems, *d.problem)
		}
	}
	return rules, problems, cacheable
}

// load fetches and compiles one document for repo and branch.
func (s *Store) load(ctx context.Context, o listed, repo, branch string) cachedDoc {
	cd := cachedDoc{version: o.version}
	b, err := s.read(ctx, o.key)
	if err != nil {
		// A read failure is not remembered: the version stays unknown so
		// the next push tries again.
		cd.version = ""
		cd.problem = &trigger.Problem{Key: o.key, Error: err.Error()}
		return cd
	}
	doc, err := ParseDocument(b)
	if err != nil {
		cd.problem = &trigger.Problem{Key: o.key, Error: err.Error()}
		return cd
	}
	if doc.GitHubRepo != repo || doc.GitHubBranch != branch {
		// Another branch whose name shares the first 52 code points.
		return cd
	}
	r, err := trigger.NewSeedRule(o.key, doc.GitHubRepo, doc.GitHubBranch, doc.CodePipelineName, doc.ChangeMatchExpressions)
	if err != nil {
		cd.problem = &trigger.Problem{Key: o.key, Error: err.Error()}
		return cd
	}
	cd.rule = &r
	return cd
}

func (s *Store) read(ctx context.Context, key string) ([]byte, error) {
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(b) > maxDocument {
		return nil, fmt.Errorf("read %s: larger than %d bytes", key, maxDocument)
	}
	return b, nil
}

// version identifies one stored version of an object without reading it.
func version(o *blob.ListObject) string {
	return fmt.Sprintf("%d/%d/%x", o.ModTime.UnixNano(), o.Size, o.MD5)
}

// Put validates doc and stores it under its seed key, replacing the rule
// for the same repository, branch and pipeline. It returns the key and any
// warnings about a rule that is legal but probably not meant.
func (s *Store) Put(ctx context.Context, doc Document) (key string, warnings []string, err error) {
	return s.put(ctx, doc, nil)
}

func (s *Store) put(ctx context.Context, doc Document, metadata map[string]string) (key string, warnings []string, err error) {
	key = SeedKey(s.prefix, doc.GitHubRepo, doc.GitHubBranch, doc.CodePipelineName)
	r, err := trigger.NewSeedRule(key, doc.GitHubRepo, doc.GitHubBranch, doc.CodePipelineName, doc.ChangeMatchExpressions)
	if err != nil {
		return "", nil, fmt.Errorf("invalid rule: %w", err)
	}
	opts := &blob.WriterOptions{ContentType: "application/json", Metadata: metadata}
	if err := s.bucket.WriteAll(ctx, key, doc.Marshal(), opts); err != nil {
		return "", nil, fmt.Errorf("write %s: %w", key, err)
	}
	return key, r.Warnings(), nil
}

// Get reads the document stored at key.
func (s *Store) Get(ctx context.Context, key string) (Document, error) {
	b, err := s.read(ctx, key)
	if err != nil {
		return Document{}, err
	}
	d, err := ParseDocument(b)
	if err != nil {
		return Document{}, fmt.Errorf("%s: %w", key, err)
	}
	return d, nil
}

// Delete removes the document at key; ErrNotFound when there is none.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.bucket.Delete(ctx, key); err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Count returns how many documents are stored under the prefix.
func (s *Store) Count(ctx context.Context) (int, error) {
	keys, err := s.keys(ctx)
	return len(keys), err
}

func (s *Store) keys(ctx context.Context) ([]string, error) {
	objs, err := s.listDocs(ctx, s.prefix+"/", isSeedKey)
	return keysOf(objs), err
}

func keysOf(objs []listed) []string {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.key
	}
	return keys
}

// Entry is one stored document as read by List: the document, the rule
// it compiles to, or why it is unusable.
type Entry struct {
	Key      string
	Doc      Document
	Rule     *trigger.Rule
	Problem  string
	Warnings []string
}

// List reads every document under the prefix, optionally only those of
// repo and branch (empty means any).
func (s *Store) List(ctx context.Context, repo, branch string) ([]Entry, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, len(keys))
	sem := make(chan struct{}, fetchParallel)
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			e := Entry{Key: key}
			defer func() { entries[i] = e }()
			doc, err := s.Get(ctx, key)
			if err != nil {
				e.Problem = err.Error()
				return
			}
			e.Doc = doc
			r, err := trigger.NewSeedRule(key, doc.GitHubRepo, doc.GitHubBranch, doc.CodePipelineName, doc.ChangeMatchExpressions)
			if err != nil {
				e.Problem = err.Error()
				return
			}
			if !strings.HasPrefix(key, LookupPrefix(s.prefix, doc.GitHubRepo, doc.GitHubBranch)) {
				e.Problem = fmt.Sprintf("stored under a key that the lookup for %s@%s never lists, so it never matches; its key should be %s",
					doc.GitHubRepo, doc.GitHubBranch, SeedKey(s.prefix, doc.GitHubRepo, doc.GitHubBranch, doc.CodePipelineName))
				return
			}
			e.Rule, e.Warnings = &r, r.Warnings()
		}()
	}
	wg.Wait()
	out := entries[:0]
	for _, e := range entries {
		if (repo == "" || e.Doc.GitHubRepo == repo) && (branch == "" || e.Doc.GitHubBranch == branch) {
			out = append(out, e)
		}
	}
	return out, nil
}

// redactURL drops query parameters, which may carry credentials.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }
