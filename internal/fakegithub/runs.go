package fakegithub

import (
	"net/http"
	"strconv"
)

// RunOutcome scripts how the runs of a workflow move: the first
// InProgress polls of a run answer in_progress, the later ones completed
// with Conclusion (success, failure, cancelled, timed_out, …). An empty
// Conclusion runs for ever.
type RunOutcome struct {
	InProgress int
	Conclusion string
}

// runs are the workflow runs dispatches started.
type runs struct {
	noDetails bool // answer dispatches 204, as a server without return_run_details
	refuseKey bool // refuse return_run_details with 422, as GitHub Enterprise Server 3.19 does
	byID      map[int64]*run
	scripts   map[string]RunOutcome // by workflow
	polls     int
}

type run struct {
	repo, workflow string
	polls          int
}

// WithoutRunDetails makes dispatches answer 204 without the run, as a
// GitHub Enterprise Server that does not know return_run_details does.
func (g *GitHub) WithoutRunDetails() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runs.noDetails = true
}

// RefuseRunDetails makes a dispatch that asks for its run fail with 422
// and start nothing, as GitHub Enterprise Server 3.19 answers a key it
// does not know; one without the key is answered 204.
func (g *GitHub) RefuseRunDetails() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runs.noDetails, g.runs.refuseKey = true, true
}

// ScriptRuns makes the runs of workflow (a file name, as dispatched) move
// as o says. Without a script a run stays in progress.
func (g *GitHub) ScriptRuns(workflow string, o RunOutcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.runs.scripts == nil {
		g.runs.scripts = map[string]RunOutcome{}
	}
	g.runs.scripts[workflow] = o
}

// RunPolls returns how many times a workflow run was asked about.
func (g *GitHub) RunPolls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.runs.polls
}

// dispatch records a dispatch and answers it: 200 with the run it started
// when asked for (return_run_details), else 204.
func (g *GitHub) dispatch(w http.ResponseWriter, d Dispatch, details *bool) {
	g.mu.Lock()
	if details != nil && g.runs.refuseKey {
		g.mu.Unlock()
		apiError(w, http.StatusUnprocessableEntity, `"return_run_details" is not a permitted key.`)
		return
	}
	g.dispatches = append(g.dispatches, d)
	repo, workflow := d.Repo, d.Workflow
	if details == nil || !*details || g.runs.noDetails {
		g.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if g.runs.byID == nil {
		g.runs.byID = map[int64]*run{}
	}
	id := int64(9000 + len(g.runs.byID) + 1)
	g.runs.byID[id] = &run{repo: repo, workflow: workflow}
	g.mu.Unlock()
	page := g.URL + "/" + repo + "/actions/runs/" + strconv.FormatInt(id, 10)
	writeJSON(w, http.StatusOK, map[string]any{"workflow_run_id": id,
		"run_url": g.URL + "/repos/" + repo + "/actions/runs/" + strconv.FormatInt(id, 10), "html_url": page})
}

// serveRun answers GET /repos/{owner}/{repo}/actions/runs/{id}.
func (g *GitHub) serveRun(w http.ResponseWriter, repo, idText string) {
	id, _ := strconv.ParseInt(idText, 10, 64)
	g.mu.Lock()
	g.runs.polls++
	r, ok := g.runs.byID[id]
	if !ok || r.repo != repo {
		g.mu.Unlock()
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	r.polls++
	o := g.runs.scripts[r.workflow]
	status, conclusion := "in_progress", any(nil)
	if o.Conclusion != "" && r.polls > o.InProgress {
		status, conclusion = "completed", o.Conclusion
	}
	g.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "name": r.workflow, "status": status, "conclusion": conclusion,
		"html_url": g.URL + "/" + repo + "/actions/runs/" + idText, "path": ".github/workflows/" + r.workflow})
}
