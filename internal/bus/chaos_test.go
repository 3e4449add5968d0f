//go:build chaos

package bus

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus/bustest"
)

// TestChaosBrokerRestartLosesNothing stops and starts the RabbitMQ application
// twice while events are being published and consumed: Publish never
// fails, the spool takes the outage, drains afterwards, and every event
// reaches the consumer; the subscriber reports a gap after each restart.
func TestChaosBrokerRestartLosesNothing(t *testing.T) {
	u := bustest.VHost(t)
	t.Cleanup(func() { rabbitmqctlT(t, "start_app") }) // never leave it stopped
	p := newTestPublisher(t, u, "", nil)
	start(t, p.Run)
	c, err := NewConsumer(ConsumerConfig{Conn: fastConn(u)}, Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c.Run)
	s, err := NewSubscriber(SubscriberConfig{Conn: fastConn(u)}, Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s.Run)
	var gaps atomic.Int64
	go func() {
		for up := range s.Updates() {
			if up.Gap {
				gaps.Add(1)
			}
		}
	}()

	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	go func() {
		for d := range c.Deliveries() {
			mu.Lock()
			seen[d.MessageID()]++
			mu.Unlock()
			_ = d.Ack(false) // a stale ack means a redelivery: counted again
		}
	}()

	ctx, stopPublishing := context.WithCancel(context.Background())
	var published atomic.Int64
	pubErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if err := p.Publish(context.Background(), testEvent(i)); err != nil {
				pubErr <- err
				return
			}
			published.Store(int64(i + 1))
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // a steady stream, not a flood
			}
		}
	})

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 2m", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for round := range 2 {
		before := published.Load()
		waitFor("publishing", func() bool { return published.Load() > before+500 })
		rabbitmqctlT(t, "stop_app")
		waitFor("publisher notices the outage", func() bool { return metricValue(t, p.conn.connected) == 0 })
		spooled, _ := p.Spooled()
		waitFor("spool grows during the outage", func() bool { n, _ := p.Spooled(); return n > spooled+200 })
		rabbitmqctlT(t, "start_app")
		waitFor("publisher reconnects", func() bool { return metricValue(t, p.conn.connected) == 1 })
		t.Logf("round %d: %d published so far", round+1, published.Load())
	}
	stopPublishing()
	wg.Wait()
	select {
	case err := <-pubErr:
		t.Fatalf("Publish failed during the restarts: %v", err)
	default:
	}
	n := int(published.Load())
	waitFor("spool drains", func() bool { k, _ := p.Spooled(); return k == 0 })
	waitFor("every event consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			if seen[testEvent(i).EventID] == 0 {
				return false
			}
		}
		return true
	})
	if g := gaps.Load(); g < 3 {
		t.Errorf("subscriber signalled %d gaps, want 3 (start and two restarts)", g)
	}
	if r := metricValue(t, p.conn.reconnects); r < 2 {
		t.Errorf("publisher reconnects = %v, want at least 2", r)
	}
	mu.Lock()
	dups := 0
	for _, k := range seen {
		dups += k - 1
	}
	mu.Unlock()
	t.Logf("%d events published and consumed through two broker restarts; %d duplicate deliveries", n, dups)
}

