package bus

import (
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Names of the topology. They are part of the deployment contract: changing
// one strands messages in the old queue.
const (
	// EventsExchange is the topic exchange producers publish events to,
	// with routing key <source>.<kind> (RoutingKey).
	EventsExchange = "causeway.events"
	// PersistQueue is the quorum queue the persister consumes.
	PersistQueue = "causeway.persist"
	// DeadLetterExchange receives what PersistQueue dead-letters (rejected
	// without requeue, over DeliveryLimit) and what DeadLetter publishes.
	DeadLetterExchange = "causeway.dlx"
	// DeadLetterQueue keeps dead-lettered messages for `causeway dlq`.
	DeadLetterQueue = "causeway.persist.dlq"
	// SequencedExchange is the fanout exchange of sequenced batches.
	SequencedExchange = "causeway.sequenced"
	// ReasonHeader carries why a message was dead-lettered by DeadLetter.
	ReasonHeader = "x-causeway-reason"
	// RecordedAtHeader carries, on an event re-published by a replay, the
	// recorded_at (RFC 3339) of its record in the log replayed.
	RecordedAtHeader = "x-causeway-recorded-at"
	// DeliveryLimit is how often PersistQueue redelivers one message before
	// the broker dead-letters it (reason "delivery_limit" in x-death), so a
	// message that crashes its consumer cannot loop forever.
	DeliveryLimit = 100
)

// RoutingKey is the routing key of an event of the given source and kind.
func RoutingKey(source, kind string) string { return source + "." + kind }

// DeclareDeadLetters declares only DeadLetterExchange and DeadLetterQueue
// on ch: what a consumer of another system's broker (the OpenStack
// listener's) needs to dead-letter there. It is idempotent.
func DeclareDeadLetters(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(DeadLetterExchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", DeadLetterExchange, err)
	}
	if _, err := ch.QueueDeclare(DeadLetterQueue, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}); err != nil {
		return fmt.Errorf("declare queue %s: %w", DeadLetterQueue, err)
	}
	if err := ch.QueueBind(DeadLetterQueue, "#", DeadLetterExchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s to %s: %w", DeadLetterQueue, DeadLetterExchange, err)
	}
	return nil
}

// DeclareTopology declares the exchanges and queues of the package doc on
// ch. It is idempotent: declaring an existing, identical topology is a no-op
// on the broker. A queue that exists with other arguments makes the broker
// close ch with PRECONDITION_FAILED, returned here.
func DeclareTopology(ch *amqp.Channel) error {
	for _, x := range []struct{ name, kind string }{
		{EventsExchange, amqp.ExchangeTopic},
		{DeadLetterExchange, amqp.ExchangeFanout},
		{SequencedExchange, amqp.ExchangeFanout},
	} {
		if err := ch.ExchangeDeclare(x.name, x.kind, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", x.name, err)
		}
	}
	queues := []struct {
		name, exchange string
		args           amqp.Table
	}{
		{DeadLetterQueue, DeadLetterExchange, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}},
		{PersistQueue, EventsExchange, amqp.Table{
			amqp.QueueTypeArg:        amqp.QueueTypeQuorum,
			"x-dead-letter-exchange": DeadLetterExchange,
			"x-dead-letter-strategy": "at-least-once",
			amqp.QueueOverflowArg:    amqp.QueueOverflowRejectPublish,
			"x-delivery-limit":       int64(DeliveryLimit),
		}},
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			return fmt.Errorf("declare queue %s: %w", q.name, err)
		}
		if err := ch.QueueBind(q.name, "#", q.exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s: %w", q.name, q.exchange, err)
		}
	}
	return nil
}
