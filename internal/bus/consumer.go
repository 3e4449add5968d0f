package bus

import (
	"context"
	"errors"
)

// ErrStaleDelivery means a Delivery came from a broker channel that has
// since closed (the connection was lost): it can no longer be acked, and the
// broker redelivers it on the new channel. Callers drop it and move on.
var ErrStaleDelivery = errors.New("bus: delivery from a closed channel")

// Consumer consumes one queue (PersistQueue by default) with a prefetch
// window, reconnecting with backoff. Deliveries arrive on Deliveries in
// broker order; after a reconnect, unacked deliveries of the old channel are
// redelivered by the broker (Redelivered true) and acking the old values
// fails harmlessly with ErrStaleDelivery.
type Consumer struct {
	// fields in the implementation
}

// NewConsumer validates cfg. It starts nothing.
func NewConsumer(cfg ConsumerConfig, deps Deps) (*Consumer, error) { panic("bus: not implemented yet") }

// Run consumes until ctx ends and returns nil then. Deliveries is closed
// when Run returns.
func (c *Consumer) Run(ctx context.Context) error { panic("bus: not implemented yet") }

// Deliveries is the stream of deliveries. The caller must keep reading it
// while Run runs; at most Prefetch deliveries are unacked at a time, so it
// must also ack (or nack, or dead-letter) what it reads.
func (c *Consumer) Deliveries() <-chan Delivery { panic("bus: not implemented yet") }

// DeadLetter publishes d's message to DeadLetterExchange with header
// ReasonHeader = reason, waits for the broker's confirm, then acks d. The
// reason is thus kept next to the message in DeadLetterQueue. It fails with
// ErrStaleDelivery (publishing nothing) when d's channel has closed: the
// broker redelivers d and the caller dead-letters it again then.
func (c *Consumer) DeadLetter(ctx context.Context, d Delivery, reason string) error {
	panic("bus: not implemented yet")
}

// Delivery is one message handed out by a Consumer. It is a small value,
// safe to copy; its methods may be called from any goroutine.
type Delivery struct {
	// fields in the implementation
}

// Body is the message body (for events, event.Encode's output).
func (d Delivery) Body() []byte { panic("bus: not implemented yet") }

// MessageID is the AMQP message-id (for events, the event_id).
func (d Delivery) MessageID() string { panic("bus: not implemented yet") }

// RoutingKey is the routing key the message was published with.
func (d Delivery) RoutingKey() string { panic("bus: not implemented yet") }

// Redelivered reports that the broker delivered this message before, to
// this or another consumer, without an ack.
func (d Delivery) Redelivered() bool { panic("bus: not implemented yet") }

// Tag is the delivery tag, increasing along the stream of one channel.
func (d Delivery) Tag() uint64 { panic("bus: not implemented yet") }

// Reason is the ReasonHeader of a message dead-lettered by DeadLetter, or
// the broker's reason ("rejected", "delivery_limit") for one it dead-lettered
// itself; "" otherwise.
func (d Delivery) Reason() string { panic("bus: not implemented yet") }

// Ack acknowledges d; with multiple, also every unacked delivery of the same
// channel before it, so a batch is acked with one call on its last delivery.
// It returns ErrStaleDelivery after a reconnect.
func (d Delivery) Ack(multiple bool) error { panic("bus: not implemented yet") }

// Nack rejects d (with multiple, and the unacked deliveries before it). With
// requeue the broker delivers it again; without, the broker dead-letters it
// to DeadLetterQueue (reason "rejected"). Prefer DeadLetter, which keeps a
// reason. It returns ErrStaleDelivery after a reconnect.
func (d Delivery) Nack(multiple, requeue bool) error { panic("bus: not implemented yet") }
