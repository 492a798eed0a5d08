package deliveries

import (
	"context"
	"database/sql"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/monohook/monohook/internal/pgtest"
)

// TestSynchronousCommitIsRaised: with synchronous_commit turned off for
// the database (as a DBA may, for speed), monohook's sessions set it on,
// since every acknowledgement counts on a flushed commit; a stronger
// setting is left as it is.
func TestSynchronousCommitIsRaised(t *testing.T) {
	for _, c := range []struct{ set, want string }{
		{"", "on"},
		{"off", "on"},
		{"remote_apply", "remote_apply"},
	} {
		t.Run("set "+c.set, func(t *testing.T) {
			dsn := pgtest.FreshDatabase(t)
			if c.set != "" {
				u, err := url.Parse(dsn)
				if err != nil {
					t.Fatal(err)
				}
				admin, err := sql.Open("pgx", dsn)
				if err != nil {
					t.Fatal(err)
				}
				_, err = admin.Exec("ALTER DATABASE " + strings.TrimPrefix(u.Path, "/") + " SET synchronous_commit = " + c.set)
				admin.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			db, err := OpenDB(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			// Several sessions at once: each new one is set.
			var conns []*sql.Conn
			for range 3 {
				conn, err := db.sql.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conns = append(conns, conn)
			}
			for i, conn := range conns {
				var got string
				if err := conn.QueryRowContext(context.Background(), "SHOW synchronous_commit").Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Errorf("session %d: synchronous_commit %s, want %s", i, got, c.want)
				}
			}
			if raised := db.SyncCommitRaised(); raised != (c.set == "off") {
				t.Errorf("SyncCommitRaised() = %v", raised)
			}
		})
	}
}

// TestReadPoolFitsTheEvaluators: on SQLite each evaluation job has a read
// connection, and the dashboard and metrics two more, whatever
// --evaluators says.
func TestReadPoolFitsTheEvaluators(t *testing.T) {
	db, err := OpenDB(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "monohook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := New(db, nil, nil, Options{Evaluators: 6}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if got := db.read.Stats().MaxOpenConnections; got != 8 {
		t.Errorf("read connections: %d, want 8", got)
	}
}
