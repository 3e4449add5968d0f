package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
)

// TestConsumerPauseReturnsDeliveriesAndResumes: Pause ends the consumer
// and hands back every delivery of its channel not acked (read, or still
// in its prefetch window, some of them in flight), so the queue holds
// them again, ahead of later messages and in their order, each counted
// once more (x-delivery-count 1). While paused nothing is delivered, not
// even after a reconnect; after Resume the consumer gets them again on a
// new channel, then the rest.
func TestConsumerPauseReturnsDeliveriesAndResumes(t *testing.T) {
	u := bustest.VHost(t)
	p := newTestPublisher(t, u, "", nil)
	pr := start(t, p.Run)
	publish := func(from, to int) {
		t.Helper()
		var evs []event.Event
		for i := from; i < to; i++ {
			evs = append(evs, testEvent(i))
		}
		if err := p.Publish(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
		waitEmpty(t, p, 30*time.Second)
	}
	publish(0, 10)

	c, err := NewConsumer(ConsumerConfig{Conn: fastConn(u), Prefetch: 6}, Deps{Logger: testLogger(t)})
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
	noDelivery := func(what string, within time.Duration) {
		t.Helper()
		select {
		case d := <-c.Deliveries():
			t.Fatalf("%s: got delivery %s", what, d.MessageID())
		case <-time.After(within):
		}
	}
	// Prefetch 6: 0..5 delivered, 0..3 read. Two acked, which lets the
	// broker deliver 6 and 7 (in flight when Pause closes the channel).
	var held []Delivery
	for i := range 4 {
		d := next()
		if d.MessageID() != testEvent(i).EventID {
			t.Fatalf("delivery %d = %s; want %s", i, d.MessageID(), testEvent(i).EventID)
		}
		held = append(held, d)
	}
	if err := held[1].Ack(true); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range held[2:] {
		if !d.Stale() {
			t.Errorf("delivery %s not stale after Pause", d.MessageID())
		}
		if err := d.Ack(false); !errors.Is(err, ErrStaleDelivery) {
			t.Errorf("ack of %s after Pause = %v; want ErrStaleDelivery", d.MessageID(), err)
		}
	}
	waitPaused(t, u, 8, "after Pause (all but the two acked)")
	if err := c.Pause(ctx); err != nil {
		t.Fatalf("Pause again: %v", err)
	}
	publish(10, 12)
	closeConnections(t, u) // a reconnect while paused consumes nothing either
	waitPaused(t, u, 10, "paused across a reconnect")
	noDelivery("paused", 2*time.Second)
	waitPaused(t, u, 10, "paused across a reconnect, two seconds on")

	resumed := time.Now()
	c.Resume()
	for i := 2; i < 12; i++ {
		d := next()
		if d.MessageID() != testEvent(i).EventID {
			t.Fatalf("after Resume: delivery %s; want %s (the returned ones first, in order)", d.MessageID(), testEvent(i).EventID)
		}
		if d.Channel() == held[0].Channel() {
			t.Errorf("delivery %s after Resume on the paused channel", d.MessageID())
		}
		// The channel opened after the Resume (a persister dates its
		// deliveries from then: persister.deliveries).
		if at := d.ChannelOpened(); at.Before(resumed) || !at.After(held[0].ChannelOpened()) {
			t.Errorf("delivery %s after Resume: ChannelOpened %v; want after the Resume, %v", d.MessageID(), at, resumed)
		}
		want := int64(0) // 8..11 were never delivered before
		if i < 8 {
			want = 1 // 2..7 were handed back once
		}
		if got := deliveryCount(*d.m); got != want {
			t.Errorf("x-delivery-count of %s = %d; want %d", d.MessageID(), got, want)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	var m dto.Metric
	if err := c.deliveryCount.Write(&m); err != nil {
		t.Fatal(err)
	}
	// Read before the pause: 0..3 (4 maybe), none redelivered; after it
	// 2..11, six of them redelivered once.
	if h := m.GetHistogram(); h.GetSampleSum() != 6 {
		t.Errorf("delivery count histogram: %d samples, sum %v; want the sum 6 (six redeliveries)", h.GetSampleCount(), h.GetSampleSum())
	}
	pr.stop(t)
}

// waitPaused waits until PersistQueue holds ready messages and has no
// consumer.
func waitPaused(t testing.TB, u string, ready int, what string) {
	t.Helper()
	ch := amqpChannel(t, u)
	deadline := time.Now().Add(30 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(PersistQueue, true, false, false, false, nil)
		if err != nil {
			t.Fatalf("inspect %s: %v", PersistQueue, err)
		}
		if q.Messages == ready && q.Consumers == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d ready, %d consumers; want %d, 0", what, q.Messages, q.Consumers, ready)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
