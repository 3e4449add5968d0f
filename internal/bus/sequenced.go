package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/event"
)

// BatchPublisher publishes sequenced batches on SequencedExchange, for the
// processors that follow the log. The database stays the source of truth:
// a batch lost here is a gap that followers repair from it.
type BatchPublisher struct {
	log       *slog.Logger
	conn      *connector
	cur       current[*confirmChannel]
	published prometheus.Counter
}

// NewBatchPublisher validates cfg. It starts nothing.
func NewBatchPublisher(cfg Conn, deps Deps) (*BatchPublisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("batch publisher config: %w", err)
	}
	deps = deps.withDefaults("bus.batch_publisher")
	p := &BatchPublisher{
		log: deps.Logger,
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_bus_batch_publisher_published_total",
			Help: "Sequenced batches confirmed by the broker.",
		}),
	}
	conn, err := newConnector(cfg, deps.Logger, "batch_publisher", nil, deps.Registerer)
	if err != nil {
		return nil, err
	}
	p.conn = conn
	if err := register(deps.Registerer, p.published); err != nil {
		return nil, err
	}
	return p, nil
}

// Run keeps the connection up until ctx ends and returns nil then.
func (p *BatchPublisher) Run(ctx context.Context) error {
	return p.conn.run(ctx, func(ctx context.Context, conn *amqp.Connection) error {
		cc, err := newConfirmChannel(conn)
		if err != nil {
			return err
		}
		if _, err := DeclareTopology(conn); err != nil {
			return err
		}
		closed := cc.ch.NotifyClose(make(chan *amqp.Error, 1))
		p.cur.set(cc)
		defer p.cur.set(nil)
		p.conn.connected.Set(1)
		select {
		case <-ctx.Done():
			return nil
		case e := <-closed:
			return fmt.Errorf("channel closed: %w", channelErr(e))
		}
	})
}

// PublishSequenced publishes b (event.EncodeBatch) and waits for the
// broker's confirm. While there is no connection it waits for one, until
// ctx ends; it does not retry a publish that failed. Concurrent calls are
// allowed; they are sent one at a time. A failure is not fatal to the log:
// followers notice the gap by Batch.PrevSeq and read the database.
func (p *BatchPublisher) PublishSequenced(ctx context.Context, b event.Batch) error {
	body, err := event.EncodeBatch(b)
	if err != nil {
		return err
	}
	cc, err := p.cur.wait(ctx)
	if err != nil {
		return fmt.Errorf("publish batch %d..%d: no broker connection: %w", b.FirstSeq(), b.LastSeq(), err)
	}
	err = p.conn.publishBounded(ctx, cc, SequencedExchange, "", false, amqp.Publishing{
		ContentType:  ContentType,
		DeliveryMode: amqp.Transient, // followers' queues are transient; the DB is durable
		MessageId:    strconv.FormatInt(b.PrevSeq, 10) + "+" + strconv.Itoa(len(b.Records)),
		Body:         body,
	})
	if err != nil {
		return fmt.Errorf("publish batch %d..%d: %w", b.FirstSeq(), b.LastSeq(), err)
	}
	p.published.Inc()
	return nil
}

// current holds the live value of a session (nil between sessions) and lets
// callers wait for one.
type current[T comparable] struct {
	mu      sync.Mutex
	v       T
	changed chan struct{}
}

func (c *current[T]) set(v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.v = v
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
}

func (c *current[T]) wait(ctx context.Context) (T, error) {
	var zero T
	for {
		c.mu.Lock()
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		v, ch := c.v, c.changed
		c.mu.Unlock()
		if v != zero {
			return v, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}

// Subscriber follows the sequenced stream: each connection binds a fresh
// exclusive, server-named queue to SequencedExchange and yields the decoded
// batches. Right after every (re)connection it yields an Update with Gap
// set, because batches published while it was away are not in its new
// queue: the follower then reads the log from the database from its last
// applied seq, and uses Batch.PrevSeq to skip or detect further gaps. A
// message that does not decode is logged, counted and yielded as a Gap.
// The queue drops its oldest batches past MaxQueued batches or
// MaxQueuedBytes bytes, whichever comes first: a follower that lags reads
// the database, and its queue does not take the broker's memory.
type Subscriber struct {
	cfg       SubscriberConfig
	log       *slog.Logger
	conn      *connector
	out       chan Update
	batches   prometheus.Counter
	malformed prometheus.Counter
}

// Update is one item of the sequenced stream: a Batch, or a Gap signal.
type Update struct {
	// Gap means batches may have been missed before the next Batch.
	Gap   bool
	Batch event.Batch
}

// NewSubscriber validates cfg. It starts nothing.
func NewSubscriber(cfg SubscriberConfig, deps Deps) (*Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("subscriber config: %w", err)
	}
	deps = deps.withDefaults("bus.subscriber")
	s := &Subscriber{
		cfg: cfg, log: deps.Logger, out: make(chan Update),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_bus_subscriber_batches_total",
			Help: "Sequenced batches received.",
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_bus_subscriber_malformed_total",
			Help: "Sequenced-stream messages that did not decode (yielded as gaps).",
		}),
	}
	conn, err := newConnector(cfg.Conn, deps.Logger, "subscriber", nil, deps.Registerer)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	if err := register(deps.Registerer, s.batches, s.malformed); err != nil {
		return nil, err
	}
	return s, nil
}

// Run subscribes until ctx ends and returns nil then. Updates is closed
// when Run returns. Call it once.
func (s *Subscriber) Run(ctx context.Context) error {
	defer close(s.out)
	return s.conn.run(ctx, s.session)
}

// Updates is the stream of updates; the caller must keep reading it.
func (s *Subscriber) Updates() <-chan Update { return s.out }

func (s *Subscriber) session(ctx context.Context, conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if _, err := DeclareTopology(conn); err != nil {
		return err
	}
	q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{
		"x-max-length":        int64(s.cfg.MaxQueued),
		"x-max-length-bytes":  s.cfg.MaxQueuedBytes,
		amqp.QueueOverflowArg: amqp.QueueOverflowDropHead,
	})
	if err != nil {
		return fmt.Errorf("declare subscriber queue: %w", err)
	}
	if err := ch.QueueBind(q.Name, "", SequencedExchange, false, nil); err != nil {
		return fmt.Errorf("bind %s to %s: %w", q.Name, SequencedExchange, err)
	}
	if err := ch.Qos(256, 0, false); err != nil {
		return fmt.Errorf("set prefetch: %w", err)
	}
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	msgs, err := ch.Consume(q.Name, "", false, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", q.Name, err)
	}
	s.conn.connected.Set(1)
	send := func(u Update) bool {
		select {
		case s.out <- u:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// Subscribed: whatever was published before now is only in the DB.
	if !send(Update{Gap: true}) {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-chClosed:
			return fmt.Errorf("channel closed: %w", channelErr(e))
		case m, ok := <-msgs:
			if !ok {
				return errors.New("sequenced stream ended")
			}
			b, err := event.DecodeBatch(m.Body)
			u := Update{Batch: b}
			if err != nil {
				s.malformed.Inc()
				s.log.Error("malformed sequenced batch; signalling a gap", "message_id", m.MessageId, "err", err)
				u = Update{Gap: true}
			} else {
				s.batches.Inc()
			}
			if !send(u) {
				return nil
			}
			if err := m.Ack(false); err != nil {
				return fmt.Errorf("ack batch: %w", err)
			}
		}
	}
}
