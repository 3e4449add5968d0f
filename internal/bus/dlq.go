package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/event"
)

// DeadLetter is a message of DeadLetterQueue, as `causeway dlq` shows it.
type DeadLetter struct {
	// MessageID is the event_id the producer gave the message.
	MessageID string `json:"message_id"`
	// RoutingKey is the original <source>.<kind>.
	RoutingKey string `json:"routing_key"`
	// Reason is why it was dead-lettered: the ReasonHeader set by
	// Consumer.DeadLetter, else the broker's x-death reason (for instance
	// "delivery_limit").
	Reason string `json:"reason"`
	// Published is the producer's timestamp, when it set one.
	Published time.Time `json:"published,omitzero"`
	// Bytes is the body's size; Body the body itself (left out of JSON).
	Bytes int    `json:"bytes"`
	Body  []byte `json:"-"`
}

func deadLetterOf(m amqp.Delivery) DeadLetter {
	d := DeadLetter{MessageID: m.MessageId, RoutingKey: m.RoutingKey, Published: m.Timestamp, Bytes: len(m.Body), Body: m.Body}
	if r, ok := m.Headers[ReasonHeader].(string); ok {
		d.Reason = r
	} else if deaths, ok := m.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if t, ok := deaths[0].(amqp.Table); ok {
			d.Reason, _ = t["reason"].(string)
		}
	}
	return d
}

// dlqChannel dials url and opens a channel on it; closing the connection
// closes both.
func dlqChannel(url string) (*amqp.Connection, *amqp.Channel, int, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("dial %s: %w", redactURL(url), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		closeConn(conn)
		return nil, nil, 0, fmt.Errorf("open channel: %w", err)
	}
	q, err := ch.QueueDeclarePassive(DeadLetterQueue, true, false, false, false, nil)
	if err != nil {
		closeConn(conn)
		return nil, nil, 0, fmt.Errorf("queue %s: %w", DeadLetterQueue, err)
	}
	return conn, ch, q.Messages, nil
}

// BrowseDeadLetters returns up to limit messages from the head of
// DeadLetterQueue, and how many the queue holds, without taking any away:
// each is fetched unacknowledged and all go back to the queue together
// (basic.nack with requeue; a quorum queue puts them back at its tail, so
// a look at part of the queue rotates it). RabbitMQ 4.3 and later do not
// count that as a delivery; from 4.0 to 4.2 each look counts toward a
// quorum queue's delivery limit, by default 20.
func BrowseDeadLetters(ctx context.Context, url string, limit int) ([]DeadLetter, int, error) {
	conn, ch, total, err := dlqChannel(url)
	if err != nil {
		return nil, 0, err
	}
	defer closeConn(conn)
	var out []DeadLetter
	var last uint64
	for len(out) < limit && ctx.Err() == nil {
		m, ok, err := ch.Get(DeadLetterQueue, false)
		if err != nil {
			return nil, 0, fmt.Errorf("get from %s: %w", DeadLetterQueue, err)
		}
		if !ok {
			break
		}
		out = append(out, deadLetterOf(m))
		last = m.DeliveryTag
	}
	if last != 0 {
		if err := ch.Nack(last, true, true); err != nil {
			return nil, 0, fmt.Errorf("return the dead letters to %s: %w", DeadLetterQueue, err)
		}
	}
	return out, total, ctx.Err()
}

// ErrBlocked means the broker blocked the connection (a resource alarm:
// memory or disk) for longer than a requeue waits.
var ErrBlocked = errors.New("the broker blocks the connection (resource alarm)")

