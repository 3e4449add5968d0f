package persister

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/causeway/causeway/internal/bus"
)

// BusQueue adapts a bus.Consumer to Queue. Build the consumer with
// Config.Prefetch as its prefetch.
type BusQueue struct {
	c   *bus.Consumer
	out chan Message
}

// NewBusQueue wraps c.
func NewBusQueue(c *bus.Consumer) *BusQueue {
	return &BusQueue{c: c, out: make(chan Message)}
}

// ConsumerConfig returns the bus consumer configuration for cfg: the
// persist queue with cfg's prefetch, dead-letter publishes bounded by its
// publish timeout.
func ConsumerConfig(cfg Config, conn bus.Conn) bus.ConsumerConfig {
	cfg.setDefaults()
	return bus.ConsumerConfig{Conn: conn, Queue: bus.PersistQueue, Prefetch: cfg.Prefetch, DeadLetterTimeout: cfg.PublishTimeout}
}

// busMessage is a bus.Delivery as a Message.
type busMessage struct{ d bus.Delivery }

func (m busMessage) Body() []byte { return m.d.Body() }

func (m busMessage) RecordedAt() (time.Time, bool, error) { return m.d.RecordedAt() }

func (m busMessage) PublishedAt() time.Time { return m.d.PublishedAt() }

func (m busMessage) Ack(multiple bool) error { return staleErr(m.d.Ack(multiple)) }

func (m busMessage) Channel() any { return m.d.Channel() }

func (m busMessage) ChannelOpened() time.Time { return m.d.ChannelOpened() }

func (m busMessage) Stale() bool { return m.d.Stale() }

func staleErr(err error) error {
	if err != nil && errors.Is(err, bus.ErrStaleDelivery) {
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	return err
}

// Run runs the consumer and forwards its deliveries until ctx ends.
func (q *BusQueue) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(q.out)
		for d := range q.c.Deliveries() {
			select {
			case q.out <- busMessage{d}:
			case <-ctx.Done():
				// Keep draining until the consumer closes its stream.
			}
		}
	}()
	err := q.c.Run(ctx)
	<-done
	return err
}

// Messages implements Queue.
func (q *BusQueue) Messages() <-chan Message { return q.out }

// Pause implements Queue (bus.Consumer.Pause): the consumer's channel is
// closed, which hands its unacked deliveries back to the queue in order,
// and none is opened until Resume.
func (q *BusQueue) Pause(ctx context.Context) error { return q.c.Pause(ctx) }

// Resume implements Queue.
func (q *BusQueue) Resume() { q.c.Resume() }

// DeadLetter publishes m to the dead-letter queue with reason. If that
// fails on a live channel, it rejects m without requeue, which makes the
// broker dead-letter it (x-death reason "rejected", without the reason
// header) — the message is never dropped and never blocks the queue.
func (q *BusQueue) DeadLetter(ctx context.Context, m Message, reason string) error {
	bm, ok := m.(busMessage)
	if !ok {
		return fmt.Errorf("dead-letter: %T is not a bus delivery", m)
	}
	err := q.c.DeadLetter(ctx, bm.d, reason)
	if err == nil || errors.Is(err, bus.ErrStaleDelivery) {
		return staleErr(err)
	}
	if nerr := bm.d.Nack(false, false); nerr != nil {
		return staleErr(fmt.Errorf("%w; reject: %w", err, nerr))
	}
	return nil
}
