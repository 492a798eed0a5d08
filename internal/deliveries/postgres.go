package deliveries

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib" // also the database/sql driver "pgx" the tests open
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
)

// postgresDialect is PostgreSQL's way (see dialect): any number of
// processes on one database, and a batch's rows in one statement.
type postgresDialect struct {
	listener *pgxpool.Pool // LISTEN/NOTIFY, so jobs start without polling delay
}

// openPostgres opens the PostgreSQL database at the URL dsn.
func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	pg := &postgresDialect{}
	db := &DB{dialect: pg, Where: redactPassword(dsn)}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", db.Where, err)
	}
	db.sql = stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(db.durableCommits))
	if pg.listener, err = pgxpool.New(ctx, dsn); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("open %s: %w", db.Where, err)
	}
	// Keep every connection open: database/sql keeps only two idle by
	// default, and a new PostgreSQL connection is a new server process.
	db.sql.SetMaxOpenConns(20)
	db.sql.SetMaxIdleConns(20)
	db.read = db.sql
	db.driver = riverdatabasesql.NewWithPgxListener(db.sql, pg.listener)
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

// bind numbers the placeholders: $1, $2, …
func (*postgresDialect) bind(query string) string {
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

// migrationLock serialises schema changes of replicas starting together.
const migrationLock = 0x6d6f6e6f686f6f6b // "monohook"

const postgresColumns = `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`

// migrate holds an advisory lock throughout: replicas may start together.
func (*postgresDialect) migrate(ctx context.Context, db *DB) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock)) //nolint:errcheck // released with the connection anyway
	if _, err := db.sql.ExecContext(ctx, strings.ReplaceAll(schema, "BLOB", "BYTEA")); err != nil {
		return fmt.Errorf("migrate monohook tables: %w", err)
	}
	if err := addLaterColumns(ctx, db.sql, postgresColumns); err != nil {
		return err
	}
	if err := storePayloadsInline(ctx, db.sql); err != nil {
		return err
	}
	return migrateRiver(ctx, db)
}

// storePayloadsInline keeps payloads in the delivery's row up to a page:
// they are compressed already (see pack), and by default PostgreSQL moves
// a value over 2 KB to its TOAST table, which costs each delivery a second
// row and index entry, after trying to compress it again. (An update
// copies a payload up to a page, a few KB; a larger one is kept apart by
// PostgreSQL itself, and an update copies a pointer.)
func storePayloadsInline(ctx context.Context, db *sql.DB) error {
	var storage string
	var options sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT a.attstorage::text, array_to_string(c.reloptions, ',')
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE c.oid = 'monohook_delivery'::regclass AND a.attname = 'payload'`).Scan(&storage, &options); err != nil {
		return fmt.Errorf("migrate: read payload storage: %w", err)
	}
	if storage == "e" && strings.Contains(options.String, "toast_tuple_target=8160") {
		return nil // as wanted: no ALTER, which would lock the table
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE monohook_delivery ALTER COLUMN payload SET STORAGE EXTERNAL, SET (toast_tuple_target = 8160)`); err != nil {
		return fmt.Errorf("migrate: payload storage: %w", err)
	}
	return nil
}

// prepare: pgx prepares and caches each connection's statements itself.
func (*postgresDialect) prepare(context.Context, *DB) error { return nil }

func (pg *postgresDialect) close() {
	if pg.listener != nil {
		pg.listener.Close()
	}
}

// committers: PostgreSQL commits concurrent transactions together (its own
// group commit) and a commit waits on the WAL flush, so several groups in
// flight go faster.
func (*postgresDialect) committers() int { return 4 }

func (*postgresDialect) batch() batchLimit { return batchPostgres }

// commit stores a group in one statement, which PostgreSQL runs as its own
// transaction: a single round trip where BEGIN, INSERT and COMMIT took
// three (each waited on by the deliveries of the group).
//
// When the wake row was new, the evaluation job is queued after the
// commit, not with it. Should this process die in between, the deliveries
// wait for the next evaluation of any replica, or at the latest for the
// periodic one (evaluateEvery).
func (*postgresDialect) commit(ctx context.Context, q *Queue, group []acceptReq, wake int64) ([]error, error) {
	inserted, n, err := insertGroupPostgres(ctx, q.db.sql, wake, group)
	if err != nil {
		return nil, fmt.Errorf("store deliveries: %w", err)
	}
	if n == 1 {
		if _, err := q.river.Insert(ctx, evaluateArgs{}, nil); err != nil {
			// The deliveries are stored; drop the wake row so that the next
			// commit queues a job rather than count on this one.
			q.log.Error("could not queue an evaluation; stored deliveries wait for the next one", "err", err)
			if _, err := q.db.sql.ExecContext(ctx, `DELETE FROM monohook_wake WHERE k = $1`, wake); err != nil {
				q.log.Error("could not clear the wake row", "err", err)
			}
		} else {
			q.wakes.wake(evaluateQueue)
		}
	}
	// The new deliveries are committed: a counter that fails to count
	// their repeats is logged, not answered with an error.
	results, dups := duplicates(group, inserted)
	if len(dups) > 0 {
		if _, err := q.db.sql.ExecContext(ctx, `UPDATE monohook_delivery d SET duplicates = d.duplicates + u.n
			FROM (SELECT id, count(*) AS n FROM unnest($1::text[]) AS id GROUP BY id) u WHERE d.id = u.id`, dups); err != nil {
			q.log.Warn("could not count duplicate deliveries", "deliveries", dups, "err", err)
		}
	}
	return results, nil
}

