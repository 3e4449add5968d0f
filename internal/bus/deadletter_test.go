package bus

import (
	"context"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus/bustest"
)

// TestDeadLetterDeclaresADeletedQueueAgain: an operator deletes the
// dead-letter queue (to purge it) under a running consumer. Its
// dead-letter connection stays up, so nothing declared the queue again:
// every DeadLetter came back unroutable and failed, for as long as that
// connection lived, and the persister fell back to rejecting, which loses
// the reason. DeadLetter declares the queue again and publishes once more.
func TestDeadLetterDeclaresADeletedQueueAgain(t *testing.T) {
	u := bustest.VHost(t)
	p := newTestPublisher(t, u, "", nil)
	ctx := context.Background()
	if err := p.Publish(ctx, testEvent(0), testEvent(1)); err != nil {
		t.Fatal(err)
	}
	pr := start(t, p.Run)
	waitEmpty(t, p, 30*time.Second)
	pr.stop(t)

	c, err := NewConsumer(ConsumerConfig{Conn: fastConn(u)}, Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c.Run)
	next := func() Delivery {
		t.Helper()
		select {
		case d := <-c.Deliveries():
			return d
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery within 30s")
			return Delivery{}
		}
	}
	d0, d1 := next(), next()
	// Dead-lettered once, so the dead-letter connection is up.
	if err := c.DeadLetter(ctx, d0, "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := amqpChannel(t, u).QueueDelete(DeadLetterQueue, false, false, false); err != nil {
		t.Fatalf("delete %s: %v", DeadLetterQueue, err)
	}
	if err := c.DeadLetter(ctx, d1, "second"); err != nil {
		t.Fatalf("dead-letter after %s was deleted: %v", DeadLetterQueue, err)
	}
	dc, err := NewConsumer(ConsumerConfig{Conn: fastConn(u), Queue: DeadLetterQueue}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, dc.Run)
	select {
	case d := <-dc.Deliveries():
		if d.MessageID() != testEvent(1).EventID || d.Reason() != "second" {
			t.Fatalf("dead letter %s with reason %q, want %s with reason second", d.MessageID(), d.Reason(), testEvent(1).EventID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no dead letter within 30s")
	}
}
