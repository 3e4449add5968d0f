package openstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/liveness"
	"github.com/causeway/causeway/internal/lograte"
)

// Defaults of Config.
const (
	DefaultSource     = "nova"
	DefaultExchange   = "nova"
	DefaultQueue      = "causeway.nova.notifications"
	DefaultRoutingKey = "versioned_notifications.info"
	DefaultBatch      = 100
	DefaultPrefetch   = 500
	// DefaultRedeclareInterval bounds how long notifications go unrouted
	// after a broker restart deleted nova's non-durable exchange.
	DefaultRedeclareInterval = 5 * time.Second
	DefaultMaxClockSkew      = 5 * time.Minute
	// DefaultMaxDeliveries is below the delivery limit RabbitMQ 4 gives a
	// quorum queue by default (20), past which a queue without a
	// dead-letter exchange, as this one, drops the message.
	DefaultMaxDeliveries = 10
)

// declareDialTimeout bounds the dial, handshake included, of a declare's
// connection; its heartbeat ends one whose broker stopped answering.
const declareDialTimeout = 10 * time.Second

// Config configures the consumer.
type Config struct {
	// Conn is the broker connection (the OpenStack RabbitMQ, vhost included).
	bus.Conn `yaml:",inline"`
	// Source names the datasource in the events (default "nova").
	Source string `yaml:"source"`
	// Exchange is nova's control exchange (default "nova"); ExchangeDurable
	// must match how oslo.messaging declares it (amqp_durable_queues,
	// default false).
	Exchange        string `yaml:"exchange"`
	ExchangeDurable bool   `yaml:"exchange_durable"`
	// Queue is Causeway's own durable queue, bound to Exchange with
	// RoutingKeys (default versioned_notifications.info).
	Queue       string   `yaml:"queue"`
	RoutingKeys []string `yaml:"routing_keys"`
	// Prefetch bounds unacked notifications (default 500); Batch is the most
	// notifications published and acked together (default 100).
	Prefetch int `yaml:"prefetch"`
	Batch    int `yaml:"batch"`
	// RedeclareInterval is how often the exchange and the bindings are
	// declared again (default 5s). oslo.messaging declares nova's exchange
	// non-durable by default: a broker restart deletes it with Causeway's
	// bindings, and nova's next notifications would go nowhere until they
	// are declared again.
	RedeclareInterval time.Duration `yaml:"redeclare_interval"`
	// MaxClockSkew is how far in the future of this host's clock a
	// notification may be dated (default 5m): one dated later is taken,
	// dated now plus the skew, and counted (nova's host clock is ahead).
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// MaxDeliveries is how often one notification may be delivered to
	// be processed (default 10). A notification the queue delivered that
	// often before without an ack (the listener crashed, was killed or
	// lost its connection with it in hand, or the broker's
	// consumer_timeout took it back) is dead-lettered, with the reason,
	// at its next delivery instead of being processed again: one that
	// crashes the listener cannot crash it for ever. The count is the
	// quorum queue's (x-delivery-count, x-acquired-count), so it needs no
	// queue argument: the queue declared by an earlier release is used as
	// it is.
	MaxDeliveries int `yaml:"max_deliveries"`
}

// String redacts the password of the URL.
func (c Config) String() string {
	return fmt.Sprintf("{conn:%s source:%s exchange:%s exchange_durable:%t queue:%s routing_keys:%v prefetch:%d batch:%d max_clock_skew:%s max_deliveries:%d}",
		c.Conn, c.Source, c.Exchange, c.ExchangeDurable, c.Queue, c.RoutingKeys, c.Prefetch, c.Batch, c.MaxClockSkew, c.MaxDeliveries)
}

