package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/clip"
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
//
// DeadLetter publishes on a second connection. A broker under a resource
// alarm blocks every connection that publishes, and stops reading its
// socket: acks, rejects and the flow of deliveries would stop with it, so
// the consumer could not drain the queues whose backlog raised the alarm.
//
// Pause hands every unacked delivery back to the queue and stops
// consuming until Resume (see Pause).
type Consumer struct {
	cfg    ConsumerConfig
	log    *slog.Logger
	conn   *connector
	dlConn *connector
	// dl is the dead-letter connection's confirm channel, nil while it
	// is down.
	dl  current[*confirmChannel]
	out chan Delivery

	// mu guards the pause state: paused, resumed (closed by Resume,
	// replaced by Pause) and active, the session consuming now (nil
	// when none is).
	mu      sync.Mutex
	paused  bool
	resumed chan struct{}
	active  *consumerSession

	delivered     prometheus.Counter
	deadLettered  prometheus.Counter
	deliveryCount prometheus.Histogram
}

// consumerSession is the state of one broker channel consuming;
// Deliveries point to it.
type consumerSession struct {
	closed    chan struct{} // closed when the session ends
	pause     chan struct{} // closed by Pause
	pauseOnce sync.Once
	// opened is when the session began, before its channel opened: the
	// broker delivered each of its deliveries later.
	opened time.Time
}

func (s *consumerSession) stop() { s.pauseOnce.Do(func() { close(s.pause) }) }

// errPaused ends a session that Pause stopped.
var errPaused = errors.New("paused")

// NewConsumer validates cfg. It starts nothing.
func NewConsumer(cfg ConsumerConfig, deps Deps) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consumer config: %w", err)
	}
	deps = deps.withDefaults("bus.consumer")
	labels := prometheus.Labels{"queue": cfg.Queue}
	c := &Consumer{
		cfg: cfg, log: deps.Logger, out: make(chan Delivery),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_bus_consumer_delivered_total", ConstLabels: labels,
			Help: "Messages delivered by the broker (redeliveries included).",
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_bus_consumer_dead_lettered_total", ConstLabels: labels,
			Help: "Messages dead-lettered with a reason by DeadLetter.",
		}),
		deliveryCount: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causeway_bus_consumer_delivery_count", ConstLabels: labels,
			Help: "x-delivery-count of each delivery: how often a quorum queue had delivered the message before without an ack (0 the first time). " +
				"The persist queue dead-letters a message past its delivery limit.",
			Buckets: []float64{0, 1, 2, 5, 10, 20, 50, DeliveryLimit},
		}),
	}
	conn, err := newConnector(cfg.Conn, deps.Logger, "consumer", labels, deps.Registerer)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	if c.dlConn, err = newConnector(cfg.Conn, deps.Logger, "consumer_dead_letter", labels, deps.Registerer); err != nil {
		return nil, err
	}
	if err := register(deps.Registerer, c.delivered, c.deadLettered, c.deliveryCount); err != nil {
		return nil, err
	}
	return c, nil
}

// Run consumes until ctx ends and returns nil then. Deliveries is closed
// when Run returns. Call it once.
func (c *Consumer) Run(ctx context.Context) error {
	defer close(c.out)
	dlDone := make(chan struct{})
	go func() {
		defer close(dlDone)
		_ = c.dlConn.run(ctx, c.deadLetterSession)
	}()
	err := c.conn.run(ctx, c.session)
	<-dlDone
	return err
}

// deadLetterSession keeps the confirm channel DeadLetter publishes on
// until the connection or the channel closes.
func (c *Consumer) deadLetterSession(ctx context.Context, conn *amqp.Connection) error {
	cc, err := newConfirmChannel(conn)
	if err != nil {
		return err
	}
	if err := DeclareDeadLetters(cc.ch); err != nil {
		return err
	}
	closed := cc.ch.NotifyClose(make(chan *amqp.Error, 1))
	c.dl.set(cc)
	defer c.dl.set(nil)
	c.dlConn.connected.Set(1)
	select {
	case <-ctx.Done():
		return nil
	case e := <-closed:
		return fmt.Errorf("dead-letter channel closed: %w", channelErr(e))
	}
}

// Deliveries is the stream of deliveries. The caller must keep reading it
// while Run runs; at most Prefetch deliveries are unacked at a time, so it
// must also ack (or nack, or dead-letter) what it reads.
func (c *Consumer) Deliveries() <-chan Delivery { return c.out }

