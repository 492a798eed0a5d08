package deliveries

import (
	"context"
	"errors"
	"testing"

	"github.com/riverqueue/river/riverdriver"
)

// dbListener stands for the database's listener: it waits for its
// context, then answers with what a notification that arrived just then
// would be (n, or the context's error when n is nil).
type dbListener struct {
	riverdriver.Listener
	n       *riverdriver.Notification
	waiting chan struct{} // told when a wait begins, if not nil
}

func (l *dbListener) WaitForNotification(ctx context.Context) (*riverdriver.Notification, error) {
	if l.waiting != nil {
		l.waiting <- struct{}{}
	}
	<-ctx.Done()
	if l.n != nil {
		n := l.n
		l.n = nil
		return n, nil
	}
	return nil, ctx.Err()
}

func TestWakeInterruptsTheWait(t *testing.T) {
	w := newWaker()
	l := &wakingListener{Listener: &dbListener{}, w: w}
	w.wake(startQueue)
	n, err := l.WaitForNotification(context.Background())
	if err != nil || n.Topic != "river_insert" || n.Payload != `{"queue":"monohook_start"}` {
		t.Fatalf("got %+v, %v; want the insert notification of %s", n, err, startQueue)
	}
}

// A notification from the database that arrives as a wake interrupts the
// wait is not lost: it comes first, the wake after.
func TestNotificationArrivingWithAWakeIsKept(t *testing.T) {
	w := newWaker()
	other := &riverdriver.Notification{Topic: "river_leadership", Payload: "{}"}
	db := &dbListener{n: other, waiting: make(chan struct{}, 1)}
	l := &wakingListener{Listener: db, w: w}
	go func() {
		<-db.waiting
		w.wake(evaluateQueue)
	}()
	var got []string
	for range 2 {
		n, err := l.WaitForNotification(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n.Topic+" "+n.Payload)
	}
	if got[0] != "river_leadership {}" || got[1] != `river_insert {"queue":"monohook_evaluate"}` {
		t.Fatalf("got %q", got)
	}
}

func TestWakesOfAQueueAreOne(t *testing.T) {
	w := newWaker()
	w.wake(evaluateQueue)
	w.wake(startQueue)
	w.wake(evaluateQueue)
	var got []string
	for n := w.next(); n != nil; n = w.next() {
		got = append(got, n.Payload)
	}
	if len(got) != 2 || got[0] != `{"queue":"monohook_evaluate"}` || got[1] != `{"queue":"monohook_start"}` {
		t.Fatalf("got %q", got)
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	l := &wakingListener{Listener: &dbListener{}, w: newWaker()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.WaitForNotification(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