// Validate reports every problem of c, naming its YAML key.
func (c Config) Validate() error {
	errs := []error{c.Conn.Validate()}
	if c.Source != "" {
		if err := event.CheckSource(c.Source); err != nil {
			errs = append(errs, err) // "source: ..."
		}
	}
	if c.Prefetch < 0 {
		errs = append(errs, errors.New("prefetch: must not be negative"))
	}
	if c.Batch < 0 {
		errs = append(errs, errors.New("batch: must not be negative"))
	}
	if c.RedeclareInterval < 0 {
		errs = append(errs, errors.New("redeclare_interval: must not be negative"))
	}
	if c.MaxClockSkew < 0 {
		errs = append(errs, errors.New("max_clock_skew: must not be negative"))
	}
	if c.MaxDeliveries < 0 {
		errs = append(errs, errors.New("max_deliveries: must not be negative"))
	}
	if c.Batch > 0 && c.Prefetch > 0 && c.Batch > c.Prefetch {
		errs = append(errs, errors.New("batch: must not exceed prefetch"))
	}
	for i, k := range c.RoutingKeys {
		if k == "" {
			errs = append(errs, fmt.Errorf("routing_keys[%d]: must not be empty", i))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.Queue == "" {
		c.Queue = DefaultQueue
	}
	if len(c.RoutingKeys) == 0 {
		c.RoutingKeys = []string{DefaultRoutingKey}
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.Batch == 0 {
		c.Batch = min(DefaultBatch, c.Prefetch)
	}
	if c.RedeclareInterval == 0 {
		c.RedeclareInterval = DefaultRedeclareInterval
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = bus.DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = max(bus.DefaultReconnectMax, c.ReconnectMin) // as bus.Conn's
	}
}

// Publisher is where the consumer hands events; internal/bus.Publisher is
// the real one.
type Publisher interface {
	Publish(ctx context.Context, evs ...event.Event) error
}

// Deps are the consumer's collaborators.
type Deps struct {
	Publisher  Publisher
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock notifications are checked against (default
	// time.Now).
	Now func() time.Time
}

// Consumer reads nova notifications and publishes their events.
type Consumer struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	bus  *bus.Consumer
	// decodeFn is Decode (tests make it panic).
	decodeFn func(source string, body []byte) ([]event.Event, error)
	// dl moves notifications to the dead-letter queue: bus, but for
	// tests of the retry rounds.
	dl deadLetterer

	notifications *prometheus.CounterVec
	published     prometheus.Counter
	future        prometheus.Counter

	// pending are the notifications whose dead-lettering failed, retried
	// with backoff by consume (which alone touches them).
	pending []pendingDeadLetter

	// dial opens the TCP connections of declare (amqp.DefaultDial; tests
	// count them).
	dial func(network, addr string) (net.Conn, error)
	// declConn is the connection of declare, kept between declares
	// (declareChannel). Only one declare runs at a time, Run's first,
	// then redeclare's, and Run closes it once redeclare has returned.
	declConn *amqp.Connection

	// ops are the operations in flight (Alive): a declare, the Publish of
	// a batch, a dead-letter, an ack; stallLimit is how long one may run.
	ops        liveness.Ops
	stallLimit time.Duration

	// futureLog spaces out the warnings about notifications dated in the
	// future: a host's clock stays ahead, and batch after batch has them.
	futureLog lograte.Limiter
}

// deadLetterer is the part of *bus.Consumer that dead-letters.
type deadLetterer interface {
	DeadLetter(ctx context.Context, d bus.Delivery, reason string) error
}

// pendingDeadLetter is a notification that could not be dead-lettered. It
// stays unacked, holding a prefetch slot, and is tried again at next.
type pendingDeadLetter struct {
	d       bus.Delivery
	why     error
	backoff time.Duration
	next    time.Time
}

// Results of the notifications counter.
const (
	ResultPublished    = "published"
	ResultIgnored      = "ignored"
	ResultDeadLettered = "dead_lettered"
	// ResultDeadLetterFailed counts notifications that could not be moved
	// to the dead-letter queue at the first attempt: they stay unacked,
	// holding a prefetch slot, and dead-lettering is retried with backoff
	// until it succeeds (then they count as dead_lettered too) or the
	// consumer's connection drops (then the broker redelivers them).
	ResultDeadLetterFailed = "dead_letter_failed"
)

// New validates cfg. It starts nothing.
func New(cfg Config, deps Deps) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("openstack consumer config: %w", err)
	}
	if deps.Publisher == nil {
		return nil, errors.New("openstack: a Publisher is required")
	}
	cfg.setDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	c := &Consumer{
		cfg: cfg, deps: deps, log: deps.Logger.With("component", "listeners.openstack", "source", cfg.Source),
		stallLimit: liveness.Limit(declareDialTimeout, bus.DefaultDeadLetterTimeout),
		dial:       amqp.DefaultDial(declareDialTimeout),
		decodeFn:   Decode,
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_listener_notifications_total",
			Help: "OpenStack notifications by result (published, ignored, dead_lettered, dead_letter_failed).",
		}, []string{"source", "result"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_listener_notification_events_total", ConstLabels: prometheus.Labels{"source": cfg.Source},
			Help: "Events published from OpenStack notifications.",
		}),
		future: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_listener_notification_future_events_total", ConstLabels: prometheus.Labels{"source": cfg.Source},
			Help: "Events of OpenStack notifications dated more than max_clock_skew ahead of this host's clock, taken dated now plus the skew.",
		}),
	}
	bc, err := bus.NewConsumer(bus.ConsumerConfig{Conn: cfg.Conn, Queue: cfg.Queue, Prefetch: cfg.Prefetch, DeadLettersOnly: true},
		bus.Deps{Logger: deps.Logger, Registerer: deps.Registerer})
	if err != nil {
		return nil, err
	}
	c.bus, c.dl = bc, bc
	if deps.Registerer != nil {
		for _, m := range []prometheus.Collector{c.notifications, c.published, c.future} {
			if err := deps.Registerer.Register(m); err != nil {
				return nil, fmt.Errorf("register openstack metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Alive reports whether the consumer is not stuck: no operation
// (declaring the queue and its bindings, publishing the events of a batch
// of notifications, dead-lettering one, acking one) has been in flight for
// longer than four times its timeout, at least two minutes
// (liveness.Limit). A declare's dial gives up after 10 s and its
// connection's heartbeat notices a broker that stopped answering, a
// dead-letter gives up after bus.DefaultDeadLetterTimeout, and a Publish
// returns once the events are fsynced in the spool, or at once when it is
// full, so only a hang outlives the limit. Waiting for notifications, and
// retrying with backoff while the broker or the spool fails, is not stuck.
// systemd's watchdog restarts a listener whose consumer is not alive; the
// broker redelivers what it had not acked.
func (c *Consumer) Alive() bool {
	if d := c.ops.Longest(); d > c.stallLimit {
		c.log.Error("stuck: an operation has run past the stall limit", "running_for", d, "limit", c.stallLimit)
		return false
	}
	return true
}

// Run declares the queue and its bindings (retrying with backoff while the
// broker is away), then consumes until ctx ends, and returns nil then.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.closeDeclareConn()
	backoff := c.cfg.ReconnectMin
	for {
		err := c.declare(ctx)
		if err == nil {
			break
		}
		c.log.Warn("declare notification queue failed", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.cfg.ReconnectMax)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.bus.Run(ctx) }()
	redeclared := make(chan struct{})
	go func() {
		defer close(redeclared)
		c.redeclare(ctx)
	}()
	c.consume(ctx)
	// bus.Consumer closes Deliveries when its Run returns; drain until then.
	for range c.bus.Deliveries() {
	}
	<-redeclared
	return <-errc
}

// redeclare declares the exchange, queue and bindings again every
// RedeclareInterval until ctx ends.
func (c *Consumer) redeclare(ctx context.Context) {
	t := time.NewTicker(c.cfg.RedeclareInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.declare(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("declare notification queue failed", "err", err)
		}
	}
}

// declare sets up nova's exchange (as oslo declares it), Causeway's queue
// and the bindings. The queue is durable: notifications sent while
// Causeway is down wait there. It is an operation of c.ops.
func (c *Consumer) declare(ctx context.Context) error {
	defer c.ops.Begin()()
	ch, err := c.declareChannel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := bus.DeclareDeadLetters(ch); err != nil {
		return err // only what dead-lettering there needs: this is OpenStack's broker
	}
	if err := ch.ExchangeDeclare(c.cfg.Exchange, amqp.ExchangeTopic, c.cfg.ExchangeDurable, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", c.cfg.Exchange, err)
	}
	if _, err := ch.QueueDeclare(c.cfg.Queue, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}); err != nil {
		return fmt.Errorf("declare queue %s: %w", c.cfg.Queue, err)
	}
	for _, k := range c.cfg.RoutingKeys {
		if err := ch.QueueBind(c.cfg.Queue, k, c.cfg.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind %s to %s with %s: %w", c.cfg.Queue, c.cfg.Exchange, k, err)
		}
	}
	return ctx.Err()
}

// declareChannel opens a channel for a declare on c.declConn, dialling
// that connection again when it is lost. It is kept between declares:
// dialling one for each, every redeclare_interval, opened and closed a
// connection on OpenStack's broker every few seconds for ever, each one
// lines in its log. Its heartbeat notices a broker that stopped answering.
func (c *Consumer) declareChannel() (*amqp.Channel, error) {
	if c.declConn != nil {
		if !c.declConn.IsClosed() {
			if ch, err := c.declConn.Channel(); err == nil {
				return ch, nil
			}
		}
		c.closeDeclareConn()
	}
	conn, err := amqp.DialConfig(c.cfg.URL, amqp.Config{Heartbeat: 10 * time.Second, Dial: c.dial})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("open channel: %w", err)
	}
	c.declConn = conn
	return ch, nil
}

func (c *Consumer) closeDeclareConn() {
	if c.declConn != nil {
		_ = c.declConn.Close()
		c.declConn = nil
	}
}

// consume processes deliveries in batches: decode each, publish the
// batch's events in one call (retrying until it succeeds or ctx ends), then
// ack. Undecodable notifications are dead-lettered with their reason; a
// failed dead-letter is retried between batches.
func (c *Consumer) consume(ctx context.Context) {
	in := c.bus.Deliveries()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		retry.Reset(c.nextRetry())
		var batch []bus.Delivery
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			c.retryDeadLetters(ctx)
			continue
		case d, ok := <-in:
			if !ok {
				return
			}
			batch = append(batch, d)
		}
	fill:
		for len(batch) < c.cfg.Batch {
			select {
			case d, ok := <-in:
				if !ok {
					break fill
				}
				batch = append(batch, d)
			default:
				break fill
			}
		}
		c.process(ctx, batch)
	}
}

