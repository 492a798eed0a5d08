package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/monohook/monohook/internal/githubhook"
	"github.com/monohook/monohook/internal/trigger"
)

// ErrClosed is returned by Accept after Close.
var ErrClosed = errors.New("queue is shutting down")

// Memory is a bounded in-process queue with a fixed pool of workers. It
// keeps nothing across a restart: a delivery it accepted is processed
// unless the process dies first. A full queue refuses new deliveries
// (githubhook.ErrBusy, answered 503) rather than dropping them.
type Memory struct {
	ch      chan trigger.Delivery
	process func(context.Context, []trigger.Delivery)
	log     *slog.Logger

	mu     sync.RWMutex
	closed bool
	seen   recent

	workers sync.WaitGroup
	cancel  context.CancelFunc
}

// maxBatch bounds how many queued deliveries one worker takes at once.
const maxBatch = 256

// NewMemory starts workers goroutines. Each takes whatever is queued (up
// to 256 deliveries) and calls process with that batch, so the rules of a
// repository and branch are read once per batch however fast pushes come.
// size bounds the deliveries waiting.
func NewMemory(size, workers int, process func(context.Context, []trigger.Delivery), log *slog.Logger) *Memory {
	ctx, cancel := context.WithCancel(context.Background())
	q := &Memory{
		ch:      make(chan trigger.Delivery, size),
		process: process,
		log:     log,
		seen:    newRecent(100_000),
		cancel:  cancel,
	}
	for range workers {
		q.workers.Add(1)
		go func() {
			defer q.workers.Done()
			for d := range q.ch {
				batch := []trigger.Delivery{d}
			fill:
				for len(batch) < maxBatch {
					select {
					case next, ok := <-q.ch:
						if !ok {
							break fill
						}
						batch = append(batch, next)
					default:
						break fill
					}
				}
				q.process(ctx, batch)
			}
		}()
	}
	return q
}

// Accept queues d. A delivery id accepted before (among the last 100,000)
// returns githubhook.ErrDuplicate.
func (q *Memory) Accept(_ context.Context, d trigger.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.seen.has(d.ID) {
		return githubhook.ErrDuplicate
	}
	// Only the parsed push is needed from here on; dropping the raw payload
	// keeps a full queue small.
	d.Payload = nil
	select {
	case q.ch <- d:
		q.seen.add(d.ID)
		return nil
	default:
		return githubhook.ErrBusy
	}
}

// Close stops accepting and waits for the queued deliveries to be
// processed. When ctx ends first, the workers' context is cancelled (in-flight
// starts are abandoned) and Close returns ctx's error with the number of
// deliveries that were not processed logged.
func (q *Memory) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.workers.Wait(); close(done) }()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.log.Error("shutdown deadline passed with deliveries unprocessed", "waiting", len(q.ch))
		q.cancel()
		<-done
		return ctx.Err()
	}
}

// recent remembers the last n delivery ids.
type recent struct {
	ids  map[string]struct{}
	ring []string
	next int
}

func newRecent(n int) recent {
	return recent{ids: make(map[string]struct{}), ring: make([]string, n)}
}

func (r *recent) has(id string) bool { _, ok := r.ids[id]; return ok }

func (r *recent) add(id string) {
	if old := r.ring[r.next]; old != "" {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.ids[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}
