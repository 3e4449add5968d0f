package openstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/logtest"
)

// runConsumer runs a consumer of cfg publishing to pub until the test
// ends (before its vhost goes, if it fails early); stop ends it sooner and
// returns what Run returned.
func runConsumer(t *testing.T, cfg Config, pub *fakePublisher) (stop func() error) {
	t.Helper()
	return runConsumerWith(t, cfg, Deps{Publisher: pub})
}

// runConsumerWith is runConsumer with deps (its logger is the test's).
func runConsumerWith(t *testing.T, cfg Config, deps Deps) (stop func() error) {
	t.Helper()
	_, stop = startConsumer(t, cfg, deps, 0)
	return stop
}

// startConsumer is runConsumerWith that returns the consumer, whose stall
// limit is stallLimit when that is not 0.
func startConsumer(t *testing.T, cfg Config, deps Deps, stallLimit time.Duration) (c *Consumer, stop func() error) {
	t.Helper()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if stallLimit != 0 {
		c.stallLimit = stallLimit
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return c, stop
}

type fakePublisher struct {
	mu    sync.Mutex
	evs   []event.Event
	calls int
	fail  int // fail this many calls; -1: always
}

func (p *fakePublisher) Publish(_ context.Context, evs ...event.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail != 0 {
		if p.fail > 0 {
			p.fail--
		}
		return errors.New("spool full")
	}
	for i, ev := range evs { // as bus.Publisher does: nothing spooled unless all encode
		if _, err := event.Encode(ev); err != nil {
			return fmt.Errorf("publish: %w", &event.ItemError{Index: i, EventID: ev.EventID, Err: err})
		}
	}
	p.evs = append(p.evs, evs...)
	return nil
}

func (p *fakePublisher) snapshot() ([]event.Event, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Event(nil), p.evs...), p.calls
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type broker struct {
	t    *testing.T
	conn *amqp.Connection
}

func dial(t *testing.T, url string) *broker {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &broker{t: t, conn: conn}
}

// queue returns the ready messages of q, or -1 if it does not exist.
func (b *broker) queue(q string) int {
	ch, err := b.conn.Channel()
	if err != nil {
		b.t.Fatal(err)
	}
	defer ch.Close()
	st, err := ch.QueueDeclarePassive(q, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum})
	if err != nil {
		return -1
	}
	return st.Messages
}

// publish sends file to nova's exchange, again while it is unroutable (the
// consumer has not bound its queue yet).
func (b *broker) publish(file string) {
	b.t.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		b.t.Fatal(err)
	}
	waitFor(b.t, "a routable notification", func() bool { return b.publishOnce(body) })
}

func (b *broker) publishOnce(body []byte) bool {
	b.t.Helper()
	ch, err := b.conn.Channel()
	if err != nil {
		b.t.Fatal(err)
	}
	defer ch.Close()
	// As oslo.messaging sends notifications: topic exchange "nova", not
	// durable by default, JSON body with the envelope.
	if err := ch.ExchangeDeclare("nova", "topic", false, false, false, false, nil); err != nil {
		b.t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "nova", "versioned_notifications.info", true, false,
		amqp.Publishing{ContentType: "application/json", ContentEncoding: "utf-8", Body: body, DeliveryMode: amqp.Persistent})
	if err != nil {
		b.t.Fatal(err)
	}
	if !dc.Wait() {
		b.t.Fatal("broker nacked a notification")
	}
	select {
	case <-returns:
		return false
	default:
		return true
	}
}

