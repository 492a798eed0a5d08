package deliveries

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A pipeline's runs are read through monohook_start_runs, in its order:
// no sort of the pipeline's every start, on the first page or a later one.
func TestRunsUseTheirIndex(t *testing.T) {
	db, _ := bareQueue(t, "sqlite://"+t.TempDir()+"/monohook.db")
	for _, after := range []bool{false, true} {
		args := []any{"api", int64(1), "d", 0, 10}
		if !after {
			args = []any{"api", 10}
		}
		rows, err := db.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+runsQuery(after), args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "; ")
		if !strings.Contains(text, "monohook_start_runs") || strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("after a cursor %v: plan %s", after, text)
		}
	}
}

// FuzzRunCursor: any before a browser sends is a cursor that reads back
// as itself, or ErrBadCursor; never a panic.
func FuzzRunCursor(f *testing.F) {
	for _, s := range []string{"", "1764640000000:0:d1", "1:2:a:b:c", "x:0:d", "-1:-1:", "9223372036854775808:0:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		updated, round, id, err := parseRunCursor(c)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("%q: %v", c, err)
			}
			return
		}
		u2, r2, id2, err := parseRunCursor(fmt.Sprintf("%d:%d:%s", updated, round, id))
		if err != nil || u2 != updated || r2 != round || id2 != id {
			t.Fatalf("%q read back as %d %d %q %v", c, u2, r2, id2, err)
		}
	})
}
