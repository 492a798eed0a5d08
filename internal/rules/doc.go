// Package rules compiles change-match patterns and matches them against the
// changed paths of a push.
//
// The seed pattern language is the predecessor's: a comma-separated list of
// regular expressions, each matched at the start of a path the way Python's
// re.match does (anchored at the start, not at the end). Go's RE2 engine runs
// them, so matching time is linear in the path length and no pattern can
// make evaluation hang.
//
// Index answers "which rules have a pattern that matches one of these paths"
// without testing every pattern against every path: each pattern is reduced
// to literals that every match, case-folded, must start with or contain
// (literal.go; after leading classes, in every branch of an alternation,
// after a leading .*), those go into a radix tree or an Aho-Corasick
// automaton run over the folded path, and a path only meets the patterns
// whose literal it has; each is then confirmed on the path itself. The
// package is pure: no I/O.
package rules
