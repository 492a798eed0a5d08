package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/lambda"
)

// statements are a policy document's statements (of a SAM function's
// Policies or a role's), as JSON maps.
func statements(t *testing.T, policies any) []map[string]any {
	t.Helper()
	b, _ := json.Marshal(policies)
	var docs []struct{ Statement []map[string]any }
	if err := json.Unmarshal(b, &docs); err != nil {
		t.Fatalf("policies %s: %v", b, err)
	}
	var out []map[string]any
	for _, d := range docs {
		out = append(out, d.Statement...)
	}
	return out
}

func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// TestSAMTemplateStatusFunction reads the status function of
// deploy/aws/template.yaml with goformation: created only with GitHub
// credentials, the target of two EventBridge rules whose patterns take
// the execution and build state changes it maps, and allowed only the
// execution records (which the eval function may write, and a lifecycle
// rule expires).
func TestSAMTemplateStatusFunction(t *testing.T) {
	tmpl := samTemplate(t)
	fn, err := tmpl.GetServerlessFunctionWithName("ExecutionStatusFunction")
	if err != nil {
		t.Fatal(err)
	}
	if fn.AWSCloudFormationCondition != "ReportToGitHub" {
		t.Errorf("condition %q: the function must not exist without GitHub credentials", fn.AWSCloudFormationCondition)
	}
	// goformation resolves the condition on the parameters' defaults (no
	// credentials: false); the raw template says what it is made of.
	if c, _ := json.Marshal(rawTemplate(t)["Conditions"].(map[string]any)["ReportToGitHub"]); !strings.Contains(string(c), "GitHubToken") || !strings.Contains(string(c), "GitHubAppId") {
		t.Errorf("ReportToGitHub is %s: want a token or an App", c)
	}
	if fn.Environment == nil || fn.Environment.Variables["MONOHOOK_LAMBDA_ROLE"] != "status" {
		t.Errorf("environment %+v", fn.Environment)
	}

	want := map[string][2]any{
		lambda.PipelineSource: {lambda.PipelineDetailType, map[string][]string{"state": {"STARTED", "RESUMED", "SUCCEEDED", "FAILED", "STOPPED", "SUPERSEDED", "CANCELED"}}},
		lambda.BuildSource:    {lambda.BuildDetailType, map[string][]string{"build-status": {"IN_PROGRESS", "SUCCEEDED", "FAILED", "STOPPED", "TIMED_OUT", "FAULT"}}},
	}
	for name, ev := range fn.Events {
		if ev.Type != "EventBridgeRule" || ev.Properties == nil || ev.Properties.EventBridgeRuleEvent == nil {
			t.Errorf("event %s: %s, want an EventBridgeRule (its target the function)", name, ev.Type)
			continue
		}
		b, _ := json.Marshal(ev.Properties.EventBridgeRuleEvent.Pattern)
		var p struct {
			Source     []string            `json:"source"`
			DetailType []string            `json:"detail-type"`
			Detail     map[string][]string `json:"detail"`
		}
		if err := json.Unmarshal(b, &p); err != nil || len(p.Source) != 1 {
			t.Errorf("event %s: pattern %s (%v)", name, b, err)
			continue
		}
		w, ok := want[p.Source[0]]
		delete(want, p.Source[0])
		if !ok || !slices.Equal(p.DetailType, []string{w[0].(string)}) {
			t.Errorf("event %s: pattern %s", name, b)
			continue
		}
		for field, states := range w[1].(map[string][]string) {
			if got := p.Detail[field]; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(states))) {
				t.Errorf("event %s: detail.%s %v, want %v", name, field, got, states)
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("no rule for %v", want)
	}
	// Narrowed to the pipelines and projects named, when some are: the
	// raw template, as goformation resolves the condition on the
	// defaults (none named: every one).
	rawEvents := rawTemplate(t)["Resources"].(map[string]any)["ExecutionStatusFunction"].(map[string]any)["Properties"].(map[string]any)["Events"]
	b, _ := json.Marshal(rawEvents)
	for _, scope := range []string{`"pipeline":{"Fn::If":["AllPipelines",{"Ref":"AWS::NoValue"},{"Ref":"StatusPipelines"}]}`,
		`"project-name":{"Fn::If":["AllProjects",{"Ref":"AWS::NoValue"},{"Ref":"StatusProjects"}]}`} {
		if !strings.Contains(string(b), scope) {
			t.Errorf("the rules are not narrowed by %s: %s", scope, b)
		}
	}

	// Least privilege: the records and nothing else.
	records := "/" + lambda.ExecutionPrefix + "*"
	for _, st := range statements(t, fn.Policies) {
		actions, res := strs(st["Action"]), fmt.Sprint(st["Resource"])
		switch {
		case slices.Equal(actions, []string{"s3:ListBucket"}) && !strings.Contains(res, "/"):
		case slices.Equal(actions, []string{"s3:GetObject", "s3:PutObject"}) && strings.HasSuffix(res, records):
		case slices.Equal(actions, []string{"sqs:SendMessage"}) && !strings.Contains(res, "*"):
			// goformation resolves the queue, conditional as the function
			// is, to nothing: the raw template names it.
			raw, _ := json.Marshal(rawTemplate(t)["Resources"].(map[string]any)["ExecutionStatusFunction"])
			if !strings.Contains(string(raw), `{"Action":"sqs:SendMessage","Effect":"Allow","Resource":{"Fn::GetAtt":"StatusDeadLetterQueue.Arn"}}`) {
				t.Errorf("the status function may send to another queue than its own: %s", raw)
			}
		default:
			t.Errorf("the status function may %v on %s", actions, res)
		}
	}
	if fn.EventInvokeConfig == nil {
		t.Error("the status function has no on-failure destination")
	}
	eval := tmpl.GetAllServerlessFunctionResources()["GitHubEventEvalFunction"]
	writes := false
	for _, st := range statements(t, eval.Policies) {
		if slices.Contains(strs(st["Action"]), "s3:PutObject") {
			if res := fmt.Sprint(st["Resource"]); !strings.HasSuffix(res, records) {
				t.Errorf("the eval function may write %s", res)
			}
			writes = true
		}
	}
	if !writes {
		t.Error("the eval function may not write the execution records")
	}

	bucket, err := tmpl.GetS3BucketWithName("ConfigStorageBucket")
	if err != nil {
		t.Fatal(err)
	}
	expires := false
	if bucket.LifecycleConfiguration != nil {
		for _, r := range bucket.LifecycleConfiguration.Rules {
			if r.Prefix != nil && *r.Prefix == lambda.ExecutionPrefix && r.Status == "Enabled" && r.ExpirationInDays != nil {
				expires = true
			}
		}
	}
	if !expires {
		t.Errorf("no lifecycle rule expires %s", lambda.ExecutionPrefix)
	}
}

// TestMakefileBuildsEveryFunction: sam build (BuildMethod: makefile)
// calls build-<LogicalId> of the Makefile for each function; one missing
// fails the build of the stack.
func TestMakefileBuildsEveryFunction(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		if head, _, ok := strings.Cut(line, ":"); ok && strings.HasPrefix(head, "build-") {
			targets = append(targets, strings.Fields(head)...)
		}
	}
	for id, r := range rawTemplate(t)["Resources"].(map[string]any) {
		if r.(map[string]any)["Type"] == "AWS::Serverless::Function" && !slices.Contains(targets, "build-"+id) {
			t.Errorf("the Makefile has no target build-%s (it has %v)", id, targets)
		}
	}
}
