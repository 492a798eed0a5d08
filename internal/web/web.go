package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/monohook/monohook/internal/deliveries"
	"github.com/monohook/monohook/internal/rulestore"
	"github.com/monohook/monohook/internal/trigger"
)

//go:embed templates/*.html templates/ui.css
var files embed.FS

// UI is the dashboard. With an empty AdminToken it is off: GET / says how
// to turn it on, and nothing else is served.
type UI struct {
	AdminToken string
	// Sessions keeps the sessions (the database, shared by replicas);
	// required with an admin token.
	Sessions   SessionStore
	Deliveries Deliveries
	Store      RuleDocuments
	// GitHubWeb is the web root of the GitHub that check runs are on
	// (GitHubWebRoot of the API URL); "" shows a check's id without a link.
	GitHubWeb string
	// Rules is what the path tester and the explanations evaluate against:
	// the store, as the evaluation uses it.
	Rules trigger.RuleSource
	// Notice, when set, is shown above the deliveries (serve --dry-run
	// says that nothing is started).
	Notice string
	Log    *slog.Logger
	// Recovery, when set (serve recovers missed deliveries), tells the
	// last reconciliation with GitHub's deliveries, shown above the list.
	Recovery Reconciliations
}

// Reconciliations reads the last reconciliation with GitHub's list of
// the webhook's deliveries.
type Reconciliations interface {
	LastReconciliation(ctx context.Context) (deliveries.Reconciliation, error)
}

// Deliveries is what the dashboard reads, and replays, of the stored
// deliveries.
type Deliveries interface {
	Find(ctx context.Context, f deliveries.Filter) (deliveries.Page, error)
	Repos(ctx context.Context) ([]string, error)
	Get(ctx context.Context, id string) (deliveries.Delivery, error)
	// Push is a delivery's stored push, parsed.
	Push(ctx context.Context, id string) (*trigger.Push, error)
	Replay(ctx context.Context, id string) (round int, err error)
	// LastStarted is when each pipeline last started.
	LastStarted(ctx context.Context) (map[string]time.Time, error)
	// Runs is a page of one pipeline's runs, newest first.
	Runs(ctx context.Context, pipeline, before string, limit int) (deliveries.RunPage, error)
	// Pipelines is every pipeline with a stored start, with its latest.
	Pipelines(ctx context.Context) ([]deliveries.PipelineSummary, error)
}

// RuleDocuments is what the rules page lists of the stored rule documents,
// the invalid ones included.
type RuleDocuments interface {
	List(ctx context.Context, repo, branch string) ([]rulestore.Entry, error)
	ListV2(ctx context.Context) ([]rulestore.V2Entry, error)
}

// pageSize is the deliveries shown per page.
const pageSize = 50

// The bounds of a form: its body, and the path tester's fields. A
// repository is owner/name (GitHub allows 39 and 100 characters); a branch
// name is at most what git accepts for a ref; a path, what a file system
// does.
const (
	maxFormBytes  = 8 << 20
	maxLoginBytes = 64 << 10
	maxTestPaths  = 10_000
	maxRepoLen    = 200
	maxBranchLen  = 255
	maxPathLen    = 4096
	maxFilterLen  = 1024 // the deliveries list's repository, search and page cursor
)

// Handler serves the dashboard's routes.
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	if u.AdminToken == "" {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintln(w, "The monohook dashboard is off. Start serve with an admin token to turn it on:\nMONOHOOK_ADMIN_TOKEN=… or --admin-token-file FILE.")
		})
		return mux
	}
	if u.Sessions == nil {
		panic("web: the dashboard needs a session store")
	}
	h := &handlers{ui: u, s: newSessions(u.AdminToken, u.Sessions), tmpl: parseTemplates()}
	page := func(pattern string, f func(http.ResponseWriter, *http.Request, string)) {
		mux.Handle(pattern, secure(h.authed(f)))
	}
	mux.Handle("GET /ui.css", secure(http.HandlerFunc(serveCSS)))
	mux.Handle("GET /login", secure(http.HandlerFunc(h.loginPage)))
	mux.Handle("POST /login", secure(http.HandlerFunc(h.login)))
	page("POST /logout", h.logout)
	page("GET /{$}", h.deliveries)
	// A delivery's id is in the query, never in the path: a browser reads
	// an id such as ".." in a path segment (escaped or not) as a step up.
	page("GET /delivery", h.delivery)
	page("POST /delivery/replay", h.replay)
	page("GET /rules", h.rules)
	page("POST /rules/test", h.rules)
	page("GET /pipelines", h.pipelines)
	page("GET /pipelines/{name...}", h.pipeline)
	return mux
}

