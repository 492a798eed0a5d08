package deliveries

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"
)

// probeSchema is the table readiness writes to when no delivery was
// committed for a while (see Ready).
const probeSchema = `
CREATE TABLE IF NOT EXISTS monohook_probe (
	k   INTEGER PRIMARY KEY,
	at  BIGINT NOT NULL,
	pad BLOB NOT NULL
);
`

// probeEvery is how long the committers may be idle before Ready commits
// a probe itself. It also bounds how often that happens: /readyz needs no
// login and may be polled by anyone, and a probe is a commit, a flush on
// the writer. Under load the deliveries' own commits tell.
const probeEvery = 5 * time.Second

// probePad is the size of the probe row's fresh content, a small
// delivery's: the probe writes and flushes about what a delivery does.
const probePad = 16 << 10

// health is what the committers and probes last found.
type health struct {
	probing sync.Mutex // one probe at a time

	mu       sync.Mutex
	lastOK   time.Time // the latest commit or probe that succeeded
	lastFail time.Time // the latest that failed, with its error
	lastErr  error
}

func (h *health) committed() {
	h.mu.Lock()
	h.lastOK = time.Now()
	h.mu.Unlock()
}

func (h *health) failed(err error) {
	h.mu.Lock()
	h.lastFail, h.lastErr = time.Now(), err
	h.mu.Unlock()
}

// Ready reports whether a delivery can be committed now: not when the
// latest commit failed. When nothing was committed (or tried) for
// probeEvery, it commits a probe row first, so that a database gone, or
// full, while idle is found too, and one that came back is seen to. The
// error has the database's own words (hosts, users): it is for the log,
// not for an unauthenticated caller.
func (q *Queue) Ready(ctx context.Context) error {
	h := &q.health
	h.mu.Lock()
	idle := time.Since(h.lastOK) >= probeEvery && time.Since(h.lastFail) >= probeEvery
	h.mu.Unlock()
	// A probe under way answers for the calls that arrive meanwhile.
	if idle && h.probing.TryLock() {
		// Not the caller's context: a caller that hangs up does not make
		// the database look broken to the next one.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := q.probe(pctx)
		cancel()
		if err != nil {
			h.failed(fmt.Errorf("probe: %w", err))
		} else {
			h.committed()
		}
		h.probing.Unlock()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lastFail.After(h.lastOK) {
		return fmt.Errorf("cannot commit to %s: %w", q.db.Where, h.lastErr)
	}
	return nil
}

// probe commits the probe row with fresh content, as a delivery commits.
func (q *Queue) probe(ctx context.Context) error {
	tx, err := q.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	pad := make([]byte, probePad)
	_, _ = rand.Read(pad) // never fails (crypto/rand)
	if _, err := tx.ExecContext(ctx, q.db.q(`INSERT INTO monohook_probe (k, at, pad) VALUES (1, ?, ?)
		ON CONFLICT (k) DO UPDATE SET at = excluded.at, pad = excluded.pad`), time.Now().UnixMilli(), pad); err != nil {
		return err
	}
	return tx.Commit()
}
