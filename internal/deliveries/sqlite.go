package deliveries

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"modernc.org/sqlite" // also the database/sql driver "sqlite", pure Go
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDialect is SQLite's way (see dialect): one writer, statements
// prepared once and run a row at a time.
type sqliteDialect struct {
	stmts *sqliteStmts // the committer's
}

// openSQLite opens the SQLite database in the file at path.
func openSQLite(path string) (*DB, error) {
	db := &DB{dialect: &sqliteDialect{}, Where: "sqlite://" + path}
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
	var err error
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
	return db, nil
}

func (*sqliteDialect) bind(query string) string { return query }

// sqliteSchema is SQLite's alone. Payloads are kept apart from the
// delivery rows: SQLite rewrites a whole row when one of its columns
// changes, overflow pages included, and evaluation updates every delivery
// (a 200 KB push's payload was written again). A delivery's payload is the
// monohook_body row whose k is the delivery's body column. k grows with
// every commit, so storing a payload appends to one b-tree; keyed by
// delivery id (monohook_payload, before) each payload also went into an
// index of ids, where GitHub's random ids land on a different page each.
// k is a column of its own, not the delivery's rowid, which VACUUM may
// renumber. (On PostgreSQL payloads stay in monohook_delivery: see
// storePayloadsInline.)
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS monohook_body (
	k       INTEGER PRIMARY KEY,
	payload BLOB NOT NULL
);
`

const sqliteColumns = `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`

// migrate needs no lock: one process has the file.
func (*sqliteDialect) migrate(ctx context.Context, db *DB) error {
	if _, err := db.sql.ExecContext(ctx, schema+sqliteSchema); err != nil {
		return fmt.Errorf("migrate monohook tables: %w", err)
	}
	if err := addLaterColumns(ctx, db.sql, sqliteColumns); err != nil {
		return err
	}
	if err := addColumn(ctx, db.sql, sqliteColumns, "monohook_delivery", "body", "INTEGER"); err != nil {
		return err
	}
	return migrateRiver(ctx, db)
}

func (s *sqliteDialect) prepare(ctx context.Context, db *DB) error {
	var err error
	s.stmts, err = prepareSQLite(ctx, db.sql)
	return err
}

// close closes the statements; a commit still under way fails on them.
func (s *sqliteDialect) close() {
	if s.stmts != nil {
		s.stmts.close()
	}
}

// committers: SQLite has one writer, so one committer.
func (*sqliteDialect) committers() int { return 1 }

func (*sqliteDialect) batch() batchLimit { return batchSQLite }

// commit stores a group in one transaction, with the job that evaluates
// it when its wake row is new.
func (s *sqliteDialect) commit(ctx context.Context, q *Queue, group []acceptReq, wake int64) ([]error, error) {
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	// Many rows per statement: a statement per delivery would cost more
	// than the flush the group shares. The ids returned are the new
	// deliveries; the others were stored before.
	c := groupColumns(group)
	inserted, first, err := s.stmts.insertGroup(ctx, tx, c)
	if err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	if err := s.stmts.insertPayloads(ctx, tx, c, inserted, first); err != nil {
		return nil, fmt.Errorf("store payloads: %w", err)
	}
	results, dups := duplicates(group, inserted)
	for _, id := range dups {
		if _, err := tx.ExecContext(ctx, `UPDATE monohook_delivery SET duplicates = duplicates + 1 WHERE id = ?`, id); err != nil {
			return nil, fmt.Errorf("count duplicate %s: %w", id, err)
		}
	}
	var n int
	if err := tx.StmtContext(ctx, s.stmts.wake).QueryRowContext(ctx, wake).Scan(&n); err != nil {
		return nil, fmt.Errorf("wake evaluation: %w", err)
	}
	if n == 1 {
		if _, err := q.river.InsertTx(ctx, tx, evaluateArgs{}, nil); err != nil {
			return nil, fmt.Errorf("queue evaluation: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit deliveries: %w", err)
	}
	if n == 1 {
		q.wakes.wake(evaluateQueue)
	}
	return results, nil
}

func (*sqliteDialect) refusesRow(err error) bool {
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

// record runs one statement per decision and per start row, through
// statements prepared once for the batch: SQLite parses an unprepared
// statement anew at every call, which cost more than running it.
func (*sqliteDialect) record(ctx context.Context, tx *sql.Tx, batch []*pending, now int64) ([]*pending, []createdStart, error) {
	update, err := tx.PrepareContext(ctx, `UPDATE monohook_delivery SET status = 'evaluated', evaluated_at = ?, result = ?
		WHERE id = ? AND status IN ('received', 'retrying') AND round = ?`)
	if err != nil {
		return nil, nil, fmt.Errorf("record decisions: %w", err)
	}
	defer update.Close()
	insert, err := tx.PrepareContext(ctx, `INSERT INTO monohook_start (delivery_id, round, pipeline, token, status, updated_at)
		VALUES (?, ?, ?, ?, 'pending', ?) ON CONFLICT (delivery_id, round, pipeline) DO NOTHING RETURNING pipeline`)
	if err != nil {
		return nil, nil, fmt.Errorf("record decisions: %w", err)
	}
	defer insert.Close()
	var recorded []*pending
	var created []createdStart
	for _, d := range batch {
		result, err := json.Marshal(d.res)
		if err != nil {
			return nil, nil, fmt.Errorf("encode decision: %w", err)
		}
		res, err := update.ExecContext(ctx, now, string(result), d.id, d.round)
		if err != nil {
			return nil, nil, fmt.Errorf("record decision: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue // evaluated meanwhile by another evaluation
		}
		recorded = append(recorded, d)
		for _, st := range d.starts {
			var got string
			err := insert.QueryRowContext(ctx, d.id, d.round, st.Name, st.Token, now).Scan(&got)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("record start: %w", err)
			}
			created = append(created, createdStart{d, st.Name})
		}
	}
	return recorded, created, nil
}

// payload: in monohook_body, or where earlier versions stored it.
func (*sqliteDialect) payload() (expr, joins, key string) {
	return "COALESCE(b.payload, p.payload, d.payload)", "LEFT JOIN monohook_body b ON b.k = d.body LEFT JOIN monohook_payload p ON p.id = d.id", "body"
}

func (*sqliteDialect) deletePayloads(ctx context.Context, tx *sql.Tx, ids, keys []any) error {
	if len(keys) > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM monohook_body WHERE k IN (`+marks(len(keys))+`)`, keys...); err != nil { //nolint:gosec // placeholders only
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM monohook_payload WHERE id IN (`+marks(len(ids))+`)`, ids...) //nolint:gosec // placeholders only
	return err
}

// readOnly: a read transaction on db.read sees one moment already: it
// begins DEFERRED there, and in WAL mode it keeps the snapshot of its
// first read without taking the write lock.
func (*sqliteDialect) readOnly() *sql.TxOptions { return &sql.TxOptions{} }

func (*sqliteDialect) waitingJobs() string {
	return `SELECT count(*), COALESCE((julianday('now') - julianday(min(created_at))) * 86400, 0)
		FROM river_job WHERE state IN ('available', 'scheduled', 'retryable')`
}

// sqliteStmts are the committer's statements, prepared once on SQLite's
// writer connection: SQLite parses an unprepared statement anew at every
// call, a share of the committer's time worth saving (BENCHMARKS.md). A
// group is inserted in chunks of power-of-two sizes, so a few texts serve
// every group size.
type sqliteStmts struct {
	deliveries, payloads map[int]*sql.Stmt // by rows per statement
	wake, lastBody       *sql.Stmt
}

// maxChunk is the most rows one insert statement takes.
const maxChunk = 256

func prepareSQLite(ctx context.Context, db *sql.DB) (*sqliteStmts, error) {
	s := &sqliteStmts{deliveries: map[int]*sql.Stmt{}, payloads: map[int]*sql.Stmt{}}
	var err error
	if s.wake, err = db.PrepareContext(ctx, wakeUpsert); err != nil {
		return nil, err
	}
	if s.lastBody, err = db.PrepareContext(ctx, `SELECT COALESCE(max(k), 0) FROM monohook_body`); err != nil {
		s.close()
		return nil, err
	}
	// Only placeholders are repeated: no value is in the texts.
	for n := 1; n <= maxChunk; n *= 2 {
		if s.deliveries[n], err = db.PrepareContext(ctx, `INSERT INTO monohook_delivery (id, event, received_at, payload, repo, ref, sha, paths, status, body) VALUES `+ //nolint:gosec // placeholders only
			strings.Repeat("(?, ?, ?, x'', ?, ?, ?, ?, 'received', ?), ", n-1)+"(?, ?, ?, x'', ?, ?, ?, ?, 'received', ?) ON CONFLICT (id) DO NOTHING RETURNING id"); err != nil {
			s.close()
			return nil, err
		}
		if s.payloads[n], err = db.PrepareContext(ctx, `INSERT INTO monohook_body (k, payload) VALUES `+strings.Repeat("(?, ?), ", n-1)+"(?, ?)"); err != nil { //nolint:gosec // placeholders only
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *sqliteStmts) close() {
	for _, m := range []map[int]*sql.Stmt{s.deliveries, s.payloads} {
		for _, st := range m {
			if st != nil {
				st.Close() //nolint:errcheck // closing on shutdown
			}
		}
	}
	for _, st := range []*sql.Stmt{s.wake, s.lastBody} {
		if st != nil {
			st.Close() //nolint:errcheck // closing on shutdown
		}
	}
}

// chunk is the rows of the next statement for n rows left.
func chunk(n int) int {
	c := maxChunk
	for c > n {
		c /= 2
	}
	return c
}

// inChunks calls f for rows [i, i+n) of total rows, chunk by chunk.
func inChunks(total int, f func(i, n int) error) error {
	for i := 0; i < total; {
		n := chunk(total - i)
		if err := f(i, n); err != nil {
			return err
		}
		i += n
	}
	return nil
}

// insertGroup inserts the deliveries of a group that are not stored yet,
// each with the key of its payload, and returns the ids it inserted. The
// delivery in row j of c gets key first+j, after the largest stored: the
// transaction holds SQLite's write lock, so no other writer takes them.
func (s *sqliteStmts) insertGroup(ctx context.Context, tx *sql.Tx, c columns) (inserted []string, first int64, err error) {
	if err := tx.StmtContext(ctx, s.lastBody).QueryRowContext(ctx).Scan(&first); err != nil {
		return nil, 0, err
	}
	first++
	err = inChunks(len(c.ids), func(i, n int) error {
		args := make([]any, 0, 8*n)
		for j := i; j < i+n; j++ {
			args = append(args, c.ids[j], c.events[j], c.received[j], c.repos[j], c.refs[j], c.shas[j], c.paths[j], first+int64(j))
		}
		rows, err := tx.StmtContext(ctx, s.deliveries[n]).QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		ids, err := scanStrings(rows)
		inserted = append(inserted, ids...)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return inserted, first, nil
}

// insertPayloads stores the payloads of the deliveries inserted under
// their keys (see insertGroup and monohook_body).
func (s *sqliteStmts) insertPayloads(ctx context.Context, tx *sql.Tx, c columns, inserted []string, first int64) error {
	return inChunks(len(inserted), func(i, n int) error {
		args := make([]any, 0, 2*n)
		for _, id := range inserted[i : i+n] {
			j := c.index[id]
			args = append(args, first+int64(j), c.payloads[j])
		}
		_, err := tx.StmtContext(ctx, s.payloads[n]).ExecContext(ctx, args...)
		return err
	})
}
