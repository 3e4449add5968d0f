package bus

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/event"
)

// fakeDLQ is a dead-letter queue of valid events behind a confirm-mode
// channel whose confirms never come (as on a connection the broker
// blocked); it records what requeue does with the messages.
type fakeDLQ struct {
	t       *testing.T
	mu      sync.Mutex
	queue   []amqp.Delivery
	gets    int
	acked   []uint64
	nacked  []uint64
	publish func() // run inside each publish, before it returns
}

func newFakeDLQ(t *testing.T, n int) *fakeDLQ {
	f := &fakeDLQ{t: t}
	for i := range n {
		body, err := event.Encode(testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		f.queue = append(f.queue, amqp.Delivery{Acknowledger: f, DeliveryTag: uint64(i + 1), MessageId: testEvent(i).EventID, RoutingKey: "api.entity.upsert", Body: body})
	}
	return f
}

func (f *fakeDLQ) Get(string, bool) (amqp.Delivery, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if len(f.queue) == 0 {
		return amqp.Delivery{}, false, nil
	}
	m := f.queue[0]
	f.queue = f.queue[1:]
	return m, true, nil
}

func (f *fakeDLQ) PublishWithDeferredConfirmWithContext(context.Context, string, string, bool, bool, amqp.Publishing) (*amqp.DeferredConfirmation, error) {
	if f.publish != nil {
		f.publish()
	}
	return &amqp.DeferredConfirmation{}, nil // never done
}

func (f *fakeDLQ) Ack(tag uint64, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = append(f.acked, tag)
	return nil
}

func (f *fakeDLQ) Nack(tag uint64, _, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nacked = append(f.nacked, tag)
	return nil
}

func (f *fakeDLQ) Reject(tag uint64, requeue bool) error { return f.Nack(tag, false, requeue) }

func (f *fakeDLQ) counts() (gets int, acked []uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, append([]uint64(nil), f.acked...)
}

// block sends a connection.blocked (active) or unblocked note and returns
// once w has taken it in.
func block(w *blockWatch, notes chan<- amqp.Blocking, active bool) {
	notes <- amqp.Blocking{Active: active, Reason: "low on memory"}
	for {
		a, changed := w.state()
		if (a != nil) == active {
			return
		}
		<-changed
	}
}

// expiredAt returns an after func whose first n waits never end and whose
// later ones end at once; each call is signalled on waiting.
func expiredAt(n int, waiting chan<- struct{}) func(time.Duration) <-chan time.Time {
	calls := 0
	return func(time.Duration) <-chan time.Time {
		calls++
		if waiting != nil {
			waiting <- struct{}{}
		}
		if calls <= n {
			return nil
		}
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
}

// TestRequeueBlockedBeforeConfirm: the broker blocks the connection after
// a dead letter was published and before its confirm; past the wait the
// requeue fails with ErrBlocked, and the message was not removed from the
// queue.
func TestRequeueBlockedBeforeConfirm(t *testing.T) {
	notes := make(chan amqp.Blocking)
	defer close(notes)
	f := newFakeDLQ(t, 2)
	w := &brokerWait{blocked: watchBlocked(notes), limit: time.Minute, after: expiredAt(1, nil)}
	f.publish = func() { block(w.blocked, notes, true) }
	moved, _, err := requeue(context.Background(), f, nil, w, 2, 10)
	if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "low on memory") {
		t.Fatalf("requeue: %v; want ErrBlocked with the broker's reason", err)
	}
	if gets, acked := f.counts(); len(moved) != 0 || len(acked) != 0 || gets != 1 {
		t.Errorf("%d moved, %d taken, acked %v; want the one taken left in the queue", len(moved), gets, acked)
	}
}

// TestRequeueWaitsOutABlock: while the broker blocks the connection no
// dead letter is taken; once it lifts the block the requeue goes on (here
// to a confirm that never comes: it fails, not blocked, removing nothing).
func TestRequeueWaitsOutABlock(t *testing.T) {
	notes := make(chan amqp.Blocking)
	defer close(notes)
	f := newFakeDLQ(t, 1)
	waiting := make(chan struct{}, 4)
	w := &brokerWait{blocked: watchBlocked(notes), limit: time.Minute, after: expiredAt(2, waiting)}
	block(w.blocked, notes, true)
	type result struct {
		moved []DeadLetter
		err   error
	}
	done := make(chan result, 1)
	go func() {
		moved, _, err := requeue(context.Background(), f, nil, w, 1, 10)
		done <- result{moved, err}
	}()
	<-waiting // waiting for the block to lift
	if gets, _ := f.counts(); gets != 0 {
		t.Fatalf("%d dead letters taken while the broker blocks the connection", gets)
	}
	block(w.blocked, notes, false)
	r := <-done
	if r.err == nil || errors.Is(r.err, ErrBlocked) || !strings.Contains(r.err.Error(), "no answer") {
		t.Fatalf("requeue: %v; want no confirm, and not blocked", r.err)
	}
	if gets, acked := f.counts(); len(r.moved) != 0 || len(acked) != 0 || gets != 1 {
		t.Errorf("%d moved, %d taken, acked %v; want the one taken left in the queue", len(r.moved), gets, acked)
	}
}

// TestRequeueBlockedTooLong: a block that does not lift within the wait
// stops the requeue before it takes anything.
func TestRequeueBlockedTooLong(t *testing.T) {
	notes := make(chan amqp.Blocking)
	defer close(notes)
	f := newFakeDLQ(t, 1)
	w := &brokerWait{blocked: watchBlocked(notes), limit: time.Minute, after: expiredAt(0, nil)}
	block(w.blocked, notes, true)
	_, _, err := requeue(context.Background(), f, nil, w, 1, 10)
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("requeue: %v; want ErrBlocked", err)
	}
	if gets, _ := f.counts(); gets != 0 {
		t.Errorf("%d dead letters taken while blocked", gets)
	}
}

// TestRequeuePublishStuck: a publish whose socket write does not return
// (a broker that stopped reading a blocked connection) is given up after
// the wait; the message is not removed.
func TestRequeuePublishStuck(t *testing.T) {
	notes := make(chan amqp.Blocking)
	defer close(notes)
	f := newFakeDLQ(t, 1)
	release := make(chan struct{})
	expire := make(chan time.Time)
	w := &brokerWait{blocked: watchBlocked(notes), limit: time.Minute, after: func(time.Duration) <-chan time.Time { return expire }}
	f.publish = func() {
		block(w.blocked, notes, true)
		close(expire)
		<-release
	}
	_, _, err := requeue(context.Background(), f, nil, w, 1, 10)
	close(release)
	if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "publish") {
		t.Fatalf("requeue: %v; want ErrBlocked in the publish", err)
	}
	if _, acked := f.counts(); len(acked) != 0 {
		t.Errorf("acked %v", acked)
	}
}
