package deliveries

import (
	"context"
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
