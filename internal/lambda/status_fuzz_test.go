package lambda

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// FuzzReadStateChange: whatever an event holds, reading it never panics,
// and a key it gives is a record's (under its kind's prefix, no path
// segment of dots, a .json name).
func FuzzReadStateChange(f *testing.F) {
	f.Add(PipelineSource, PipelineDetailType, `{"pipeline":"api","execution-id":"e-1","state":"SUCCEEDED"}`)
	f.Add(BuildSource, BuildDetailType, `{"project-name":"web","build-id":"arn:aws:codebuild:us-east-1:1:build/web:b-1","build-status":"FAILED"}`)
	f.Add(PipelineSource, PipelineDetailType, `{"pipeline":"api","execution-id":"../../x","state":"STARTED"}`)
	f.Add(BuildSource, BuildDetailType, `{"build-id":":build/../x:y"}`)
	f.Add(PipelineSource, PipelineDetailType, `{"pipeline":"..","execution-id":"e-1","state":"STARTED"}`) // a valid pipeline name
	f.Fuzz(func(t *testing.T, source, detailType, detail string) {
		ev := events.CloudWatchEvent{Source: source, DetailType: detailType, Detail: json.RawMessage(detail)}
		sc, err := readStateChange(ev)
		if err != nil {
			if len(err.Error()) > 2000 {
				t.Errorf("error of %d bytes", len(err.Error()))
			}
			return
		}
		ok := strings.HasPrefix(sc.key, ExecutionPrefix+"codepipeline/") || strings.HasPrefix(sc.key, ExecutionPrefix+"codebuild/")
		for _, seg := range strings.Split(strings.TrimPrefix(sc.key, ExecutionPrefix), "/") {
			if seg == "" || strings.Trim(seg, ".") == "" {
				ok = false
			}
		}
		if !ok || !strings.HasSuffix(sc.key, ".json") {
			t.Errorf("event %q %q %s: key %q", source, detailType, detail, sc.key)
		}
	})
}