func (c *Consumer) session(ctx context.Context, conn *amqp.Connection) error {
	if c.cfg.DeadLettersOnly {
		if err := withChannel(conn, DeclareDeadLetters); err != nil {
			return err
		}
	} else {
		topo, err := DeclareTopology(conn)
		if err != nil {
			return err
		}
		if !topo.SingleActive && c.cfg.Queue == PersistQueue {
			c.log.Warn("the persist queue predates its single active consumer: run one persister only, or recreate it with `causeway persist-queue recreate` (README, Upgrades)",
				"queue", PersistQueue)
		}
	}
	c.conn.connected.Set(1)
	for {
		s, err := c.begin(ctx)
		if err != nil {
			return err
		}
		if err := c.consume(ctx, conn, s); !errors.Is(err, errPaused) {
			return err
		}
	}
}

// begin waits while the consumer is paused, then registers and returns
// the session to consume with. It fails when ctx ends first (the
// connection closed, or Run's end).
func (c *Consumer) begin(ctx context.Context) (*consumerSession, error) {
	for {
		c.mu.Lock()
		if !c.paused {
			s := &consumerSession{closed: make(chan struct{}), pause: make(chan struct{}), opened: time.Now()}
			c.active = s
			c.mu.Unlock()
			return s, nil
		}
		resumed := c.resumed
		c.mu.Unlock()
		select {
		case <-resumed:
		case <-ctx.Done():
			return nil, fmt.Errorf("paused: %w", context.Cause(ctx))
		}
	}
}

// consume opens a channel and hands out its deliveries until ctx ends
// (nil), the channel fails (an error), or Pause stops it (errPaused,
// once its unacked deliveries are back in the queue). s's deliveries are
// stale from then on.
func (c *Consumer) consume(ctx context.Context, conn *amqp.Connection, s *consumerSession) error {
	defer func() {
		c.mu.Lock()
		if c.active == s {
			c.active = nil
		}
		c.mu.Unlock()
		close(s.closed)
	}()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch: %w", err)
	}
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	cancels := ch.NotifyCancel(make(chan string, 1))
	msgs, err := ch.Consume(c.cfg.Queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.cfg.Queue, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.pause:
			return c.release(ch)
		case e := <-chClosed:
			return fmt.Errorf("channel closed: %w", channelErr(e))
		case <-cancels:
			return fmt.Errorf("broker cancelled the consumer of %s (queue deleted?)", c.cfg.Queue)
		case m, ok := <-msgs:
			if !ok {
				return fmt.Errorf("delivery stream of %s ended", c.cfg.Queue)
			}
			c.delivered.Inc()
			c.deliveryCount.Observe(float64(deliveryCount(m)))
			select {
			case c.out <- Delivery{m: &m, s: s}:
			case <-s.pause:
				return c.release(ch)
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// release closes ch, which ends its consumer, so that the broker
// delivers nothing more on it, and hands every delivery of ch not acked
// back to the queue, where a quorum queue puts them ahead of the rest, in
// the order they were delivered (measured on RabbitMQ 3.10: a basic.cancel
// first, alone or followed by a nack of them all, returns deliveries the
// broker had in flight ahead of earlier ones). A failure closes the
// connection instead (the error ends the session), which returns them
// too.
func (c *Consumer) release(ch *amqp.Channel) error {
	if err := ch.Close(); err != nil {
		return fmt.Errorf("pause: close the channel consuming %s: %w", c.cfg.Queue, err)
	}
	c.log.Info("consumer paused: its unacked deliveries are back in the queue", "queue", c.cfg.Queue)
	return errPaused
}

// deliveryCount is how often a quorum queue delivered m before without
// an ack: its x-delivery-count header, or its x-acquired-count when that
// is larger (0 when both are absent: a first delivery, or a queue that
// does not count). RabbitMQ 3.x counts every return in x-delivery-count;
// 4.3 and later count only failed deliveries there (a reject with
// requeue, a channel or connection closed with the message unacked) and
// every one in x-acquired-count.
func deliveryCount(m amqp.Delivery) int64 {
	return max(intHeader(m.Headers, "x-delivery-count"), intHeader(m.Headers, "x-acquired-count"))
}

func intHeader(h amqp.Table, name string) int64 {
	switch v := h[name].(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int16:
		return int64(v)
	case int8:
		return int64(v)
	case int:
		return int64(v)
	}
	return 0
}

// Pause stops the consumer: it closes its channel, which ends its broker
// consumer, so that nothing more is delivered to it, and hands every
// delivery of the channel that is not acked (handed out, or still in the
// prefetch window) back to the queue, in order, to be delivered again (to
// it after Resume, or to another consumer of the queue meanwhile). It
// returns once that is done, or when ctx ends; the deliveries handed out
// before are stale from then on (Stale; their Ack fails with
// ErrStaleDelivery). Until Resume, the consumer opens no channel, also
// after a reconnect. Pausing a paused consumer does nothing.
//
// A caller that cannot finish its work for a long time (its database is
// down) pauses rather than hold its deliveries: a broker closes the
// channel of a consumer that holds a delivery unacked past its
// consumer_timeout, and a quorum queue counts each such redelivery toward
// its delivery limit.
func (c *Consumer) Pause(ctx context.Context) error {
	c.mu.Lock()
	if !c.paused {
		c.paused = true
		c.resumed = make(chan struct{})
	}
	s := c.active
	c.mu.Unlock()
	if s == nil {
		return nil // no channel open: the broker has every unacked delivery back
	}
	s.stop()
	select {
	case <-s.closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pause the consumer of %s: %w", c.cfg.Queue, ctx.Err())
	}
}

// Resume makes a paused consumer consume again, on a new channel.
func (c *Consumer) Resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		c.paused = false
		close(c.resumed)
	}
}

