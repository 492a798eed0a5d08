package deliveries

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

// A group larger than any one statement is stored in chunks (256 + 32 + 8
// + 4 rows here): every new delivery once with its own payload, and the
// ones stored before, or twice in the group, answered as duplicates.
func TestCommitChunks(t *testing.T) {
	ctx := context.Background()
	db, q := bareQueue(t, "sqlite://"+filepath.Join(t.TempDir(), "monohook.db"))

	req := func(i int) acceptReq {
		id := fmt.Sprintf("d-%03d", i)
		return acceptReq{d: trigger.Delivery{ID: id, Event: "push", Received: time.Now(), Payload: pack([]byte(`{"id":"` + id + `"}`))}}
	}
	// Stored before: 7 and 260, in a group of their own.
	if _, err := q.commit([]acceptReq{req(7), req(260)}, 1); err != nil {
		t.Fatal(err)
	}
	var group []acceptReq
	for i := range 300 {
		group = append(group, req(i))
	}
	group = append(group, req(5)) // twice in the group
	results, err := q.commit(group, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range results {
		dup := i == 7 || i == 260 || i == 300
		if got := errors.Is(res, trigger.ErrDuplicate); got != dup {
			t.Errorf("delivery %d (%s): duplicate = %v, want %v (%v)", i, group[i].d.ID, got, dup, res)
		}
	}
	var deliveries, payloads, dups int
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*), sum(duplicates) FROM monohook_delivery`).Scan(&deliveries, &dups); err != nil {
		t.Fatal(err)
	}
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM monohook_body`).Scan(&payloads); err != nil {
		t.Fatal(err)
	}
	if deliveries != 300 || payloads != 300 || dups != 3 {
		t.Errorf("stored %d deliveries and %d payloads with %d duplicates, want 300, 300, 3", deliveries, payloads, dups)
	}
	for _, i := range []int{0, 5, 255, 256, 287, 288, 296, 299} {
		id := fmt.Sprintf("d-%03d", i)
		var stored []byte
		if err := db.sql.QueryRowContext(ctx, `SELECT b.payload FROM monohook_delivery d JOIN monohook_body b ON b.k = d.body WHERE d.id = ?`, id).Scan(&stored); err != nil {
			t.Fatalf("payload of %s: %v", id, err)
		}
		got, err := testUnpacker.unpack(stored)
		if err != nil || !bytes.Equal(got, []byte(`{"id":"`+id+`"}`)) {
			t.Errorf("payload of %s = %q, %v", id, got, err)
		}
	}
}

func TestChunk(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 31: 16, 256: 256, 300: 256, 512: 256} {
		if got := chunk(n); got != want {
			t.Errorf("chunk(%d) = %d, want %d", n, got, want)
		}
	}
}