// insertGroupPostgres inserts a group's new deliveries and upserts the
// committer's wake row in one statement, and returns the ids inserted and
// the wake row's count. Arrays keep the statement text the same for every
// group size, so it is prepared once per connection and its values sent in
// binary.
func insertGroupPostgres(ctx context.Context, db *sql.DB, wake int64, group []acceptReq) (inserted []string, n int, err error) {
	c := groupColumns(group)
	// A row (id, 0) per delivery inserted, and one with an empty id and n
	// for the wake row.
	rows, err := db.QueryContext(ctx, `WITH new AS (
			INSERT INTO monohook_delivery (id, event, received_at, payload, repo, ref, sha, paths, status)
			SELECT *, 'received' FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::text[], $6::text[], $7::text[], $8::bigint[])
			ON CONFLICT (id) DO NOTHING RETURNING id
		), wake AS (
			INSERT INTO monohook_wake (k, n) VALUES ($9, 1) ON CONFLICT (k) DO UPDATE SET n = monohook_wake.n + 1 RETURNING n
		)
		SELECT id, 0 FROM new UNION ALL SELECT '', n FROM wake`,
		c.ids, c.events, c.received, c.payloads, c.repos, c.refs, c.shas, c.paths, wake)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var w int
		if err := rows.Scan(&id, &w); err != nil {
			return nil, 0, err
		}
		if id != "" {
			inserted = append(inserted, id)
		} else {
			n = w
		}
	}
	return inserted, n, rows.Err()
}

func (*postgresDialect) refusesRow(err error) bool {
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

// record runs two statements for the whole batch, the rows passed as
// arrays: a statement is a round trip, and the server's time per statement
// is what evaluation costs.
func (*postgresDialect) record(ctx context.Context, tx *sql.Tx, batch []*pending, now int64) ([]*pending, []createdStart, error) {
	ids, results, rounds := make([]string, len(batch)), make([]string, len(batch)), make([]int64, len(batch))
	byID := make(map[string]*pending, len(batch))
	for i, d := range batch {
		result, err := json.Marshal(d.res)
		if err != nil {
			return nil, nil, fmt.Errorf("encode decision: %w", err)
		}
		ids[i], results[i], rounds[i] = d.id, string(result), int64(d.round)
		byID[d.id] = d
	}
	rows, err := tx.QueryContext(ctx, `UPDATE monohook_delivery d SET status = 'evaluated', evaluated_at = $1, result = u.result
		FROM unnest($2::text[], $3::text[], $4::bigint[]) AS u(id, result, round)
		WHERE d.id = u.id AND d.status IN ('received', 'retrying') AND d.round = u.round RETURNING d.id`, now, ids, results, rounds)
	if err != nil {
		return nil, nil, fmt.Errorf("record decisions: %w", err)
	}
	recordedIDs, err := scanStrings(rows)
	if err != nil {
		return nil, nil, fmt.Errorf("record decisions: %w", err)
	}
	recorded := make([]*pending, len(recordedIDs))
	for i, id := range recordedIDs {
		recorded[i] = byID[id]
	}
	var sIDs, sPipelines, sTokens []string
	var sRounds []int64
	for _, d := range recorded {
		for _, st := range d.starts {
			sIDs, sPipelines = append(sIDs, d.id), append(sPipelines, st.Name)
			sTokens, sRounds = append(sTokens, st.Token), append(sRounds, int64(d.round))
		}
	}
	if len(sIDs) == 0 {
		return recorded, nil, nil
	}
	rows, err = tx.QueryContext(ctx, `INSERT INTO monohook_start (delivery_id, round, pipeline, token, status, updated_at)
		SELECT u.d, u.r, u.p, u.t, 'pending', $5 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS u(d, r, p, t)
		ON CONFLICT (delivery_id, round, pipeline) DO NOTHING RETURNING delivery_id, pipeline`, sIDs, sRounds, sPipelines, sTokens, now)
	if err != nil {
		return nil, nil, fmt.Errorf("record starts: %w", err)
	}
	defer rows.Close()
	var created []createdStart
	for rows.Next() {
		var id, pipeline string
		if err := rows.Scan(&id, &pipeline); err != nil {
			return nil, nil, fmt.Errorf("record starts: %w", err)
		}
		created = append(created, createdStart{byID[id], pipeline})
	}
	return recorded, created, rows.Err()
}

// payload: in the delivery's row (see storePayloadsInline).
func (*postgresDialect) payload() (expr, joins, key string) { return "d.payload", "", "NULL" }

func (*postgresDialect) deletePayloads(context.Context, *sql.Tx, []any, []any) error { return nil }

func (*postgresDialect) readOnly() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
}

func (*postgresDialect) waitingJobs() string {
	return `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
		FROM river_job WHERE state IN ('available', 'scheduled', 'retryable')`
}
