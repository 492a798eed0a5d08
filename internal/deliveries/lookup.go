package deliveries

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// ErrNoDatabase is returned by Initialized for a database serve has not
// created (or not migrated) yet.
var ErrNoDatabase = errors.New("no deliveries database")

// Initialized checks, without creating anything, that dsn (as OpenDB
// takes it) is a database serve has opened: the SQLite file exists, or
// PostgreSQL has monohook's deliveries table. OpenDB itself creates the
// file and the tables, which a command that only reads must not.
func Initialized(ctx context.Context, dsn string) error {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		path := strings.TrimPrefix(dsn, "sqlite://")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w at %s", ErrNoDatabase, path)
		} else if err != nil {
			return fmt.Errorf("deliveries database: %w", err)
		}
		return nil
	}
	where := redactPassword(dsn)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", where, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var found bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('monohook_delivery') IS NOT NULL").Scan(&found); err != nil {
		return fmt.Errorf("read %s: %w", where, err)
	}
	if !found {
		return fmt.Errorf("%w in %s (no monohook tables)", ErrNoDatabase, where)
	}
	return nil
}

// maxCandidates is how many ids an ambiguous prefix lists.
const maxCandidates = 10

// AmbiguousError is Resolve's answer to a prefix of several ids.
type AmbiguousError struct {
	Prefix     string
	Candidates []string // the newest, at most maxCandidates
	More       bool     // there are others
}

func (e *AmbiguousError) Error() string {
	more := ""
	if e.More {
		more = ", …"
	}
	return fmt.Sprintf("delivery id prefix %q is ambiguous: %s%s", e.Prefix, strings.Join(e.Candidates, ", "), more)
}

// Resolve returns the id of the delivery whose id is prefix, or else the
// one whose id begins with it; several such ids are an *AmbiguousError,
// none ErrNotFound. Ids are GitHub's UUIDs: a person types the first few
// characters, as with git's commits.
func (q *Queue) Resolve(ctx context.Context, prefix string) (string, error) {
	if prefix == "" {
		return "", errors.New("an empty delivery id: give an id or the first characters of one")
	}
	var id string
	err := q.db.read.QueryRowContext(ctx, q.db.q(`SELECT id FROM monohook_delivery WHERE id = ?`), prefix).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("find delivery %s: %w", prefix, err)
	}
	// substr counts characters on both databases; a range over the
	// primary key would follow the collation, which on PostgreSQL need
	// not be byte order.
	rows, err := q.db.read.QueryContext(ctx, q.db.q(`SELECT id FROM monohook_delivery WHERE substr(id, 1, ?) = ?
		ORDER BY received_at DESC, id LIMIT ?`), utf8.RuneCountInString(prefix), prefix, maxCandidates+1)
	if err != nil {
		return "", fmt.Errorf("find delivery %s: %w", prefix, err)
	}
	ids, err := scanStrings(rows)
	if err != nil {
		return "", fmt.Errorf("find delivery %s: %w", prefix, err)
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("%s: %w", prefix, ErrNotFound)
	case 1:
		return ids[0], nil
	}
	e := &AmbiguousError{Prefix: prefix, Candidates: ids, More: len(ids) > maxCandidates}
	if e.More {
		e.Candidates = ids[:maxCandidates]
	}
	return "", e
}
