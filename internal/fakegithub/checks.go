package fakegithub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

// CheckRun is a check run as the fake holds it.
type CheckRun struct {
	ID         int64  `json:"id"`
	Repo       string `json:"-"`
	Name       string `json:"name"`
	HeadSHA    string `json:"head_sha"`
	ExternalID string `json:"external_id"`
	Status     string `json:"status"`
	Conclusion string `json:"conclusion,omitempty"`
	DetailsURL string `json:"details_url,omitempty"`
	Title      string `json:"-"`
	Summary    string `json:"-"`
}

// CheckEvent is one create ("create") or update ("update") of a check run,
// with the run as it was after it.
type CheckEvent struct {
	Op  string
	Run CheckRun
}

// Status is one commit status the fake received.
type Status struct {
	Repo, SHA, Context, State, Description, TargetURL string
}

// CheckRuns returns every check run, in the order they were created.
func (g *GitHub) CheckRuns() []CheckRun {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]CheckRun(nil), g.checkRuns...)
}

// CheckEvents returns every create and update of a check run, in order.
func (g *GitHub) CheckEvents() []CheckEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]CheckEvent(nil), g.checkEvents...)
}

// Statuses returns every commit status received, in order.
func (g *GitHub) Statuses() []Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Status(nil), g.statuses...)
}

// checkRunIn is the body of a create or an update, as GitHub reads it.
type checkRunIn struct {
	Name       *string `json:"name"`
	HeadSHA    *string `json:"head_sha"`
	ExternalID *string `json:"external_id"`
	Status     *string `json:"status"`
	Conclusion *string `json:"conclusion"`
	DetailsURL *string `json:"details_url"`
	Output     *struct {
		Title   *string `json:"title"`
		Summary *string `json:"summary"`
		Text    string  `json:"text"`
	} `json:"output"`
}

// Limits of the Checks API.
const maxCheckOutput = 65535

// apply checks in as GitHub does and applies it to run; the error is the
// 422's message.
func (in *checkRunIn) apply(run *CheckRun) string {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&run.Name, in.Name)
	set(&run.ExternalID, in.ExternalID)
	set(&run.DetailsURL, in.DetailsURL)
	if in.Status != nil {
		if !slices.Contains([]string{"queued", "in_progress", "completed", "waiting", "requested", "pending"}, *in.Status) {
			return fmt.Sprintf("Invalid request.\n\n%q is not a member of [queued, in_progress, completed]", *in.Status)
		}
		run.Status = *in.Status
	}
	if in.Conclusion != nil {
		if !slices.Contains([]string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}, *in.Conclusion) {
			return fmt.Sprintf("Invalid request.\n\n%q is not a valid conclusion", *in.Conclusion)
		}
		// GitHub: providing a conclusion sets the status to completed.
		run.Conclusion, run.Status = *in.Conclusion, "completed"
	}
	if run.Status == "completed" && run.Conclusion == "" {
		return "Invalid request.\n\nconclusion is required when status is completed"
	}
	if o := in.Output; o != nil {
		if o.Title == nil || o.Summary == nil {
			return "Invalid request.\n\nNo subschema in \"anyOf\" matched: output needs title and summary"
		}
		if len(*o.Summary) > maxCheckOutput || len(o.Text) > maxCheckOutput {
			return fmt.Sprintf("Invalid request.\n\nOnly %d characters are allowed; %d were supplied.", maxCheckOutput, len(*o.Summary))
		}
		run.Title, run.Summary = *o.Title, *o.Summary
	}
	if run.Name == "" {
		return "Invalid request.\n\nname wasn't supplied."
	}
	return ""
}

// serveChecks answers the Checks and Statuses routes of repo; false when
// the request is for neither.
func (g *GitHub) serveChecks(w http.ResponseWriter, r *http.Request, repo string, parts []string) bool {
	switch {
	case r.Method == http.MethodPost && len(parts) == 4 && parts[3] == "check-runs":
		g.writeCheckRun(w, r, repo, 0)
	case r.Method == http.MethodPatch && len(parts) == 5 && parts[3] == "check-runs":
		id, err := strconv.ParseInt(parts[4], 10, 64)
		if err != nil {
			apiError(w, http.StatusNotFound, "Not Found")
			return true
		}
		g.writeCheckRun(w, r, repo, id)
	case r.Method == http.MethodGet && len(parts) == 6 && parts[3] == "commits" && parts[5] == "check-runs":
		g.listCheckRuns(w, r, repo, parts[4])
	case r.Method == http.MethodPost && len(parts) == 5 && parts[3] == "statuses":
		g.createStatus(w, r, repo, parts[4])
	case r.Method == http.MethodGet && len(parts) == 6 && parts[3] == "commits" && parts[5] == "status":
		g.combinedStatus(w, r, repo, parts[4])
	default:
		return false
	}
	return true
}

