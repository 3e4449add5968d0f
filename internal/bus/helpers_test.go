package bus

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
)

func testEvent(i int) event.Event {
	return event.Event{
		V: event.Version, EventID: fmt.Sprintf("ev-%06d", i), Source: "test",
		Kind: event.KindTick, ObservedAt: time.Unix(1_700_000_000+int64(i), 0).UTC(),
	}
}

// testBatch is a valid sequenced batch of n records after prev.
func testBatch(prev int64, n int) event.Batch {
	b := event.Batch{PrevSeq: prev}
	for i := range n {
		seq := prev + int64(i) + 1
		b.Records = append(b.Records, event.Record{Seq: seq, RecordedAt: time.Unix(1_700_000_000+seq, 0).UTC(), Event: testEvent(int(seq))})
	}
	return b
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func fastConn(u string) Conn {
	return Conn{URL: u, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 500 * time.Millisecond}
}

// runner runs a component's Run in the background until stop.
type runner struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, run func(context.Context) error) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *runner) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("Run did not return within 30s of cancellation")
	}
}

func newTestPublisher(t testing.TB, u, spoolPath string, reg prometheus.Registerer) *Publisher {
	t.Helper()
	if spoolPath == "" {
		spoolPath = filepath.Join(t.TempDir(), "spool.db")
	}
	p, err := NewPublisher(PublisherConfig{Conn: fastConn(u), SpoolPath: spoolPath}, Deps{Logger: testLogger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// waitEmpty waits until the publisher's spool is empty.
func waitEmpty(t testing.TB, p *Publisher, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n, _ := p.Spooled()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool still holds %d events after %s", n, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// amqpChannel opens a raw channel on u for inspection.
func amqpChannel(t testing.TB, u string) *amqp.Channel { return bustest.Channel(t, u) }

// declaredChannel declares the topology at u and returns a channel there.
func declaredChannel(t testing.TB, u string) *amqp.Channel {
	t.Helper()
	conn := bustest.Conn(t, u)
	if _, err := DeclareTopology(conn); err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// queueDepth returns the ready messages of queue.
func queueDepth(t testing.TB, u, queue string) int {
	t.Helper()
	q, err := amqpChannel(t, u).QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages
}

// collect consumes queue until done(ids seen so far) holds, acking
// everything, and returns how often each message id was delivered.
func collect(t testing.TB, u, queue string, within time.Duration, done func(map[string]int) bool) map[string]int {
	t.Helper()
	c, err := NewConsumer(ConsumerConfig{Conn: fastConn(u), Queue: queue}, Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, c.Run)
	defer r.stop(t)
	seen := map[string]int{}
	timeout := time.After(within)
	for !done(seen) {
		select {
		case d := <-c.Deliveries():
			seen[d.MessageID()]++
			if err := d.Ack(false); err != nil {
				t.Fatalf("ack: %v", err)
			}
		case <-timeout:
			t.Fatalf("consumed %d distinct messages of %s within %s; condition not met", len(seen), queue, within)
		}
	}
	return seen
}

// vhostOf returns the vhost of an AMQP URL.
func vhostOf(t testing.TB, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(p.Path, "/")
}

// closeConnections makes the broker close every connection of u's vhost,
// which forces the components to reconnect without disturbing other tests.
func closeConnections(t testing.TB, u string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "close_all_connections", "-p", vhostOf(t, u), "test forces a reconnect").CombinedOutput()
	if err != nil {
		t.Fatalf("close connections: %v: %s", err, out)
	}
}

// metricValue reads a counter or gauge.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if c := out.GetCounter(); c != nil {
		return c.GetValue()
	}
	return out.GetGauge().GetValue()
}

// rabbitmqctlT runs rabbitmqctl with a timeout, failing the test on error.
func rabbitmqctlT(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl %v: %v: %s", args, err, out)
	}
}
