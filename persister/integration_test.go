package persister_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/persister"
)

// env is one test's broker vhost and database.
type env struct {
	url string
	dsn string
	db  *sql.DB
	log *store.Log
}

func newEnv(t testing.TB) *env {
	t.Helper()
	url := bustest.VHost(t)
	dsn := storetest.NewDB(t)
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &env{url: url, dsn: dsn, db: db, log: store.NewLog(db, nil)}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CAUSEWAY_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// running is a persister running on the real bus and database.
type running struct {
	reg   *prometheus.Registry
	stop  func() error
	alive func() bool
}

// metrics returns the series of the metric name.
func (r *running) metrics(t testing.TB, name string) []*dto.Metric {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

// counter returns the value of a counter (summed over its series).
func (r *running) counter(t testing.TB, name string) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range r.metrics(t, name) {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// histogram returns the sample count and sum of a histogram.
func (r *running) histogram(t testing.TB, name string) (count uint64, sum float64) {
	t.Helper()
	for _, m := range r.metrics(t, name) {
		count += m.GetHistogram().GetSampleCount()
		sum += m.GetHistogram().GetSampleSum()
	}
	return count, sum
}

// startPersister runs a persister with its own consumer connection and
// its own database pool, as a separate process would.
func (e *env) startPersister(t testing.TB, cfg persister.Config) *running {
	t.Helper()
	return e.startPersisterWrapped(t, cfg, nil)
}

// startPersisterWrapped is startPersister with the log wrapped by wrap
// (for instrumentation), if not nil.
func (e *env) startPersisterWrapped(t testing.TB, cfg persister.Config, wrap func(persister.Log) persister.Log) *running {
	t.Helper()
	return e.startPersisterDeps(t, cfg, func(d *persister.Deps) {
		if wrap != nil {
			d.Log = wrap(d.Log)
		}
	})
}

// startPersisterDeps is startPersister with its deps changed by edit.
func (e *env) startPersisterDeps(t testing.TB, cfg persister.Config, edit func(*persister.Deps)) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	lg := testLogger(t)
	conn := bus.Conn{URL: e.url, ReconnectMin: 50 * time.Millisecond, ReconnectMax: time.Second}
	consumer, err := bus.NewConsumer(persister.ConsumerConfig(cfg, conn), bus.Deps{Logger: lg, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	seqr, err := bus.NewBatchPublisher(conn, bus.Deps{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	deps := persister.Deps{
		Queue: persister.NewBusQueue(consumer), Log: store.NewLog(db, nil), Sequencer: seqr,
		Logger: lg, Registerer: reg,
	}
	edit(&deps)
	p, err := persister.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stopped := false
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
			db.Close()
		}
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{reg: reg, stop: stop, alive: p.Alive}
}

// startPublisher runs a bus.Publisher with a spool in a temp dir.
// waitConsuming waits until a persister consumes the persist queue. A
// quorum queue declared a moment before may nack publishes until its
// leader is known, and the publisher sends them again behind the ones
// after them: a test that checks the order of publication in the log
// publishes only once the queue has a consumer (which needs a leader).
func (e *env) waitConsuming(t testing.TB) {
	t.Helper()
	queued := e.queueWatch(t)
	waitFor(t, "a consumer on the persist queue", 30*time.Second, func() (bool, string) {
		_, consumers := queued()
		return consumers >= 1, fmt.Sprintf("%d consumers", consumers)
	})
}

// channel opens a channel on the test's vhost, its topology declared.
func (e *env) channel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn := bustest.Conn(t, e.url)
	if _, err := bus.DeclareTopology(conn); err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// queueWatch returns what the persist queue holds ready, and its
// consumers, each time it is called.
func (e *env) queueWatch(t testing.TB) func() (ready, consumers int) {
	t.Helper()
	ch := e.channel(t)
	return func() (int, int) {
		q, err := ch.QueueDeclarePassive(bus.PersistQueue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return q.Messages, q.Consumers
	}
}

func (e *env) startPublisher(t testing.TB) *bus.Publisher {
	t.Helper()
	pub, err := bus.NewPublisher(bus.PublisherConfig{
		Conn:      bus.Conn{URL: e.url, ReconnectMin: 50 * time.Millisecond, ReconnectMax: time.Second},
		SpoolPath: filepath.Join(t.TempDir(), "spool.db"),
	}, bus.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		pub.Close()
	})
	return pub
}

func tick(id string, observed time.Time) event.Event {
	return event.Event{V: event.Version, EventID: id, Source: "test", Kind: event.KindTick, ObservedAt: observed}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (%s)", timeout, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkLog verifies the acceptance properties of the events table: the
// given ids exactly, seq dense 1..n, recorded_at non-decreasing along seq.
func checkLog(t testing.TB, db *sql.DB, want map[string]bool) {
	t.Helper()
	ctx := context.Background()
	var n, distinct, minSeq, maxSeq int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT event_id), COALESCE(MIN(seq),0), COALESCE(MAX(seq),0) FROM events").
		Scan(&n, &distinct, &minSeq, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) || distinct != n || minSeq != 1 || maxSeq != n {
		t.Fatalf("events: %d rows, %d distinct ids, seq %d..%d; want %d rows, distinct, seq dense from 1", n, distinct, minSeq, maxSeq, len(want))
	}
	rows, err := db.QueryContext(ctx, "SELECT seq, recorded_at, event_id FROM events ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var prevSeq int64
	var prevAt time.Time
	for rows.Next() {
		var seq int64
		var at time.Time
		var id string
		if err := rows.Scan(&seq, &at, &id); err != nil {
			t.Fatal(err)
		}
		if seq != prevSeq+1 {
			t.Fatalf("seq %d follows %d", seq, prevSeq)
		}
		if at.Before(prevAt) {
			t.Fatalf("recorded_at decreases at seq %d: %v after %v", seq, at, prevAt)
		}
		if !want[id] {
			t.Fatalf("seq %d holds unexpected event_id %q", seq, id)
		}
		prevSeq, prevAt = seq, at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// publishWithDuplicates publishes n unique events plus n/10 re-publications
// of random ones, interleaved, in calls of 100, and returns the unique ids.
func publishWithDuplicates(t testing.TB, pub *bus.Publisher, prefix string, n int) map[string]bool {
	t.Helper()
	want, err := publishDup(pub, prefix, n)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func publishDup(pub *bus.Publisher, prefix string, n int) (map[string]bool, error) {
	ids := make([]string, 0, n+n/10)
	for i := range n {
		ids = append(ids, fmt.Sprintf("%s-%06d", prefix, i))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range n / 10 {
		ids = append(ids, ids[r.IntN(n)])
	}
	// Keep each duplicate after its original's position only sometimes:
	// shuffle the tail into the stream.
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	want := make(map[string]bool, n)
	now := time.Now().UTC()
	ctx := context.Background()
	for start := 0; start < len(ids); start += 100 {
		var evs []event.Event
		for _, id := range ids[start:min(start+100, len(ids))] {
			want[id] = true
			evs = append(evs, tick(id, now))
		}
		if err := pub.Publish(ctx, evs...); err != nil {
			return nil, err
		}
	}
	return want, nil
}

func TestTenThousandEventsWithDuplicates(t *testing.T) {
	e := newEnv(t)
	p := e.startPersister(t, persister.Config{})
	pub := e.startPublisher(t)
	const n = 10000
	want := publishWithDuplicates(t, pub, "ev", n)
	waitFor(t, "every delivery processed", 120*time.Second, func() (bool, string) {
		c := p.counter(t, "causeway_persister_events_committed_total")
		d := p.counter(t, "causeway_persister_duplicates_total")
		return c+d >= n+n/10, fmt.Sprintf("committed %v, duplicates %v", c, d)
	})
	if err := p.stop(); err != nil {
		t.Fatalf("persister Run = %v", err)
	}
	checkLog(t, e.db, want)
	if c := p.counter(t, "causeway_persister_events_committed_total"); c != n {
		t.Errorf("committed_total = %v; want %d", c, n)
	}
	// Every event committed says how long after its spooling: the AMQP
	// timestamp the publisher sets reaches the persister.
	if c, sum := p.histogram(t, "causeway_persister_intake_delay_seconds"); c != n || sum/float64(c) > 60 {
		t.Errorf("intake_delay_seconds: %d samples, mean %v s; want %d, each within the test's minute", c, sum/float64(c), n)
	}
}

// TestTwoPersistersOneActive runs two persisters on the same queue while a
// reader tails seq > last. The queue hands its messages to one of them at a
// time, so the log keeps the order the producer published in (a sync's
// begin, entities and end stay in order); stopping the active one hands the
// rest to the other, the ones it left unacked first.
func TestTwoPersistersOneActive(t *testing.T) {
	e := newEnv(t)
	cfg := persister.Config{BatchSize: 20, BatchWait: 2 * time.Millisecond, Prefetch: 40}
	ps := []*running{e.startPersister(t, cfg), e.startPersister(t, cfg)}
	pub := e.startPublisher(t)
	const n = 6000
	want := make(map[string]bool, n)
	pubErr := make(chan error, 1)
	go func() {
		now := time.Now().UTC()
		for start := 0; start < n; start += 100 {
			var evs []event.Event
			for i := start; i < min(start+100, n); i++ {
				evs = append(evs, tick(fmt.Sprintf("ord-%06d", i), now))
			}
			if err := pub.Publish(context.Background(), evs...); err != nil {
				pubErr <- err
				return
			}
		}
		pubErr <- nil
	}()
	for i := range n {
		want[fmt.Sprintf("ord-%06d", i)] = true
	}
	committed := func(p *running) float64 { return p.counter(t, "causeway_persister_events_committed_total") }

	ctx := context.Background()
	var last int64
	deadline := time.Now().Add(120 * time.Second)
	stopped := -1
	for last < n {
		if time.Now().After(deadline) {
			t.Fatalf("reader reached seq %d of %d before the deadline", last, n)
		}
		recs, err := e.log.ReadRange(ctx, last, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Seq != last+1 {
				t.Fatalf("reader saw seq %d right after %d; want %d next (a later seq was visible before an earlier one, or a seq repeated)", r.Seq, last, last+1)
			}
			if id := fmt.Sprintf("ord-%06d", r.Seq-1); r.Event.EventID != id {
				t.Fatalf("seq %d holds %s; want %s: the log left the order of publication", r.Seq, r.Event.EventID, id)
			}
			last = r.Seq
		}
		if stopped < 0 && last >= n/3 {
			c0, c1 := committed(ps[0]), committed(ps[1])
			if c0 > 0 && c1 > 0 {
				t.Fatalf("committed %v and %v: both persisters consumed at once", c0, c1)
			}
			stopped = 0
			if c1 > 0 {
				stopped = 1
			}
			if err := ps[stopped].stop(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	if stopped < 0 {
		t.Fatal("the reader never reached a third of the log")
	}
	other := ps[1-stopped]
	if c := committed(ps[stopped]); c == 0 || committed(other) == 0 {
		t.Fatalf("committed %v by the first active persister and %v by the other; want both", c, committed(other))
	}
	if err := other.stop(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, e.db, want)
	t.Logf("the first active persister committed %v events, the other %v", committed(ps[stopped]), committed(other))
}

func TestPoisonGoesToDLQWithReason(t *testing.T) {
	e := newEnv(t)
	p := e.startPersister(t, persister.Config{BatchSize: 10, BatchWait: 5 * time.Millisecond})

	// The bus Publisher refuses invalid events, so poison is published raw,
	// as a buggy or hostile producer would.
	ch := e.channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	good := func(id string) []byte {
		b, err := event.Encode(tick(id, now))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	invalidKind := strings.Replace(string(good("bad-kind")), `"kind":"tick"`, `"kind":"nonsense"`, 1)
	msgs := []struct {
		id   string
		body []byte
	}{
		{"good-1", good("good-1")},
		{"poison-json", []byte(`{"v":1,"event_id":`)},
		{"poison-kind", []byte(invalidKind)},
		{"good-2", good("good-2")},
	}
	ctx := context.Background()
	for _, m := range msgs {
		// A quorum queue nacks a publish it could not take (its leader
		// still starting on a loaded broker); a producer publishes again,
		// as bus.Publisher does. The log dedups by event id.
		for attempt := 0; ; attempt++ {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, bus.EventsExchange, "test.tick", true, false,
				amqp.Publishing{MessageId: m.id, DeliveryMode: amqp.Persistent, Body: m.body})
			if err != nil {
				t.Fatal(err)
			}
			ok, err := dc.WaitContext(ctx)
			if err == nil && ok {
				break
			}
			if err != nil || attempt == 4 {
				t.Fatalf("publish %s: confirm %v, %v (attempt %d)", m.id, ok, err, attempt)
			}
			t.Logf("publish %s nacked; again", m.id)
			time.Sleep(200 * time.Millisecond)
		}
	}

	waitFor(t, "both good events committed", 30*time.Second, func() (bool, string) {
		seq, _, err := e.log.Head(ctx)
		return err == nil && seq == 2, fmt.Sprintf("head %d, err %v", seq, err)
	})
	reasons := map[string]string{}
	waitFor(t, "two dead letters", 30*time.Second, func() (bool, string) {
		d, ok, err := ch.Get(bus.DeadLetterQueue, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			r, _ := d.Headers[bus.ReasonHeader].(string)
			reasons[d.MessageId] = r
		}
		return len(reasons) == 2, fmt.Sprint(reasons)
	})
	if r := reasons["poison-json"]; !strings.HasPrefix(r, "malformed: ") {
		t.Errorf("reason of poison-json = %q; want malformed: ...", r)
	}
	if r := reasons["poison-kind"]; !strings.HasPrefix(r, "invalid: ") || !strings.Contains(r, "kind") {
		t.Errorf("reason of poison-kind = %q; want invalid: ... naming kind", r)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if got := p.counter(t, "causeway_persister_dead_lettered_total"); got != 2 {
		t.Errorf("dead_lettered_total = %v; want 2", got)
	}
	checkLog(t, e.db, map[string]bool{"good-1": true, "good-2": true})
}

// TestShutdownCommitsAndAcksBatchInFlight stops a persister while a batch
// sits unacked in it (BatchWait far away): the batch must be committed and
// acked before the consumer closes, leaving nothing in the queue.
func TestShutdownCommitsAndAcksBatchInFlight(t *testing.T) {
	e := newEnv(t)
	p := e.startPersister(t, persister.Config{BatchSize: 1000, BatchWait: time.Minute})
	pub := e.startPublisher(t)
	now := time.Now().UTC()
	want := map[string]bool{}
	var evs []event.Event
	for i := range 50 {
		id := fmt.Sprint("inflight-", i)
		want[id] = true
		evs = append(evs, tick(id, now))
	}
	if err := pub.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	queued := e.queueWatch(t)
	waitFor(t, "all 50 delivered to the persister", 30*time.Second, func() (bool, string) {
		k, _ := pub.Spooled()
		ready, _ := queued()
		return k == 0 && ready == 0, fmt.Sprintf("%d spooled, %d ready", k, ready)
	})
	if seq, _, err := e.log.Head(context.Background()); err != nil || seq != 0 {
		t.Fatalf("head before shutdown = %d, %v; want 0 (the batch waits for BatchWait)", seq, err)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, e.db, want)
	// Unacked deliveries would be back in the queue once the consumer's
	// connection is gone.
	waitFor(t, "the persister's consumer gone", 30*time.Second, func() (bool, string) {
		_, consumers := queued()
		return consumers == 0, fmt.Sprintf("%d consumers", consumers)
	})
	if ready, _ := queued(); ready != 0 {
		t.Errorf("%d messages back in the queue after shutdown; want 0 (all acked)", ready)
	}
}