// DeadLetter publishes d's message to DeadLetterExchange with header
// ReasonHeader = reason, waits for the broker's confirm, then acks d. The
// reason is thus kept next to the message in DeadLetterQueue. A message
// returned unroutable (the queue was deleted) is published once more after
// declaring the queue again.
//
// It fails, leaving d unacked, when the dead-letter connection does not
// come up within ConsumerConfig.DeadLetterTimeout, when the broker blocks
// it (a resource alarm), or when the publish takes longer than that
// timeout; a publish given up on may still land once the alarm clears,
// and the caller's fallback then makes a duplicate in the dead-letter
// queue. It fails with ErrStaleDelivery when d's channel has closed: before
// the publish, nothing is published; after it, the message is in the
// dead-letter queue already. Either way the broker redelivers d and the
// caller dead-letters it again then.
func (c *Consumer) DeadLetter(ctx context.Context, d Delivery, reason string) error {
	if d.m == nil {
		return errors.New("dead-letter: zero Delivery")
	}
	if d.stale() {
		return fmt.Errorf("dead-letter %s: %w", d.m.MessageId, ErrStaleDelivery)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DeadLetterTimeout)
	defer cancel()
	dl, err := c.dl.wait(ctx)
	if err != nil {
		return fmt.Errorf("dead-letter %s: the dead-letter connection is down: %w", d.m.MessageId, err)
	}
	headers := amqp.Table{}
	maps.Copy(headers, d.m.Headers)
	headers[ReasonHeader] = clip.String(reason, MaxReasonBytes)
	msg := amqp.Publishing{
		Headers:      headers,
		ContentType:  d.m.ContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    d.m.MessageId,
		Timestamp:    d.m.Timestamp,
		Body:         d.m.Body,
	}
	err = c.dlConn.publishBounded(ctx, dl, DeadLetterExchange, d.m.RoutingKey, true, msg)
	if errors.Is(err, errReturned) {
		// Nothing is bound to the dead-letter exchange: the queue was
		// deleted (an operator purging it) while this connection, which
		// declares it only when it connects, stayed up. Returned, the
		// message is nowhere: declared again, it is published once more.
		c.log.Warn("the dead-letter queue is gone: declaring it again", "queue", DeadLetterQueue)
		if derr := redeclareDeadLetters(ctx, dl.conn); derr != nil {
			err = fmt.Errorf("%w; declare the dead-letter queue again: %w", err, derr)
		} else {
			err = c.dlConn.publishBounded(ctx, dl, DeadLetterExchange, d.m.RoutingKey, true, msg)
		}
	}
	if err != nil {
		if d.stale() {
			err = errors.Join(err, ErrStaleDelivery)
		}
		return fmt.Errorf("dead-letter %s: %w", d.m.MessageId, err)
	}
	c.deadLettered.Inc()
	c.log.Warn("dead-lettered a message", "event_id", d.m.MessageId, "reason", reason)
	if err := d.Ack(false); err != nil {
		return fmt.Errorf("dead-letter %s: ack original: %w", d.m.MessageId, err)
	}
	return nil
}