func TestConsumerRabbitMQ(t *testing.T) {
	url := bustest.VHost(t)
	b := dial(t, url)
	pub := &fakePublisher{fail: 2}
	stop := runConsumer(t, Config{Conn: bus.Conn{URL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, RedeclareInterval: 100 * time.Millisecond}, pub)
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })

	for _, f := range []string{"instance_create_end", "instance_update", "service_update", "compute_exception", "instance_delete_end"} {
		b.publish("testdata/" + f + ".json")
	}
	b.publish("testdata/bad/not_json.json")

	waitFor(t, "4 published events", func() bool { evs, _ := pub.snapshot(); return len(evs) == 4 })
	evs, calls := pub.snapshot()
	if calls < 3 {
		t.Errorf("%d Publish calls, want the 2 failures retried", calls)
	}
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, string(ev.Kind)+":"+ev.Entity.Type)
	}
	if got := strings.Join(kinds, ","); got != "entity.upsert:nova.instance,entity.upsert:nova.instance,entity.upsert:nova.host,entity.delete:nova.instance" {
		t.Errorf("events in order %s", got)
	}

	// The bad notification is dead-lettered with its reason.
	var dl amqp.Delivery
	waitFor(t, "the dead-lettered notification", func() bool {
		ch, err := b.conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		m, ok, err := ch.Get(bus.DeadLetterQueue, true)
		if err != nil || !ok {
			return false
		}
		dl = m
		return true
	})
	if r, _ := dl.Headers[bus.ReasonHeader].(string); !strings.Contains(r, "envelope is not JSON") {
		t.Errorf("dead-letter reason %q", r)
	}
	waitFor(t, "the queue to be acked empty", func() bool { return b.queue(DefaultQueue) == 0 })
	// OpenStack's broker gets the dead-letter queue, not Causeway's
	// topology.
	if n := b.queue(bus.PersistQueue); n >= 0 {
		t.Errorf("%s was declared on the OpenStack broker", bus.PersistQueue)
	}

	// A broker restart deletes nova's non-durable exchange and the
	// bindings: they are declared again, and notifications flow again.
	ch, err := b.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDelete("nova", false, false); err != nil {
		t.Fatal(err)
	}
	_ = ch.Close()
	waitFor(t, "nova's exchange declared again", func() bool {
		ch, err := b.conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		return ch.ExchangeDeclarePassive("nova", "topic", false, false, false, false, nil) == nil
	})
	b.publish("testdata/instance_power_off_end.json")
	waitFor(t, "the event after the redeclare", func() bool { evs, _ := pub.snapshot(); return len(evs) == 5 })
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestConsumerDatesFutureNotificationsNow: a notification dated further
// ahead of this host's clock than max_clock_skew (nova's clock is ahead)
// is published dated now plus the skew; one within the skew keeps its
// time.
func TestConsumerDatesFutureNotificationsNow(t *testing.T) {
	url := bustest.VHost(t)
	b := dial(t, url)
	pub := &fakePublisher{}
	// The testdata notifications are dated 2026-03-01 10:00:10.123456
	// (create.end) and 10:05:00.000001 (update).
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	stop := runConsumerWith(t, Config{Conn: bus.Conn{URL: url}, MaxClockSkew: time.Minute},
		Deps{Publisher: pub, Now: func() time.Time { return now }})
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })
	b.publish("testdata/instance_create_end.json")
	b.publish("testdata/instance_update.json")
	waitFor(t, "2 published events", func() bool { evs, _ := pub.snapshot(); return len(evs) == 2 })
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	evs, _ := pub.snapshot()
	want := []time.Time{time.Date(2026, 3, 1, 10, 0, 10, 123456000, time.UTC), now.Add(time.Minute)}
	for i, ev := range evs {
		if !ev.ObservedAt.Equal(want[i]) {
			t.Errorf("event %d observed at %v; want %v", i, ev.ObservedAt, want[i])
		}
	}
}

// TestConsumerAcksOnlyAfterPublish: while Publish fails, the notification
// stays unacked; when the consumer stops it is back in the queue.
func TestConsumerAcksOnlyAfterPublish(t *testing.T) {
	url := bustest.VHost(t)
	b := dial(t, url)
	pub := &fakePublisher{fail: -1}
	stop := runConsumer(t, Config{Conn: bus.Conn{URL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}}, pub)
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })
	b.publish("testdata/instance_create_end.json")
	waitFor(t, "publish attempts", func() bool { _, calls := pub.snapshot(); return calls >= 2 })
	if n := b.queue(DefaultQueue); n != 0 {
		t.Errorf("%d ready while the consumer holds the notification, want 0", n)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	waitFor(t, "the unacked notification back in the queue", func() bool { return b.queue(DefaultQueue) == 1 })
	if evs, _ := pub.snapshot(); len(evs) != 0 {
		t.Errorf("%d events published by a failing publisher", len(evs))
	}
}

