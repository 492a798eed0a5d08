package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/monohook/monohook/internal/deliveries"
)

// runsPerPage is the runs a pipeline's page lists and charts.
const runsPerPage = 100

// maxPipelineLen bounds a pipeline name asked for. Names are a
// CodePipeline's (at most 100 characters) or a v2 target's (an http
// target's URL, a command): longer than this, none is stored.
const maxPipelineLen = 2048

// pipelineURL is the dashboard's page of a pipeline: its name as one
// escaped path segment ("/" as %2F). A name that is a dot segment as a
// whole, which a browser would resolve as a step, goes in the query.
func pipelineURL(name string) string {
	if name == "." || name == ".." {
		return "/pipelines?" + url.Values{"name": {name}}.Encode()
	}
	return "/pipelines/" + url.PathEscape(name)
}

// pipelineRow is one pipeline on the index.
type pipelineRow struct {
	deliveries.PipelineSummary
	// Ruled: a stored rule names it.
	Ruled bool
}

// pipelines is GET /pipelines: every pipeline with a stored start or a
// rule, with its run count and latest run; with ?name=, one pipeline's
// page.
func (h *handlers) pipelines(w http.ResponseWriter, r *http.Request, session string) {
	if r.URL.Query().Has("name") {
		h.pipelinePage(w, r, session, r.URL.Query().Get("name"))
		return
	}
	stored, err := h.ui.Deliveries.Pipelines(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	ruled, err := h.ruledPipelines(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	rows := make([]pipelineRow, 0, len(stored)+len(ruled))
	for _, p := range stored {
		rows = append(rows, pipelineRow{PipelineSummary: p, Ruled: ruled[p.Name]})
		delete(ruled, p.Name)
	}
	for name := range ruled {
		rows = append(rows, pipelineRow{PipelineSummary: deliveries.PipelineSummary{Name: name}, Ruled: true})
	}
	slices.SortFunc(rows, func(a, b pipelineRow) int { return strings.Compare(a.Name, b.Name) })
	h.render(w, http.StatusOK, "pipelines", map[string]any{
		"CSRF": h.s.csrf(session), "Nav": "pipelines", "Rows": rows, "Capped": len(stored) >= deliveries.MaxPipelines, "Max": deliveries.MaxPipelines,
		"Counted": deliveries.MaxCounted,
	})
}

// pipeline is GET /pipelines/{name...}; /pipelines/ is the index.
func (h *handlers) pipeline(w http.ResponseWriter, r *http.Request, session string) {
	if r.PathValue("name") == "" {
		http.Redirect(w, r, "/pipelines", http.StatusSeeOther)
		return
	}
	h.pipelinePage(w, r, session, r.PathValue("name"))
}

// pipelinePage is a pipeline's recent runs, with the push that started
// each, and their chart.
func (h *handlers) pipelinePage(w http.ResponseWriter, r *http.Request, session, name string) {
	before := r.URL.Query().Get("before")
	switch {
	case name == "":
		h.fail(w, r, http.StatusBadRequest, "Name a pipeline: /pipelines/NAME.")
		return
	case len(name) > maxPipelineLen || !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		// No such name is stored (PostgreSQL could not even compare it).
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("A pipeline name is UTF-8 without NUL characters, at most %d bytes.", maxPipelineLen))
		return
	case len(before) > maxFilterLen || !printable(before):
		h.fail(w, r, http.StatusBadRequest, "Not a page of runs: follow the Older link from the page.")
		return
	}
	page, err := h.ui.Deliveries.Runs(r.Context(), name, before, runsPerPage)
	if errors.Is(err, deliveries.ErrBadCursor) {
		h.fail(w, r, http.StatusBadRequest, "Not a page of runs: follow the Older link from the page.")
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if len(page.Runs) == 0 && before == "" {
		ruled, err := h.ruledPipelines(r.Context())
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if !ruled[name] {
			h.fail(w, r, http.StatusNotFound, fmt.Sprintf("No pipeline %q: no stored start and no rule names it.", name))
			return
		}
	}
	var older string
	if page.Next != "" {
		u, _ := url.Parse(pipelineURL(name))
		q := u.Query()
		q.Set("before", page.Next)
		u.RawQuery = q.Encode()
		older = u.String()
	}
	now := time.Now()
	h.render(w, http.StatusOK, "pipeline", map[string]any{
		"CSRF": h.s.csrf(session), "Nav": "pipelines", "Name": name, "Runs": page.Runs, "Older": older,
		"Chart": newChart(page.Runs, now), "At": now, "Legend": legend,
	})
}

// legend is the chart's key: every kind of mark, in words.
var legend = []verdict{
	verdicts["success"], verdicts["failure"], verdicts["cancelled"], verdicts["timed_out"], verdicts["unknown"],
	{"running", "▶", "running (the bar grows until it ends)"},
}

// ruledPipelines is the set of pipelines the stored rules name, the seed
// rules' and the v2 rules'.
func (h *handlers) ruledPipelines(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	entries, err := h.ui.Store.List(ctx, "", "")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Doc.CodePipelineName != "" {
			out[e.Doc.CodePipelineName] = true
		}
	}
	v2, err := h.ui.Store.ListV2(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range v2 {
		if e.Rule != nil {
			out[e.Rule.Pipeline] = true
		}
	}
	return out, nil
}