// redeclareDeadLetters declares the dead-letter exchange and queue on a
// channel of their own over conn, giving up when ctx ends (the declare
// then finishes, or fails with the connection, on its own).
func redeclareDeadLetters(ctx context.Context, conn *amqp.Connection) error {
	done := make(chan error, 1)
	go func() { done <- withChannel(conn, DeclareDeadLetters) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Delivery is one message handed out by a Consumer. It is a small value,
// safe to copy; its methods may be called from any goroutine.
type Delivery struct {
	m *amqp.Delivery
	s *consumerSession
}

func (d Delivery) stale() bool {
	select {
	case <-d.s.closed:
		return true
	default:
		return false
	}
}

// Stale reports that d's channel has closed (a lost connection, or
// Pause): the broker has d back and delivers it again, and d's Ack fails
// with ErrStaleDelivery.
func (d Delivery) Stale() bool { return d.stale() }

// Body is the message body (for events, event.Encode's output).
func (d Delivery) Body() []byte { return d.m.Body }

// MessageID is the AMQP message-id (for events, the event_id).
func (d Delivery) MessageID() string { return d.m.MessageId }

// RoutingKey is the routing key the message was published with ("" for
// the zero Delivery).
func (d Delivery) RoutingKey() string {
	if d.m == nil {
		return ""
	}
	return d.m.RoutingKey
}

// Redelivered reports that the broker delivered this message before, to
// this or another consumer, without an ack.
func (d Delivery) Redelivered() bool { return d.m.Redelivered }

// DeliveryCount is how often a quorum queue delivered this message before
// without an ack: returned unacked when its consumer's channel or
// connection closed (a crash, a kill, a lost connection, the broker's
// consumer_timeout) or rejected with requeue. It is 0 for a first
// delivery, and always from a classic queue, which does not count.
func (d Delivery) DeliveryCount() int64 { return deliveryCount(*d.m) }

// PublishedAt is the message's AMQP timestamp: for an event, when its
// producer spooled it (Publisher), in whole seconds. It is zero when the
// message has none.
func (d Delivery) PublishedAt() time.Time {
	if d.m == nil || d.m.Timestamp.IsZero() || d.m.Timestamp.Unix() == 0 {
		return time.Time{}
	}
	return d.m.Timestamp
}

// Tag is the delivery tag, increasing along the stream of one channel.
func (d Delivery) Tag() uint64 { return d.m.DeliveryTag }

// RecordedAt is the RecordedAtHeader of an event re-published by a
// replay: ok is false when the message has none; an unparsable value is an
// error.
func (d Delivery) RecordedAt() (at time.Time, ok bool, err error) {
	v, present := d.m.Headers[RecordedAtHeader]
	if !present {
		return time.Time{}, false, nil
	}
	s, isString := v.(string)
	if !isString {
		return time.Time{}, false, fmt.Errorf("header %s: %T, not a string", RecordedAtHeader, v)
	}
	at, err = time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("header %s: %w", RecordedAtHeader, err)
	}
	return at, true, nil
}

// Reason is the ReasonHeader of a message dead-lettered by DeadLetter, or
// the broker's reason ("rejected", "delivery_limit") for one it dead-lettered
// itself; "" otherwise.
func (d Delivery) Reason() string {
	if r, ok := d.m.Headers[ReasonHeader].(string); ok {
		return r
	}
	if deaths, ok := d.m.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if t, ok := deaths[0].(amqp.Table); ok {
			if r, ok := t["reason"].(string); ok {
				return r
			}
		}
	}
	return ""
}

// Channel identifies the broker channel d came on: two deliveries of one
// channel give equal values, of another (after a reconnect) unequal ones.
// Ack with multiple covers only deliveries of d's channel.
func (d Delivery) Channel() any { return d.s }

// ChannelOpened is a time before d's channel was opened (after a
// reconnect, or a Resume): the broker delivered d later, however long
// it then waited unread in the client.
func (d Delivery) ChannelOpened() time.Time { return d.s.opened }

// Ack acknowledges d; with multiple, also every unacked delivery of the same
// channel before it, so a batch is acked with one call on its last delivery.
// It returns ErrStaleDelivery after a reconnect.
func (d Delivery) Ack(multiple bool) error {
	if d.stale() {
		return fmt.Errorf("ack %s: %w", d.m.MessageId, ErrStaleDelivery)
	}
	if err := d.m.Ack(multiple); err != nil {
		if errors.Is(err, amqp.ErrClosed) || d.stale() {
			err = errors.Join(err, ErrStaleDelivery)
		}
		return fmt.Errorf("ack %s: %w", d.m.MessageId, err)
	}
	return nil
}

// Nack rejects d (with multiple, and the unacked deliveries before it). With
// requeue the broker delivers it again; without, the broker dead-letters it
// to DeadLetterQueue (reason "rejected"). Prefer DeadLetter, which keeps a
// reason. It returns ErrStaleDelivery after a reconnect.
func (d Delivery) Nack(multiple, requeue bool) error {
	if d.stale() {
		return fmt.Errorf("nack %s: %w", d.m.MessageId, ErrStaleDelivery)
	}
	if err := d.m.Nack(multiple, requeue); err != nil {
		if errors.Is(err, amqp.ErrClosed) || d.stale() {
			err = errors.Join(err, ErrStaleDelivery)
		}
		return fmt.Errorf("nack %s: %w", d.m.MessageId, err)
	}
	return nil
}
