package deliveries

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/riverqueue/river/riverdriver"
)

// DB holds the deliveries and jobs: SQLite in a file (the embedded
// default, one process) or PostgreSQL (any number of processes). Both are
// used through database/sql, so there is one set of queries; what differs
// is the dialect's.
type DB struct {
	sql *sql.DB // monohook's statements and River's
	// Reads: evaluation's, the dashboard's, the CLI's and the metrics'.
	// On SQLite, connections of their own that never take the write lock.
	read    *sql.DB
	dialect dialect
	driver  riverdriver.Driver[*sql.Tx]
	// Where is the database, for logs: no credentials.
	Where string
	// syncRaised: PostgreSQL's synchronous_commit was off for monohook's
	// sessions, and they set it on (see durableCommits).
	syncRaised atomic.Bool
}

// OpenDB opens the database at dsn and brings its schema up to date.
// dsn is a postgres:// URL, or sqlite://PATH (or a plain file path).
func OpenDB(ctx context.Context, dsn string) (*DB, error) {
	var db *DB
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err = openPostgres(ctx, dsn)
	} else {
		db, err = openSQLite(strings.TrimPrefix(dsn, "sqlite://"))
	}
	if err != nil {
		return nil, err
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", db.Where, err)
	}
	if err := db.dialect.migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.dialect.prepare(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: prepare statements: %w", db.Where, err)
	}
	return db, nil
}

// SyncCommitRaised tells whether PostgreSQL's synchronous_commit was off
// for monohook's sessions, which set it on: worth a line in the log, since
// the server's setting says otherwise.
func (db *DB) SyncCommitRaised() bool { return db.syncRaised.Load() }

// Close closes the connections.
func (db *DB) Close() error {
	db.dialect.close()
	if db.read != nil && db.read != db.sql {
		db.read.Close()
	}
	return db.sql.Close()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// q writes a query for the database: "?" placeholders become $1, $2, … on
// PostgreSQL. Queries here never have "?" inside string literals.
func (db *DB) q(query string) string { return db.dialect.bind(query) }

// marks is n comma-separated placeholders, for an IN (…) list.
func marks(n int) string { return strings.Repeat(", ?", n)[2:] }

// ErrNotFound is returned for a delivery that is not stored.
var ErrNotFound = errors.New("delivery not found")
