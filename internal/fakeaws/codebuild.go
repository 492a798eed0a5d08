package fakeaws

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Build is one StartBuild call the CodeBuild fake received.
type Build struct {
	Project, SourceVersion, Token string
	Env                           map[string]string
}

// CodeBuild fakes the AWS CodeBuild API (JSON 1.1, X-Amz-Target:
// CodeBuild_20161006.StartBuild). A repeated idempotencyToken returns the
// first build and is not a new build, as CodeBuild does.
type CodeBuild struct {
	*httptest.Server

	mu       sync.Mutex
	calls    []Build
	builds   map[string]string // token -> build id
	projects map[string]bool   // nil: every project exists
	failures []string
	// BatchGetBuilds (executions.go).
	runs        map[string]*run // build id -> its run
	scripts     map[string]Outcome
	getFailures []string
	batches     [][]string
	gate        chan struct{} // Hold
}

// NewCodeBuild starts the fake.
func NewCodeBuild() *CodeBuild {
	f := &CodeBuild{builds: map[string]string{}, runs: map[string]*run{}, scripts: map[string]Outcome{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// OnlyProjects makes every other project answer ResourceNotFoundException.
func (f *CodeBuild) OnlyProjects(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.projects = map[string]bool{}
	for _, n := range names {
		f.projects[n] = true
	}
}

// FailNext makes the next calls answer with these error codes.
func (f *CodeBuild) FailNext(codes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, codes...)
}

// Calls returns every StartBuild received.
func (f *CodeBuild) Calls() []Build {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Build(nil), f.calls...)
}

// Builds returns how many distinct builds were started.
func (f *CodeBuild) Builds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.builds)
}

func (f *CodeBuild) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		awsError(w, 403, "MissingAuthenticationTokenException", "request is not signed")
		return
	}
	switch target := r.Header.Get("X-Amz-Target"); target {
	case "CodeBuild_20161006.StartBuild":
	case "CodeBuild_20161006.BatchGetBuilds":
		f.batchGetBuilds(w, r)
		return
	default:
		awsError(w, 400, "UnknownOperationException", "unknown operation "+target)
		return
	}
	var in struct {
		ProjectName                  string `json:"projectName"`
		SourceVersion                string `json:"sourceVersion"`
		IdempotencyToken             string `json:"idempotencyToken"`
		EnvironmentVariablesOverride []struct {
			Name, Value, Type string
		} `json:"environmentVariablesOverride"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awsError(w, 400, "SerializationException", err.Error())
		return
	}
	b := Build{Project: in.ProjectName, SourceVersion: in.SourceVersion, Token: in.IdempotencyToken}
	for _, e := range in.EnvironmentVariablesOverride {
		if b.Env == nil {
			b.Env = map[string]string{}
		}
		b.Env[e.Name] = e.Value
	}
	f.mu.Lock()
	f.calls = append(f.calls, b)
	var fail string
	if len(f.failures) > 0 {
		fail, f.failures = f.failures[0], f.failures[1:]
	} else if f.projects != nil && !f.projects[in.ProjectName] {
		fail = "ResourceNotFoundException"
	}
	id, repeat := f.builds[in.IdempotencyToken]
	if fail == "" && !repeat {
		id = fmt.Sprintf("%s:build-%04d", in.ProjectName, len(f.builds)+1)
		f.builds[in.IdempotencyToken] = id
		f.runs[id] = &run{name: in.ProjectName}
	}
	f.mu.Unlock()
	if fail != "" {
		code := statusOf[fail]
		if code == 0 {
			code = 400
		}
		awsError(w, code, fail, "fake failure for "+in.ProjectName)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{"build": map[string]string{"id": id, "buildStatus": "IN_PROGRESS"}})
}

// Environ points the AWS SDK's CodeBuild client at the fake.
func (f *CodeBuild) Environ() []string { return sdkEnv("CODEBUILD", f.URL) }

// Setenv sets Environ for the rest of test t.
func (f *CodeBuild) Setenv(t testing.TB) { setenv(t, f.Environ()) }
