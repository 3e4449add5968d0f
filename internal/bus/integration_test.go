package bus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
)

func TestTopologyIdempotent(t *testing.T) {
	u := bustest.VHost(t)
	conn := bustest.Conn(t, u)
	for i := range 3 {
		topo, err := DeclareTopology(conn)
		if err != nil {
			t.Fatalf("declare #%d: %v", i+1, err)
		}
		if !topo.SingleActive {
			t.Fatalf("declare #%d: the persist queue has no single active consumer", i+1)
		}
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// Everything exists, with the arguments we rely on: a passive declare
	// fails (closing the channel) when a name is missing.
	for _, x := range []string{EventsExchange, DeadLetterExchange, SequencedExchange} {
		if err := ch.ExchangeDeclarePassive(x, "", true, false, false, false, nil); err != nil {
			t.Fatalf("exchange %s: %v", x, err)
		}
	}
	for _, q := range []string{PersistQueue, DeadLetterQueue} {
		if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
			t.Fatalf("queue %s: %v", q, err)
		}
	}
	// A conflicting declaration is refused, so we know the broker checked
	// our arguments rather than ignoring them: the single active consumer
	// among them.
	_, err = ch.QueueDeclare(PersistQueue, true, false, false, false, persistQueueArgs())
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || aerr.Code != amqp.PreconditionFailed {
		t.Fatalf("redeclare without a single active consumer: %v, want PRECONDITION_FAILED", err)
	}
}

// TestTopologyKeepsAnEarlierPersistQueue: a persist queue declared by an
// earlier release (without the single active consumer, whose arguments the
// broker refuses to change) is used as it is and reported, not refused.
func TestTopologyKeepsAnEarlierPersistQueue(t *testing.T) {
	u := bustest.VHost(t)
	conn := bustest.Conn(t, u)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// Declared and bound as an earlier release did.
	if err := ch.ExchangeDeclare(EventsExchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := declareBound(ch, PersistQueue, EventsExchange, persistQueueArgs()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		topo, err := DeclareTopology(conn)
		if err != nil || topo.SingleActive {
			t.Fatalf("declare #%d over the earlier queue: %+v, %v; want it used as it is", i+1, topo, err)
		}
	}
	// Still bound: an event published reaches it.
	if err := ch.Publish(EventsExchange, "s.tick", true, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		q, err := ch.QueueDeclarePassive(PersistQueue, true, false, false, false, nil)
		return err == nil && q.Messages == 1
	})
}

