package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib" // also the database/sql driver "pgx" the tests open
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"modernc.org/sqlite" // also the database/sql driver "sqlite", pure Go
	sqlite3 "modernc.org/sqlite/lib"
)

// DB holds the deliveries and jobs: SQLite in a file (the embedded
// default, one process) or PostgreSQL (any number of processes). Both are
// used through database/sql, so there is one set of queries.
type DB struct {
	sql *sql.DB // monohook's statements and River's
	// Reads: evaluation's, the dashboard's, the CLI's and the metrics'.
	// On SQLite, connections of their own that never take the write lock.
	read     *sql.DB
	postgres bool
	driver   riverdriver.Driver[*sql.Tx]
	listener *pgxpool.Pool // PostgreSQL: LISTEN/NOTIFY, so jobs start without polling delay
	// Where is the database, for logs: no credentials.
	Where string
	// syncRaised: PostgreSQL's synchronous_commit was off for monohook's
	// sessions, and they set it on (see durableCommits).
	syncRaised atomic.Bool
}

// OpenDB opens the database at dsn and brings its schema up to date.
// dsn is a postgres:// URL, or sqlite://PATH (or a plain file path).
func OpenDB(ctx context.Context, dsn string) (*DB, error) {
	db := &DB{}
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db.postgres = true
		db.Where = redactPassword(dsn)
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", db.Where, err)
		}
		db.sql = stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(db.durableCommits))
		if db.listener, err = pgxpool.New(ctx, dsn); err != nil {
			db.sql.Close()
			return nil, fmt.Errorf("open %s: %w", db.Where, err)
		}
		// Keep every connection open: database/sql keeps only two idle by
		// default, and a new PostgreSQL connection is a new server process.
		db.sql.SetMaxOpenConns(20)
		db.sql.SetMaxIdleConns(20)
		db.read = db.sql
		db.driver = riverdatabasesql.NewWithPgxListener(db.sql, db.listener)
	default:
		path := strings.TrimPrefix(dsn, "sqlite://")
		db.Where = "sqlite://" + path
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
		// WAL with synchronous=FULL: a commit returns only once it is on
		// disk, so an acknowledged delivery survives a power loss.
		// _txlock=immediate takes the write lock when a transaction begins.
		q := url.Values{"_pragma": {"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)"}, "_txlock": {"immediate"}}
		// One connection for everything: SQLite has one writer anyway, and
		// writers on separate connections wait for each other in SQLite's
		// busy handler, which sleeps up to 100 ms at a time; waiting for the
		// connection in Go is first come, first served, with no sleeps.
		if db.sql, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode()); err != nil {
			return nil, fmt.Errorf("open %s: %w", db.Where, err)
		}
		db.sql.SetMaxOpenConns(1)
		// Reads go through connections of their own: in WAL mode readers
		// do not wait for the writer, and the writer's one connection is
		// left to commits. A dashboard page read through the writer's
		// connection made every acknowledgement wait for its queries (and
		// its transaction, begun IMMEDIATE there, for the write lock).
		q.Set("_pragma", "query_only(1)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Del("_txlock")
		if db.read, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode()); err != nil {
			db.sql.Close()
			return nil, fmt.Errorf("open %s: %w", db.Where, err)
		}
		// Readers in WAL mode do not wait for each other; New sizes the
		// pool for its evaluation jobs.
		db.driver = riversqlite.New(db.sql)
	}
	if err := db.sql.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", db.Where, err)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// durableCommits makes a new PostgreSQL session's commits wait for the
// flush of their WAL, which the 2xx of a delivery counts on. That is
// PostgreSQL's default, but synchronous_commit can be turned off for a
// database or a role (ALTER DATABASE … SET), and a crash of the server
// would then lose deliveries already acknowledged. Only "off" is raised:
// "local", "remote_write", "remote_apply" flush locally already, and the
// stronger ones wait for standbys too.
func (db *DB) durableCommits(ctx context.Context, conn *pgx.Conn) error {
	var v string
	if err := conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
		return fmt.Errorf("read synchronous_commit: %w", err)
	}
	if v != "off" {
		return nil
	}
	if _, err := conn.Exec(ctx, "SET synchronous_commit TO on"); err != nil {
		return fmt.Errorf("set synchronous_commit: %w", err)
	}
	db.syncRaised.Store(true)
	return nil
}

// SyncCommitRaised tells whether PostgreSQL's synchronous_commit was off
// for monohook's sessions, which set it on: worth a line in the log, since
// the server's setting says otherwise.
func (db *DB) SyncCommitRaised() bool { return db.syncRaised.Load() }

