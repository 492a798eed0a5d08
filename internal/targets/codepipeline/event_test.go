package codepipeline

import (
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/trigger"
)

// The states of EventBridge events end a follow as the statuses of
// GetPipelineExecution do.
func TestEventProgress(t *testing.T) {
	for state, want := range map[string]string{
		"STARTED": "", "RESUMED": "", "STOPPING": "", "SOMETHING_NEW": "",
		"SUCCEEDED": trigger.Success, "FAILED": trigger.Failure,
		"STOPPED": trigger.Cancelled, "CANCELED": trigger.Cancelled, "SUPERSEDED": trigger.Cancelled,
	} {
		p := EventProgress(state, "eu-west-1", "api", "e-1")
		if p.Done != (want != "") || p.Conclusion != want {
			t.Errorf("%s: %+v, want conclusion %q", state, p, want)
		}
		if !strings.Contains(p.URL, "/pipelines/api/executions/e-1/") {
			t.Errorf("%s: url %s", state, p.URL)
		}
	}
}
