package deliveries

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"sync"

	"github.com/riverqueue/river/riverdriver"
)

// A job inserted in a transaction is announced to River's producers only
// through the database: a notification written with it, which SQLite's
// listener polls for every 50 ms, and which PostgreSQL's NOTIFY sends at
// most once per queue per FetchCooldown. Otherwise the job waits for the
// next FetchPollInterval. At either hop (commit → evaluation, evaluation
// → start) that was most of push to start (BENCHMARKS.md, "Push to
// start"). So once a transaction that queued jobs has committed, the
// queue hands this process's producers the same notification itself:
// they fetch the job from the database right away, and it stays the one
// durable record, worked once. Other processes still get River's own
// notification.

// wakingDriver is River's driver with a listener that wake interrupts.
type wakingDriver struct {
	riverdriver.Driver[*sql.Tx]
	w *waker
}

func (d wakingDriver) GetListener(params *riverdriver.GetListenenerParams) riverdriver.Listener {
	return &wakingListener{Listener: d.Driver.GetListener(params), w: d.w}
}

// waker holds the queues woken and not yet told to the listener.
type waker struct {
	mu     sync.Mutex
	queues []string
	signal chan struct{} // one pending signal at most
}

func newWaker() *waker { return &waker{signal: make(chan struct{}, 1)} }

// wake tells this process's producer of queue to fetch now: call it after
// the commit of the jobs, never inside their transaction (the fetch would
// not see them).
func (w *waker) wake(queue string) {
	w.mu.Lock()
	if !slices.Contains(w.queues, queue) {
		w.queues = append(w.queues, queue)
	}
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// next is the notification of a woken queue, as River's insert
// notifications are.
func (w *waker) next() *riverdriver.Notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queues) == 0 {
		return nil
	}
	queue := w.queues[0]
	w.queues = w.queues[1:]
	return &riverdriver.Notification{Topic: "river_insert", Payload: `{"queue":` + strconv.Quote(queue) + `}`}
}

// wakingListener is the driver's listener, whose wait a wake interrupts.
// River's notifier calls WaitForNotification from one goroutine at a time.
type wakingListener struct {
	riverdriver.Listener
	w *waker
	// held arrived from the database as a wake interrupted the wait: it is
	// returned by the next call.
	held *riverdriver.Notification
}

type notified struct {
	n   *riverdriver.Notification
	err error
}

func (l *wakingListener) WaitForNotification(ctx context.Context) (*riverdriver.Notification, error) {
	for {
		if n := l.held; n != nil {
			l.held = nil
			return n, nil
		}
		if n := l.w.next(); n != nil {
			return n, nil
		}
		inner, cancel := context.WithCancel(ctx)
		done := make(chan notified, 1)
		go func() {
			n, err := l.Listener.WaitForNotification(inner)
			done <- notified{n, err}
		}()
		select {
		case got := <-done:
			cancel()
			return got.n, got.err
		case <-l.w.signal:
			cancel()
			got := <-done
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case got.err == nil:
				l.held = got.n
			case !errors.Is(got.err, context.Canceled):
				// The connection's: the notifier reconnects on it, and
				// the wake is told after.
				return nil, got.err
			}
		}
	}
}