// Close closes the connections.
func (db *DB) Close() error {
	if db.listener != nil {
		db.listener.Close()
	}
	if db.read != nil && db.read != db.sql {
		db.read.Close()
	}
	return db.sql.Close()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// schema is monohook's own tables; River keeps its jobs in its own.
// Times are Unix milliseconds, so both databases store them alike.
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
-- SQLite, rows written by versions before monohook_body: payloads by
-- delivery id.
CREATE TABLE IF NOT EXISTS monohook_payload (
	id      TEXT PRIMARY KEY,
	payload BLOB NOT NULL
);
-- A row per committer whose deliveries an evaluation job is queued for
-- (see wakeUpsert in durable.go).
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
`

// sqliteSchema is SQLite's alone. Payloads are kept apart from the
// delivery rows: SQLite rewrites a whole row when one of its columns
// changes, overflow pages included, and evaluation updates every delivery
// (a 200 KB push's payload was written again). A delivery's payload is the
// monohook_body row whose k is the delivery's body column. k grows with
// every commit, so storing a payload appends to one b-tree; keyed by
// delivery id (monohook_payload, before) each payload also went into an
// index of ids, where GitHub's random ids land on a different page each.
// k is a column of its own, not the delivery's rowid, which VACUUM may
// renumber. (On PostgreSQL payloads stay in monohook_delivery: one up to
// a page is copied by an update, a few KB; a larger one is kept apart by
// PostgreSQL itself, and an update copies a pointer.)
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS monohook_body (
	k       INTEGER PRIMARY KEY,
	payload BLOB NOT NULL
);
`

// payloadSQL reads a delivery's stored payload: expr over the delivery
// table aliased d, with the joins it needs. On SQLite it is in
// monohook_body, or where earlier versions stored it.
func (db *DB) payloadSQL() (expr, joins string) {
	if db.postgres {
		return "d.payload", ""
	}
	return "COALESCE(b.payload, p.payload, d.payload)", "LEFT JOIN monohook_body b ON b.k = d.body LEFT JOIN monohook_payload p ON p.id = d.id"
}

// migrationLock serialises schema changes of replicas starting together.
const migrationLock = 0x6d6f6e6f686f6f6b // "monohook"

func (db *DB) migrate(ctx context.Context) error {
	ddl := schema + probeSchema
	if db.postgres {
		ddl = strings.ReplaceAll(ddl, "BLOB", "BYTEA")
		conn, err := db.sql.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock)) //nolint:errcheck // released with the connection anyway
	}
	if !db.postgres {
		ddl += sqliteSchema
	}
	if _, err := db.sql.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("migrate monohook tables: %w", err)
	}
	// Columns added after the first release.
	if err := db.addColumn(ctx, "monohook_start", "output", "TEXT NOT NULL DEFAULT ''"); err != nil {
		return err
	}
	if db.postgres {
		if err := db.storePayloadsInline(ctx); err != nil {
			return err
		}
	} else if err := db.addColumn(ctx, "monohook_delivery", "body", "INTEGER"); err != nil {
		return err
	}
	m, err := rivermigrate.New(db.driver, nil)
	if err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river tables: %w", err)
	}
	return nil
}

// storePayloadsInline keeps payloads in the delivery's row up to a page:
// they are compressed already (see pack), and by default PostgreSQL moves
// a value over 2 KB to its TOAST table, which costs each delivery a second
// row and index entry, after trying to compress it again.
func (db *DB) storePayloadsInline(ctx context.Context) error {
	var storage string
	var options sql.NullString
	if err := db.sql.QueryRowContext(ctx, `SELECT a.attstorage::text, array_to_string(c.reloptions, ',')
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE c.oid = 'monohook_delivery'::regclass AND a.attname = 'payload'`).Scan(&storage, &options); err != nil {
		return fmt.Errorf("migrate: read payload storage: %w", err)
	}
	if storage == "e" && strings.Contains(options.String, "toast_tuple_target=8160") {
		return nil // as wanted: no ALTER, which would lock the table
	}
	if _, err := db.sql.ExecContext(ctx, `ALTER TABLE monohook_delivery ALTER COLUMN payload SET STORAGE EXTERNAL, SET (toast_tuple_target = 8160)`); err != nil {
		return fmt.Errorf("migrate: payload storage: %w", err)
	}
	return nil
}

// addColumn adds a column to a table unless it is there already.
func (db *DB) addColumn(ctx context.Context, table, column, decl string) error {
	var n int
	query := `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`
	if db.postgres {
		query = `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`
	}
	if err := db.sql.QueryRowContext(ctx, query, table, column).Scan(&n); err != nil {
		return fmt.Errorf("migrate: read the columns of %s: %w", table, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := db.sql.ExecContext(ctx, "ALTER TABLE "+table+" ADD COLUMN "+column+" "+decl); err != nil {
		return fmt.Errorf("migrate: add %s.%s: %w", table, column, err)
	}
	return nil
}

// marks is n comma-separated placeholders, for an IN (…) list.
func marks(n int) string { return strings.Repeat(", ?", n)[2:] }

// q writes a query for the database: "?" placeholders become $1, $2, … on
// PostgreSQL. Queries here never have "?" inside string literals.
func (db *DB) q(query string) string {
	if !db.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func redactPassword(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// refusesRow reports whether err is the database refusing the values of
// a row (a data exception, a constraint, a size limit), which no retry
// changes, rather than the database failing.
func (db *DB) refusesRow(err error) bool {
	if db.postgres {
		var pg *pgconn.PgError
		if !errors.As(err, &pg) {
			return false
		}
		switch pg.Code[:min(2, len(pg.Code))] {
		case "22", "23", "54": // data exception, integrity constraint, program limit
			return true
		}
		return false
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
		return true
	}
	return false
}

// ErrNotFound is returned for a delivery that is not stored.
var ErrNotFound = errors.New("delivery not found")
