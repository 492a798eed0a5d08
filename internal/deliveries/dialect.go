package deliveries

import (
	"context"
	"database/sql"
)

// dialect is what SQLite and PostgreSQL do differently, chosen once when
// the database is opened (sqlite.go, postgres.go); everything else is one
// set of queries with "?" placeholders. Most differences are for speed:
// SQLite parses a statement anew at every call unless it is prepared, so
// its statements are prepared and run row by row; on PostgreSQL a
// statement is a round trip, so a batch's rows go in one, as arrays.
type dialect interface {
	// bind writes a query's "?" placeholders the database's way.
	bind(query string) string
	// migrate creates and updates monohook's tables, then River's.
	migrate(ctx context.Context, db *DB) error
	// prepare prepares the statements kept for the life of db; close
	// releases them.
	prepare(ctx context.Context, db *DB) error
	close()

	// commit stores a group of accepted deliveries and sees that an
	// evaluation will read them (see wakeUpsert). It returns each
	// delivery's result; an error fails the whole group.
	commit(ctx context.Context, q *Queue, group []acceptReq, wake int64) ([]error, error)
	// committers is how many groups are committed at once.
	committers() int
	// refusesRow reports whether err is the database refusing the values
	// of a row (a data exception, a constraint, a size limit), which no
	// retry changes, rather than the database failing.
	refusesRow(err error) bool

	// record records the decisions of a batch of deliveries still waiting
	// for their round, and inserts their start rows (status pending) unless
	// they exist already. It returns the deliveries it recorded and the
	// start rows it inserted.
	record(ctx context.Context, tx *sql.Tx, batch []*pending, now int64) (recorded []*pending, created []createdStart, err error)
	// batch bounds an evaluation batch when acknowledgements do not wait.
	batch() batchLimit

	// payload reads a delivery's stored payload: expr over
	// monohook_delivery aliased d, with the joins it needs; key is the
	// delivery's column naming its payload's row elsewhere, or NULL.
	payload() (expr, joins, key string)
	// deletePayloads deletes the payloads, kept apart, of deliveries just
	// deleted: ids, and the keys their key column named.
	deletePayloads(ctx context.Context, tx *sql.Tx, ids, keys []any) error

	// readOnly is the transaction of a read that must see one moment.
	readOnly() *sql.TxOptions
	// waitingJobs counts River's waiting jobs and the age in seconds of
	// the oldest (0 when none waits).
	waitingJobs() string
}