// RequeueDeadLetters moves up to limit messages from the head of
// DeadLetterQueue back to EventsExchange, with their routing key, message
// id and headers (less the dead-letter reason), for the persister to take
// again — after the cause was fixed (a database that refused them, say).
// Each is removed from the queue only once the broker confirmed its
// re-publication, so none is lost; one re-published twice (a crash between
// the two) is stored once, by event id. A message that is not a valid
// Causeway event (malformed input, or an OpenStack notification the
// listener dead-lettered on its broker) would only be dead-lettered again:
// it stays, counted in skipped. It goes through the queue once at most and
// returns the dead letters moved.
//
// wait bounds every wait on the broker for one message (its basic.get,
// its publish and its confirm), and the time the broker may block the connection
// (connection.blocked, a resource alarm) before a publish: past it the
// requeue stops with ErrBlocked (or a "no answer" error), the message it
// held going back to the queue unremoved.
func RequeueDeadLetters(ctx context.Context, url string, limit int, wait time.Duration) (moved []DeadLetter, skipped int, err error) {
	conn, ch, total, err := dlqChannel(url)
	if err != nil {
		return nil, 0, err
	}
	// Closing the connection (bounded by closeTimeout, for a broker that
	// stopped reading it) returns an unacknowledged message to the queue,
	// and ends a publish stuck in a socket write and watchBlocked.
	defer closeConn(conn)
	w := &brokerWait{blocked: watchBlocked(conn.NotifyBlocked(make(chan amqp.Blocking, 4))), limit: wait, after: time.After}
	if err := ch.Confirm(false); err != nil {
		return nil, 0, fmt.Errorf("confirm mode: %w", err)
	}
	// Published mandatory: one the exchange cannot route comes back, before
	// its confirmation, and stays a dead letter.
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	return requeue(ctx, ch, returns, w, total, limit)
}

// dlqChannelOps is what requeue needs of an *amqp.Channel in confirm mode
// (acks go through each delivery's Acknowledger).
type dlqChannelOps interface {
	Get(queue string, autoAck bool) (amqp.Delivery, bool, error)
	PublishWithDeferredConfirmWithContext(ctx context.Context, exchange, key string, mandatory, immediate bool, msg amqp.Publishing) (*amqp.DeferredConfirmation, error)
	Nack(tag uint64, multiple, requeue bool) error
}

func requeue(ctx context.Context, ch dlqChannelOps, returns <-chan amqp.Return, w *brokerWait, total, limit int) (moved []DeadLetter, skipped int, err error) {
	for seen := 0; seen < total && len(moved) < limit && ctx.Err() == nil; seen++ {
		// Take no message while the broker blocks the connection: it could
		// be neither published nor, quite possibly, returned.
		if err := w.unblocked(ctx, "wait to publish"); err != nil {
			return moved, skipped, err
		}
		m, ok, err := get(ctx, ch, w)
		if err != nil {
			return moved, skipped, fmt.Errorf("get from %s: %w", DeadLetterQueue, err)
		}
		if !ok {
			break
		}
		// A replay's re-published record (it says its recorded_at) is read
		// as the stored event it is, as a persister keeping recorded_at
		// reads it: a log written before a rule of input was added.
		decode := event.Decode
		if _, ok := m.Headers[RecordedAtHeader]; ok {
			decode = event.DecodeStored
		}
		if _, err := decode(m.Body); err != nil {
			if err := ch.Nack(m.DeliveryTag, false, true); err != nil {
				return moved, skipped, fmt.Errorf("leave dead letter %s: %w", m.MessageId, err)
			}
			skipped++
			continue
		}
		if err := republish(ctx, ch, returns, w, m); err != nil {
			// Not acknowledged, the message goes back to the queue when
			// the connection closes. No nack: on a connection the broker
			// stopped reading it would wait behind the stuck publish.
			return moved, skipped, fmt.Errorf("re-publish dead letter %s: %w", m.MessageId, err)
		}
		if err := m.Ack(false); err != nil {
			return moved, skipped, fmt.Errorf("remove dead letter %s (re-published): %w", m.MessageId, err)
		}
		moved = append(moved, deadLetterOf(m))
	}
	return moved, skipped, ctx.Err()
}

// get takes the message at the head of DeadLetterQueue (basic.get,
// unacknowledged), waiting at most w's bounds for the broker's answer. A
// get given up goes on on its own until the connection closes; the message
// the broker may still hand it goes back to the queue then, unacknowledged.
func get(ctx context.Context, ch dlqChannelOps, w *brokerWait) (amqp.Delivery, bool, error) {
	type result struct {
		m   amqp.Delivery
		ok  bool
		err error
	}
	got := make(chan result, 1)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		m, ok, err := ch.Get(DeadLetterQueue, false)
		got <- result{m, ok, err}
	}()
	if err := w.await(ctx, "wait for the broker's answer", answered); err != nil {
		return amqp.Delivery{}, false, err
	}
	r := <-got
	return r.m, r.ok, r.err
}

