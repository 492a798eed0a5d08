package fakeaws

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Outcome scripts how an execution (a pipeline execution, a build) the
// fake started moves: its first InProgress polls answer that it is still
// running, the later ones Status. An empty Status runs for ever.
type Outcome struct {
	InProgress int
	// Status in the service's words: CodePipeline's Succeeded, Failed,
	// Stopped, Cancelled, Superseded; CodeBuild's SUCCEEDED, FAILED,
	// FAULT, TIMED_OUT, STOPPED.
	Status string
	// Summary is CodePipeline's statusSummary; for CodeBuild, the message
	// of the failed phase.
	Summary string
	// Phase is the CodeBuild phase that failed (BUILD, INSTALL, …).
	Phase string
}

// run is an execution the fake started, and how often it was asked about.
type run struct {
	name  string // pipeline or project
	polls int
}

// status is what r answers to its next poll under o, and counts the poll.
func (r *run) status(o Outcome, running string) string {
	r.polls++
	if o.Status == "" || r.polls <= o.InProgress {
		return running
	}
	return o.Status
}

// Script makes the executions of pipeline (already started or not) move
// as o says. Without a script an execution stays InProgress.
func (f *CodePipeline) Script(pipeline string, o Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[pipeline] = o
}

// ScriptExecution makes one execution move as o says, whatever its
// pipeline's script.
func (f *CodePipeline) ScriptExecution(id string, o Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts["execution:"+id] = o
}

// FailNextGets makes the next GetPipelineExecution calls answer with these
// error codes, one per call.
func (f *CodePipeline) FailNextGets(codes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.getFailures = append(f.getFailures, codes...)
}

// Gets returns how many GetPipelineExecution calls the fake answered,
// errors included.
func (f *CodePipeline) Gets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

func (f *CodePipeline) getExecution(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PipelineName string `json:"pipelineName"`
		ExecutionID  string `json:"pipelineExecutionId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awsError(w, 400, "SerializationException", err.Error())
		return
	}
	f.mu.Lock()
	f.gets++
	var fail string
	if len(f.getFailures) > 0 {
		fail, f.getFailures = f.getFailures[0], f.getFailures[1:]
	}
	ex, ok := f.runs[in.ExecutionID]
	o, scripted := f.scripts["execution:"+in.ExecutionID]
	if !scripted {
		o = f.scripts[in.PipelineName]
	}
	var status string
	switch {
	case fail != "":
	case !ok || ex.name != in.PipelineName:
		fail = "PipelineExecutionNotFoundException"
	default:
		status = ex.status(o, "InProgress")
	}
	f.mu.Unlock()
	if fail != "" {
		failWith(w, fail, in.PipelineName)
		return
	}
	e := map[string]any{"pipelineName": in.PipelineName, "pipelineVersion": 1, "pipelineExecutionId": in.ExecutionID, "status": status}
	if status != "InProgress" && o.Summary != "" {
		e["statusSummary"] = o.Summary
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{"pipelineExecution": e})
}

func failWith(w http.ResponseWriter, code, name string) {
	status := statusOf[code]
	if status == 0 {
		status = 400
	}
	awsError(w, status, code, "fake failure for "+name)
}

// Script makes the builds of project (already started or not) move as o
// says. Without a script a build stays IN_PROGRESS.
func (f *CodeBuild) Script(project string, o Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[project] = o
}

// FailNextGets makes the next BatchGetBuilds calls answer with these error
// codes, one per call.
func (f *CodeBuild) FailNextGets(codes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.getFailures = append(f.getFailures, codes...)
}

// Batches returns the ids of every BatchGetBuilds call, in order.
func (f *CodeBuild) Batches() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.batches...)
}

// Hold makes BatchGetBuilds calls wait, once received and counted in
// Batches, until release is called.
func (f *CodeBuild) Hold() (release func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.gate = nil
			f.mu.Unlock()
			close(gate)
		})
	}
}

func (f *CodeBuild) batchGetBuilds(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IDs []string `json:"ids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awsError(w, 400, "SerializationException", err.Error())
		return
	}
	if len(in.IDs) == 0 || len(in.IDs) > 100 {
		awsError(w, 400, "InvalidInputException", fmt.Sprintf("%d ids: between 1 and 100", len(in.IDs)))
		return
	}
	f.mu.Lock()
	f.batches = append(f.batches, append([]string(nil), in.IDs...))
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.getFailures) > 0 {
		fail := f.getFailures[0]
		f.getFailures = f.getFailures[1:]
		failWith(w, fail, strings.Join(in.IDs, ","))
		return
	}
	builds, notFound := []any{}, []string{}
	for _, id := range in.IDs {
		b, ok := f.runs[id]
		if !ok {
			notFound = append(notFound, id)
			continue
		}
		builds = append(builds, f.build(id, b))
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{"builds": builds, "buildsNotFound": notFound})
}

// build is a build as BatchGetBuilds describes it, at its next poll.
func (f *CodeBuild) build(id string, b *run) map[string]any {
	o := f.scripts[b.name]
	status := b.status(o, "IN_PROGRESS")
	out := map[string]any{"id": id, "arn": "arn:aws:codebuild:us-east-1:123456789012:build/" + id,
		"projectName": b.name, "buildStatus": status, "buildComplete": status != "IN_PROGRESS", "currentPhase": "BUILD"}
	if status == "IN_PROGRESS" {
		return out
	}
	out["currentPhase"] = "COMPLETED"
	if o.Phase != "" {
		out["phases"] = []any{
			map[string]any{"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED"},
			map[string]any{"phaseType": o.Phase, "phaseStatus": status,
				"contexts": []any{map[string]string{"statusCode": "COMMAND_EXECUTION_ERROR", "message": o.Summary}}},
		}
	}
	return out
}
