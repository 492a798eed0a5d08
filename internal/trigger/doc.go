// Package trigger holds monohook's domain: a verified Push (or pull
// request), the Rules stored for it, the Decision taken for each rule, the
// Plan that turns them into Starts, and the Service that loads the rules,
// completes the change set and, in Lambda mode, makes the starts.
//
// Data flows one way: Push + Rules + ChangeSet -> NewPlan (pure) -> Result
// (recorded) and Starts (plain data, carried by jobs) -> Starter calls.
// The package does no I/O of its own; the rule store, the GitHub API and
// the targets are passed in through the RuleSource, ChangeSource and
// Starter interfaces, and the kinds of target (what a target's fields
// mean) through TargetKinds. A dry run is the DryRun starter.
package trigger
