package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
)

// heartbeat is short enough that a dead broker is noticed in seconds even
// when nothing is published.
const heartbeat = 5 * time.Second

// connector owns the reconnect loop of one component's connection.
type connector struct {
	cfg        Conn
	log        *slog.Logger
	reconnects prometheus.Counter
	failures   prometheus.Counter
	blocked    prometheus.Gauge
	connected  prometheus.Gauge
	// isBlocked is set while the broker blocks the connection (resource
	// alarm): slow confirms are then expected, not a fault.
	isBlocked atomic.Bool
	// unblocked is when the broker last stopped blocking the connection
	// (nil: never), so that liveness does not count the time it blocked.
	unblocked atomic.Pointer[time.Time]
}

// setBlocked records whether the broker blocks the connection.
func (c *connector) setBlocked(active bool) {
	if c.isBlocked.Swap(active) && !active {
		now := time.Now()
		c.unblocked.Store(&now)
	}
}

// blockedWithin reports whether the broker blocks the connection, or
// stopped blocking it no more than d ago.
func (c *connector) blockedWithin(d time.Duration) bool {
	if c.isBlocked.Load() {
		return true
	}
	t := c.unblocked.Load()
	return t != nil && time.Since(*t) <= d
}

// newConnector registers causeway_bus_<role>_{reconnects_total,connected,
// connection_blocked} with the component's constant labels.
func newConnector(cfg Conn, log *slog.Logger, role string, labels prometheus.Labels, reg prometheus.Registerer) (*connector, error) {
	c := &connector{
		cfg: cfg,
		log: log,
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_bus_" + role + "_reconnects_total", ConstLabels: labels,
			Help: "Broker connections (re)established after the first one.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_bus_" + role + "_session_failures_total", ConstLabels: labels,
			Help: "Failed dials and broker sessions that ended in an error (each is retried with backoff).",
		}),
		blocked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_bus_" + role + "_connection_blocked", ConstLabels: labels,
			Help: "1 while the broker blocks the connection (resource alarm).",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_bus_" + role + "_connected", ConstLabels: labels,
			Help: "1 while the broker connection is up and set up.",
		}),
	}
	if err := register(reg, c.reconnects, c.failures, c.blocked, c.connected); err != nil {
		return nil, err
	}
	return c, nil
}

func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metric: %w", err)
		}
	}
	return nil
}

// run dials, calls session with the live connection and a context that ends
// when the connection dies, and repeats with backoff until ctx ends. It
// returns nil when ctx ends. session must return promptly once its context
// ends; run closes the connection after it returns.
func (c *connector) run(ctx context.Context, session func(ctx context.Context, conn *amqp.Connection) error) error {
	backoff := c.cfg.ReconnectMin
	connected := false // ever, by this run
	for {
		start := time.Now()
		err := c.once(ctx, session, &connected)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 10*c.cfg.ReconnectMax {
			backoff = c.cfg.ReconnectMin // it ran well for a while: start over
		}
		c.failures.Inc()
		wait := backoff/2 + rand.N(backoff/2+1) // jitter, so clients do not stampede
		c.log.Warn("broker session ended", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, c.cfg.ReconnectMax)
	}
}

