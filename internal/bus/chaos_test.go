//go:build chaos

package bus

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus/bustest"
)

// TestBrokerRestartLosesNothing stops and starts the RabbitMQ application
// twice while events are being published and consumed: Publish never
// fails, the spool takes the outage, drains afterwards, and every event
// reaches the consumer; the subscriber reports a gap after each restart.
func TestBrokerRestartLosesNothing(t *testing.T) {
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
