// Package rulestore keeps rules in a gocloud blob bucket (S3, a local folder,
// memory, GCS, Azure) under the predecessor's key layout, so an existing
// bucket works unchanged. It caches documents by version and the compiled
// rule set by listing, so an unchanged rule is never fetched or compiled
// twice while a new or changed one counts from the very next push.
package rulestore
