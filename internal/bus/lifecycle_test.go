package bus

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestRunEndsOnCancelWithoutBroker: with no broker listening, every Run
// keeps retrying with backoff, returns nil promptly once its context ends,
// and closes its output channel.
func TestRunEndsOnCancelWithoutBroker(t *testing.T) {
	conn := Conn{URL: "amqp://guest:guest@127.0.0.1:1/", ReconnectMin: 5 * time.Millisecond, ReconnectMax: 20 * time.Millisecond}
	p, err := NewPublisher(PublisherConfig{Conn: conn, SpoolPath: filepath.Join(t.TempDir(), "s.db")}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	c, err := NewConsumer(ConsumerConfig{Conn: conn}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSubscriber(SubscriberConfig{Conn: conn}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	bp, err := NewBatchPublisher(conn, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runs := []func(context.Context) error{p.Run, c.Run, s.Run, bp.Run}
	done := make(chan error, len(runs))
	for _, run := range runs {
		go func() { done <- run(ctx) }()
	}
	// Publish works with the broker away: the event waits in the spool.
	if err := p.Publish(context.Background(), testEvent(1)); err != nil {
		t.Fatal(err)
	}
	// Each component keeps trying.
	for _, cn := range []*connector{p.conn, c.conn, s.conn, bp.conn} {
		waitFor(t, func() bool { return metricValue(t, cn.failures) >= 3 })
	}
	if got := metricValue(t, p.conn.reconnects); got != 0 {
		t.Errorf("reconnects = %v without a single connection", got)
	}
	cancel()
	for range runs {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after cancel = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of cancellation")
		}
	}
	if _, ok := <-c.Deliveries(); ok {
		t.Error("Deliveries not closed after Run returned")
	}
	if _, ok := <-s.Updates(); ok {
		t.Error("Updates not closed after Run returned")
	}
	if n, _ := p.Spooled(); n != 1 {
		t.Errorf("spool holds %d, want the 1 unsent event", n)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer pcancel()
	if err := bp.PublishSequenced(pctx, testBatch(0, 1)); err == nil {
		t.Error("PublishSequenced without a connection succeeded")
	}
}
