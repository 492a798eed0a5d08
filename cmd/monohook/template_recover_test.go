package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSAMTemplateRecoverFunction: the recover function exists only when
// the GitHub credentials parameter (and the organization) is set, runs on an EventBridge
// schedule, one at a time, with the environment its role reads, and may
// do nothing on AWS beyond its logs.
func TestSAMTemplateRecoverFunction(t *testing.T) {
	raw := rawTemplate(t)
	resources := raw["Resources"].(map[string]any)
	fnRaw, ok := resources["GitHubRecoverFunction"].(map[string]any)
	if !ok {
		t.Fatal("no GitHubRecoverFunction")
	}
	cond := raw["Conditions"].(map[string]any)["RecoverOn"]
	c, _ := json.Marshal(cond)
	if fnRaw["Condition"] != "RecoverOn" || resources["GitHubRecoverLogs"].(map[string]any)["Condition"] != "RecoverOn" ||
		!strings.Contains(string(c), `"GitHubRecoverToken"`) || !strings.Contains(string(c), `"GitHubOrganization"`) || !strings.Contains(string(c), "Fn::Not") {
		t.Errorf("the recover function is not conditional on GitHubRecoverToken being set: condition %v, RecoverOn %s", fnRaw["Condition"], c)
	}
	tmpl := samTemplate(t)
	p := tmpl.Parameters["GitHubRecoverToken"]
	if p.NoEcho == nil || !*p.NoEcho || p.Default != "" {
		t.Errorf("GitHubRecoverToken: %+v, want NoEcho and empty by default (off)", p)
	}
	fn := tmpl.GetAllServerlessFunctionResources()["GitHubRecoverFunction"]
	if fn == nil || fn.Environment == nil {
		t.Fatal("GitHubRecoverFunction has no environment")
	}
	for k, v := range fn.Environment.Variables {
		if v == "" {
			v = "resolved-at-deploy"
		}
		t.Setenv(k, v)
	}
	t.Setenv("MONOHOOK_STORE", "")
	if got, err := readLambdaEnv(); err != nil || got.Role != "recover" {
		t.Errorf("the binary reads role %q, error %v, from %v", got.Role, err, fn.Environment.Variables)
	}
	if fn.Policies != nil || fn.Role != nil {
		t.Errorf("the recover function has AWS permissions of its own (policies %v, role %v): it calls GitHub alone", fn.Policies, fn.Role)
	}
	if fn.ReservedConcurrentExecutions == nil || *fn.ReservedConcurrentExecutions != 1 {
		t.Error("the recover function may run twice at once")
	}
	events, _ := json.Marshal(fnRaw["Properties"].(map[string]any)["Events"])
	if !strings.Contains(string(events), `"Type":"Schedule"`) || !strings.Contains(string(events), `"Ref":"RecoverSchedule"`) {
		t.Errorf("the recover function is not on the RecoverSchedule schedule: %s", events)
	}
}
