package deliveries

import (
	"context"
	"fmt"
)

// SetFull makes SQLite's writer connection treat db as full at its
// current size, or lifts that: every write that needs a new page then
// fails with SQLITE_FULL, the error a full disk gives.
func SetFull(ctx context.Context, db *DB, full bool) error {
	pages := int64(1<<32 - 2) // SQLite's largest
	if full {
		if err := db.sql.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			return err
		}
	}
	_, err := db.sql.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages))
	return err
}
