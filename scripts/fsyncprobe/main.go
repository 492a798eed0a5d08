// Command fsyncprobe measures how long a disk takes to flush: the floor of
// every acknowledgement monohook sends, since each waits for a commit
// flushed to disk. It writes 16 KB blocks in turn over a 4 MB file (as
// SQLite reuses its WAL) and flushes after each, then prints the
// distribution. A disk that sometimes takes 100 ms to flush makes every
// delivery waiting at that moment wait as long, whatever the database.
//
//	go run ./scripts/fsyncprobe [-dir DIR] [-for 10s]
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to measure (e.g. the data directory)")
	dur := flag.Duration("for", 10*time.Second, "how long to measure")
	flag.Parse()
	if err := probe(*dir, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "fsyncprobe:", err)
		os.Exit(1)
	}
}

func probe(dir string, dur time.Duration) error {
	f, err := os.CreateTemp(dir, "fsyncprobe-*")
	if err != nil {
		return fmt.Errorf("create probe file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const block, span = 16 << 10, 4 << 20
	buf := make([]byte, block)
	var took []time.Duration
	for off, end := int64(0), time.Now().Add(dur); time.Now().Before(end); off = (off + block) % span {
		if _, err := f.WriteAt(buf, off); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		began := time.Now()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		took = append(took, time.Since(began))
	}
	n := len(took)
	if n == 0 {
		return fmt.Errorf("no flush finished within %s", dur)
	}
	slices.Sort(took)
	at := func(q float64) time.Duration { return took[min(n-1, int(float64(n)*q))].Round(time.Microsecond) }
	over := func(d time.Duration) int { return n - countBelow(took, d) }
	fmt.Printf("%d flushes of 16 KB writes in %s (%s)\n", n, dur, dir)
	fmt.Printf("p50 %s  p99 %s  p99.9 %s  max %s\n", at(0.5), at(0.99), at(0.999), took[n-1].Round(time.Microsecond))
	fmt.Printf("over 10 ms: %d  over 50 ms: %d  over 100 ms: %d\n", over(10*time.Millisecond), over(50*time.Millisecond), over(100*time.Millisecond))
	return nil
}

// countBelow counts the sorted durations shorter than or equal to d.
func countBelow(sorted []time.Duration, d time.Duration) int {
	i, _ := slices.BinarySearch(sorted, d+1)
	return i
}
