// Package trigger holds monohook's domain: a verified Push, the Rules stored
// for a repository and branch, the Decision taken for each rule, and the
// Service that turns a push into pipeline starts.
//
// Data flows one way: Push -> Evaluate (pure) -> Result -> Starter calls.
// The package does no I/O of its own; the rule store and the pipeline
// targets are passed in through the RuleSource and Starter interfaces, and
// the kinds of target (what a target's fields mean) through TargetKinds.
package trigger