func (c *Consumer) process(ctx context.Context, batch []bus.Delivery) {
	var evs []event.Event
	var from []int // evs[i] comes from ack[from[i]]
	var ack []bus.Delivery
	dead := map[int]bool{} // of ack, dead-lettered when publishing
	ignored := 0
	for _, d := range batch {
		if n := d.DeliveryCount(); n >= int64(c.cfg.MaxDeliveries) {
			c.deadLetter(ctx, d, fmt.Errorf("delivered %d times before without an ack (the listener crashed, was killed or lost its connection "+
				"with it in hand): not processed again, max_deliveries is %d", n, c.cfg.MaxDeliveries))
			continue
		}
		out, err := c.decode(d.Body())
		if err != nil {
			c.deadLetter(ctx, d, err)
			continue
		}
		if len(out) == 0 {
			ignored++
		}
		for range out {
			from = append(from, len(ack))
		}
		evs = append(evs, out...)
		ack = append(ack, d)
	}
	if n := event.ClampFuture(evs, c.deps.Now().Add(c.cfg.MaxClockSkew)); n > 0 {
		c.future.Add(float64(n))
		if since, ok := c.futureLog.Allow(c.deps.Now(), int64(n)); ok {
			c.log.Warn("notifications dated in the future taken as dated now plus max_clock_skew: the sender's clock is ahead (logged at most once a minute)",
				"events", since, "max_clock_skew", c.cfg.MaxClockSkew)
		}
	}
	backoff := c.cfg.ReconnectMin
	for len(evs) > 0 {
		end := c.ops.Begin()
		err := c.deps.Publisher.Publish(ctx, evs...)
		end()
		if err == nil {
			c.published.Add(float64(len(evs)))
			break
		}
		// The publisher refuses for good an event that does not encode
		// (over event.MaxEventBytes once encoded, say): its notification
		// is dead-lettered and the others published, rather than the
		// batch retried for ever.
		if bad := (*event.ItemError)(nil); errors.As(err, &bad) && bad.Index >= 0 && bad.Index < len(evs) {
			k := from[bad.Index]
			c.deadLetter(ctx, ack[k], bad.Err)
			keepEvs, keepFrom := evs[:0:0], from[:0:0]
			for i := range evs {
				if from[i] != k {
					keepEvs, keepFrom = append(keepEvs, evs[i]), append(keepFrom, from[i])
				}
			}
			evs, from, dead[k] = keepEvs, keepFrom, true
			continue
		}
		if ctx.Err() != nil {
			return // unacked: redelivered to the next process
		}
		c.log.Warn("publish failed; notifications stay unacked", "err", err, "events", len(evs), "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.cfg.ReconnectMax)
	}
	published := 0
	for k, d := range ack {
		if dead[k] {
			continue
		}
		published++
		end := c.ops.Begin()
		err := d.Ack(false)
		end()
		if err != nil {
			// A stale delivery is redelivered; its events dedup by id.
			c.log.Warn("ack failed: the notification will be redelivered (its events dedup)", "err", err)
		}
	}
	c.notifications.WithLabelValues(c.cfg.Source, ResultPublished).Add(float64(published - ignored))
	c.notifications.WithLabelValues(c.cfg.Source, ResultIgnored).Add(float64(ignored))
}

// deadLetter moves a notification that cannot be taken to the dead-letter
// queue with the reason. One that could not be moved stays unacked and is
// tried again later (retryDeadLetters).
// decode is Decode, with a panic (a bug, with the input that shows it)
// turned into an error: the notification is dead-lettered with it, and
// the listener, with the other notifications it holds, goes on.
func (c *Consumer) decode(body []byte) (evs []event.Event, err error) {
	defer func() {
		if v := recover(); v != nil {
			evs, err = nil, fmt.Errorf("decode panicked (a bug; please report it with this notification): %v", v)
		}
	}()
	return c.decodeFn(c.cfg.Source, body)
}

func (c *Consumer) deadLetter(ctx context.Context, d bus.Delivery, why error) {
	end := c.ops.Begin()
	err := c.dl.DeadLetter(ctx, d, why.Error())
	end()
	if err == nil {
		c.deadLettered(d, why)
		return
	}
	c.notifications.WithLabelValues(c.cfg.Source, ResultDeadLetterFailed).Inc()
	if errors.Is(err, bus.ErrStaleDelivery) || ctx.Err() != nil {
		c.log.Warn("dead-letter failed: the broker redelivers the notification", "err", err, "reason", why.Error(), "routing_key", d.RoutingKey())
		return
	}
	backoff := c.cfg.ReconnectMin
	c.log.Warn("dead-letter failed: the notification stays unacked and is retried", "err", err, "reason", why.Error(),
		"routing_key", d.RoutingKey(), "retry_in", backoff)
	c.pending = append(c.pending, pendingDeadLetter{d: d, why: why, backoff: backoff, next: time.Now().Add(backoff)})
}

func (c *Consumer) deadLettered(d bus.Delivery, why error) {
	c.notifications.WithLabelValues(c.cfg.Source, ResultDeadLettered).Inc()
	c.log.Warn("notification dead-lettered", "reason", why.Error(), "routing_key", d.RoutingKey())
}

// nextRetry is how long until the first pending dead-letter is due (an hour
// when none is: consume resets its timer on every loop).
func (c *Consumer) nextRetry() time.Duration {
	if len(c.pending) == 0 {
		return time.Hour
	}
	next := c.pending[0].next
	for _, p := range c.pending[1:] {
		if p.next.Before(next) {
			next = p.next
		}
	}
	return max(0, time.Until(next))
}

// retryDeadLetters tries again each pending dead-letter that is due. One
// whose delivery went stale is dropped: the broker redelivers it, and it
// is dead-lettered then. The first other failure ends the round and puts
// every due one off by its backoff: the dead-letter path is down for all
// of them, and each try can take the whole dead-letter timeout, while the
// consumer's good notifications wait.
func (c *Consumer) retryDeadLetters(ctx context.Context) {
	now := time.Now()
	keep := c.pending[:0]
	failed := false
	for _, p := range c.pending {
		due := !p.next.After(now)
		if !due || ctx.Err() != nil {
			keep = append(keep, p)
			continue
		}
		var err error
		if failed {
			err = errors.New("not tried: the dead-letter path failed this round")
		} else {
			end := c.ops.Begin()
			err = c.dl.DeadLetter(ctx, p.d, p.why.Error())
			end()
		}
		switch {
		case err == nil:
			c.deadLettered(p.d, p.why)
		case errors.Is(err, bus.ErrStaleDelivery):
			c.log.Warn("dead-letter retry: the delivery is stale; the broker redelivers the notification", "err", err, "reason", p.why.Error())
		default:
			p.backoff = min(2*p.backoff, c.cfg.ReconnectMax)
			p.next = time.Now().Add(p.backoff)
			if !failed {
				c.log.Warn("dead-letter retry failed", "err", err, "reason", p.why.Error(), "routing_key", p.d.RoutingKey(), "retry_in", p.backoff,
					"pending", len(c.pending))
			}
			failed = true
			keep = append(keep, p)
		}
	}
	clear(c.pending[len(keep):])
	c.pending = keep
}
