package deliveries

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The dashboard's sessions live in the database, so that logging out on
// one replica ends the session on all of them. The dashboard hands over
// only a keyed hash of each session id: the table holds nothing a cookie
// could be made from.

// CreateSession stores a session that ends at expires, and deletes the
// sessions that have ended (a login is rare, so this keeps the table to
// the sessions still open without a job of its own).
func (db *DB) CreateSession(ctx context.Context, hash string, expires time.Time) error {
	if _, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM monohook_session WHERE expires_at <= ?`), time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("delete ended sessions: %w", err)
	}
	if _, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO monohook_session (hash, expires_at) VALUES (?, ?)`), hash, expires.UnixMilli()); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

// SessionOpen reports whether a session is stored and has not ended by
// now. It reads through the read connections: on SQLite every dashboard
// request asks, and must not wait for (or hold up) a delivery's commit.
func (db *DB) SessionOpen(ctx context.Context, hash string, now time.Time) (bool, error) {
	var expires int64
	err := db.read.QueryRowContext(ctx, db.q(`SELECT expires_at FROM monohook_session WHERE hash = ?`), hash).Scan(&expires)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read session: %w", err)
	}
	return now.UnixMilli() < expires, nil
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, hash string) error {
	if _, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM monohook_session WHERE hash = ?`), hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