// republish publishes m again to EventsExchange and returns once the broker
// confirmed it, or with an error: nacked, returned unroutable, or no
// confirm within w's bounds.
func republish(ctx context.Context, ch dlqChannelOps, returns <-chan amqp.Return, w *brokerWait, m amqp.Delivery) error {
	headers := amqp.Table{}
	maps.Copy(headers, m.Headers)
	delete(headers, ReasonHeader)
	delete(headers, "x-death")
	// The write itself blocks once the broker stops reading a blocked
	// connection: it runs on its own, and is ended by the connection's
	// close if it is given up.
	type result struct {
		dc  *amqp.DeferredConfirmation
		err error
	}
	published := make(chan result, 1)
	written := make(chan struct{})
	go func() {
		defer close(written)
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, EventsExchange, m.RoutingKey, true, false, amqp.Publishing{
			Headers: headers, ContentType: m.ContentType, DeliveryMode: amqp.Persistent,
			MessageId: m.MessageId, Timestamp: m.Timestamp, Body: m.Body,
		})
		published <- result{dc, err}
	}()
	if err := w.await(ctx, "publish", written); err != nil {
		return err
	}
	r := <-published
	if r.err != nil {
		return r.err
	}
	if err := w.await(ctx, "wait for the broker's confirm", r.dc.Done()); err != nil {
		return err
	}
	if !r.dc.Acked() {
		return errors.New("the broker refused it (nack)")
	}
	// The broker sends basic.return before the ack of the same message and
	// the library hands it over before the ack.
	select {
	case rt := <-returns:
		return fmt.Errorf("%s cannot route it (%s)", EventsExchange, rt.ReplyText)
	default:
	}
	return nil
}

// blockWatch follows a connection's connection.blocked and unblocked
// notifications. Its goroutine drains them until the library closes the
// channel (when the connection closes), so the library's reader is never
// held up by an unread notification.
type blockWatch struct {
	mu      sync.Mutex
	active  *amqp.Blocking // the block in force, nil when none
	changed chan struct{}  // closed, and replaced, at each change
}

func watchBlocked(notes <-chan amqp.Blocking) *blockWatch {
	b := &blockWatch{changed: make(chan struct{})}
	go func() {
		for n := range notes {
			b.mu.Lock()
			if n.Active {
				b.active = &n
			} else {
				b.active = nil
			}
			close(b.changed)
			b.changed = make(chan struct{})
			b.mu.Unlock()
		}
	}()
	return b
}

// state returns the block in force (nil when none) and a channel closed at
// the next change.
func (b *blockWatch) state() (*amqp.Blocking, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active, b.changed
}

// brokerWait bounds a requeue's waits on the broker.
type brokerWait struct {
	blocked *blockWatch
	limit   time.Duration
	after   func(time.Duration) <-chan time.Time // time.After, or a test's
}

// unblocked returns at once when the broker does not block the
// connection, else once it lifts the block; it waits at most w.limit.
func (w *brokerWait) unblocked(ctx context.Context, what string) error {
	if active, _ := w.blocked.state(); active == nil {
		return nil
	}
	return w.wait(ctx, what, nil, true)
}

// await waits for done to be closed, at most w.limit. Past it, the error
// wraps ErrBlocked when the broker blocks the connection.
func (w *brokerWait) await(ctx context.Context, what string, done <-chan struct{}) error {
	return w.wait(ctx, what, done, false)
}

func (w *brokerWait) wait(ctx context.Context, what string, done <-chan struct{}, untilUnblocked bool) error {
	_, changed := w.blocked.state()
	expired := w.after(w.limit)
	for {
		select {
		case <-done:
			return nil
		case <-changed:
			var active *amqp.Blocking
			if active, changed = w.blocked.state(); untilUnblocked && active == nil {
				return nil
			}
		case <-expired:
			// Read again: a change may be pending beside the expiry.
			if active, _ := w.blocked.state(); active != nil {
				return fmt.Errorf("%s: %w (%s) for more than %s", what, ErrBlocked, active.Reason, w.limit)
			}
			return fmt.Errorf("%s: no answer from the broker in %s", what, w.limit)
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}