func (g *GitHub) writeCheckRun(w http.ResponseWriter, r *http.Request, repo string, id int64) {
	var in checkRunIn
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	run := CheckRun{Repo: repo, Status: "queued"}
	i := -1
	if id != 0 {
		i = slices.IndexFunc(g.checkRuns, func(c CheckRun) bool { return c.ID == id && c.Repo == repo })
		if i < 0 {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		run = g.checkRuns[i]
	} else {
		if in.HeadSHA == nil || *in.HeadSHA == "" {
			apiError(w, http.StatusUnprocessableEntity, "Invalid request.\n\nhead_sha wasn't supplied.")
			return
		}
		run.HeadSHA = *in.HeadSHA
	}
	if msg := in.apply(&run); msg != "" {
		apiError(w, http.StatusUnprocessableEntity, msg)
		return
	}
	op := "update"
	if i < 0 {
		op = "create"
		run.ID = int64(len(g.checkRuns) + 1)
		g.checkRuns = append(g.checkRuns, run)
	} else {
		g.checkRuns[i] = run
	}
	g.checkEvents = append(g.checkEvents, CheckEvent{Op: op, Run: run})
	code := http.StatusOK
	if op == "create" {
		code = http.StatusCreated
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(run)
}

// listCheckRuns lists the check runs of a commit (newest first), with
// GitHub's check_name and filter (latest: the newest of each name)
// parameters and its pagination.
func (g *GitHub) listCheckRuns(w http.ResponseWriter, r *http.Request, repo, sha string) {
	q := r.URL.Query()
	name, latest := q.Get("check_name"), q.Get("filter") != "all"
	g.mu.Lock()
	var runs []CheckRun
	seen := map[string]bool{}
	for i := len(g.checkRuns) - 1; i >= 0; i-- {
		c := g.checkRuns[i]
		if c.Repo != repo || c.HeadSHA != sha || (name != "" && c.Name != name) || (latest && seen[c.Name]) {
			continue
		}
		seen[c.Name] = true
		runs = append(runs, c)
	}
	g.mu.Unlock()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 || per > 100 {
		per = 30
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	pages := max((len(runs)+per-1)/per, 1)
	if page < pages {
		g.link(w, r, page+1, pages)
	}
	lo := min((page-1)*per, len(runs))
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(runs), "check_runs": runs[lo:min(lo+per, len(runs))]})
}

func (g *GitHub) createStatus(w http.ResponseWriter, r *http.Request, repo, sha string) {
	var in struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if !slices.Contains([]string{"error", "failure", "pending", "success"}, in.State) {
		apiError(w, http.StatusUnprocessableEntity, "Validation Failed: state is not included in the list")
		return
	}
	if len([]rune(in.Description)) > 140 {
		apiError(w, http.StatusUnprocessableEntity, "Validation Failed: description is too long (maximum is 140 characters)")
		return
	}
	if in.Context == "" {
		in.Context = "default"
	}
	g.mu.Lock()
	g.statuses = append(g.statuses, Status{Repo: repo, SHA: sha, Context: in.Context, State: in.State, Description: in.Description, TargetURL: in.TargetURL})
	g.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"state": in.State, "context": in.Context})
}

// combinedStatus answers a commit's combined status: the newest status
// of each context (one page: the fake never holds more than tests post).
func (g *GitHub) combinedStatus(w http.ResponseWriter, _ *http.Request, repo, sha string) {
	g.mu.Lock()
	seen := map[string]bool{}
	var out []map[string]string
	for i := len(g.statuses) - 1; i >= 0; i-- {
		s := g.statuses[i]
		if s.Repo != repo || s.SHA != sha || seen[s.Context] {
			continue
		}
		seen[s.Context] = true
		out = append(out, map[string]string{"context": s.Context, "state": s.State, "description": s.Description, "target_url": s.TargetURL})
	}
	g.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"sha": sha, "total_count": len(out), "statuses": out})
}
