package deliveries

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/pgtest"
)

func TestResolve(t *testing.T) {
	for name, dsn := range testDSNs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, q := bareQueue(t, dsn)
			now := time.Now().UnixMilli()
			for i, id := range []string{"6f1c-a", "6f1c-b", "7a00", "7a00-long", "ünï-1", "50%_x"} {
				if _, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO monohook_delivery (id, event, received_at, payload, status) VALUES (?, 'push', ?, ?, 'evaluated')`),
					id, now+int64(i), []byte("{}")); err != nil {
					t.Fatal(err)
				}
			}
			for prefix, want := range map[string]string{
				"6f1c-a": "6f1c-a", "6f1c-b": "6f1c-b",
				"7a00":  "7a00", // an id that is also a prefix of another is itself
				"7a00-": "7a00-long", "ün": "ünï-1", "50%": "50%_x",
			} {
				if got, err := q.Resolve(ctx, prefix); err != nil || got != want {
					t.Errorf("Resolve(%q) = %q, %v; want %q", prefix, got, err, want)
				}
			}
			var amb *AmbiguousError
			if _, err := q.Resolve(ctx, "6f1c"); !errors.As(err, &amb) || len(amb.Candidates) != 2 || amb.Candidates[0] != "6f1c-b" || amb.More {
				t.Errorf("Resolve(6f1c): %v", err)
			}
			for _, prefix := range []string{"8", "50_", "%", "6F1C"} {
				if _, err := q.Resolve(ctx, prefix); !errors.Is(err, ErrNotFound) {
					t.Errorf("Resolve(%q): %v, want not found", prefix, err)
				}
			}
			if _, err := q.Resolve(ctx, ""); err == nil {
				t.Error("an empty prefix resolved")
			}
		})
	}
}

func TestInitialized(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monohook.db")
	if err := Initialized(ctx, "sqlite://"+path); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("a missing SQLite file: %v", err)
	}
	bareQueue(t, "sqlite://"+path)
	if err := Initialized(ctx, "sqlite://"+path); err != nil {
		t.Errorf("an opened SQLite file: %v", err)
	}
	if err := Initialized(ctx, path); err != nil {
		t.Errorf("an opened SQLite file as a plain path: %v", err)
	}
}

func TestInitializedPostgreSQL(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.FreshDatabase(t)
	if err := Initialized(ctx, dsn); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("an empty database: %v", err)
	}
	if err := Initialized(ctx, dsn); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("Initialized created the tables: %v", err)
	}
	bareQueue(t, dsn)
	if err := Initialized(ctx, dsn); err != nil {
		t.Errorf("a database OpenDB set up: %v", err)
	}
}

// BenchmarkResolve measures deliveries show's lookup with 100,000
// deliveries stored: an id typed whole, and a unique prefix of one.
func BenchmarkResolve(b *testing.B) {
	for name, dsn := range testDSNs(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, q := bareQueue(b, dsn)
			if err := seedDeliveries(ctx, db, 100_000); err != nil {
				b.Fatal(err)
			}
			for _, c := range []struct{ name, id string }{{"whole", "0000c350-0000-4000-8000-00000000c350"}, {"prefix", "0000c350"}} {
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						if _, err := q.Resolve(ctx, c.id); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
