package bus

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/clip"
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
	// ReasonHeader carries why a message was dead-lettered by DeadLetter,
	// clipped to MaxReasonBytes (a header must fit in one AMQP frame).
	ReasonHeader = "x-causeway-reason"
	// MaxReasonBytes bounds the text of ReasonHeader.
	MaxReasonBytes = 1024
	// RecordedAtHeader carries, on an event re-published by a replay, the
	// recorded_at (RFC 3339) of its record in the log replayed.
	RecordedAtHeader = "x-causeway-recorded-at"
	// DeliveryLimit is how often PersistQueue redelivers one message before
	// the broker dead-letters it (reason "delivery_limit" in x-death), so a
	// message that crashes its consumer cannot loop forever.
	DeliveryLimit = 100
)

// MaxRoutingKey is the longest routing key AMQP carries, in bytes.
const MaxRoutingKey = 255

// RoutingKey is the routing key of an event of the given source and kind,
// clipped to MaxRoutingKey (input sources fit, event.MaxSourceLen; a
// stored event re-published may not).
func RoutingKey(source, kind string) string { return clip.String(source+"."+kind, MaxRoutingKey) }

// DeclareDeadLetters declares only DeadLetterExchange and DeadLetterQueue
// on ch: what a consumer of another system's broker (the OpenStack
// listener's) needs to dead-letter there. It is idempotent.
func DeclareDeadLetters(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(DeadLetterExchange, amqp.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", DeadLetterExchange, err)
	}
	return declareBound(ch, DeadLetterQueue, DeadLetterExchange, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
}

// persistQueueArgs are PersistQueue's arguments, but for the single active
// consumer (see DeclareTopology).
func persistQueueArgs() amqp.Table {
	return amqp.Table{
		amqp.QueueTypeArg:        amqp.QueueTypeQuorum,
		"x-dead-letter-exchange": DeadLetterExchange,
		"x-dead-letter-strategy": "at-least-once",
		amqp.QueueOverflowArg:    amqp.QueueOverflowRejectPublish,
		"x-delivery-limit":       int64(DeliveryLimit),
	}
}

// Topology is what DeclareTopology found.
type Topology struct {
	// SingleActive says that PersistQueue hands its messages to one
	// consumer at a time. A queue declared before Causeway asked for that
	// keeps its arguments (the broker refuses to change them): there,
	// several persisters consume at once, and the events of one source can
	// be committed out of the order it published them in.
	SingleActive bool
}

// DeclareTopology declares the exchanges and queues of the package doc on
// channels of its own over conn. It is idempotent: declaring an existing,
// identical topology is a no-op on the broker.
//
// PersistQueue has a single active consumer: extra persisters are hot
// standbys, and the broker hands a new one the messages the previous one
// left unacked before any later one, so the log keeps each producer's
// order. A PersistQueue that exists without it is used as it is
// (Topology.SingleActive false); see the README's upgrade notes.
func DeclareTopology(conn *amqp.Connection) (Topology, error) {
	err := withChannel(conn, func(ch *amqp.Channel) error {
		for _, x := range []struct{ name, kind string }{
			{EventsExchange, amqp.ExchangeTopic},
			{DeadLetterExchange, amqp.ExchangeFanout},
			{SequencedExchange, amqp.ExchangeFanout},
		} {
			if err := ch.ExchangeDeclare(x.name, x.kind, true, false, false, false, nil); err != nil {
				return fmt.Errorf("declare exchange %s: %w", x.name, err)
			}
		}
		return declareBound(ch, DeadLetterQueue, DeadLetterExchange, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
	})
	if err != nil {
		return Topology{}, err
	}
	args := persistQueueArgs()
	args[amqp.SingleActiveConsumerArg] = true
	err = withChannel(conn, func(ch *amqp.Channel) error { return declareBound(ch, PersistQueue, EventsExchange, args) })
	if ae := (*amqp.Error)(nil); !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
		return Topology{SingleActive: err == nil}, err
	}
	// It exists with other arguments (the broker closed that channel): a
	// queue of an earlier release, to be used as it is, bindings included.
	// It is not bound again: the release that declared it bound it, and
	// RecreatePersistQueue unbinds it so that what producers publish while
	// it waits for the queue to empty comes back to their spools; a
	// component connecting meanwhile (a producer reconnects after every
	// return) would otherwise bind it again, and the events it published
	// would be confirmed into the queue about to be deleted.
	return Topology{}, withChannel(conn, func(ch *amqp.Channel) error {
		if _, err := ch.QueueDeclare(PersistQueue, true, false, false, false, persistQueueArgs()); err != nil {
			return fmt.Errorf("declare queue %s: %w", PersistQueue, err)
		}
		return nil
	})
}

// declareBound declares queue q with args and binds it to exchange x with
// every routing key.
func declareBound(ch *amqp.Channel, q, x string, args amqp.Table) error {
	if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s: %w", q, err)
	}
	if err := ch.QueueBind(q, "#", x, false, nil); err != nil {
		return fmt.Errorf("bind queue %s to %s: %w", q, x, err)
	}
	return nil
}