type handlers struct {
	ui   *UI
	s    *sessions
	tmpl map[string]*template.Template
}

// secure sets the headers every dashboard response carries: nothing from
// other origins (no CDN, no inline script), not framed, not cached.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if r.URL.Path != "/ui.css" {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// authed lets through requests with a valid session; a page request
// without one is sent to the login page, anything else refused. A POST
// must also carry the session's CSRF token and come from this origin.
func (h *handlers) authed(f func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := h.s.sessionOf(r)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if session == "" {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h.fail(w, r, http.StatusUnauthorized, "Not logged in.")
			return
		}
		if r.Method == http.MethodPost {
			if !h.parseForm(w, r, maxFormBytes) {
				return
			}
			if !sameOrigin(r) || !h.s.csrfOK(session, r.PostFormValue("csrf")) {
				h.ui.Log.Warn("dashboard: POST refused: missing or wrong CSRF token, or another origin", "path", r.URL.Path, "remote", r.RemoteAddr)
				h.fail(w, r, http.StatusForbidden, "This form is stale or came from another site: reload the page and try again.")
				return
			}
		}
		f(w, r, session)
	})
}

func (h *handlers) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "login", map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

// parseForm reads a POST's form, at most limit bytes of it; a body too
// large or malformed is answered here, and false returned.
func (h *handlers) parseForm(w http.ResponseWriter, r *http.Request, limit int64) bool {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	err := r.ParseForm()
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		h.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("The form is over %d bytes.", limit))
		return false
	case err != nil:
		h.fail(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
		return false
	}
	return true
}

func (h *handlers) login(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r, maxLoginBytes) {
		return
	}
	next := safeNext(r.PostFormValue("next"))
	if !sameOrigin(r) {
		h.fail(w, r, http.StatusForbidden, "Login from another site refused.")
		return
	}
	if !h.s.tokenOK(r.PostFormValue("token")) {
		h.ui.Log.Warn("dashboard: login refused: wrong admin token", "remote", r.RemoteAddr)
		h.render(w, http.StatusUnauthorized, "login", map[string]any{"Next": next, "Error": "Wrong token."})
		return
	}
	session, err := h.s.issue(r.Context(), time.Now())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	h.ui.Log.Info("dashboard: logged in", "remote", r.RemoteAddr)
	setSession(w, r, session, int(sessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext returns where a login may send the browser: next when it is a
// path on this site, written again from what was checked, else "/".
//
// It is checked as a browser's URL parser (WHATWG) reads it, not as Go
// does: a browser drops tabs and newlines anywhere and control characters
// and spaces at either end, reads a backslash as "/", and takes "//" (or
// "/" and a backslash) at the start for another host. So a path must start
// with one "/" followed by neither, and hold no control character at all,
// both as sent and percent-decoded (for whatever decodes it later).
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || !sitePath(next) || !sitePath(u.Path) || u.Scheme != "" || u.Opaque != "" || u.User != nil || u.Host != "" {
		return "/"
	}
	// The path escaped as net/url escapes it (a backslash as %5C), the query
	// encoded again from its values; no fragment (a server never gets one).
	return (&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.Query().Encode()}).String()
}

// sitePath reports whether p is a path on this site as a browser reads it.
func sitePath(p string) bool {
	if p == "" || p[0] != '/' || strings.HasPrefix(p[1:], "/") || strings.HasPrefix(p[1:], "\\") {
		return false
	}
	return !strings.ContainsFunc(p, unicode.IsControl)
}

