// Package deliveries holds the webhook deliveries monohook acknowledged,
// in SQLite or PostgreSQL, and works them as River jobs. Ingest commits a
// delivery before it is answered, many to a commit (ingest.go); the
// evaluation worker decides its starts (evaluate.go), the start worker
// makes them (start.go), the follow worker asks how each execution ended
// (follow.go), and their outcomes are committed together (record.go); the
// report worker posts their GitHub checks (changed.go, report.go), and
// GitHub's re-run requests replay them (rerun.go); retention deletes old
// deliveries (retention.go);
// the dashboard and the CLI read them (read.go), replay them (replay.go)
// and keep their sessions here (sessions.go). What the two databases do
// differently is their dialect (dialect.go, sqlite.go, postgres.go).
//
// It knows no wire format: the caller gives it the parser of stored
// payloads and the size of the largest (Options).
package deliveries