func (c *connector) once(ctx context.Context, session func(context.Context, *amqp.Connection) error, connected *bool) error {
	conn, err := amqp.DialConfig(c.cfg.URL, amqp.Config{
		Heartbeat: heartbeat,
		Locale:    "en_US",
		Dial:      amqp.DefaultDial(10 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("dial %s: %w", redactURL(c.cfg.URL), err)
	}
	if *connected {
		c.reconnects.Inc()
	}
	*connected = true
	sctx, cancel := context.WithCancelCause(ctx)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	done := make(chan struct{})
	go func() { // drains both notify channels until the library closes them
		defer close(done)
		for closed != nil || blocked != nil {
			select {
			case e, ok := <-closed:
				if !ok {
					closed = nil
					cancel(errors.New("connection closed"))
					continue
				}
				cancel(fmt.Errorf("connection closed: %w", e))
			case b, ok := <-blocked:
				if !ok {
					blocked = nil
					continue
				}
				c.setBlocked(b.Active)
				if b.Active {
					c.blocked.Set(1)
					c.log.Warn("broker blocked the connection", "reason", b.Reason)
				} else {
					c.blocked.Set(0)
					c.log.Info("broker unblocked the connection")
				}
			}
		}
	}()
	// Closing the connection when ctx ends unblocks a session stuck in a
	// publish under TCP pushback.
	stop := context.AfterFunc(sctx, func() { closeConn(conn) })
	c.log.Info("connected to broker", "url", redactURL(c.cfg.URL))
	err = session(sctx, conn)
	stop()
	closeConn(conn)
	<-done
	c.connected.Set(0)
	c.blocked.Set(0)
	c.setBlocked(false)
	if err == nil {
		err = context.Cause(sctx)
	}
	cancel(nil)
	return err
}

// closeTimeout bounds the close handshake: a broker that blocks the
// connection (resource alarm) stops reading it and would never answer. The
// library's heartbeater pushes the read deadline on as heartbeats arrive,
// so the close ends when the next heartbeat write meets the expired write
// deadline: within about closeTimeout plus a heartbeat interval.
const closeTimeout = 5 * time.Second

func closeConn(conn *amqp.Connection) { _ = conn.CloseDeadline(time.Now().Add(closeTimeout)) }

// publishBounded publishes on cc, a channel of c's connection, as
// confirmChannel.publish does, but fails at once while the broker blocks
// the connection (a resource alarm), and returns when ctx ends even if the
// socket write itself blocks: the publish then finishes on its own, and
// may still land once the alarm clears.
func (c *connector) publishBounded(ctx context.Context, cc *confirmChannel, exchange, key string, mandatory bool, msg amqp.Publishing) error {
	if c.isBlocked.Load() {
		return fmt.Errorf("publish to %s: the broker blocks the connection (resource alarm)", exchange)
	}
	published := make(chan error, 1)
	go func() { published <- cc.publish(ctx, exchange, key, mandatory, msg) }()
	select {
	case err := <-published:
		return err
	case <-ctx.Done():
		return fmt.Errorf("publish to %s: %w", exchange, ctx.Err())
	}
}

// confirmChannel is a channel in confirm mode on which publishes are done
// one at a time: publish, wait for the confirm, and see whether the broker
// returned the message (mandatory and unroutable). It serves the rare or
// already-batched publishes (DeadLetter, PublishSequenced); the Publisher has
// its own windowed loop.
type confirmChannel struct {
	mu      chan struct{} // a lock that a waiter can give up on with ctx
	conn    *amqp.Connection
	ch      *amqp.Channel
	returns chan amqp.Return
}

func newConfirmChannel(conn *amqp.Connection) (*confirmChannel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		return nil, fmt.Errorf("enable confirms: %w", err)
	}
	cc := &confirmChannel{mu: make(chan struct{}, 1), conn: conn, ch: ch}
	// Only one publish is in flight at a time, so one return at most is
	// pending: the buffer never fills and never blocks the library's reader.
	cc.returns = ch.NotifyReturn(make(chan amqp.Return, 4))
	return cc, nil
}

// errReturned means the broker could not route a mandatory message.
var errReturned = errors.New("message returned by the broker as unroutable")

func (cc *confirmChannel) publish(ctx context.Context, exchange, key string, mandatory bool, msg amqp.Publishing) error {
	select {
	case cc.mu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-cc.mu }()
	dc, err := cc.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, mandatory, false, msg)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", exchange, err)
	}
	var ack bool
	select {
	case <-dc.Done():
		ack = dc.Acked()
	case <-ctx.Done():
		// The message may still be confirmed; the caller treats this as a
		// failure and retries, which is a harmless duplicate.
		return ctx.Err()
	}
	// The broker sends basic.return before the ack of the same message and
	// the library hands it to our channel before handling the ack, so a
	// return for this publish is already buffered here.
	returned := false
drain:
	for {
		select {
		case _, ok := <-cc.returns:
			if !ok {
				break drain
			}
			returned = true
		default:
			break drain
		}
	}
	switch {
	case !ack:
		return fmt.Errorf("publish to %s: broker nacked or channel closed", exchange)
	case returned:
		return fmt.Errorf("publish to %s: %w", exchange, errReturned)
	}
	return nil
}
