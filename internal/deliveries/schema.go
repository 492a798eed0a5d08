package deliveries

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/riverqueue/river/rivermigrate"
)

// schema is monohook's own tables, as both databases have them (PostgreSQL
// writes BYTEA for BLOB); River keeps its jobs in its own. Times are Unix
// milliseconds, so both databases store them alike.
const schema = `
CREATE TABLE IF NOT EXISTS monohook_delivery (
	id           TEXT PRIMARY KEY,
	event        TEXT NOT NULL,
	received_at  BIGINT NOT NULL,
	payload      BLOB NOT NULL,
	duplicates   INTEGER NOT NULL DEFAULT 0,
	repo         TEXT NOT NULL DEFAULT '',
	ref          TEXT NOT NULL DEFAULT '',
	sha          TEXT NOT NULL DEFAULT '',
	paths        INTEGER NOT NULL DEFAULT 0,
	round        INTEGER NOT NULL DEFAULT 0,
	status       TEXT NOT NULL,
	evaluated_at BIGINT,
	result       TEXT
);
DROP INDEX IF EXISTS monohook_delivery_received;
CREATE INDEX IF NOT EXISTS monohook_delivery_time ON monohook_delivery (received_at, id);
CREATE TABLE IF NOT EXISTS monohook_start (
	delivery_id  TEXT NOT NULL,
	round        INTEGER NOT NULL,
	pipeline     TEXT NOT NULL,
	token        TEXT NOT NULL,
	status       TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	execution_id TEXT NOT NULL DEFAULT '',
	error        TEXT NOT NULL DEFAULT '',
	updated_at   BIGINT NOT NULL,
	PRIMARY KEY (delivery_id, round, pipeline)
);
-- The dashboard: deliveries of one repository, newest first; when each
-- pipeline last started.
CREATE INDEX IF NOT EXISTS monohook_delivery_repo ON monohook_delivery (repo, received_at, id);
DROP INDEX IF EXISTS monohook_delivery_status;
-- Evaluation takes the oldest waiting deliveries.
CREATE INDEX IF NOT EXISTS monohook_delivery_waiting ON monohook_delivery (status, received_at);
CREATE INDEX IF NOT EXISTS monohook_start_status ON monohook_start (status, delivery_id, round);
CREATE INDEX IF NOT EXISTS monohook_start_pipeline ON monohook_start (pipeline, status, updated_at);
-- A pipeline's page: its runs, newest first, a page at a time.
CREATE INDEX IF NOT EXISTS monohook_start_runs ON monohook_start (pipeline, updated_at, delivery_id, round);
-- SQLite, rows written by versions before monohook_body: payloads by
-- delivery id.
CREATE TABLE IF NOT EXISTS monohook_payload (
	id      TEXT PRIMARY KEY,
	payload BLOB NOT NULL
);
-- A row per committer whose deliveries an evaluation job is queued for
-- (see wakeUpsert in ingest.go).
CREATE TABLE IF NOT EXISTS monohook_wake (
	k BIGINT PRIMARY KEY,
	n INTEGER NOT NULL
);
-- Dashboard sessions, by a keyed hash of the session id (see sessions.go).
CREATE TABLE IF NOT EXISTS monohook_session (
	hash       TEXT PRIMARY KEY,
	expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS monohook_session_expiry ON monohook_session (expires_at);
-- The reconciliation with GitHub's list of deliveries (see recover.go):
-- one row, k = 1: who holds it (a lease), and how the last one went.
CREATE TABLE IF NOT EXISTS monohook_reconcile (
	k           INTEGER PRIMARY KEY,
	holder      TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	started_at  BIGINT NOT NULL DEFAULT 0,
	finished_at BIGINT NOT NULL DEFAULT 0,
	succeeded_at BIGINT NOT NULL DEFAULT 0,
	newest_at   BIGINT NOT NULL DEFAULT 0,
	listed      INTEGER NOT NULL DEFAULT 0,
	missing     INTEGER NOT NULL DEFAULT 0,
	recovered   INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT ''
);
-- GitHub checks (see report.go): a row per delivery round whose checks a
-- report job brings up to date (queued: one waits; lease_until: one runs),
-- and what was posted of each check (its check run id, 0 for a commit
-- status, and a digest of its content).
CREATE TABLE IF NOT EXISTS monohook_report (
	delivery_id TEXT NOT NULL,
	round       INTEGER NOT NULL,
	queued      INTEGER NOT NULL DEFAULT 0,
	lease_until BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (delivery_id, round)
);
CREATE TABLE IF NOT EXISTS monohook_check (
	delivery_id TEXT NOT NULL,
	round       INTEGER NOT NULL,
	name        TEXT NOT NULL,
	check_id    BIGINT NOT NULL DEFAULT 0,
	digest      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (delivery_id, round, name)
);
-- Re-run requests from GitHub (check_run and check_suite rerequested),
-- by webhook delivery id: a redelivered request re-runs nothing twice.
CREATE TABLE IF NOT EXISTS monohook_rerun (
	id          TEXT PRIMARY KEY,
	received_at BIGINT NOT NULL
);
` + probeSchema

// addLaterColumns adds the columns of both databases added after the first
// release; count is the dialect's query for addColumn.
func addLaterColumns(ctx context.Context, db *sql.DB, count string) error {
	for _, c := range []struct{ table, column, decl string }{
		{"monohook_start", "output", "TEXT NOT NULL DEFAULT ''"},
		// The execution's progress (trigger.Progress) once followed, and
		// the id of its GitHub check run (0: none yet, or statuses).
		{"monohook_start", "url", "TEXT NOT NULL DEFAULT ''"},
		{"monohook_start", "result", "TEXT NOT NULL DEFAULT ''"},
		{"monohook_start", "result_detail", "TEXT NOT NULL DEFAULT ''"},
		{"monohook_start", "finished_at", "BIGINT NOT NULL DEFAULT 0"},
		{"monohook_start", "check_id", "BIGINT NOT NULL DEFAULT 0"},
		// When a delivery was recovered from GitHub's deliveries API
		// (0: it came as a webhook).
		{"monohook_delivery", "recovered_at", "BIGINT NOT NULL DEFAULT 0"},
	} {
		if err := addColumn(ctx, db, count, c.table, c.column, c.decl); err != nil {
			return err
		}
	}
	return nil
}

// addColumn adds a column to a table unless it is there already; count
// counts the table's columns of a name (arguments: table, column).
func addColumn(ctx context.Context, db *sql.DB, count, table, column, decl string) error {
	var n int
	if err := db.QueryRowContext(ctx, count, table, column).Scan(&n); err != nil {
		return fmt.Errorf("migrate: read the columns of %s: %w", table, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+table+" ADD COLUMN "+column+" "+decl); err != nil {
		return fmt.Errorf("migrate: add %s.%s: %w", table, column, err)
	}
	return nil
}

// migrateRiver brings River's tables up to date.
func migrateRiver(ctx context.Context, db *DB) error {
	m, err := rivermigrate.New(db.driver, nil)
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river tables: %w", err)
	}
	return nil
}
