package fakeaws

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Invocation is one Lambda Invoke call the fake received.
type Invocation struct {
	Function string
	Type     string // X-Amz-Invocation-Type
	Payload  []byte
}

// Lambda fakes the Lambda Invoke API (REST-JSON:
// POST /2015-03-31/functions/{name}/invocations). Asynchronous invocations
// (Event) answer 202; Fail makes the next calls fail with a 500.
type Lambda struct {
	*httptest.Server
	mu    sync.Mutex
	calls []Invocation
	fail  int
}

// NewLambda starts the fake. It is closed by the caller.
func NewLambda() *Lambda {
	f := &Lambda{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// Fail makes the next n invocations fail.
func (f *Lambda) Fail(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = n
}

// Calls returns every invocation received, in order.
func (f *Lambda) Calls() []Invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Invocation(nil), f.calls...)
}

// Environ points the AWS SDK's Lambda client at the fake.
func (f *Lambda) Environ() []string { return sdkEnv("LAMBDA", f.URL) }

func (f *Lambda) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/2015-03-31/functions/")
	name, ok2 := strings.CutSuffix(rest, "/invocations")
	if r.Method != http.MethodPost || !ok || !ok2 {
		awsError(w, http.StatusNotFound, "ResourceNotFoundException", "unknown path "+r.URL.Path)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		awsError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "request is not signed")
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, Invocation{Function: name, Type: r.Header.Get("X-Amz-Invocation-Type"), Payload: body})
	fail := f.fail > 0
	if fail {
		f.fail--
	}
	f.mu.Unlock()
	if fail {
		awsError(w, http.StatusInternalServerError, "ServiceException", "fake failure")
		return
	}
	if r.Header.Get("X-Amz-Invocation-Type") == "Event" {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("null"))
}
