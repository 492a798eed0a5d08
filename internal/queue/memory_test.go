package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/trigger"
)

func TestCloseProcessesEverythingAccepted(t *testing.T) {
	var mu sync.Mutex
	var got []string
	q := NewMemory(100, 2, func(_ context.Context, batch []trigger.Delivery) {
		time.Sleep(time.Millisecond)
		mu.Lock()
		for _, d := range batch {
			got = append(got, d.ID)
		}
		mu.Unlock()
	}, slog.New(slog.DiscardHandler))
	for i := range 50 {
		if err := q.Accept(context.Background(), trigger.Delivery{ID: string(rune('a' + i)), Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Errorf("processed %d of 50 accepted deliveries", len(got))
	}
	if err := q.Accept(context.Background(), trigger.Delivery{ID: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

func TestDuplicatesAndBusy(t *testing.T) {
	release := make(chan struct{})
	q := NewMemory(1, 1, func(context.Context, []trigger.Delivery) { <-release }, slog.New(slog.DiscardHandler))
	defer func() { close(release); _ = q.Close(context.Background()) }()
	if err := q.Accept(context.Background(), trigger.Delivery{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Accept(context.Background(), trigger.Delivery{ID: "1"}); !errors.Is(err, githubhook.ErrDuplicate) {
		t.Errorf("duplicate: %v", err)
	}
	// One is being processed (blocked), one waits, the next is refused.
	var busy bool
	for i := range 5 {
		if err := q.Accept(context.Background(), trigger.Delivery{ID: string(rune('b' + i))}); errors.Is(err, githubhook.ErrBusy) {
			busy = true
		}
	}
	if !busy {
		t.Error("a full queue never answered ErrBusy")
	}
}

func TestCloseDeadline(t *testing.T) {
	q := NewMemory(10, 1, func(ctx context.Context, _ []trigger.Delivery) { <-ctx.Done() }, slog.New(slog.DiscardHandler))
	_ = q.Accept(context.Background(), trigger.Delivery{ID: "stuck"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := q.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close past its deadline: %v", err)
	}
}

func TestRecentForgetsOldest(t *testing.T) {
	r := newRecent(2)
	r.add("a")
	r.add("b")
	r.add("c")
	if r.has("a") || !r.has("b") || !r.has("c") {
		t.Errorf("recent: %v", r.ids)
	}
}
