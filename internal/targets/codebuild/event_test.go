package codebuild

import (
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/trigger"
)

// The build-status of EventBridge events ends a follow as the build
// status of BatchGetBuilds does.
func TestEventProgress(t *testing.T) {
	for status, want := range map[string]string{
		"IN_PROGRESS": "", "SUCCEEDED": trigger.Success, "FAILED": trigger.Failure, "FAULT": trigger.Failure,
		"TIMED_OUT": trigger.TimedOut, "STOPPED": trigger.Cancelled,
	} {
		p := EventProgress(status, "eu-west-1", "web", "web:b-1")
		if p.Done != (want != "") || p.Conclusion != want {
			t.Errorf("%s: %+v, want conclusion %q", status, p, want)
		}
		if !strings.Contains(p.URL, "/projects/web/build/web:b-1/") {
			t.Errorf("%s: url %s", status, p.URL)
		}
	}
}
