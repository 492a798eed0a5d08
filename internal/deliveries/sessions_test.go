package deliveries

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestSessions: a stored session is open until it ends or is deleted; a
// login (CreateSession) deletes the sessions that have ended.
func TestSessions(t *testing.T) {
	for name, dsn := range testDSNs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, err := OpenDB(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			now := time.Now()
			if err := db.CreateSession(ctx, "ended", now.Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateSession(ctx, "open", now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			for hash, want := range map[string]bool{"open": true, "ended": false, "unknown": false} {
				if ok, err := db.SessionOpen(ctx, hash, now); err != nil || ok != want {
					t.Errorf("SessionOpen(%s) = %v, %v; want %v", hash, ok, err, want)
				}
			}
			if ok, _ := db.SessionOpen(ctx, "open", now.Add(time.Hour)); ok {
				t.Error("a session is open at its end")
			}
			if err := db.CreateSession(ctx, "another", now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if n := sessionRows(t, db); n != 2 {
				t.Errorf("%d sessions stored after a login; want 2 (the ended one deleted)", n)
			}
			if err := db.DeleteSession(ctx, "open"); err != nil {
				t.Fatal(err)
			}
			if ok, err := db.SessionOpen(ctx, "open", now); err != nil || ok {
				t.Errorf("a deleted session is open: %v %v", ok, err)
			}
		})
	}
}

func sessionRows(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM monohook_session`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSessionTableOnAnEarlierDatabase: a database of a version before
// sessions gets the table when it is opened.
func TestSessionTableOnAnEarlierDatabase(t *testing.T) {
	for name, dsn := range testDSNs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, err := OpenDB(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.sql.Exec(`DROP TABLE monohook_session`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if db, err = OpenDB(ctx, dsn); err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.CreateSession(ctx, "h", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if ok, err := db.SessionOpen(ctx, "h", time.Now()); err != nil || !ok {
				t.Errorf("SessionOpen = %v, %v", ok, err)
			}
		})
	}
}

// TestSessionLookupDoesNotWaitForTheWriter: on SQLite every dashboard
// request looks its session up, and must not wait for the one writer
// connection that commits deliveries.
func TestSessionLookupDoesNotWaitForTheWriter(t *testing.T) {
	ctx := context.Background()
	db, err := OpenDB(ctx, "sqlite://"+filepath.Join(t.TempDir(), "monohook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateSession(ctx, "h", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A commit in progress holds the writer's connection and the lock.
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // nothing written
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if ok, err := db.SessionOpen(wctx, "h", time.Now()); err != nil || !ok {
		t.Errorf("session lookup while a commit is in progress: %v, %v", ok, err)
	}
}
