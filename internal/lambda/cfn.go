// Package lambda adapts monohook to AWS Lambda: the CloudFormation custom
// resource (Custom::MonoRepoTrigger) that writes rule documents.
package lambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/cfn"

	"github.com/monohook/monohook/internal/rulestore"
)

// LegacyPhysicalID is the PhysicalResourceId the predecessor gave every
// resource. Resources that carry it keep the predecessor's semantics.
const LegacyPhysicalID = "GitHubIntegrationMonoRepoS3ConfigResource"

// CustomResource handles Custom::MonoRepoTrigger requests: Create puts a
// rule document, Update replaces it, Delete removes it. Wrap Handle with
// cfn.LambdaWrap, which always answers CloudFormation (error, panic or
// deadline).
type CustomResource struct {
	Store *rulestore.Store
	Log   *slog.Logger
}

// Handle serves one request. New resources get the document's key as
// PhysicalResourceId, so an Update that changes the key is a replacement:
// CloudFormation deletes the old resource (and so the old document) only
// after the new one succeeded, and a rollback restores it.
//
// Create and Update record the resource as the document's owner (see
// owner); a Delete removes a document only when the deleting resource owns
// it, or when no owner was recorded (documents of the predecessor or from
// before this). Renaming a resource's logical id, or moving it to another
// stack, has CloudFormation create the new resource (same properties, so
// the same key) and then delete the old one: without the owner that Delete
// removed the document the new resource had just written.
func (c *CustomResource) Handle(ctx context.Context, ev cfn.Event) (physicalID string, data map[string]any, err error) {
	log := c.Log.With("request", ev.RequestID, "type", ev.RequestType, "stack", ev.StackID, "logical", ev.LogicalResourceID, "physical", ev.PhysicalResourceID)
	legacy := ev.PhysicalResourceID == LegacyPhysicalID
	switch ev.RequestType {
	case cfn.RequestCreate:
		doc, err := properties(ev.ResourceProperties)
		if err != nil {
			return "", nil, err
		}
		key, err := c.put(ctx, doc, ev)
		if err != nil {
			return "", nil, err
		}
		log.Info("rule created", "key", key)
		return key, map[string]any{"Key": key}, nil

	case cfn.RequestUpdate:
		doc, err := properties(ev.ResourceProperties)
		if err != nil {
			return ev.PhysicalResourceID, nil, err
		}
		if legacy {
			// The predecessor: remove the old document, put the new one,
			// keep the constant id.
			if old, err := properties(ev.OldResourceProperties); err == nil {
				if err := c.delete(ctx, rulestore.SeedKey(c.Store.Prefix(), old.GitHubRepo, old.GitHubBranch, old.CodePipelineName), ev, log); err != nil {
					return ev.PhysicalResourceID, nil, err
				}
			}
			key, err := c.put(ctx, doc, ev)
			if err != nil {
				return ev.PhysicalResourceID, nil, err
			}
			log.Info("rule updated (legacy resource)", "key", key)
			return LegacyPhysicalID, map[string]any{"Key": key}, nil
		}
		key, err := c.put(ctx, doc, ev)
		if err != nil {
			return ev.PhysicalResourceID, nil, err
		}
		log.Info("rule updated", "key", key, "replaced", key != ev.PhysicalResourceID)
		return key, map[string]any{"Key": key}, nil

	case cfn.RequestDelete:
		key := c.keyToDelete(ev, legacy)
		if key == "" {
			// A Create that failed wrote nothing; the properties may even be
			// invalid. Succeed, so the stack is not stuck.
			log.Info("nothing to delete")
			return ev.PhysicalResourceID, nil, nil
		}
		if err := c.delete(ctx, key, ev, log); err != nil {
			return ev.PhysicalResourceID, nil, err
		}
		return ev.PhysicalResourceID, nil, nil
	}
	return ev.PhysicalResourceID, nil, fmt.Errorf("unknown RequestType %q", ev.RequestType)
}

// keyToDelete is the document a Delete removes: the key that is the
// PhysicalResourceId, or for a legacy resource the key of its properties;
// "" when no document was written.
func (c *CustomResource) keyToDelete(ev cfn.Event, legacy bool) string {
	if legacy {
		doc, err := properties(ev.ResourceProperties)
		if err != nil {
			return ""
		}
		return rulestore.SeedKey(c.Store.Prefix(), doc.GitHubRepo, doc.GitHubBranch, doc.CodePipelineName)
	}
	if strings.HasPrefix(ev.PhysicalResourceID, c.Store.Prefix()+"/") && strings.HasSuffix(ev.PhysicalResourceID, ".json") {
		return ev.PhysicalResourceID
	}
	return ""
}

// owner names the resource of a request as the owner recorded with its
// document: the stack id (an ARN, unique to one stack's life: a stack
// deleted and created again under its name is another owner) and the
// logical id, which holds no "/".
func owner(ev cfn.Event) string { return ev.StackID + "/" + ev.LogicalResourceID }

func (c *CustomResource) put(ctx context.Context, doc rulestore.Document, ev cfn.Event) (string, error) {
	key, _, err := c.Store.PutOwned(ctx, doc, owner(ev))
	if err != nil {
		return "", fmt.Errorf("rule for %s@%s → %s: %w", doc.GitHubRepo, doc.GitHubBranch, doc.CodePipelineName, err)
	}
	return key, nil
}

// delete removes key unless another resource owns it; a document that is
// already gone is not an error. The owner is read, then the document
// deleted, without a condition: CloudFormation sends a resource's Delete
// only after the Create or Update that took the document over succeeded.
func (c *CustomResource) delete(ctx context.Context, key string, ev cfn.Event, log *slog.Logger) error {
	o, err := c.Store.Owner(ctx, key)
	if errors.Is(err, rulestore.ErrNotFound) {
		log.Info("rule already deleted", "key", key)
		return nil
	}
	if err != nil {
		return err
	}
	if o != "" && o != owner(ev) {
		log.Info("rule kept: another resource owns it now", "key", key, "owner", o)
		return nil
	}
	if err := c.Store.Delete(ctx, key); err != nil && !errors.Is(err, rulestore.ErrNotFound) {
		return err
	}
	log.Info("rule deleted", "key", key)
	return nil
}

// properties reads the four required properties; others (ServiceToken
// among them) are ignored and never stored.
func properties(p map[string]any) (rulestore.Document, error) {
	var doc rulestore.Document
	var missing []string
	get := func(name string, to *string, emptyOK bool) {
		v, ok := p[name]
		s, isString := v.(string)
		if !ok || !isString || (s == "" && !emptyOK) {
			missing = append(missing, name)
			return
		}
		*to = s
	}
	get("GitHubRepo", &doc.GitHubRepo, false)
	get("GitHubBranch", &doc.GitHubBranch, false)
	// An empty expression list matches every path, as it did before.
	get("ChangeMatchExpressions", &doc.ChangeMatchExpressions, true)
	get("CodePipelineName", &doc.CodePipelineName, false)
	if len(missing) > 0 {
		return rulestore.Document{}, fmt.Errorf("missing or invalid properties (strings required): %s", strings.Join(missing, ", "))
	}
	return doc, nil
}
