package bus

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/bus/bustest"
)

// sayings collects what RecreatePersistQueue says.
type sayings struct {
	mu  sync.Mutex
	all []string
}

func (s *sayings) say(m string) { s.mu.Lock(); s.all = append(s.all, m); s.mu.Unlock() }

func (s *sayings) saw(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.all {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// legacyPersistQueue declares PersistQueue as an earlier release did
// (without a single active consumer), bound, with n messages in it.
func legacyPersistQueue(t *testing.T, u string, n int) *amqp.Channel {
	t.Helper()
	conn := bustest.Conn(t, u)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(EventsExchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(DeadLetterExchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := declareBound(ch, PersistQueue, EventsExchange, persistQueueArgs()); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), EventsExchange, "s.tick", true, false,
			amqp.Publishing{MessageId: string(rune('a' + i)), Body: []byte("x")})
		if err != nil || !c.Wait() {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	return ch
}

// TestRecreatePersistQueue: an earlier release's persist queue is given
// its single active consumer without losing a message: it waits for the
// persisters to empty it and stop, and what is published meanwhile is
// returned to its producer (kept in its spool), not lost in a queue that
// is about to go.
func TestRecreatePersistQueue(t *testing.T) {
	u := bustest.VHost(t)
	ch := legacyPersistQueue(t, u, 5)
	var s sayings
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { done <- RecreatePersistQueue(ctx, u, 20*time.Millisecond, s.say) }()

	// No persister runs: it asks for one, which then empties the queue.
	waitFor(t, func() bool { return s.saw("no persister to empty the queue") })
	msgs, err := ch.Consume(PersistQueue, "persister", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		m := <-msgs
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	// Published meanwhile: unroutable, so returned to the producer.
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	if err := ch.PublishWithContext(ctx, EventsExchange, "s.tick", true, false, amqp.Publishing{MessageId: "late", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-returns:
		if r.MessageId != "late" {
			t.Errorf("returned %q", r.MessageId)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a message published while the queue is unbound was not returned")
	}
	waitFor(t, func() bool { return s.saw("stop every persister") })
	if err := ch.Cancel("persister", false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("recreate: %v (said %q)", err, s.all)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("recreate did not end; said %q", s.all)
	}
	topo, err := DeclareTopology(bustest.Conn(t, u))
	if err != nil || !topo.SingleActive {
		t.Fatalf("after recreate: %+v, %v; want the single active consumer", topo, err)
	}
	if queueDepth(t, u, PersistQueue) != 0 || !s.saw("start the persisters") {
		t.Errorf("said %q", s.all)
	}
}

// TestRecreatePersistQueueGivesUpBoundAgain: messages back in the queue
// when the persisters stopped (unacked then) stop the recreation, and the
// queue is bound again, so producers carry on.
func TestRecreatePersistQueueGivesUpBoundAgain(t *testing.T) {
	u := bustest.VHost(t)
	conn := bustest.Conn(t, u)
	pc, err := conn.Channel() // the "persister"'s channel
	if err != nil {
		t.Fatal(err)
	}
	legacyPersistQueue(t, u, 2)
	msgs, err := pc.Consume(PersistQueue, "persister", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-msgs
	<-msgs // both held unacked
	var s sayings
	done := make(chan error, 1)
	go func() { done <- RecreatePersistQueue(context.Background(), u, 20*time.Millisecond, s.say) }()
	waitFor(t, func() bool { return s.saw("stop every persister") })
	_ = pc.Close() // the persister stops: its two come back
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "2 messages are back") {
			t.Fatalf("recreate = %v; want it to give up on the 2 messages back", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("recreate did not end")
	}
	if !s.saw("bound") || queueDepth(t, u, PersistQueue) != 2 {
		t.Fatalf("said %q; depth %d", s.all, queueDepth(t, u, PersistQueue))
	}
	topo, err := DeclareTopology(bustest.Conn(t, u))
	if err != nil || topo.SingleActive {
		t.Fatalf("after giving up: %+v, %v; want the earlier queue kept", topo, err)
	}
	// Bound again: a publish is routed, not returned.
	ch := legacyPersistQueue(t, u, 1)
	_ = ch
	waitFor(t, func() bool { return queueDepth(t, u, PersistQueue) == 3 })
}

// TestRecreatePersistQueueIsNotReboundByAProducer: while the earlier
// release's queue is unbound, a running Publisher's event comes back to
// it, and goes on coming back across the reconnect that the return
// causes (which declares the topology again): it stays in the spool until
// the recreated queue takes it, never confirmed into the queue about to
// be deleted.
func TestRecreatePersistQueueIsNotReboundByAProducer(t *testing.T) {
	u := bustest.VHost(t)
	legacyPersistQueue(t, u, 0)
	unbound, release := make(chan struct{}), make(chan struct{})
	var s sayings
	say := func(m string) {
		s.say(m)
		if strings.HasPrefix(m, "unbound") {
			close(unbound)
			<-release // recreate holds here, its queue unbound
		}
	}
	done := make(chan error, 1)
	go func() { done <- RecreatePersistQueue(context.Background(), u, 20*time.Millisecond, say) }()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	<-unbound

	p := newTestPublisher(t, u, "", nil)
	start(t, p.Run)
	if err := p.Publish(context.Background(), testEvent(1)); err != nil {
		t.Fatal(err)
	}
	// Returned once, the publisher reconnects and declares the topology
	// again; returned twice, that declaration left the queue unbound.
	deadline := time.Now().Add(20 * time.Second)
	for p.Returned() < 2 {
		if n, _ := p.Spooled(); n == 0 {
			t.Fatalf("the event was confirmed into %s while it was unbound for its recreation (returned %d times): declaring the topology bound it again",
				PersistQueue, p.Returned())
		}
		if time.Now().After(deadline) {
			t.Fatalf("returned %d times within 20s", p.Returned())
		}
		time.Sleep(time.Millisecond)
	}
	if d := queueDepth(t, u, PersistQueue); d != 0 {
		t.Fatalf("%d messages in the queue being recreated", d)
	}
	released = true
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("recreate: %v (said %q)", err, s.all)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("recreate did not end; said %q", s.all)
	}
	waitEmpty(t, p, 20*time.Second)
	if d := queueDepth(t, u, PersistQueue); d != 1 {
		t.Errorf("the recreated queue holds %d messages; want the event", d)
	}
}