// TestOversizedNotificationIsDeadLettered: a notification whose event is
// over event.MaxEventBytes once encoded is refused for good by the
// publisher; the consumer dead-letters that notification with the reason
// and publishes the others of its batch, instead of retrying the batch
// for ever.
func TestOversizedNotificationIsDeadLettered(t *testing.T) {
	body, err := os.ReadFile("testdata/instance_update.json")
	if err != nil {
		t.Fatal(err)
	}
	huge := bytes.Replace(body, []byte(`\"user_id\": \"fake\"`), []byte(`\"user_id\": \"`+strings.Repeat("u", event.MaxEventBytes)+`\"`), 1)
	if bytes.Equal(huge, body) {
		t.Fatal("the fixture has no user_id to grow")
	}
	url := bustest.VHost(t)
	b := dial(t, url)
	pub := &fakePublisher{}
	runConsumer(t, Config{Conn: bus.Conn{URL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, RedeclareInterval: 100 * time.Millisecond}, pub)
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })
	b.publish("testdata/instance_create_end.json")
	waitFor(t, "a routable notification", func() bool { return b.publishOnce(huge) })
	b.publish("testdata/instance_delete_end.json")

	waitFor(t, "the oversized notification dead-lettered", func() bool { return b.queue(bus.DeadLetterQueue) == 1 })
	waitFor(t, "the others published", func() bool { evs, _ := pub.snapshot(); return len(evs) == 2 })
	waitFor(t, "the queue acked empty", func() bool { return b.queue(DefaultQueue) == 0 })
	dls, _, err := bus.BrowseDeadLetters(context.Background(), url, 10)
	if err != nil || len(dls) != 1 || !strings.Contains(dls[0].Reason, "limit") {
		t.Errorf("dead letters %+v, %v; want the oversized one, with the size limit as its reason", dls, err)
	}
}

// TestDeadLetterFailureIsCountedAndRetried: with the dead-letter exchange
// gone, a bad notification cannot be dead-lettered; it is counted as
// dead_letter_failed and stays unacked (not lost, not blocking the others).
// The consumer retries it, and once its dead-letter connection has declared
// the exchange again, it is dead-lettered with its reason, without waiting
// for a redelivery.
func TestDeadLetterFailureIsCountedAndRetried(t *testing.T) {
	url := bustest.VHost(t)
	b := dial(t, url)
	conn := bus.Conn{URL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}
	// No periodic redeclare: it would bring the exchange back at once.
	cfg := Config{Conn: conn, RedeclareInterval: time.Hour}
	reg := prometheus.NewRegistry()
	pub := &fakePublisher{}
	runConsumerWith(t, cfg, Deps{Publisher: pub, Registerer: reg})
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })
	// Both its connections declare the exchange when they connect.
	waitFor(t, "the consumer's connections", func() bool {
		return gathered(t, reg, "causeway_bus_consumer_connected", "") == 1 && gathered(t, reg, "causeway_bus_consumer_dead_letter_connected", "") == 1
	})
	ch, err := b.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDelete(bus.DeadLetterExchange, false, false); err != nil {
		t.Fatal(err)
	}
	_ = ch.Close()
	b.publish("testdata/bad/not_json.json")
	b.publish("testdata/instance_create_end.json")
	waitFor(t, "the failed dead-letter counted", func() bool {
		return gathered(t, reg, "causeway_listener_notifications_total", ResultDeadLetterFailed) >= 1
	})
	waitFor(t, "the good notification published", func() bool { evs, _ := pub.snapshot(); return len(evs) == 1 })
	waitFor(t, "the bad notification dead-lettered by a retry", func() bool {
		return gathered(t, reg, "causeway_listener_notifications_total", ResultDeadLettered) == 1
	})
	dls, _, err := bus.BrowseDeadLetters(context.Background(), url, 10)
	if err != nil || len(dls) != 1 || !strings.Contains(dls[0].Reason, "envelope is not JSON") {
		t.Fatalf("dead letters %+v, %v; want the bad notification with its reason", dls, err)
	}
	waitFor(t, "the queue acked empty", func() bool { return b.queue(DefaultQueue) == 0 })
}