// TestChaosDeadLetterDuringResourceAlarm raises a disk alarm on the broker,
// which blocks every connection that publishes, and dead-letters a message
// meanwhile. The dead-letter publish is blocked and gives up after its
// timeout, but it is not done on the consuming connection: the reject that
// follows it (what the persister does), the acks and the deliveries go on,
// and the queue drains. Once the alarm clears, dead-lettering works again.
func TestChaosDeadLetterDuringResourceAlarm(t *testing.T) {
	u := bustest.VHost(t)
	ctx := context.Background()
	p := newTestPublisher(t, u, "", nil)
	start(t, p.Run)
	const n = 20
	for i := range n {
		if err := p.Publish(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitEmpty(t, p, 30*time.Second)
	newConsumer := func() (*Consumer, *runner) {
		t.Helper()
		c, err := NewConsumer(ConsumerConfig{Conn: fastConn(u), Prefetch: 1, DeadLetterTimeout: time.Second}, Deps{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return c, start(t, c.Run)
	}
	c, running := newConsumer()
	waitUntil(t, "dead-letter connection up", time.Minute, func() bool { return metricValue(t, c.dlConn.connected) == 1 })

	limit := strings.TrimSpace(rabbitmqctlOut(t, "-q", "eval", "rabbit_disk_monitor:get_disk_free_limit()."))
	if _, err := strconv.ParseInt(limit, 10, 64); err != nil {
		t.Fatalf("disk free limit %q: %v", limit, err)
	}
	t.Cleanup(func() { rabbitmqctlT(t, "set_disk_free_limit", limit) }) // never leave the alarm on
	rabbitmqctlT(t, "set_disk_free_limit", "1000000000000000000")
	waitUntil(t, "disk alarm raised", time.Minute, func() bool {
		return strings.Contains(rabbitmqctlOut(t, "-q", "eval", "rabbit_alarm:get_alarms()."), "disk")
	})

	next := func(c *Consumer, what string) Delivery {
		t.Helper()
		select {
		case d := <-c.Deliveries():
			return d
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no delivery within 30s", what)
		}
		return Delivery{}
	}
	first := next(c, "first delivery")
	start := time.Now()
	if err := c.DeadLetter(ctx, first, "test: during a resource alarm"); err == nil {
		t.Fatal("DeadLetter during a disk alarm succeeded; want the publish blocked")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("DeadLetter took %s during the alarm; want it bounded by its 1s timeout", took)
	}
	t.Logf("dead-letter publish gave up after %s", time.Since(start).Round(time.Millisecond))
	if err := first.Nack(false, false); err != nil {
		t.Fatalf("reject after the failed dead-letter: %v", err)
	}
	for i := 1; i < n; i++ {
		if err := next(c, fmt.Sprintf("delivery %d of %d during the alarm", i+1, n)).Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "persist queue drained", 30*time.Second, func() bool { return queueDepth(t, u, PersistQueue) == 0 })
	// Stopping it is not held up by the blocked connection's close.
	stopping := time.Now()
	running.stop(t)
	took := time.Since(stopping)
	t.Logf("stopped in %s during the alarm", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("the consumer took %s to stop during the alarm", took)
	}

	rabbitmqctlT(t, "set_disk_free_limit", limit)
	waitUntil(t, "alarm cleared", time.Minute, func() bool {
		return !strings.Contains(rabbitmqctlOut(t, "-q", "eval", "rabbit_alarm:get_alarms()."), "disk")
	})
	c, _ = newConsumer()
	if err := p.Publish(ctx, testEvent(n)); err != nil {
		t.Fatal(err)
	}
	last, attempts := next(c, "delivery after the alarm"), 0
	waitUntil(t, "dead-letter after the alarm", time.Minute, func() bool {
		attempts++
		return c.DeadLetter(ctx, last, "test: after the alarm") == nil
	})
	// The rejected message went through the queue's dead-letter exchange,
	// the last one through DeadLetter; the publish given up on during the
	// alarm may land too, once it cleared (as may a retried one).
	waitUntil(t, "dead-letter queue filled", 30*time.Second, func() bool { return queueDepth(t, u, DeadLetterQueue) >= 2 })
	time.Sleep(time.Second)
	if d := queueDepth(t, u, DeadLetterQueue); d > 2+attempts {
		t.Fatalf("%d messages in the dead-letter queue; want at most %d", d, 2+attempts)
	}
}

// waitUntil polls cond every 50ms until it holds, failing after within.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rabbitmqctlOut runs rabbitmqctl and returns its output.
func rabbitmqctlOut(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %v: %v: %s", args, err, out)
	}
	return string(out)
}
