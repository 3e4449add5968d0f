package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
func RequeueDeadLetters(ctx context.Context, url string, limit int) (moved []DeadLetter, skipped int, err error) {
	conn, ch, total, err := dlqChannel(url)
	if err != nil {
		return nil, 0, err
	}
	defer closeConn(conn)
	if err := ch.Confirm(false); err != nil {
		return nil, 0, fmt.Errorf("confirm mode: %w", err)
	}
	// Published mandatory: one the exchange cannot route comes back, before
	// its confirmation, and stays a dead letter.
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	for seen := 0; seen < total && len(moved) < limit && ctx.Err() == nil; seen++ {
		m, ok, err := ch.Get(DeadLetterQueue, false)
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
		headers := amqp.Table{}
		maps.Copy(headers, m.Headers)
		delete(headers, ReasonHeader)
		delete(headers, "x-death")
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, EventsExchange, m.RoutingKey, true, false, amqp.Publishing{
			Headers: headers, ContentType: m.ContentType, DeliveryMode: amqp.Persistent,
			MessageId: m.MessageId, Timestamp: m.Timestamp, Body: m.Body,
		})
		if err == nil {
			var acked bool
			acked, err = dc.WaitContext(ctx)
			if err == nil && !acked {
				err = errors.New("the broker refused it (nack)")
			}
			select {
			case r := <-returns:
				if err == nil {
					err = fmt.Errorf("%s cannot route it (%s)", EventsExchange, r.ReplyText)
				}
			default:
			}
		}
		if err != nil {
			_ = ch.Nack(m.DeliveryTag, false, true)
			return moved, skipped, fmt.Errorf("re-publish dead letter %s: %w", m.MessageId, err)
		}
		if err := m.Ack(false); err != nil {
			return moved, skipped, fmt.Errorf("remove dead letter %s (re-published): %w", m.MessageId, err)
		}
		moved = append(moved, deadLetterOf(m))
	}
	return moved, skipped, ctx.Err()
}
