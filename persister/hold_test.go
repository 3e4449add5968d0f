package persister_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/persister"
)

// gauge returns the value of a gauge (summed over its series).
func (r *running) gauge(t testing.TB, name string) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range r.metrics(t, name) {
		sum += m.GetGauge().GetValue()
	}
	return sum
}

// atMost returns how many samples of a histogram are at most le (its
// bucket le must exist), and how many there are.
func (r *running) atMost(t testing.TB, name string, le float64) (under, count uint64) {
	t.Helper()
	for _, m := range r.metrics(t, name) {
		count += m.GetHistogram().GetSampleCount()
		for _, b := range m.GetHistogram().GetBucket() {
			if b.GetUpperBound() == le {
				under += b.GetCumulativeCount()
			}
		}
	}
	return under, count
}

// TestDatabaseOutageLongerThanHoldLimitCostsOneRedelivery: the database
// stops answering (a black hole) while the persister holds a batch. Past
// hold_limit the persister hands the batch back to the queue and stops
// consuming, so that the broker's consumer_timeout (30 minutes by
// default) never closes its channel with the batch unacked, redelivering
// it once each time, and an outage of days does not send valid events
// to the dead-letter queue after 100 deliveries. While paused it takes
// nothing more: events published meanwhile wait in the queue. Once the
// database answers, it consumes again, and every event is stored once,
// in the order published, each delivered at most twice (x-delivery-count
// at most 1).
func TestDatabaseOutageLongerThanHoldLimitCostsOneRedelivery(t *testing.T) {
	e := newEnv(t)
	proxied, proxy := storetest.NewProxy(t, e.dsn)
	db, err := store.Open(context.Background(), proxied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := persister.Config{
		BatchSize: 100, BatchWait: 50 * time.Millisecond,
		AppendTimeout: time.Second, HoldLimit: 3 * time.Second,
		RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}
	p := e.startPersisterDeps(t, cfg, func(d *persister.Deps) { d.Log = store.NewLog(db, nil) })
	pub := e.startPublisher(t)

	queued := e.queueWatch(t)
	const n = 50 // each wave
	want := map[string]bool{}
	var order []string
	publish := func(from int) {
		t.Helper()
		now := time.Now().UTC()
		var evs []event.Event
		for i := from; i < from+n; i++ {
			id := fmt.Sprintf("hold-%03d", i)
			want[id] = true
			order = append(order, id)
			evs = append(evs, tick(id, now))
		}
		if err := pub.Publish(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
	}
	// Deliveries are counted, not messages: should the publisher have
	// published one twice (it publishes again what the broker did not
	// confirm), the queue holds both.
	delivered := func() int { return int(p.counter(t, "causeway_bus_consumer_delivered_total")) }

	e.waitConsuming(t)
	proxy.Hole()
	publish(0)
	waitFor(t, "the first wave delivered to the persister", 30*time.Second, func() (bool, string) {
		return delivered() >= n, fmt.Sprintf("%v delivered", delivered())
	})
	// Each attempt ends at append_timeout (1s); past hold_limit (3s) every
	// message delivered (the batch) must be back in the queue, and the
	// persister gone from it.
	var held int
	waitFor(t, "the held batch back in the queue, the persister no longer consuming", 30*time.Second, func() (bool, string) {
		ready, consumers := queued()
		held = delivered()
		return ready == held && consumers == 0, fmt.Sprintf("%d ready of %d delivered, %d consumers, paused gauge %v",
			ready, held, consumers, p.gauge(t, "causeway_persister_paused"))
	})
	if g := p.gauge(t, "causeway_persister_paused"); g != 1 {
		t.Errorf("causeway_persister_paused = %v while paused; want 1", g)
	}
	if !p.alive() {
		t.Error("not alive while paused for the database")
	}

	// Nothing more is delivered while paused, however long it lasts.
	publish(n)
	var ready int
	waitFor(t, "the second wave in the queue", 30*time.Second, func() (bool, string) {
		ready, _ = queued()
		return ready >= held+n, fmt.Sprintf("%d ready", ready)
	})
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if r, consumers := queued(); r != ready || consumers != 0 || delivered() != held {
			t.Fatalf("while paused: %d ready, %d consumers, %v delivered; want %d, 0, %d", r, consumers, delivered(), ready, held)
		}
	}
	if c := p.counter(t, "causeway_persister_events_committed_total"); c != 0 {
		t.Fatalf("committed_total = %v while the database hung; want 0", c)
	}

	proxy.Pass()
	waitFor(t, "every event committed", time.Minute, func() (bool, string) {
		c := p.counter(t, "causeway_persister_events_committed_total")
		return c >= 2*n, fmt.Sprintf("committed %v", c)
	})
	if g := p.gauge(t, "causeway_persister_paused"); g != 0 {
		t.Errorf("causeway_persister_paused = %v after the database answered; want 0", g)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, e.db, want)
	recs, err := e.log.ReadRange(context.Background(), 0, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Event.EventID != order[i] {
			t.Fatalf("seq %d holds %s; want %s: the log left the order of publication", r.Seq, r.Event.EventID, order[i])
		}
	}
	if c := p.counter(t, "causeway_persister_events_committed_total"); c != 2*n {
		t.Errorf("committed_total = %v; want %d", c, 2*n)
	}
	// What was held was delivered again once (x-delivery-count 1), the
	// rest once (0): no delivery had a count above 1.
	under, count := p.atMost(t, "causeway_bus_consumer_delivery_count", 1)
	if int(count) != delivered() || under != count {
		t.Errorf("x-delivery-count: %d of %d deliveries at most 1; want all", under, count)
	}
	if _, sum := p.histogram(t, "causeway_bus_consumer_delivery_count"); int(sum) != held {
		t.Errorf("x-delivery-count sums to %v; want %d (each message held delivered again once)", sum, held)
	}
	t.Logf("%d deliveries held and handed back, %d in all", held, delivered())
	if ready, _ := queued(); ready != 0 {
		t.Errorf("%d messages left in the queue; want 0", ready)
	}
}

// TestDatabaseRefusingWritesCostsOneRedelivery: the database answers,
// pings included, but refuses every write (a trigger fails each update
// of the counter row, as a read-only server, or a Galera node out of the
// primary component, refuses the append). Past hold_limit the persister
// hands its batch back and stops consuming; it must not take the batch
// again while the database still refuses writes, or each hold_limit costs
// every held message one more redelivery, twice as fast as the broker's
// consumer_timeout would, toward the delivery limit past which valid
// events are dead-lettered. Once the database takes writes, every event
// is stored once, in the order published.
func TestDatabaseRefusingWritesCostsOneRedelivery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.ExecContext(ctx,
		"CREATE TRIGGER refuse_writes BEFORE UPDATE ON log_counter FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'writes refused'"); err != nil {
		t.Fatal(err)
	}
	cfg := persister.Config{
		BatchSize: 100, BatchWait: 50 * time.Millisecond,
		AppendTimeout: time.Second, HoldLimit: 3 * time.Second,
		RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}
	p := e.startPersister(t, cfg)
	pub := e.startPublisher(t)
	e.waitConsuming(t)

	const n = 20
	want := map[string]bool{}
	var order []string
	var evs []event.Event
	now := time.Now().UTC()
	for i := range n {
		id := fmt.Sprintf("refused-%03d", i)
		want[id] = true
		order = append(order, id)
		evs = append(evs, tick(id, now))
	}
	if err := pub.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held batch handed back", 30*time.Second, func() (bool, string) {
		return p.counter(t, "causeway_persister_pauses_total") >= 1, fmt.Sprintf("%v commit retries", p.counter(t, "causeway_persister_commit_retries_total"))
	})
	// Four hold limits more, the database still refusing writes.
	time.Sleep(4 * cfg.HoldLimit)
	if c := p.counter(t, "causeway_persister_pauses_total"); c != 1 {
		t.Errorf("pauses_total = %v while the database refused writes for five hold limits; want 1 (paused until it takes writes)", c)
	}
	if under, count := p.atMost(t, "causeway_bus_consumer_delivery_count", 0); under != count {
		t.Errorf("%d of %d deliveries were redeliveries while the database refused writes; want none (handed back once, not taken again)", count-under, count)
	}
	if g := p.gauge(t, "causeway_persister_paused"); g != 1 {
		t.Errorf("causeway_persister_paused = %v while the database refused writes; want 1", g)
	}

	if _, err := e.db.ExecContext(ctx, "DROP TRIGGER refuse_writes"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every event committed", time.Minute, func() (bool, string) {
		c := p.counter(t, "causeway_persister_events_committed_total")
		return c >= n, fmt.Sprintf("committed %v", c)
	})
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, e.db, want)
	recs, err := e.log.ReadRange(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Event.EventID != order[i] {
			t.Fatalf("seq %d holds %s; want %s: the log left the order of publication", r.Seq, r.Event.EventID, order[i])
		}
	}
	if under, count := p.atMost(t, "causeway_bus_consumer_delivery_count", 1); under != count {
		t.Errorf("%d of %d deliveries had an x-delivery-count above 1; want none (one redelivery at most)", count-under, count)
	}
}
