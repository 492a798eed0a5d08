package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// predecessorResources are the logical ids and types of the predecessor's
// template (aws-codepipeline-mono-repo). Deploying ours to a stack of
// theirs updates each in place; one missing would be deleted, one of
// another type replaced.
var predecessorResources = map[string]string{
	"GitHubWebhookFunction":   "AWS::Serverless::Function",
	"HttpApi":                 "AWS::Serverless::HttpApi",
	"ApiAccessLogs":           "AWS::Logs::LogGroup",
	"ConfigStorageBucket":     "AWS::S3::Bucket",
	"GitHubEventEvalFunction": "AWS::Serverless::Function",
	"MonoRepoS3ConfigCloudFormationResourceFunction": "AWS::Serverless::Function",
	"MonoRepoResourceS3Role":                         "AWS::IAM::Role",
}

// rawTemplate is deploy/aws/template.yaml as goformation reads it, without
// resolving intrinsics, as plain maps: goformation's typed resources drop
// the properties its schema lacks (LoggingConfig, AccessLogSettings).
func rawTemplate(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../../deploy/aws/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := intrinsics.ProcessYAML(b, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(j, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// samTemplate reads deploy/aws/template.yaml with goformation. Its schema
// (v7.14.9, the newest) lacks two properties SAM has, which the template
// uses: a function's LoggingConfig and an HTTP API's AccessLogSettings
// (goformation names it AccessLogSetting). Those are left out of what
// goformation reads, and checked on the raw template instead; any other
// property goformation does not know still fails the read.
func samTemplate(t *testing.T) *cloudformation.Template {
	t.Helper()
	tmpl := rawTemplate(t)
	unknown := map[string]string{"AWS::Serverless::Function": "LoggingConfig", "AWS::Serverless::HttpApi": "AccessLogSettings"}
	for _, r := range tmpl["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if props, ok := res["Properties"].(map[string]any); ok {
			delete(props, unknown[fmt.Sprint(res["Type"])])
		}
	}
	b, err := json.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := goformation.ParseJSON(b)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	return parsed
}

// TestTemplateUpgradesAPredecessorStack checks that an update of a
// predecessor's stack keeps every resource it had and creates none whose
// physical name already exists there.
func TestTemplateUpgradesAPredecessorStack(t *testing.T) {
	tmpl := samTemplate(t)
	for id, typ := range predecessorResources {
		r, ok := tmpl.Resources[id]
		if !ok {
			t.Errorf("%s (%s) is missing: the update would delete it", id, typ)
			continue
		}
		if got := r.AWSCloudFormationType(); got != typ {
			t.Errorf("%s is a %s, the predecessor's a %s: the update would replace it", id, got, typ)
		}
	}
	access, err := tmpl.GetLogsLogGroupWithName("ApiAccessLogs")
	if err != nil || access.LogGroupName == nil || *access.LogGroupName != "/aws/api/GitHubIntegrationS3" {
		t.Errorf("ApiAccessLogs keeps the name /aws/api/GitHubIntegrationS3 (a new name replaces the group and its history): %+v %v", access, err)
	}
	// The exports, as written (goformation resolves ${AccountName} to its
	// default).
	raw := rawTemplate(t)
	exports := map[string]bool{}
	for _, out := range raw["Outputs"].(map[string]any) {
		if e, ok := out.(map[string]any)["Export"].(map[string]any); ok {
			b, _ := json.Marshal(e["Name"])
			exports[string(b)] = true
		}
	}
	for _, name := range []string{"${AccountName}-MonoRepoTrigger", "${AccountName}-MonoRepoTriggerRole"} {
		if !exports[`{"Fn::Sub":"`+name+`"}`] {
			t.Errorf("export %s is missing (exports %v): pipeline stacks import it", name, exports)
		}
	}

	// What Lambda created implicitly in a predecessor's stack that ever
	// ran: /aws/lambda/<function name> for each function. No resource of
	// ours may be named so, nor may a function log there.
	resources := raw["Resources"].(map[string]any)
	var functions []string
	for id, r := range resources {
		if r.(map[string]any)["Type"] == "AWS::Serverless::Function" {
			functions = append(functions, id)
		}
	}
	for id, r := range resources {
		res := r.(map[string]any)
		props, _ := res["Properties"].(map[string]any)
		if _, predecessor := predecessorResources[id]; !predecessor {
			b, _ := json.Marshal(props)
			if strings.Contains(string(b), "/aws/lambda/") {
				t.Errorf("new resource %s names something under /aws/lambda/, where Lambda created the predecessor's log groups: %s", id, b)
			}
		}
		if res["Type"] != "AWS::Serverless::Function" {
			continue
		}
		lc, _ := props["LoggingConfig"].(map[string]any)
		ref, _ := lc["LogGroup"].(map[string]any)["Ref"].(string)
		group, ok := resources[ref].(map[string]any)
		if !ok || group["Type"] != "AWS::Logs::LogGroup" {
			t.Errorf("%s: LoggingConfig.LogGroup %v is not a log group of the template: the function would log to /aws/lambda/…, outside the retention", id, lc)
			continue
		}
		name, _ := json.Marshal(group["Properties"].(map[string]any)["LogGroupName"])
		if strings.Contains(string(name), "/aws/lambda/") {
			t.Errorf("%s logs to %s, where Lambda created the predecessor's groups", id, name)
		}
		for _, fn := range functions {
			if strings.Contains(string(name), fn) {
				t.Errorf("%s logs to %s, named after the function %s as Lambda's own group is", id, name, fn)
			}
		}
	}
	bucket, _ := json.Marshal(resources["ConfigStorageBucket"])
	if !strings.Contains(string(bucket), `"Prefix":"monohook/parked/"`) || !strings.Contains(string(bucket), "ExpirationInDays") {
		t.Errorf("no lifecycle rule expires monohook/parked/: %s", bucket)
	}
	api, _ := json.Marshal(resources["HttpApi"])
	if !strings.Contains(string(api), `"ApiAccessLogs.Arn"`) {
		t.Errorf("the API's access logs no longer go to ApiAccessLogs: %s", api)
	}
}
