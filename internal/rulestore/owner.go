package rulestore

import (
	"context"
	"fmt"

	"gocloud.dev/gcerrors"
)

// ownerMetadata is the object metadata key (x-amz-meta-monohook-owner on
// S3) naming the resource that owns a seed document.
const ownerMetadata = "monohook-owner"

// PutOwned is Put recording owner, an opaque name of the resource the
// document belongs to (the custom resource's stack and logical id), with
// the document. The document's content stays byte for byte what Put
// writes.
func (s *Store) PutOwned(ctx context.Context, doc Document, owner string) (key string, warnings []string, err error) {
	return s.put(ctx, doc, map[string]string{ownerMetadata: owner})
}

// Owner returns the owner recorded with the document at key, "" when none
// was (documents written by Put, by the predecessor, or by hand);
// ErrNotFound when there is no document.
func (s *Store) Owner(ctx context.Context, key string) (string, error) {
	attrs, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return "", fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return "", fmt.Errorf("attributes of %s: %w", key, err)
	}
	return attrs.Metadata[ownerMetadata], nil
}
