package deliveries

import (
	"context"
	"time"
)

// SetLease writes the reconciliation lease as another process would hold
// it: holder, until until.
func SetLease(ctx context.Context, db *DB, holder string, until time.Time) error {
	if _, err := db.sql.ExecContext(ctx, `INSERT INTO monohook_reconcile (k) VALUES (1) ON CONFLICT (k) DO NOTHING`); err != nil {
		return err
	}
	_, err := db.sql.ExecContext(ctx, db.q(`UPDATE monohook_reconcile SET holder = ?, lease_until = ? WHERE k = 1`), holder, until.UnixMilli())
	return err
}
