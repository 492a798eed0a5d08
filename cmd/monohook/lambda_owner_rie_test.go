package main_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/monohook/monohook/internal/rulestore"
)

// TestLambdaRenamedCustomResourceUnderEmulator runs what CloudFormation
// does when a pipeline stack renames its Custom::MonoRepoTrigger (or moves
// it to another stack): Create of the new resource, then Delete of the old
// one, both naming the same document. The document stays, owned by the new
// resource, until that one is deleted.
func TestLambdaRenamedCustomResourceUnderEmulator(t *testing.T) {
	backend, env := s3Env(t)
	cf := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer cf.Close()
	invoke := lambdaFunction(t, append(env, "MONOHOOK_LAMBDA_ROLE=cfn"))
	key := rulestore.SeedKey(rulestore.DefaultPrefix, "monorepo", "main", "api")
	stack := "arn:aws:cloudformation:eu-west-1:123456789012:stack/app/6c1d2e80-0000-0000-0000-000000000001"
	request := func(typ, logical, physical string) {
		t.Helper()
		invoke(map[string]any{
			"RequestType": typ, "RequestId": typ + "-" + logical, "ResponseURL": cf.URL, "StackId": stack, "LogicalResourceId": logical,
			"PhysicalResourceId": physical, "ResourceType": "Custom::MonoRepoTrigger",
			"ResourceProperties": map[string]any{"ServiceToken": "arn", "GitHubRepo": "monorepo", "GitHubBranch": "main",
				"CodePipelineName": "api", "ChangeMatchExpressions": "services/api/.*"},
		})
	}
	owner := func() (string, bool) {
		obj, err := backend.HeadObject("rules", key)
		if err != nil {
			return "", false
		}
		// gocloud escapes the value's "/" for the header; it reads back
		// unescaped.
		o, err := url.PathUnescape(obj.Metadata["X-Amz-Meta-Monohook-Owner"])
		if err != nil {
			t.Fatal(err)
		}
		return o, true
	}

	request("Create", "ApiTrigger", "")
	if o, ok := owner(); !ok || o != stack+"/ApiTrigger" {
		t.Fatalf("after Create: document present %v, owner %q", ok, o)
	}
	request("Create", "ApiPipelineTrigger", "")
	request("Delete", "ApiTrigger", key)
	o, ok := owner()
	if !ok {
		t.Fatal("the old resource's Delete removed the document the renamed resource owns: the pipeline would no longer start")
	}
	if o != stack+"/ApiPipelineTrigger" {
		t.Errorf("owner %q", o)
	}
	request("Delete", "ApiPipelineTrigger", key)
	if _, ok := owner(); ok {
		t.Error("the owner's Delete left the document")
	}
}
