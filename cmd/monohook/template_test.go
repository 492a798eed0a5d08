package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestSAMTemplate reads deploy/aws/template.yaml with goformation and checks
// that it provides what the binary reads and what the predecessor's users
// rely on.
func TestSAMTemplate(t *testing.T) {
	tmpl := samTemplate(t)
	globals := map[string]any{}
	if g, ok := tmpl.Globals["Function"]; ok {
		b, _ := json.Marshal(g)
		_ = json.Unmarshal(b, &globals)
	}
	if globals["Runtime"] != "provided.al2023" || globals["Handler"] != "bootstrap" {
		t.Errorf("Globals.Function: runtime %v handler %v", globals["Runtime"], globals["Handler"])
	}
	globalEnv := map[string]string{}
	if env, ok := globals["Environment"].(map[string]any); ok {
		for k, v := range env["Variables"].(map[string]any) {
			globalEnv[k] = fmt.Sprint(v)
		}
	}

	fns := tmpl.GetAllServerlessFunctionResources()
	roles := map[string]string{
		"GitHubWebhookFunction":                          "webhook",
		"GitHubEventEvalFunction":                        "eval",
		"MonoRepoS3ConfigCloudFormationResourceFunction": "cfn",
		"ExecutionStatusFunction":                        "status",
	}
	for name, role := range roles {
		fn, ok := fns[name]
		if !ok {
			t.Errorf("no function %s (the predecessor's logical id: stacks upgrade in place)", name)
			continue
		}
		// The function's environment, as Lambda will give it, must satisfy
		// what the binary reads for its role.
		env := map[string]string{}
		for k, v := range globalEnv {
			env[k] = v
		}
		if fn.Environment != nil {
			for k, v := range fn.Environment.Variables {
				env[k] = v
			}
		}
		for k, v := range env {
			if v == "" || strings.HasSuffix(v, "://") {
				// A reference resolved only at deploy time (a resource's
				// name or ARN, the NoEcho secret): the variable is declared.
				env[k] = v + "resolved-at-deploy"
			}
		}
		for _, k := range []string{"MONOHOOK_LAMBDA_ROLE", "MONOHOOK_STORE", "MONOHOOK_PREFIX", "MONOHOOK_WEBHOOK_SECRET", "MONOHOOK_EVAL_FUNCTION", "MONOHOOK_REQUIRE_SHA256", "MONOHOOK_DRY_RUN", "MONOHOOK_GITHUB_TOKEN"} {
			t.Setenv(k, env[k])
		}
		got, err := readLambdaEnv()
		if err != nil || got.Role != role {
			t.Errorf("%s: the binary reads role %q, error %v, from %v", name, got.Role, err, env)
		}
	}

	// The webhook route and what each function may do.
	webhook := fns["GitHubWebhookFunction"]
	route := false
	for _, ev := range webhook.Events {
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), `"/ghorg/push"`) && strings.Contains(strings.ToLower(string(b)), `"post"`) {
			route = true
		}
	}
	if !route {
		t.Error("no POST /ghorg/push route on the webhook function")
	}
	policies := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for name, want := range map[string][]string{
		"GitHubWebhookFunction": {"lambda:InvokeFunction"},
		"GitHubEventEvalFunction": {"codepipeline:StartPipelineExecution", "codebuild:StartBuild", "s3:GetObject", "sqs:SendMessage",
			// v2 rules are read too (store.DefaultV2Prefix).
			"monohook/rules/*"},
	} {
		p := policies(fns[name].Policies)
		for _, action := range want {
			if !strings.Contains(p, action) {
				t.Errorf("%s may not %s", name, action)
			}
		}
		if strings.Contains(p, `"s3:*"`) || strings.Contains(p, `"*:*"`) {
			t.Errorf("%s has a wildcard S3 policy", name)
		}
	}
	role, err := tmpl.GetIAMRoleWithName("MonoRepoResourceS3Role")
	if err != nil {
		t.Fatal(err)
	}
	if p := policies(role.Policies); !strings.Contains(p, "s3:PutObject") || !strings.Contains(p, "s3:DeleteObject") || strings.Contains(p, `"s3:*"`) {
		t.Errorf("custom resource role policies %s", p)
	}
	if fns["GitHubEventEvalFunction"].EventInvokeConfig == nil {
		t.Error("the eval function has no on-failure destination")
	}

	// The predecessor's parameters, with its defaults, and its export.
	for name, def := range map[string]string{"ConfigStorageS3BucketName": "tools-monorepo-configuration", "ConfigStoragePrefix": "mono-repo/config", "AccountName": "tools"} {
		if p, ok := tmpl.Parameters[name]; !ok || fmt.Sprint(p.Default) != def {
			t.Errorf("parameter %s: %+v, want default %q", name, p, def)
		}
	}
	if p := tmpl.Parameters["GitHubWebhookSecret"]; p.NoEcho == nil || !*p.NoEcho {
		t.Error("GitHubWebhookSecret is not NoEcho")
	}
	out, ok := tmpl.Outputs["MonoRepoS3ConfigCloudFormationResourceFunction"]
	if !ok || out.Export == nil || !strings.Contains(fmt.Sprint(out.Export.Name), "MonoRepoTrigger") {
		t.Errorf("the ServiceToken export is missing: %+v", out)
	}
	if _, ok := tmpl.Outputs["GitHubWebhookEndpoint"]; !ok {
		t.Error("no GitHubWebhookEndpoint output")
	}
}
