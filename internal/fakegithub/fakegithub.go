// Package fakegithub is a GitHub REST API fake for tests: comparisons,
// pull request files (paginated as GitHub paginates), workflow dispatches,
// check runs and commit statuses (validated as GitHub validates them, every
// write recorded) and GitHub App installation tokens, with rate limits and
// 5xx answers on demand.
package fakegithub

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Dispatch is one workflow_dispatch the fake received.
type Dispatch struct {
	Repo, Workflow, Ref string
	Inputs              map[string]any
}

// GitHub is the fake. Token is the token requests must carry ("token X"
// or "Bearer X"); AppKey, when set, is the public key App JWTs must be
// signed with, and InstallationToken what the App gets.
type GitHub struct {
	*httptest.Server
	Token             string
	AppKey            *rsa.PublicKey
	InstallationToken string

	mu           sync.Mutex
	compare      map[string][]string // "owner/repo base...head" -> files
	comparePages int
	prFiles      map[string][]string // "owner/repo#n" -> files
	dispatches   []Dispatch
	rateLimited  int
	resetIn      time.Duration
	failing      int
	requests     []string
	tokensIssued int
	runs         runs // workflow runs (runs.go)

	orgHooks       map[string][]orgHook
	hookDeliveries map[string][]HookDelivery
	lastDeliveryID int64
	redelivered    []int64
	failRedelivery map[int64]bool
	fetched        []int64
	onGet          func(guid string)
	checkRuns      []CheckRun
	checkEvents    []CheckEvent
	statuses       []Status
}

// New starts the fake.
func New(token string) *GitHub {
	g := &GitHub{Token: token, compare: map[string][]string{}, prFiles: map[string][]string{}, comparePages: 1}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	return g
}

// SetCompare sets the files of the comparison base...head in repo, and
// how many pages of commits it has (files come on the first).
func (g *GitHub) SetCompare(repo, base, head string, pages int, files ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.compare[repo+" "+base+"..."+head] = files
	g.comparePages = max(pages, 1)
}

// SetPullRequestFiles sets the files of pull request n of repo.
func (g *GitHub) SetPullRequestFiles(repo string, n int, files ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.prFiles[repo+"#"+strconv.Itoa(n)] = files
}

// RateLimitNext makes the next n requests answer 403 with an exhausted
// rate limit that resets after resetIn.
func (g *GitHub) RateLimitNext(n int, resetIn time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rateLimited, g.resetIn = n, resetIn
}

// FailNext makes the next n requests answer 502.
func (g *GitHub) FailNext(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failing = n
}

// Dispatches returns the workflow dispatches received.
func (g *GitHub) Dispatches() []Dispatch {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Dispatch(nil), g.dispatches...)
}

// Requests returns "METHOD path?query" of every request.
func (g *GitHub) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}

// TokensIssued counts the installation tokens handed out.
func (g *GitHub) TokensIssued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tokensIssued
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}

func (g *GitHub) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.requests = append(g.requests, r.Method+" "+r.URL.RequestURI())
	switch {
	case g.rateLimited > 0:
		g.rateLimited--
		reset := time.Now().Add(g.resetIn)
		g.mu.Unlock()
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		apiError(w, http.StatusForbidden, "API rate limit exceeded")
		return
	case g.failing > 0:
		g.failing--
		g.mu.Unlock()
		apiError(w, http.StatusBadGateway, "Server Error")
		return
	}
	g.mu.Unlock()
	if g.serveHooks(w, r) {
		return
	}

	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method == http.MethodPost && len(parts) == 4 && parts[0] == "app" && parts[1] == "installations" && parts[3] == "access_tokens" {
		g.issueToken(w, r)
		return
	}
	auth := r.Header.Get("Authorization")
	if auth != "token "+g.Token && auth != "Bearer "+g.Token {
		apiError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	if len(parts) < 4 || parts[0] != "repos" {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	repo := parts[1] + "/" + parts[2]
	if g.serveChecks(w, r, repo, parts) {
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	switch {
	case r.Method == http.MethodGet && parts[3] == "compare" && len(parts) >= 5:
		basehead := strings.Join(parts[4:], "/")
		g.mu.Lock()
		files, ok := g.compare[repo+" "+basehead]
		pages := g.comparePages
		g.mu.Unlock()
		if !ok {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		if page < pages {
			g.link(w, r, page+1, pages)
		}
		out := map[string]any{"status": "ahead", "total_commits": pages * 100, "commits": []any{}}
		if page == 1 {
			out["files"] = fileList(files)
		}
		writeJSON(w, http.StatusOK, out)
	case r.Method == http.MethodGet && parts[3] == "pulls" && len(parts) == 6 && parts[5] == "files":
		g.mu.Lock()
		files, ok := g.prFiles[repo+"#"+parts[4]]
		g.mu.Unlock()
		if !ok {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		if per <= 0 {
			per = 30
		}
		files = files[:min(len(files), 3000)] // GitHub lists at most 3,000
		pages := max((len(files)+per-1)/per, 1)
		if page < pages {
			g.link(w, r, page+1, pages)
		}
		lo := min((page-1)*per, len(files))
		writeJSON(w, http.StatusOK, fileList(files[lo:min(lo+per, len(files))]))
	case r.Method == http.MethodPost && parts[3] == "actions" && len(parts) == 7 && parts[6] == "dispatches":
		var in struct {
			Ref     string         `json:"ref"`
			Inputs  map[string]any `json:"inputs"`
			Details *bool          `json:"return_run_details"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Ref == "" {
			apiError(w, http.StatusUnprocessableEntity, "ref is required")
			return
		}
		g.dispatch(w, Dispatch{Repo: repo, Workflow: parts[5], Ref: in.Ref, Inputs: in.Inputs}, in.Details)
	case r.Method == http.MethodGet && parts[3] == "actions" && len(parts) == 6 && parts[4] == "runs":
		g.serveRun(w, repo, parts[5])
	default:
		apiError(w, http.StatusNotFound, "Not Found")
	}
}

// fileList is files as GitHub lists them; "a -> b" is a rename of a to b.
func fileList(files []string) []map[string]any {
	out := make([]map[string]any, len(files))
	for i, f := range files {
		if from, to, ok := strings.Cut(f, " -> "); ok {
			out[i] = map[string]any{"filename": to, "previous_filename": from, "status": "renamed"}
			continue
		}
		out[i] = map[string]any{"filename": f, "status": "modified"}
	}
	return out
}

func (g *GitHub) link(w http.ResponseWriter, r *http.Request, next, last int) {
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	q := u.Query()
	q.Set("page", strconv.Itoa(next))
	u.RawQuery = q.Encode()
	n := u.String()
	q.Set("page", strconv.Itoa(last))
	u.RawQuery = q.Encode()
	w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next", <%s>; rel="last"`, n, u.String()))
}

// issueToken checks an App JWT (RS256 with AppKey, not expired) and
// answers an installation token.
func (g *GitHub) issueToken(w http.ResponseWriter, r *http.Request) {
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(jwt, ".")
	if !ok || len(parts) != 3 || g.AppKey == nil {
		apiError(w, http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(g.AppKey, crypto.SHA256, sum[:], sig) != nil {
		apiError(w, http.StatusUnauthorized, "'Issuer' claim ('iss') must be an Integer")
		return
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Exp int64 }
	if json.Unmarshal(claims, &c) != nil || time.Now().Unix() >= c.Exp {
		apiError(w, http.StatusUnauthorized, "expired JWT")
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	g.mu.Lock()
	g.tokensIssued++
	g.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"token": g.InstallationToken, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