// gathered sums the samples of metric name (with label result = result,
// when given) in g.
func gathered(t *testing.T, g prometheus.Gatherer, name, result string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	samples:
		for _, m := range mf.GetMetric() {
			if result != "" {
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" && l.GetValue() != result {
						continue samples
					}
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// scriptedDeadLetterer answers DeadLetter with err, counting the calls.
type scriptedDeadLetterer struct {
	err   error
	calls int
}

func (s *scriptedDeadLetterer) DeadLetter(context.Context, bus.Delivery, string) error {
	s.calls++
	return s.err
}

// TestDeadLetterRetryRound: the first failure of a retry round puts off
// every due retry, untried (each could take the whole dead-letter timeout
// while good notifications wait); a stale delivery is dropped; once the
// path works, a round dead-letters all that are due.
func TestDeadLetterRetryRound(t *testing.T) {
	cfg := Config{Conn: bus.Conn{URL: "amqp://guest:guest@127.0.0.1:5672/unused", ReconnectMin: time.Second, ReconnectMax: 8 * time.Second}}
	c, err := New(cfg, Deps{Publisher: &fakePublisher{}})
	if err != nil {
		t.Fatal(err)
	}
	dl := &scriptedDeadLetterer{err: errors.New("dead-letter exchange gone")}
	c.dl = dl
	past := time.Now().Add(-time.Second)
	later := time.Now().Add(time.Hour)
	for _, next := range []time.Time{past, past, past, later} {
		c.pending = append(c.pending, pendingDeadLetter{why: errors.New("bad"), backoff: time.Second, next: next})
	}
	c.retryDeadLetters(context.Background())
	if dl.calls != 1 || len(c.pending) != 4 {
		t.Fatalf("a failing round made %d calls and kept %d; want 1 call, all 4 kept", dl.calls, len(c.pending))
	}
	for i, p := range c.pending[:3] {
		if p.backoff != 2*time.Second || !p.next.After(time.Now()) {
			t.Errorf("due retry %d after the failed round: backoff %s, next in %s; want 2s, in the future", i, p.backoff, time.Until(p.next))
		}
	}
	if got := c.nextRetry(); got <= time.Second || got > 2*time.Second {
		t.Errorf("next retry in %s; want within the doubled backoff", got)
	}

	for i := range c.pending[:3] {
		c.pending[i].next = past
	}
	dl.err, dl.calls = fmt.Errorf("dead-letter x: %w", bus.ErrStaleDelivery), 0
	c.retryDeadLetters(context.Background())
	if dl.calls != 3 || len(c.pending) != 1 {
		t.Fatalf("stale deliveries: %d calls, %d kept; want 3 calls, only the one not due kept", dl.calls, len(c.pending))
	}

	c.pending[0].next = past
	c.pending = append(c.pending, pendingDeadLetter{why: errors.New("bad"), backoff: time.Second, next: past})
	dl.err, dl.calls = nil, 0
	c.retryDeadLetters(context.Background())
	if dl.calls != 2 || len(c.pending) != 0 {
		t.Fatalf("a working path: %d calls, %d kept; want 2 calls, none kept", dl.calls, len(c.pending))
	}
}

// TestReconnectMaxDefaultsToMin: with url set, a reconnect_min above the
// default reconnect_max and reconnect_max left out (which Validate, and so
// check-config, accepts) is taken, the maximum being the minimum.
func TestReconnectMaxDefaultsToMin(t *testing.T) {
	cfg := Config{Conn: bus.Conn{URL: "amqp://guest:guest@127.0.0.1:5672/unused", ReconnectMin: 3 * bus.DefaultReconnectMax}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	c, err := New(cfg, Deps{Publisher: &fakePublisher{}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.cfg.ReconnectMax != cfg.ReconnectMin {
		t.Errorf("reconnect_max defaults to %s with reconnect_min %s, want the minimum", c.cfg.ReconnectMax, cfg.ReconnectMin)
	}
}

// TestRedeclareKeepsItsConnection: the exchange, queue and bindings are
// declared again every redeclare_interval (5 s by default), and each
// declare dialled a connection of its own and closed it: on OpenStack's
// broker, a connection opened and closed every five seconds for ever,
// three lines of its log each time. One connection is kept for them (and
// dialled again only once lost); redeclaring still brings nova's exchange
// back after a broker restart deleted it.
func TestRedeclareKeepsItsConnection(t *testing.T) {
	url := bustest.VHost(t)
	b := dial(t, url)
	var dials atomic.Int32
	c, err := New(Config{Conn: bus.Conn{URL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}, RedeclareInterval: 20 * time.Millisecond},
		Deps{Publisher: &fakePublisher{}, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	dialer := c.dial
	c.dial = func(network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer(network, addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })
	for i := range 3 {
		ch, err := b.conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.ExchangeDelete("nova", false, false); err != nil {
			t.Fatal(err)
		}
		_ = ch.Close()
		waitFor(t, fmt.Sprintf("nova's exchange declared again (%d)", i+1), func() bool {
			ch, err := b.conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			return ch.ExchangeDeclarePassive("nova", "topic", false, false, false, false, nil) == nil
		})
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections dialled for the declares, want 1 kept", n)
	}
}

// returnUnacked takes the first message of q on a channel of its own and
// closes the channel without acking it, as a listener that crashed with
// the message in hand: the broker returns it to the queue.
func (b *broker) returnUnacked(q string) {
	b.t.Helper()
	ch, err := b.conn.Channel()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := ch.Qos(1, 0, false); err != nil {
		b.t.Fatal(err)
	}
	msgs, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	select {
	case <-msgs:
	case <-time.After(20 * time.Second):
		b.t.Fatal("timed out waiting for a delivery")
	}
	if err := ch.Close(); err != nil {
		b.t.Fatal(err)
	}
	waitFor(b.t, "the message back in "+q, func() bool { return b.queue(q) == 1 })
}

// TestPoisonNotificationIsDeadLetteredAfterMaxDeliveries: a notification
// delivered max_deliveries times without an ack (each time the listener
// crashed with it in hand) is dead-lettered with the reason at its next
// delivery, not processed again: the queue has no delivery limit of its
// own, and one that crashes the listener would crash it for ever. One
// returned fewer times is processed as usual.
func TestPoisonNotificationIsDeadLetteredAfterMaxDeliveries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		returns  int
		poisoned bool
	}{
		{"under the limit", 2, false},
		{"at the limit", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := bustest.VHost(t)
			b := dial(t, url)
			cfg := Config{Conn: bus.Conn{URL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, MaxDeliveries: 3}
			// The queue as the listener declares it, before the listener runs.
			c, err := New(cfg, Deps{Publisher: &fakePublisher{}})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.declare(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.closeDeclareConn()
			b.publish("testdata/instance_create_end.json")
			for range tc.returns {
				b.returnUnacked(DefaultQueue)
			}

			pub := &fakePublisher{}
			reg := prometheus.NewRegistry()
			runConsumerWith(t, cfg, Deps{Publisher: pub, Registerer: reg})
			waitFor(t, "the queue acked empty", func() bool { return b.queue(DefaultQueue) == 0 })
			evs, _ := pub.snapshot()
			dls, _, err := bus.BrowseDeadLetters(context.Background(), url, 10)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.poisoned {
				if len(evs) != 1 || len(dls) != 0 {
					t.Fatalf("%d events published, %d dead letters; want the notification published", len(evs), len(dls))
				}
				return
			}
			if len(evs) != 0 {
				t.Errorf("%d events published from a notification delivered %d times before", len(evs), tc.returns)
			}
			if len(dls) != 1 || !strings.Contains(dls[0].Reason, "max_deliveries is 3") {
				t.Fatalf("dead letters %+v; want the notification, with max_deliveries in its reason", dls)
			}
			if got := gathered(t, reg, "causeway_listener_notifications_total", ResultDeadLettered); got != 1 {
				t.Errorf("dead_lettered %v, want 1", got)
			}
		})
	}
}

// TestDecodePanicIsDeadLettered: a notification that makes the decoder
// panic is dead-lettered with the panic as its reason, and the listener
// goes on with the others: a panic would crash it, and every notification
// it held would come back counted as a failed delivery.
func TestDecodePanicIsDeadLettered(t *testing.T) {
	url := bustest.VHost(t)
	b := dial(t, url)
	pub := &fakePublisher{}
	c, err := New(Config{Conn: bus.Conn{URL: url}}, Deps{Publisher: pub, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	c.decodeFn = func(source string, body []byte) ([]event.Event, error) {
		if bytes.Contains(body, []byte("instance.update")) {
			var evs []event.Event
			_ = evs[len(evs)] // index out of range: a decoder bug
		}
		return Decode(source, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })
	b.publish("testdata/instance_update.json")
	b.publish("testdata/instance_create_end.json")
	waitFor(t, "the other notification published", func() bool { evs, _ := pub.snapshot(); return len(evs) == 1 })
	waitFor(t, "the queue acked empty", func() bool { return b.queue(DefaultQueue) == 0 })
	dls, _, err := bus.BrowseDeadLetters(context.Background(), url, 10)
	if err != nil || len(dls) != 1 || !strings.Contains(dls[0].Reason, "panic") {
		t.Errorf("dead letters %+v, %v; want the notification, with the panic as its reason", dls, err)
	}
}

// TestFutureNotificationsAreNotLoggedPerBatch: nova's clock ahead stays
// ahead, and every batch of its notifications logged a warning about it;
// they are counted each, and logged at most once a minute.
func TestFutureNotificationsAreNotLoggedPerBatch(t *testing.T) {
	url := bustest.VHost(t)
	b := dial(t, url)
	pub := &fakePublisher{}
	h := logtest.NewHandler()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) // the update is dated 10:05
	stop := runConsumerWith(t, Config{Conn: bus.Conn{URL: url}, MaxClockSkew: time.Minute},
		Deps{Publisher: pub, Now: func() time.Time { return now }, Logger: slog.New(h)})
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })
	for i := 1; i <= 3; i++ {
		b.publish("testdata/instance_update.json")
		waitFor(t, "the notification published", func() bool { evs, _ := pub.snapshot(); return len(evs) == i })
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	future := h.Count(func(r slog.Record) bool { return strings.Contains(r.Message, "dated in the future") })
	if future != 1 {
		t.Errorf("3 batches of notifications dated in the future logged %d warnings about it; want 1", future)
	}
}