func (h *handlers) logout(w http.ResponseWriter, r *http.Request, session string) {
	if err := h.s.end(r.Context(), session); err != nil {
		h.internal(w, r, err)
		return
	}
	h.ui.Log.Info("dashboard: logged out", "remote", r.RemoteAddr)
	setSession(w, r, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (h *handlers) deliveries(w http.ResponseWriter, r *http.Request, session string) {
	qs := r.URL.Query()
	f := deliveries.Filter{Repo: qs.Get("repo"), Status: qs.Get("status"), Text: strings.TrimSpace(qs.Get("q")), Before: qs.Get("before"), Limit: pageSize}
	if f.Status != "" && !slices.Contains(deliveries.Statuses, f.Status) {
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("Unknown status %q.", f.Status))
		return
	}
	// What PostgreSQL cannot compare (NUL, invalid UTF-8) is refused here
	// rather than failing the query.
	for name, v := range map[string]string{"repo": f.Repo, "q": f.Text, "before": f.Before} {
		if len(v) > maxFilterLen || !printable(v) {
			h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("The %s filter must be UTF-8 without control characters, at most %d bytes.", name, maxFilterLen))
			return
		}
	}
	page, err := h.ui.Deliveries.Find(r.Context(), f)
	if errors.Is(err, deliveries.ErrBadCursor) {
		h.fail(w, r, http.StatusBadRequest, "Not a page of deliveries: follow the Older link from the list.")
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	repos, err := h.ui.Deliveries.Repos(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	var older string
	if page.Next != "" {
		v := url.Values{}
		for k, val := range map[string]string{"repo": f.Repo, "status": f.Status, "q": f.Text, "before": page.Next} {
			if val != "" {
				v.Set(k, val)
			}
		}
		older = "/?" + v.Encode()
	}
	data := map[string]any{
		"CSRF": h.s.csrf(session), "Nav": "deliveries", "Filter": f, "Page": page, "Repos": repos,
		"Statuses": deliveries.Statuses, "Older": older, "Notice": h.ui.Notice,
	}
	if h.ui.Recovery != nil {
		last, err := h.ui.Recovery.LastReconciliation(r.Context())
		if err != nil {
			h.internal(w, r, err)
			return
		}
		data["Recovery"] = last
	}
	h.render(w, http.StatusOK, "deliveries", data)
}

// ruleView is one rule's decision with the rule's expressions, for the
// explanations.
type ruleView struct {
	trigger.Decision
	Expressions string
}

// explain plans p, with the change set cs, against the current rules and
// pairs each decision with its rule's expressions.
func (h *handlers) explain(ctx context.Context, p *trigger.Push, cs trigger.ChangeSet) (trigger.Plan, []ruleView, error) {
	r, err := trigger.NewLoader(h.ui.Rules).Load(ctx, p)
	if err != nil {
		return trigger.Plan{}, nil, err
	}
	plan := trigger.NewPlan(trigger.PlanInput{Event: p, Rules: r, Changes: cs, Explain: true})
	res := plan.Result
	exprs := map[string]string{}
	if r.Seed != nil {
		for _, rule := range r.Seed.Rules {
			exprs[rule.Key] = rule.Expressions
		}
	}
	for _, rule := range r.V2.For(p).Rules {
		exprs[rule.Key] = rule.Expressions
	}
	views := make([]ruleView, len(res.Decisions))
	for i, d := range res.Decisions {
		views[i] = ruleView{Decision: d, Expressions: exprs[d.Rule]}
	}
	// Matched rules first, each group in rule order.
	slices.SortStableFunc(views, func(a, b ruleView) int {
		switch {
		case a.Matched == b.Matched:
			return 0
		case a.Matched:
			return -1
		}
		return 1
	})
	return plan, views, nil
}

// deliveryURL is the dashboard's page of a delivery.
func deliveryURL(id string) string { return "/delivery?" + url.Values{"id": {id}}.Encode() }

// deliveryID is the delivery a request names; "" (answered) when none.
func (h *handlers) deliveryID(w http.ResponseWriter, r *http.Request) string {
	id := r.FormValue("id")
	switch {
	case id == "":
		h.fail(w, r, http.StatusBadRequest, "Name a delivery: ?id=DELIVERY.")
	case !utf8.ValidString(id) || strings.ContainsRune(id, 0):
		// No such id is stored (PostgreSQL could not even compare it).
		h.fail(w, r, http.StatusBadRequest, "A delivery id is UTF-8 without NUL characters.")
		id = ""
	}
	return id
}

func (h *handlers) delivery(w http.ResponseWriter, r *http.Request, session string) {
	id := h.deliveryID(w, r)
	if id == "" {
		return
	}
	d, err := h.ui.Deliveries.Get(r.Context(), id)
	if errors.Is(err, deliveries.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No delivery %q is stored (it may be older than the retention).", id))
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	data := map[string]any{"CSRF": h.s.csrf(session), "Nav": "deliveries", "D": d, "Replayed": r.URL.Query().Get("replayed"),
		"At": time.Now(), "GitHubWeb": h.ui.GitHubWeb, "FullName": ""}
	if d.Event == "push" || d.Event == "pull_request" {
		p, err := h.ui.Deliveries.Push(r.Context(), id)
		if err != nil {
			data["ExplainError"] = err.Error()
		} else {
			// The change set as the evaluation saw it: with the paths the
			// GitHub API added, and why it may still be incomplete.
			cs := trigger.Unasked(p, "")
			if d.Result != nil {
				cs = d.Result.Recorded()
			}
			data["Push"], data["FullName"] = cs.Apply(p), p.FullName
			plan, views, err := h.explain(r.Context(), p, cs)
			if err != nil {
				data["ExplainError"] = err.Error()
			} else {
				data["Now"], data["Views"] = plan.Result, views
			}
		}
	}
	h.render(w, http.StatusOK, "delivery", data)
}

func (h *handlers) replay(w http.ResponseWriter, r *http.Request, _ string) {
	id := h.deliveryID(w, r)
	if id == "" {
		return
	}
	round, err := h.ui.Deliveries.Replay(r.Context(), id)
	if errors.Is(err, deliveries.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No delivery %q is stored.", id))
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	h.ui.Log.Info("dashboard: delivery replayed", "delivery", id, "round", round, "remote", r.RemoteAddr)
	http.Redirect(w, r, deliveryURL(id)+"&replayed="+strconv.Itoa(round), http.StatusSeeOther)
}

// v2Row is one stored v2 rule document on the rules page.
type v2Row struct {
	rulestore.V2Entry
	Spec        *trigger.Spec
	LastStarted time.Time
}

// ruleRow is one stored rule document on the rules page.
type ruleRow struct {
	rulestore.Entry
	LastStarted time.Time
}

func (h *handlers) rules(w http.ResponseWriter, r *http.Request, session string) {
	entries, err := h.ui.Store.List(r.Context(), "", "")
	if err != nil {
		h.internal(w, r, err)
		return
	}
	last, err := h.ui.Deliveries.LastStarted(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	rows := make([]ruleRow, len(entries))
	invalid := 0
	for i, e := range entries {
		rows[i] = ruleRow{Entry: e, LastStarted: last[e.Doc.CodePipelineName]}
		if e.Problem != "" {
			invalid++
		}
	}
	v2, err := h.ui.Store.ListV2(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	v2rows := make([]v2Row, len(v2))
	for i, e := range v2 {
		v2rows[i] = v2Row{V2Entry: e}
		if e.Rule != nil {
			v2rows[i].Spec = &e.Rule.V2.Spec
			v2rows[i].LastStarted = last[e.Rule.Pipeline]
		} else {
			invalid++
		}
	}
	data := map[string]any{"CSRF": h.s.csrf(session), "Nav": "rules", "Rows": rows, "V2": v2rows, "Invalid": invalid}
	if r.Method == http.MethodPost {
		repo, branch := strings.TrimSpace(r.PostFormValue("repo")), strings.TrimSpace(r.PostFormValue("branch"))
		text := r.PostFormValue("paths")
		var paths []string
		for line := range strings.Lines(text) {
			if p := strings.TrimSpace(line); p != "" {
				paths = append(paths, p)
			}
		}
		data["Test"] = map[string]any{"Repo": repo, "Branch": branch, "Paths": text, "Count": len(paths)}
		if msg := testInputProblem(repo, branch, paths); msg != "" {
			data["TestError"] = msg
			h.render(w, http.StatusBadRequest, "rules", data)
			return
		}
		// Seed rules know the name only, v2 rules owner/name: a name alone
		// reaches the v2 rules of the one repository of that name.
		p := &trigger.Push{Repo: repo, Ref: "refs/heads/" + branch, Paths: paths}
		if _, name, ok := strings.Cut(repo, "/"); ok {
			p.Repo, p.FullName = name, repo
		} else if full := v2Repositories(v2, repo); len(full) == 1 {
			p.FullName = full[0]
		} else if len(full) > 1 {
			data["TestError"] = fmt.Sprintf("v2 rules name several repositories %s (%s): type owner/name.", repo, strings.Join(full, ", "))
			h.render(w, http.StatusBadRequest, "rules", data)
			return
		}
		plan, views, err := h.explain(r.Context(), p, trigger.ChangeSet{})
		if err != nil {
			h.ui.Log.Error("dashboard: path tester", "err", err)
			data["TestError"] = err.Error()
			h.render(w, http.StatusInternalServerError, "rules", data)
			return
		}
		data["Result"], data["Views"] = plan.Result, views
	}
	h.render(w, http.StatusOK, "rules", data)
}

// v2Repositories returns the owner/name of every repository called name
// that a usable v2 rule names, sorted, each once.
func v2Repositories(entries []rulestore.V2Entry, name string) []string {
	var out []string
	for _, e := range entries {
		if e.Rule == nil {
			continue
		}
		full := e.Rule.V2.Spec.Repository
		if _, n, ok := strings.Cut(full, "/"); ok && strings.EqualFold(n, name) && !slices.Contains(out, full) {
			out = append(out, full)
		}
	}
	slices.Sort(out)
	return out
}

// testInputProblem says what is wrong with the path tester's input, or "".
func testInputProblem(repo, branch string, paths []string) string {
	switch {
	case repo == "" || branch == "":
		return "Give the repository (owner/name) and the branch."
	case len(repo) > maxRepoLen || !printable(repo):
		return fmt.Sprintf("The repository must be printable UTF-8 of at most %d bytes.", maxRepoLen)
	case len(branch) > maxBranchLen || !printable(branch):
		return fmt.Sprintf("The branch must be printable UTF-8 of at most %d bytes.", maxBranchLen)
	case len(paths) > maxTestPaths:
		return fmt.Sprintf("At most %d paths.", maxTestPaths)
	}
	for i, p := range paths {
		if len(p) > maxPathLen || !printable(p) {
			return fmt.Sprintf("Path %d: a path must be printable UTF-8 of at most %d bytes.", i+1, maxPathLen)
		}
	}
	return ""
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

func (h *handlers) render(w http.ResponseWriter, code int, name string, data map[string]any) {
	var b strings.Builder
	if err := h.tmpl[name].ExecuteTemplate(&b, "layout", data); err != nil {
		h.ui.Log.Error("dashboard: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

func (h *handlers) fail(w http.ResponseWriter, _ *http.Request, code int, msg string) {
	h.render(w, code, "error", map[string]any{"Code": code, "Status": http.StatusText(code), "Message": msg})
}

func (h *handlers) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.ui.Log.Error("dashboard: request failed", "path", r.URL.Path, "err", err)
	h.fail(w, r, http.StatusInternalServerError, err.Error())
}

func serveCSS(w http.ResponseWriter, _ *http.Request) {
	b, _ := files.ReadFile("templates/ui.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(b)
}

var funcs = template.FuncMap{
	"deliveryURL": deliveryURL,
	"pipelineURL": pipelineURL,
	"verdict":     verdictOf,
	"took":        spanOf,
	"checkURL":    checkURL,
	"clip":        clip,
	"short": func(s string) string {
		if len(s) > 7 {
			return s[:7]
		}
		return s
	},
	"ref": func(ref string) string {
		if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
			return b
		}
		if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
			return "tag " + t
		}
		if n, ok := strings.CutPrefix(ref, "refs/pull/"); ok {
			return "pull request #" + strings.TrimSuffix(n, "/head")
		}
		return ref
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	// skipped says why a push started nothing whatever the rules say,
	// from what the list shows of it (the decision itself is not read).
	"skipped": func(ref, sha string) string {
		switch {
		case strings.HasPrefix(ref, "refs/tags/"):
			return "skipped: tag"
		case sha != "" && strings.Trim(sha, "0") == "":
			return "skipped: branch deleted"
		}
		return ""
	},
	"first": func(n int, s []string) []string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
}

// parseTemplates parses each page with the shared layout.
func parseTemplates() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, page := range []string{"login", "deliveries", "delivery", "rules", "error", "pipelines", "pipeline"} {
		out[page] = template.Must(template.New(page).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials.html", "templates/"+page+".html"))
	}
	return out
}