// TestPublish10k publishes 10k events through the spool from concurrent
// callers and checks that each is in the queue exactly once, and that
// confirms were windowed rather than one round trip per message.
func TestPublish10k(t *testing.T) {
	const n, callers = 10_000, 8
	u := bustest.VHost(t)
	reg := prometheus.NewPedanticRegistry()
	p := newTestPublisher(t, u, "", reg)
	r := start(t, p.Run)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			for i := c; i < n; i += callers * 10 {
				batch := make([]event.Event, 0, 10)
				for j := i; j < min(i+callers*10, n); j += callers {
					batch = append(batch, testEvent(j))
				}
				if err := p.Publish(ctx, batch...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitEmpty(t, p, time.Minute)
	r.stop(t)

	if got := queueDepth(t, u, PersistQueue); got != n {
		t.Fatalf("queue holds %d messages, want %d", got, n)
	}
	seen := collect(t, u, PersistQueue, time.Minute, func(m map[string]int) bool { return len(m) == n })
	for i := range n {
		if id := testEvent(i).EventID; seen[id] != 1 {
			t.Fatalf("event %s delivered %d times", id, seen[id])
		}
	}
	if peak := p.peakInFlight.Load(); peak < 2 || peak > DefaultMaxInFlight {
		t.Errorf("peak in-flight confirms = %d, want 2..%d (windowed)", peak, DefaultMaxInFlight)
	}
	if got := metricValue(t, p.confirmed); got != n {
		t.Errorf("confirmed metric = %v, want %d", got, n)
	}
	if got := metricValue(t, p.published); got != n {
		t.Errorf("published metric = %v, want %d (no re-sends without a failure)", got, n)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("metrics do not gather: %v", err)
	}
}

func TestPublishRefusesInvalidEvent(t *testing.T) {
	p, err := NewPublisher(PublisherConfig{Conn: Conn{URL: "amqp://127.0.0.1:1/"}, SpoolPath: filepath.Join(t.TempDir(), "s.db")}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	bad := testEvent(1)
	bad.Source = ""
	if err := p.Publish(context.Background(), testEvent(0), bad); !errors.Is(err, event.ErrInvalid) {
		t.Fatalf("Publish(invalid) = %v, want event.ErrInvalid", err)
	}
	if n, _ := p.Spooled(); n != 0 {
		t.Fatalf("spool holds %d events after a refused call, want 0", n)
	}
}

// TestPublishWhileBrokerAway spools without a broker connection, then
// drains in order once Run connects.
func TestPublishWhileBrokerAway(t *testing.T) {
	u := bustest.VHost(t)
	p := newTestPublisher(t, u, "", nil)
	for i := range 50 {
		if err := p.Publish(context.Background(), testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := p.Spooled(); n != 50 {
		t.Fatalf("spooled %d, want 50", n)
	}
	r := start(t, p.Run)
	waitEmpty(t, p, 30*time.Second)
	r.stop(t)
	// One consumer, one queue: the broker keeps publish order.
	c, err := NewConsumer(ConsumerConfig{Conn: fastConn(u)}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	cr := start(t, c.Run)
	defer cr.stop(t)
	for i := range 50 {
		d := <-c.Deliveries()
		if want := testEvent(i).EventID; d.MessageID() != want {
			t.Fatalf("delivery %d is %s, want %s (spool order)", i, d.MessageID(), want)
		}
		ev, err := event.Decode(d.Body())
		if err != nil || ev.EventID != d.MessageID() {
			t.Fatalf("body does not decode to the event: %v", err)
		}
		if d.RoutingKey() != "test.tick" {
			t.Fatalf("routing key %q, want test.tick", d.RoutingKey())
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPublisherReturnedMessagesAreResent removes the queue's binding under
// a running publisher: its messages come back unroutable, stay in the spool,
// and are delivered once the publisher has re-declared the topology.
func TestPublisherReturnedMessagesAreResent(t *testing.T) {
	u := bustest.VHost(t)
	p := newTestPublisher(t, u, "", nil)
	r := start(t, p.Run)
	ctx := context.Background()
	if err := p.Publish(ctx, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, p, 30*time.Second)
	if err := amqpChannel(t, u).QueueUnbind(PersistQueue, "#", EventsExchange, nil); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if err := p.Publish(ctx, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitEmpty(t, p, 30*time.Second)
	r.stop(t)
	if got := metricValue(t, p.returned); got < 1 {
		t.Errorf("returned metric = %v, want at least 1", got)
	}
	if got := metricValue(t, p.conn.reconnects); got < 1 {
		t.Errorf("reconnects metric = %v, want at least 1", got)
	}
	seen := collect(t, u, PersistQueue, 30*time.Second, func(m map[string]int) bool { return len(m) == 6 })
	for i := range 6 {
		if seen[testEvent(i).EventID] == 0 {
			t.Errorf("event %d never reached the queue", i)
		}
	}
}

func TestSpoolFullError(t *testing.T) {
	p, err := NewPublisher(PublisherConfig{
		Conn: Conn{URL: "amqp://127.0.0.1:1/"}, SpoolPath: filepath.Join(t.TempDir(), "s.db"), SpoolMaxEvents: 3,
	}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	ctx := context.Background()
	if err := p.Publish(ctx, testEvent(0), testEvent(1), testEvent(2)); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, testEvent(3)); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("Publish into a full spool = %v, want ErrSpoolFull", err)
	}
	if got := metricValue(t, p.spoolFull); got != 1 {
		t.Fatalf("spool-full metric = %v, want 1", got)
	}
}

const helperEnv = "CAUSEWAY_BUS_TEST_HELPER"

// TestHelperPublisherProcess is not a test: TestSIGKILLLosesNothing runs
// the test binary again with helperEnv set, and this function then plays a
// publishing process that prints "ACK <event_id>" after each Publish returns
// and is killed with SIGKILL.
func TestHelperPublisherProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestSIGKILLLosesNothing")
	}
	u, spoolPath := os.Getenv("HELPER_URL"), os.Getenv("HELPER_SPOOL")
	p, err := NewPublisher(PublisherConfig{Conn: fastConn(u), SpoolPath: spoolPath}, Deps{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	// The first 1000 events are spooled before Run starts, so the spool is
	// sure to hold unconfirmed events when the kill comes.
	for i := range 1000 {
		if err := p.Publish(context.Background(), testEvent(i)); err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Fprintln(out, "ACK", testEvent(i).EventID)
	}
	_ = out.Flush()
	go func() { _ = p.Run(context.Background()) }()
	for w := range 4 {
		wg.Go(func() {
			for i := 1000 + w; ; i += 4 {
				if err := p.Publish(context.Background(), testEvent(i)); err != nil {
					fmt.Println("ERR", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(out, "ACK", testEvent(i).EventID)
				_ = out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestSIGKILLLosesNothing kills a publishing process with SIGKILL and checks
// that every event it acknowledged reaches the queue once a new publisher
// has re-sent its spool.
func TestSIGKILLLosesNothing(t *testing.T) {
	u := bustest.VHost(t)
	spoolPath := filepath.Join(t.TempDir(), "spool.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPublisherProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "HELPER_URL="+u, "HELPER_SPOOL="+spoolPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 3000 {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "ACK "); ok {
			acked[id] = true
		} else if strings.HasPrefix(line, "ERR") {
			t.Fatalf("helper: %s", line)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Lines written before the kill are acknowledged events too.
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked[id] = true
		}
	}
	_ = cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("helper acknowledged only %d events before it died", len(acked))
	}

	p := newTestPublisher(t, u, spoolPath, nil)
	left, _ := p.Spooled()
	t.Logf("helper acknowledged %d events; %d were still spooled after the kill", len(acked), left)
	r := start(t, p.Run)
	waitEmpty(t, p, time.Minute)
	r.stop(t)
	seen := collect(t, u, PersistQueue, time.Minute, func(m map[string]int) bool {
		for id := range acked {
			if m[id] == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("%d distinct events in the queue, %d duplicates", len(seen), dups)
}

func TestConsumerAckNackDeadLetter(t *testing.T) {
	u := bustest.VHost(t)
	p := newTestPublisher(t, u, "", nil)
	ctx := context.Background()
	evs := make([]event.Event, 10)
	for i := range evs {
		evs[i] = testEvent(i)
	}
	if err := p.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	pr := start(t, p.Run)
	waitEmpty(t, p, 30*time.Second)
	pr.stop(t)

	c, err := NewConsumer(ConsumerConfig{Conn: fastConn(u), Prefetch: 4}, Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	cr := start(t, c.Run)
	next := func() Delivery {
		t.Helper()
		select {
		case d := <-c.Deliveries():
			return d
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery within 30s")
			return Delivery{}
		}
	}
	// Prefetch 4: four deliveries, then one multiple-ack frees the window.
	var batch []Delivery
	for range 4 {
		batch = append(batch, next())
	}
	select {
	case d := <-c.Deliveries():
		t.Fatalf("got delivery %s beyond the prefetch window", d.MessageID())
	default:
	}
	for i, d := range batch {
		if d.MessageID() != evs[i].EventID || d.Redelivered() {
			t.Fatalf("delivery %d = %s redelivered=%v", i, d.MessageID(), d.Redelivered())
		}
	}
	if err := batch[3].Ack(true); err != nil {
		t.Fatal(err)
	}
	d4 := next()
	// A reason over the broker's frame size (it quotes input) would close
	// the connection: it is clipped, between characters.
	long := "unknown entity type " + strings.Repeat("é", 200_000)
	if err := c.DeadLetter(ctx, d4, long); err != nil {
		t.Fatal(err)
	}
	d5 := next()
	if err := d5.Nack(false, false); err != nil {
		t.Fatal(err)
	}
	// A delivery held across a reconnect cannot be acked and comes back.
	d6 := next()
	closeConnections(t, u)
	var again Delivery
	for {
		again = next()
		if again.MessageID() == d6.MessageID() {
			break
		}
	}
	if !again.Redelivered() {
		t.Errorf("delivery after reconnect: Redelivered = false, want true")
	}
	if d6.Channel() != batch[0].Channel() || again.Channel() == d6.Channel() {
		t.Errorf("Channel: the same before the reconnect %v, another after it %v; want true, true",
			d6.Channel() == batch[0].Channel(), again.Channel() != d6.Channel())
	}
	if err := d6.Ack(false); !errors.Is(err, ErrStaleDelivery) {
		t.Errorf("ack of a pre-reconnect delivery = %v, want ErrStaleDelivery", err)
	}
	if err := c.DeadLetter(ctx, d6, "x"); !errors.Is(err, ErrStaleDelivery) {
		t.Errorf("dead-letter of a pre-reconnect delivery = %v, want ErrStaleDelivery", err)
	}
	if err := again.Ack(false); err != nil {
		t.Fatal(err)
	}
	cr.stop(t)

	reasons := map[string]string{}
	dc, err := NewConsumer(ConsumerConfig{Conn: fastConn(u), Queue: DeadLetterQueue}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	dr := start(t, dc.Run)
	defer dr.stop(t)
	for len(reasons) < 2 {
		select {
		case d := <-dc.Deliveries():
			reasons[d.MessageID()] = d.Reason()
			if _, err := event.Decode(d.Body()); err != nil {
				t.Errorf("dead-lettered body: %v", err)
			}
			_ = d.Ack(false)
		case <-time.After(30 * time.Second):
			t.Fatalf("dead-letter queue: got %v within 30s", reasons)
		}
	}
	want := map[string]string{evs[4].EventID: long[:MaxReasonBytes], evs[5].EventID: "rejected"}
	for id, r := range want {
		if reasons[id] != r {
			t.Errorf("dead-letter reason of %s = %q, want %q", id, reasons[id], r)
		}
	}
}

func TestSequencedStream(t *testing.T) {
	u := bustest.VHost(t)
	bp, err := NewBatchPublisher(fastConn(u), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, bp.Run)
	s, err := NewSubscriber(SubscriberConfig{Conn: fastConn(u)}, Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s.Run)
	next := func() Update {
		t.Helper()
		select {
		case u := <-s.Updates():
			return u
		case <-time.After(30 * time.Second):
			t.Fatal("no update within 30s")
			return Update{}
		}
	}
	batch := testBatch
	ctx := context.Background()
	if u := next(); !u.Gap {
		t.Fatalf("first update %+v, want a gap signal", u)
	}
	for i := range 3 {
		if err := bp.PublishSequenced(ctx, batch(int64(i*2), 2)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		got := next()
		if got.Gap || got.Batch.PrevSeq != int64(i*2) || len(got.Batch.Records) != 2 || got.Batch.Records[1].Event.EventID != testEvent(i*2+2).EventID {
			t.Fatalf("update %d = %+v", i, got)
		}
	}
	closeConnections(t, u)
	if got := next(); !got.Gap {
		t.Fatalf("update after reconnect = %+v, want a gap signal", got)
	}
	// The publisher reconnects too; a publish succeeds once it has.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := bp.PublishSequenced(ctx, batch(6, 1))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after reconnect: %v", err)
		}
	}
	if got := next(); got.Gap || got.Batch.LastSeq() != 7 {
		t.Fatalf("update after reconnect = %+v, want batch 7", got)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	<-wctx.Done()
	if err := bp.PublishSequenced(wctx, batch(7, 1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish with an ended context = %v", err)
	}
}

// TestOutageInOneVHost makes the broker unreachable for this test's vhost
// alone (permissions revoked, connections closed): Publish keeps
// succeeding into the spool, and everything drains in order once the
// permissions are back. The broker-wide restart is in chaos_test.go.
func TestOutageInOneVHost(t *testing.T) {
	u := bustest.VHost(t)
	vhost := vhostOf(t, u)
	p := newTestPublisher(t, u, "", nil)
	r := start(t, p.Run)
	ctx := context.Background()
	if err := p.Publish(ctx, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, p, 30*time.Second)
	rabbitmqctlT(t, "clear_permissions", "-p", vhost, "guest")
	closeConnections(t, u)
	waitFor(t, func() bool { return metricValue(t, p.conn.connected) == 0 })
	for i := 1; i <= 300; i++ {
		if err := p.Publish(ctx, testEvent(i)); err != nil {
			t.Fatalf("Publish during the outage: %v", err)
		}
	}
	if n, _ := p.Spooled(); n != 300 {
		t.Fatalf("spool holds %d during the outage, want 300", n)
	}
	rabbitmqctlT(t, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
	waitEmpty(t, p, time.Minute)
	r.stop(t)
	if got := metricValue(t, p.conn.reconnects); got < 1 {
		t.Errorf("reconnects = %v, want at least 1", got)
	}
	c, err := NewConsumer(ConsumerConfig{Conn: fastConn(u)}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	cr := start(t, c.Run)
	defer cr.stop(t)
	for i := 0; i <= 300; i++ {
		select {
		case d := <-c.Deliveries():
			if want := testEvent(i).EventID; d.MessageID() != want {
				t.Fatalf("delivery %d is %s, want %s (the spool drains in order)", i, d.MessageID(), want)
			}
			_ = d.Ack(false)
		case <-time.After(30 * time.Second):
			t.Fatalf("delivery %d missing", i)
		}
	}
}

// A sync marker is sent alone: after every event spooled before it is
// confirmed, and before any spooled after it is sent. A nack of a marker
// sent beside other events would let them reach the log ahead of it (a
// sync.begin after its pull's upserts makes the sync.end delete them).
func TestSyncMarkersAreBarriers(t *testing.T) {
	u := bustest.VHost(t)
	p := newTestPublisher(t, u, "", prometheus.NewRegistry())
	var evs []event.Event
	marker := func(i int, kind event.Kind) event.Event {
		ev := testEvent(i)
		ev.Kind, ev.Sync = kind, &event.Sync{ID: "pull-1"}
		return ev
	}
	for i := range 120 {
		switch i {
		case 40:
			evs = append(evs, marker(i, event.KindSyncBegin))
		case 90:
			evs = append(evs, marker(i, event.KindSyncEnd))
		default:
			evs = append(evs, testEvent(i))
		}
	}
	// Everything is spooled before the publisher runs, so without the
	// barrier the markers would go out in one window with the rest.
	if err := p.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	type send struct {
		id       string
		inFlight int
	}
	var (
		mu    sync.Mutex
		sends []send
	)
	p.sent = func(id string, n int) {
		mu.Lock()
		defer mu.Unlock()
		sends = append(sends, send{id, n})
	}
	r := start(t, p.Run)
	waitEmpty(t, p, time.Minute)
	r.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if len(sends) != len(evs) {
		t.Fatalf("%d sends, want %d", len(sends), len(evs))
	}
	for i, s := range sends {
		if s.id != evs[i].EventID {
			t.Fatalf("send %d is %s, want %s (spool order)", i, s.id, evs[i].EventID)
		}
		if i == 40 || i == 90 || i == 41 || i == 91 {
			// The marker went out alone, and the event after it only
			// once the marker was confirmed.
			if s.inFlight != 1 {
				t.Errorf("%s (%s) sent with %d in flight, itself included; want 1", s.id, evs[i].Kind, s.inFlight)
			}
		}
	}
	if peak := p.peakInFlight.Load(); peak < 2 {
		t.Errorf("peak in flight %d: the events between markers were not windowed", peak)
	}
	got := collect(t, u, PersistQueue, time.Minute, func(m map[string]int) bool { return len(m) == len(evs) })
	if len(got) != len(evs) {
		t.Fatalf("queue holds %d distinct events, want %d", len(got), len(evs))
	}
}

// TestPublisherKeepsNackedEvents: events the broker nacks (a full queue
// with reject-publish; a classic one, as RabbitMQ 3.10's quorum queues
// still took a window of publishes past their limit) stay in the spool
// and are sent again until the queue has room: a nack is never taken for
// a confirm.
func TestPublisherKeepsNackedEvents(t *testing.T) {
	const exchange, queue, room, more = "test.nack", "test.nack.q", 3, 5
	u := bustest.VHost(t)
	ch := amqpChannel(t, u)
	if err := ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{
		amqp.QueueTypeArg: amqp.QueueTypeClassic, amqp.QueueMaxLenArg: int64(room), amqp.QueueOverflowArg: amqp.QueueOverflowRejectPublish,
	}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "#", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(PublisherConfig{Conn: fastConn(u), SpoolPath: filepath.Join(t.TempDir(), "spool.db"), Exchange: exchange},
		Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	start(t, p.Run)
	var evs []event.Event
	for i := range room + more {
		evs = append(evs, testEvent(i))
	}
	// The queue is filled...
	for _, ev := range evs[:room] {
		if err := p.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		waitEmpty(t, p, 30*time.Second)
	}
	// ... so the broker nacks the next ones, which stay spooled.
	if err := p.Publish(context.Background(), evs[room:]...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return metricValue(t, p.nacked) >= more })
	if n, _ := p.Spooled(); n != more {
		t.Fatalf("%d events spooled after %d nacks; want %d", n, int(metricValue(t, p.nacked)), more)
	}
	// Drained, the queue takes the rest as they are sent again.
	seen := collect(t, u, queue, 30*time.Second, func(m map[string]int) bool { return len(m) == len(evs) })
	for _, ev := range evs {
		if seen[ev.EventID] == 0 {
			t.Errorf("event %s never reached the queue", ev.EventID)
		}
	}
	waitEmpty(t, p, 30*time.Second)
}
