// Package bus is Causeway's RabbitMQ layer (amqp091-go): the topology, a
// confirmed publisher backed by a local disk spool, a reconnecting consumer,
// and the sequenced-batch stream that the processors follow.
//
// It keeps invariant 1 of DESIGN.md, "nothing accepted is lost":
//
//   - Publisher.Publish returns only once its events are fsynced to the local
//     spool (a bbolt file); a listener may answer 2xx, or a driver move on,
//     after that. A record leaves the spool only when the broker has
//     confirmed it (publisher confirms, mandatory flag: an unroutable message
//     is not a confirmed one). While the broker is away the spool grows, up to
//     its limits (ErrSpoolFull), and it drains in order when the broker
//     returns; then its file, which bbolt never shrinks, is compacted, so
//     the disk a long outage took is given back. A process killed with
//     SIGKILL re-sends its spool on restart: delivery is at least once, and
//     the persister dedups by event_id.
//   - Consumer hands out deliveries that the caller acks only after its own
//     work is durable; a delivery that cannot be processed is dead-lettered
//     with its reason (DeadLetter), never dropped.
//
// Topology (declared idempotently by every component on every connect):
//
//	causeway.events      topic exchange; routing key <source>.<kind>
//	  └─ causeway.persist  quorum queue, bound with "#", dead-letters to
//	causeway.dlx         fanout exchange
//	  └─ causeway.persist.dlq  quorum queue; reason in header x-causeway-reason
//	causeway.sequenced   fanout exchange of committed, sequenced batches;
//	                     each Subscriber binds its own exclusive queue
//
// amqp091-go does not reconnect by itself (its optional Recovery is not
// used): every component here owns one connection (a Consumer two: it
// dead-letters on its own, since a broker resource alarm blocks any
// connection that publishes, acks and deliveries included), re-dials it with
// exponential backoff and jitter, re-declares the topology and re-opens its
// channels after a broker restart. Every notification channel the library is
// given (NotifyClose, NotifyBlocked, NotifyReturn) is buffered and drained
// for the life of the connection, because an unconsumed one blocks the
// library's reader and deadlocks the client. Confirms are tracked with
// deferred confirmations, which need no listener.
//
// Components follow the house lifecycle: New(cfg, deps) validates and
// allocates, Run(ctx) blocks until ctx ends (nil on cancellation), and every
// goroutine is owned by Run. Metrics (causeway_bus_*, connection metrics as
// causeway_bus_<role>_*) are registered on Deps.Registerer; one component of
// each role, and one Consumer per queue (label "queue"), fit in one
// registry; more need prometheus.WrapRegistererWith on all of them.
package bus
