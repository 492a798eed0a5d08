// Package fakeaws has test fakes of AWS services that speak their wire
// protocols over real HTTP, so the real AWS SDK can be pointed at them
// (AWS_ENDPOINT_URL_<SERVICE> or an endpoint option). Only tests import it.
package fakeaws

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Start is one StartPipelineExecution call the fake received.
type Start struct {
	Name  string
	Token string
	// Variables and SourceRevisions as sent (V2 pipelines).
	Variables       map[string]string
	SourceRevisions []SourceRevision
}

// SourceRevision is one sourceRevisions entry of a start.
type SourceRevision struct {
	ActionName    string `json:"actionName"`
	RevisionType  string `json:"revisionType"`
	RevisionValue string `json:"revisionValue"`
}

// CodePipeline fakes the AWS CodePipeline API (JSON 1.1 protocol,
// X-Amz-Target: CodePipeline_20150709.<Operation>). It implements
// StartPipelineExecution with clientRequestToken idempotency: a repeated
// token returns the first execution id and is not counted as a new start.
type CodePipeline struct {
	*httptest.Server

	mu         sync.Mutex
	calls      []Start           // every call, repeats included
	executions map[string]string // token -> execution id
	pipelines  map[string]bool   // nil: every name exists
	failures   map[string][]string
	delay      time.Duration
	// GetPipelineExecution (executions.go).
	runs        map[string]*run // execution id -> its run
	scripts     map[string]Outcome
	getFailures []string
	gets        int
}

// NewCodePipeline starts the fake. It is closed by the caller.
func NewCodePipeline() *CodePipeline {
	f := &CodePipeline{executions: make(map[string]string), failures: make(map[string][]string),
		runs: make(map[string]*run), scripts: make(map[string]Outcome)}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// OnlyPipelines makes every other name answer PipelineNotFoundException.
func (f *CodePipeline) OnlyPipelines(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pipelines = make(map[string]bool)
	for _, n := range names {
		f.pipelines[n] = true
	}
}

// FailNext makes the next calls for pipeline answer with these error codes,
// one per call (e.g. ThrottlingException, then success).
func (f *CodePipeline) FailNext(pipeline string, codes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[pipeline] = append(f.failures[pipeline], codes...)
}

// SetDelay makes every answer wait d.
func (f *CodePipeline) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// Calls returns every call received, in order.
func (f *CodePipeline) Calls() []Start {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Start(nil), f.calls...)
}

// Started returns how many distinct executions each pipeline got (calls
// that repeated a token are not counted).
func (f *CodePipeline) Started() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int)
	seen := make(map[string]bool)
	for _, c := range f.calls {
		if _, ok := f.executions[c.Token]; ok && !seen[c.Token] {
			seen[c.Token] = true
			out[c.Name]++
		}
	}
	return out
}

var statusOf = map[string]int{
	"ThrottlingException":       400,
	"PipelineNotFoundException": 400,
	"ValidationException":       400,
	"AccessDeniedException":     400,
	"ConflictException":         409,
	"InternalFailure":           500,
	"ServiceUnavailable":        503,
}

func (f *CodePipeline) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") {
		awsError(w, 400, "SerializationException", "expected a POST of application/x-amz-json-1.1")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		awsError(w, 403, "MissingAuthenticationTokenException", "request is not signed")
		return
	}
	switch target {
	case "CodePipeline_20150709.StartPipelineExecution":
	case "CodePipeline_20150709.GetPipelineExecution":
		f.getExecution(w, r)
		return
	default:
		awsError(w, 400, "UnknownOperationException", "unknown operation "+target)
		return
	}
	var in struct {
		Name               string `json:"name"`
		ClientRequestToken string `json:"clientRequestToken"`
		Variables          []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"variables"`
		SourceRevisions []SourceRevision `json:"sourceRevisions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awsError(w, 400, "SerializationException", err.Error())
		return
	}
	f.mu.Lock()
	delay := f.delay
	call := Start{Name: in.Name, Token: in.ClientRequestToken, SourceRevisions: in.SourceRevisions}
	for _, v := range in.Variables {
		if call.Variables == nil {
			call.Variables = map[string]string{}
		}
		call.Variables[v.Name] = v.Value
	}
	f.calls = append(f.calls, call)
	var fail string
	if q := f.failures[in.Name]; len(q) > 0 {
		fail, f.failures[in.Name] = q[0], q[1:]
	} else if f.pipelines != nil && !f.pipelines[in.Name] {
		fail = "PipelineNotFoundException"
	}
	id, repeat := f.executions[in.ClientRequestToken]
	if fail == "" && !repeat {
		id = fmt.Sprintf("exec-%04d-%s", len(f.executions)+1, in.Name)
		f.executions[in.ClientRequestToken] = id
		f.runs[id] = &run{name: in.Name}
	}
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fail != "" {
		code := statusOf[fail]
		if code == 0 {
			code = 400
		}
		awsError(w, code, fail, "fake failure for "+in.Name)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]string{"pipelineExecutionId": id})
}

func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// Environ points the AWS SDK's CodePipeline client at the fake.
func (f *CodePipeline) Environ() []string { return sdkEnv("CODEPIPELINE", f.URL) }

// Setenv sets Environ for the rest of test t.
func (f *CodePipeline) Setenv(t testing.TB) { setenv(t, f.Environ()) }

// sdkEnv returns environment variables that point the AWS SDK's client of
// service (as in AWS_ENDPOINT_URL_<SERVICE>) at url, with dummy
// credentials and a region, and keep it from reading the machine's AWS
// configuration.
func sdkEnv(service, url string) []string {
	return []string{
		"AWS_ENDPOINT_URL_" + service + "=" + url,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
	}
}

// setenv sets env (KEY=VALUE) for the rest of test t.
func setenv(t testing.TB, env []string) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}
