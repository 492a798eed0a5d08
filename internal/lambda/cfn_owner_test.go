package lambda

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/monohook/monohook/internal/rulestore"
)

// ownerFixture keeps documents in a bucket that records metadata (the
// file fixture skips it), as S3 does.
func ownerFixture(t *testing.T) *fixture {
	f := &fixture{cf: newCloudFormation(t)}
	var err error
	f.store, err = rulestore.Open(context.Background(), "mem://", rulestore.DefaultPrefix, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	f.fn = cfn.LambdaWrap((&CustomResource{Store: f.store, Log: slog.New(slog.DiscardHandler)}).Handle)
	return f
}

// sendAs sends ev as the resource logical of stack.
func (f *fixture) sendAs(t *testing.T, stack, logical string, ev cfn.Event) cfn.Response {
	t.Helper()
	ev.ResponseURL = f.cf.URL + "/response"
	ev.RequestID, ev.StackID, ev.LogicalResourceID = "req-"+logical, stack, logical
	ev.ResourceType = "Custom::MonoRepoTrigger"
	if _, err := f.fn(context.Background(), ev); err != nil {
		t.Fatalf("sending the response: %v", err)
	}
	resp := f.cf.last(t)
	if resp.Status != cfn.StatusSuccess {
		t.Fatalf("%s %s of %s: %+v", stack, ev.RequestType, logical, resp)
	}
	return resp
}

func (f *fixture) exists(t *testing.T, key string) bool {
	t.Helper()
	_, err := f.store.Get(context.Background(), key)
	if err != nil && !errors.Is(err, rulestore.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

const (
	stackA = "arn:aws:cloudformation:eu-west-1:123:stack/app/1"
	stackB = "arn:aws:cloudformation:eu-west-1:123:stack/other/2"
)

// A logical id renamed, or the resource moved to another stack:
// CloudFormation creates the new resource, then deletes the old one. The
// document both name stays, owned by the new one, until that is deleted.
func TestRenamedOrMovedResourceKeepsItsDocument(t *testing.T) {
	for name, to := range map[string][2]string{"renamed": {stackA, "TriggerRenamed"}, "moved": {stackB, "Trigger"}} {
		t.Run(name, func(t *testing.T) {
			f := ownerFixture(t)
			p := props("repo", "main", "api", "services/api/.*")
			key := f.sendAs(t, stackA, "Trigger", cfn.Event{RequestType: cfn.RequestCreate, ResourceProperties: p}).PhysicalResourceID
			if got := f.sendAs(t, to[0], to[1], cfn.Event{RequestType: cfn.RequestCreate, ResourceProperties: p}).PhysicalResourceID; got != key {
				t.Fatalf("the new resource's key %s, the old one's %s", got, key)
			}
			f.sendAs(t, stackA, "Trigger", cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: key, ResourceProperties: p})
			if !f.exists(t, key) {
				t.Fatal("deleting the old resource removed the document the new one owns")
			}
			if o, _ := f.store.Owner(context.Background(), key); o != to[0]+"/"+to[1] {
				t.Errorf("owner %q", o)
			}
			f.sendAs(t, to[0], to[1], cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: key, ResourceProperties: p})
			if f.exists(t, key) {
				t.Error("deleting the owner left the document")
			}
		})
	}
}

// Documents with no owner (the predecessor's, or written by rules put)
// keep today's semantics: any resource naming them deletes them.
func TestDocumentWithoutOwnerIsDeleted(t *testing.T) {
	f := ownerFixture(t)
	doc := rulestore.Document{GitHubRepo: "repo", GitHubBranch: "main", ChangeMatchExpressions: "a/.*", CodePipelineName: "p"}
	key, _, err := f.store.Put(context.Background(), doc)
	if err != nil {
		t.Fatal(err)
	}
	f.sendAs(t, stackA, "Trigger", cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: LegacyPhysicalID, ResourceProperties: props("repo", "main", "p", "a/.*")})
	if f.exists(t, key) {
		t.Error("a legacy resource's Delete left a document without owner")
	}
	if _, _, err := f.store.Put(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
	f.sendAs(t, stackA, "Trigger", cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: key, ResourceProperties: props("repo", "main", "p", "a/.*")})
	if f.exists(t, key) {
		t.Error("a Delete left a document without owner")
	}
}

// A predecessor's resource (constant physical id) replaced by one in a
// new stack: the legacy resource's Delete, and its Update away from the
// document, leave the new owner's document alone.
func TestLegacyResourceLeavesATakenOverDocument(t *testing.T) {
	f := ownerFixture(t)
	p := props("repo", "main", "api", "a/.*")
	key := rulestore.SeedKey(rulestore.DefaultPrefix, "repo", "main", "api")
	f.sendAs(t, stackB, "Trigger", cfn.Event{RequestType: cfn.RequestCreate, ResourceProperties: p})
	f.sendAs(t, stackA, "Legacy", cfn.Event{RequestType: cfn.RequestUpdate, PhysicalResourceID: LegacyPhysicalID,
		ResourceProperties: props("repo", "main", "api2", "a/.*"), OldResourceProperties: p})
	if !f.exists(t, key) {
		t.Fatal("a legacy Update removed a document another resource owns")
	}
	f.sendAs(t, stackA, "Legacy", cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: LegacyPhysicalID, ResourceProperties: p})
	if !f.exists(t, key) {
		t.Fatal("a legacy Delete removed a document another resource owns")
	}
	// Its own document (api2, written by its Update) it does delete.
	f.sendAs(t, stackA, "Legacy", cfn.Event{RequestType: cfn.RequestDelete, PhysicalResourceID: LegacyPhysicalID, ResourceProperties: props("repo", "main", "api2", "a/.*")})
	if f.exists(t, rulestore.SeedKey(rulestore.DefaultPrefix, "repo", "main", "api2")) {
		t.Error("a legacy Delete left its own document")
	}
}
