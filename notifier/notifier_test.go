package notifier_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier"
)

func testConfig(dsn, instance string) notifier.Config {
	return notifier.Config{
		DSN: dsn, InstanceID: instance,
		PollInterval: 10 * time.Millisecond, ScanInterval: 100 * time.Millisecond, LeaseTTL: time.Second, StatusInterval: 100 * time.Millisecond,
		Delivery: notifier.DeliveryConfig{Timeout: 500 * time.Millisecond, MaxAge: time.Hour, BackoffInitial: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond},
		Secrets:  map[string]notifier.SecretConfig{"main": {Value: testSecret}},
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a notifier until the test ends.
func start(t testing.TB, cfg notifier.Config, db *sql.DB, reg prometheus.Registerer) {
	t.Helper()
	startWith(t, cfg, db, notifier.Deps{Registerer: reg})
}

// A receiver down for a while, with 1,000 notifications queued, receives
// every one afterwards, in order; repeats are exact repeats of a webhook id.
func TestReceiverDownThenUp(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.setDown(true)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 1000)
	want := expectedIDs(t, db, "ops")
	if len(want) != 1000 {
		t.Fatalf("leader queued %d rows, want 1000", len(want))
	}
	reg := prometheus.NewRegistry()
	start(t, testConfig(dsn, "n1"), db, reg)
	waitFor(t, 20*time.Second, "failed attempts while the receiver is down", func() bool { return len(rcv.receipts()) >= 5 })
	sts, err := notifier.Statuses(context.Background(), db, testConfig(dsn, ""), "ops")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "failing status", func() bool {
		sts, err = notifier.Statuses(context.Background(), db, testConfig(dsn, ""), "ops")
		return err == nil && len(sts) == 1 && sts[0].FailingSince != nil
	})
	if sts[0].Pending != 1000 || !strings.Contains(sts[0].LastError, "503") {
		t.Fatalf("status while down: %+v", sts[0])
	}
	waitFor(t, 10*time.Second, "the backlog metrics", func() bool {
		return gauge(t, reg, "causeway_notifier_backlog_rows") == 1000 && gauge(t, reg, "causeway_notifier_oldest_pending_age_seconds") > 0
	})
	rcv.setDown(false)
	waitFor(t, 60*time.Second, "1,000 deliveries", func() bool { return len(rcv.delivered()) >= 1000 })
	if diff := cmp.Diff(ids(rcv.delivered()), want); diff != "" {
		t.Fatalf("delivered ids (-got +want):\n%s", diff)
	}
	if bad := rcv.badSignatures(); len(bad) > 0 {
		t.Fatalf("%d requests failed signature verification: %v", len(bad), bad[0])
	}
	waitFor(t, 10*time.Second, "an empty backlog", func() bool {
		sts, err = notifier.Statuses(context.Background(), db, testConfig(dsn, ""), "ops")
		return err == nil && sts[0].Pending == 0 && sts[0].FailingSince == nil
	})
	if f := counter(t, reg, "causeway_notifier_delivery_failures_total"); f < 5 {
		t.Errorf("failures metric = %v, want >= 5", f)
	}
	if a, d := counter(t, reg, "causeway_notifier_delivery_attempts_total"), counter(t, reg, "causeway_notifier_delivered_total"); d != 1000 || a < d+5 {
		t.Errorf("attempts %v, delivered %v; want 1000 delivered and at least 5 more attempts", a, d)
	}
	if n := histogramCount(t, reg, "causeway_notifier_delivery_latency_seconds"); n != 1000 {
		t.Errorf("latency observations = %d, want 1000", n)
	}
	var left int
	if err := db.QueryRow("SELECT COUNT(*) FROM notifier_outbox").Scan(&left); err != nil || left != 0 {
		t.Errorf("outbox holds %d rows after delivery (err %v)", left, err)
	}
}

// counter sums the series of a counter family.
func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetGauge().GetValue()
			}
		}
	}
	return v
}

func histogramCount(t testing.TB, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// Two instances share the work; each subscriber is drained by one at a
// time, so every subscriber still gets its rows in order.
func TestTwoInstances(t *testing.T) {
	db, dsn := openDB(t)
	l := newLeader(t, db)
	rcvs := map[string]*receiver{}
	for _, id := range []string{"a", "b", "c", "d"} {
		rcvs[id] = newReceiver(t)
		l.subscribe(id, rcvs[id].srv.URL, "")
	}
	l.raise("alarm", 300)
	want := expectedIDs(t, db, "a")
	start(t, testConfig(dsn, "n1"), db, prometheus.NewRegistry())
	start(t, testConfig(dsn, "n2"), db, prometheus.NewRegistry())
	for id, r := range rcvs {
		waitFor(t, 30*time.Second, "deliveries to "+id, func() bool { return len(r.delivered()) >= 300 })
		got := ids(r.delivered())
		if len(got) != 300 {
			t.Fatalf("%s: %d deliveries", id, len(got))
		}
		if id == "a" {
			if diff := cmp.Diff(got, want); diff != "" {
				t.Fatalf("a: delivered (-got +want):\n%s", diff)
			}
		}
		// Order: the payload seqs never go down.
		for i, rc := range r.delivered()[1:] {
			if rc.seq < r.delivered()[i].seq {
				t.Fatalf("%s: seq %d delivered after %d", id, rc.seq, r.delivered()[i].seq)
			}
		}
	}
}

// TestFailingSubscriberBlocksOnlyItself: one instance serves a subscriber
// that answers 503, one that never answers, and a healthy one; the healthy
// one gets every row, in order, while the other two are still failing
// (DESIGN.md invariant 5: a failing subscriber blocks only itself).
func TestFailingSubscriberBlocksOnlyItself(t *testing.T) {
	db, dsn := openDB(t)
	l := newLeader(t, db)
	down, hung, ok := newReceiver(t), newReceiver(t), newReceiver(t)
	down.setDown(true)
	var hungTries atomic.Int64
	hung.mu.Lock()
	hung.hang = true
	hung.onRequest = func() { hungTries.Add(1) }
	hung.mu.Unlock()
	// Named so that a notifier serving its subscribers one after the
	// other would serve the failing ones first.
	l.subscribe("a-down", down.srv.URL, "")
	l.subscribe("b-hung", hung.srv.URL, "")
	l.subscribe("c-ok", ok.srv.URL, "")
	l.raise("alarm", 200)
	want := expectedIDs(t, db, "c-ok")
	if len(want) != 200 {
		t.Fatalf("leader queued %d rows for c-ok, want 200", len(want))
	}
	start(t, testConfig(dsn, "n1"), db, prometheus.NewRegistry())
	waitFor(t, 30*time.Second, "200 deliveries to the healthy subscriber", func() bool { return len(ok.delivered()) >= 200 })
	if diff := cmp.Diff(ids(ok.delivered()), want); diff != "" {
		t.Fatalf("c-ok: delivered (-got +want):\n%s", diff)
	}
	if n := len(down.delivered()); n != 0 || len(down.receipts()) == 0 {
		t.Errorf("a-down: %d requests, %d answered 2xx; want some requests, none answered", len(down.receipts()), n)
	}
	if hungTries.Load() == 0 {
		t.Error("b-hung was never tried")
	}
	sts, err := notifier.Statuses(context.Background(), db, testConfig(dsn, ""), "a-down")
	if err != nil || len(sts) != 1 || sts[0].Pending != 200 {
		t.Errorf("a-down status %+v (%v); want its 200 rows pending", sts, err)
	}
}

// A row older than max_age moves to the dead-letter table with its reason;
// redrive sends it again with the same webhook id.
func TestExpiryAndRedrive(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.setDown(true)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, `,"delivery":{"max_age":"300ms"}`)
	l.raise("alarm", 20)
	want := expectedIDs(t, db, "ops")
	reg := prometheus.NewRegistry()
	start(t, testConfig(dsn, "n1"), db, reg)
	waitFor(t, 20*time.Second, "20 dead letters", func() bool {
		dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
		return err == nil && len(dls) == 20
	})
	dls, _ := notifier.DeadLetters(context.Background(), db, "ops", 100)
	if !strings.Contains(dls[0].Reason, "max_age") {
		t.Errorf("reason %q", dls[0].Reason)
	}
	var dlIDs []string
	for _, d := range dls {
		dlIDs = append(dlIDs, d.WebhookID)
	}
	if diff := cmp.Diff(dlIDs, want); diff != "" {
		t.Fatalf("dead letters (-got +want):\n%s", diff)
	}
	sts, err := notifier.Statuses(context.Background(), db, testConfig(dsn, ""), "ops")
	if err != nil || sts[0].DeadLetters != 20 || sts[0].Pending != 0 {
		t.Fatalf("status %+v err %v", sts, err)
	}
	rcv.setDown(false)
	// A redrive already running (here: its lock held) is not doubled.
	lease, err := store.Lock(context.Background(), db, "notifier.redrive", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notifier.Redrive(context.Background(), db, testConfig(dsn, ""), nil, "ops"); !errors.Is(err, store.ErrLockHeld) {
		t.Fatalf("Redrive beside another: %v; want ErrLockHeld", err)
	}
	if len(rcv.delivered()) != 0 {
		t.Fatal("a refused redrive sent letters")
	}
	lease.Release()
	res, err := notifier.Redrive(context.Background(), db, testConfig(dsn, ""), nil, "ops")
	if err != nil || res.Sent != 20 || res.Failed != 0 {
		t.Fatalf("Redrive = %+v, %v", res, err)
	}
	if diff := cmp.Diff(ids(rcv.delivered()), want); diff != "" {
		t.Fatalf("redriven (-got +want):\n%s", diff)
	}
	if dls, _ := notifier.DeadLetters(context.Background(), db, "", 100); len(dls) != 0 {
		t.Fatalf("%d dead letters left after redrive", len(dls))
	}
}

// Under backlog_policy dead_letter, the oldest rows beyond max_backlog move
// to the dead-letter table; the newest stay queued.
func TestBacklogPolicyDeadLetter(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.setDown(true)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, `,"delivery":{"max_backlog":10,"backlog_policy":"dead_letter"}`)
	l.raise("alarm", 50)
	want := expectedIDs(t, db, "ops")
	start(t, testConfig(dsn, "n1"), db, prometheus.NewRegistry())
	waitFor(t, 20*time.Second, "40 dead letters", func() bool {
		dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
		return err == nil && len(dls) == 40
	})
	rcv.setDown(false)
	waitFor(t, 20*time.Second, "10 deliveries", func() bool { return len(rcv.delivered()) == 10 })
	if diff := cmp.Diff(ids(rcv.delivered()), want[40:]); diff != "" {
		t.Fatalf("delivered (-got +want):\n%s", diff)
	}
}

// A subscriber whose backlog goes over its limit in the middle of a batch:
// the dead_letter policy runs at the next delivery (the cursor is stored
// first), not when a status count happens to fall on a cursor store. The
// third request is held while 200 rows arrive; counted from the cursor
// stored after the fourth delivery, 276 rows wait, so exactly the 176
// oldest move to the dead-letter table and the newest 100 are delivered.
func TestBacklogPolicyRunsMidBatch(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.holdAt, rcv.release = 3, make(chan struct{})
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, `,"delivery":{"max_backlog":100,"backlog_policy":"dead_letter"}`)
	l.raise("first", 80) // under the limit, one batch
	start(t, testConfig(dsn, "n1"), db, prometheus.NewRegistry())
	waitFor(t, 10*time.Second, "the third request held", func() bool { return rcv.held() == 1 })
	l.raise("storm", 200) // now over the limit, mid-batch
	want := expectedIDs(t, db, "ops")
	time.Sleep(3 * testConfig(dsn, "n1").StatusInterval) // so that a count is due at the next delivery
	close(rcv.release)
	// At least 104, so that more (the policy run late) fails below with
	// what was delivered rather than waiting for a count passed by.
	waitFor(t, 60*time.Second, "104 deliveries", func() bool { return len(rcv.delivered()) >= 104 })
	time.Sleep(testConfig(dsn, "n1").ScanInterval) // any more would come now
	dls, err := notifier.DeadLetters(context.Background(), db, "ops", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 176 {
		t.Fatalf("%d dead letters; want 176 (the policy ran at the fifth row)", len(dls))
	}
	if diff := cmp.Diff(ids(rcv.delivered()), append(append([]string(nil), want[:4]...), want[180:]...)); diff != "" {
		t.Errorf("delivered (-got +want):\n%s", diff)
	}
}

// A subscription deleted with rows pending: they go to the dead-letter
// table, not nowhere.
func TestDeletedSubscription(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.setDown(true)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 5)
	start(t, testConfig(dsn, "n1"), db, prometheus.NewRegistry())
	waitFor(t, 10*time.Second, "a failed attempt", func() bool { return len(rcv.receipts()) > 0 })
	l.apply(deleteSub("ops"))
	waitFor(t, 20*time.Second, "5 dead letters", func() bool {
		dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
		return err == nil && len(dls) == 5 && strings.Contains(dls[0].Reason, "deleted")
	})
	// Redrive cannot send them (no subscription) and says so apart from
	// failures; a purge of the subscription's letters deletes them.
	res, err := notifier.Redrive(context.Background(), db, testConfig(dsn, ""), nil, "")
	if err != nil || res.Failed != 0 || res.Orphaned != 5 {
		t.Errorf("Redrive = %+v, %v; want the 5 left as orphaned", res, err)
	}
	if n, err := notifier.PurgeDeadLetters(context.Background(), db, "other", false); err != nil || n != 0 {
		t.Errorf("PurgeDeadLetters(other) = %d, %v; want 0", n, err)
	}
	if n, err := notifier.PurgeDeadLetters(context.Background(), db, "ops", false); err != nil || n != 5 {
		t.Errorf("PurgeDeadLetters(ops) = %d, %v; want 5", n, err)
	}
}

// TestDeletedBeforeStart: a notifier that starts after a subscription was
// deleted with rows pending moves them to the dead-letter table without
// judging them by a backlog policy it never loaded (it used to log them
// over a max_backlog of 0, policy "", and raise the over-limit gauge).
func TestDeletedBeforeStart(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 5)
	l.apply(deleteSub("ops"))
	logs := logtest.NewHandler()
	startWith(t, testConfig(dsn, "n1"), db, notifier.Deps{Logger: slog.New(logs)})
	waitFor(t, 20*time.Second, "5 dead letters", func() bool {
		dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
		return err == nil && len(dls) == 5 && strings.Contains(dls[0].Reason, "deleted")
	})
	if n := logsContaining(logs, "over its limit"); n > 0 {
		t.Errorf("the deleted subscription's rows were logged over a backlog limit %d times", n)
	}
	if n := len(rcv.receipts()); n != 0 {
		t.Errorf("%d requests to the deleted subscription's receiver; want none", n)
	}
}

// TestRefusedRowIsDeadLettered: with max_refusals, a row the receiver
// refuses (422) that many times moves to the dead-letter table and the
// rows after it are delivered, in order; a receiver that is down (503)
// only delays.
func TestRefusedRowIsDeadLettered(t *testing.T) {
	t.Run("empty answer", func(t *testing.T) { testRefusedRow(t, "") })
	// The answer is cut to 256 bytes inside a character: stored as it
	// is, the invalid text would make MariaDB refuse every status update,
	// so the row would be retried without backoff and never dead-lettered.
	t.Run("answer cut inside a character", func(t *testing.T) { testRefusedRow(t, "x"+strings.Repeat("é", 200)) })
}

func testRefusedRow(t *testing.T, answer string) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 5)
	rcv.mu.Lock()
	rcv.refuseSeq = l.seq - 2 // the third alarm's row
	rcv.refuseBody = answer
	rcv.mu.Unlock()
	cfg := testConfig(dsn, "n1")
	cfg.Delivery.MaxRefusals = 3
	start(t, cfg, db, prometheus.NewRegistry())
	waitFor(t, 20*time.Second, "4 deliveries", func() bool { return len(rcv.delivered()) >= 4 })
	var seqs []int64
	for _, d := range rcv.delivered() {
		seqs = append(seqs, d.seq)
	}
	if want := []int64{l.seq - 4, l.seq - 3, l.seq - 1, l.seq}; !cmp.Equal(seqs, want) {
		t.Errorf("delivered seqs %v; want %v", seqs, want)
	}
	dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
	if err != nil || len(dls) != 1 || !strings.Contains(dls[0].Reason, "refused") || !strings.Contains(dls[0].Reason, "422") {
		t.Fatalf("dead letters %+v (%v); want the refused row with the answer", dls, err)
	}
	if !utf8.ValidString(dls[0].Reason) || !strings.Contains(dls[0].Reason, answer[:min(len(answer), 21)]) {
		t.Errorf("reason %q; want the receiver's answer, valid UTF-8", dls[0].Reason)
	}
	if n := len(rcv.receipts()); n != 4+3 {
		t.Errorf("%d requests; want 4 deliveries and 3 refusals", n)
	}
}

// TestDeletedThenAddedAgain: a subscription deleted and added again (to
// another receiver) before the notifier saw the deletion: the rows derived
// for the deleted one go to the dead-letter table, not to the new
// receiver, which gets only its own.
func TestDeletedThenAddedAgain(t *testing.T) {
	db, dsn := openDB(t)
	old, cur := newReceiver(t), newReceiver(t)
	l := newLeader(t, db)
	l.subscribe("ops", old.srv.URL, "")
	l.raise("before", 5)
	l.apply(deleteSub("ops"))
	l.subscribe("ops", cur.srv.URL, "")
	l.raise("after", 3)
	start(t, testConfig(dsn, "n1"), db, prometheus.NewRegistry())
	waitFor(t, 20*time.Second, "the new receiver's 3 rows", func() bool { return len(cur.delivered()) >= 3 })
	time.Sleep(500 * time.Millisecond) // anything more would have come by now
	if n := len(cur.delivered()); n != 3 {
		t.Errorf("the new receiver got %d notifications; want its 3", n)
	}
	if n := len(old.receipts()); n != 0 {
		t.Errorf("the old receiver got %d requests after its subscription was deleted", n)
	}
	dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
	if err != nil || len(dls) != 5 || !strings.Contains(dls[0].Reason, "deleted") {
		t.Errorf("dead letters: %d (%v); want the deleted subscription's 5", len(dls), err)
	}
	// A redrive leaves them too: they are the deleted subscription's, and
	// the new one's receiver must not get them.
	res, err := notifier.Redrive(context.Background(), db, testConfig(dsn, ""), nil, "")
	if err != nil || res.Sent != 0 || res.Failed != 0 || res.Orphaned != 5 {
		t.Errorf("Redrive = %+v, %v; want the 5 left as orphaned", res, err)
	}
	if n := len(cur.delivered()); n != 3 {
		t.Errorf("after the redrive the new receiver has %d notifications; want its 3", n)
	}
	if n, err := notifier.PurgeDeadLetters(context.Background(), db, "", true); err != nil || n != 5 {
		t.Errorf("PurgeDeadLetters(orphaned) = %d, %v; want 5", n, err)
	}
	if dls, err := notifier.DeadLetters(context.Background(), db, "", 100); err != nil || len(dls) != 0 {
		t.Errorf("%d dead letters left after the purge (%v)", len(dls), err)
	}
}

// TestURLChangeReachesNextRows: a subscription moved to another URL gets
// every row derived after the change at the new URL, even when the
// notifier fetches those rows before its periodic reload of the spec.
func TestURLChangeReachesNextRows(t *testing.T) {
	db, dsn := openDB(t)
	old, cur := newReceiver(t), newReceiver(t)
	l := newLeader(t, db)
	l.subscribe("ops", old.srv.URL, "")
	cfg := testConfig(dsn, "n1")
	cfg.ScanInterval = time.Hour // the periodic reload never comes
	start(t, cfg, db, prometheus.NewRegistry())
	l.raise("before", 3)
	waitFor(t, 20*time.Second, "the old receiver's 3 rows", func() bool { return len(old.delivered()) >= 3 })
	l.subscribe("ops", cur.srv.URL, "")
	l.raise("after", 4)
	waitFor(t, 20*time.Second, "the new receiver's 4 rows", func() bool { return len(cur.delivered()) >= 4 })
	time.Sleep(300 * time.Millisecond) // anything more would have come by now
	if n := len(old.delivered()); n != 3 {
		t.Errorf("the old receiver got %d notifications; want the 3 from before the change", n)
	}
	if n := len(cur.delivered()); n != 4 {
		t.Errorf("the new receiver got %d notifications; want the 4 from after the change", n)
	}
}

// Stopped by its context (SIGTERM) mid-delivery, the notifier stores what
// it delivered: a restart repeats at most the one request in flight.
func TestGracefulStopStoresProgress(t *testing.T) {
	t.Run("default", func(t *testing.T) { testGracefulStop(t, func(*notifier.Config) {}) })
	// Housekeeping (lease, spec, backlog) queries the database before
	// almost every delivery, so the stop lands in one of them.
	t.Run("stop during housekeeping", func(t *testing.T) {
		testGracefulStop(t, func(c *notifier.Config) { c.ScanInterval, c.StatusInterval = time.Nanosecond, time.Nanosecond })
	})
}

func testGracefulStop(t *testing.T, tune func(*notifier.Config)) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.delay = time.Millisecond
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 500)
	want := expectedIDs(t, db, "ops")
	cfg := testConfig(dsn, "n1")
	tune(&cfg)
	n, err := notifier.New(cfg, notifier.Deps{DB: db, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitFor(t, 30*time.Second, "120 deliveries", func() bool { return len(rcv.delivered()) >= 120 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	before := len(rcv.receipts())
	if before >= 500 {
		t.Fatal("everything was delivered before the stop")
	}
	start(t, testConfig(dsn, "n2"), db, prometheus.NewRegistry())
	waitFor(t, 30*time.Second, "500 deliveries", func() bool { return len(rcv.delivered()) >= 500 })
	if diff := cmp.Diff(ids(rcv.delivered()), want); diff != "" {
		t.Fatalf("delivered (-got +want):\n%s", diff)
	}
	if repeats := len(rcv.receipts()) - 500; repeats > 1 {
		t.Fatalf("%d requests repeated after a graceful stop, want at most 1", repeats)
	}
}

// TestGracefulStopFinishesTheRequestInFlight: stopped (SIGTERM) while a
// request is in flight, the notifier lets it finish (within its timeout,
// inside shutdown_grace) and stores it delivered, instead of cutting it
// off to send it again after a restart.
func TestGracefulStopFinishesTheRequestInFlight(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.holdAt, rcv.release = 3, make(chan struct{})
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 10)
	want := expectedIDs(t, db, "ops")
	n, err := notifier.New(testConfig(dsn, "n1"), notifier.Deps{DB: db, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitFor(t, 30*time.Second, "the third request held", func() bool { return rcv.held() == 1 })
	cancel()
	time.Sleep(100 * time.Millisecond) // a request cut off by the stop would be by now
	rcv.mu.Lock()
	rcv.holdAt = 0
	rcv.mu.Unlock()
	close(rcv.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(rcv.receipts()); got != 3 {
		t.Fatalf("%d requests before the stop; want 3, the last one finished", got)
	}
	start(t, testConfig(dsn, "n2"), db, prometheus.NewRegistry())
	waitFor(t, 30*time.Second, "10 deliveries", func() bool { return len(rcv.delivered()) >= 10 })
	if diff := cmp.Diff(ids(rcv.delivered()), want); diff != "" {
		t.Fatalf("delivered (-got +want):\n%s", diff)
	}
	if repeats := len(rcv.receipts()) - 10; repeats != 0 {
		t.Errorf("%d requests repeated; want none: the one in flight at the stop finished", repeats)
	}
}

// TestLeaseHoldsThroughEachAttempt: every delivery attempt starts with the
// lease holding for at least the attempt's timeout, even when the
// housekeeping before it took long after the last renewal (here its
// backlog count waits 1.6 s for a table lock): the lease is renewed again
// before such an attempt. Otherwise another instance could take the
// subscriber over mid-attempt and send the row again.
func TestLeaseHoldsThroughEachAttempt(t *testing.T) {
	const statusInterval = 100 * time.Millisecond
	db, dsn := openDB(t)
	rc := newReceiver(t)
	var mu sync.Mutex
	var margins []time.Duration
	ctx := context.Background()
	rc.mu.Lock()
	rc.onRequest = func() {
		var us int64
		if err := db.QueryRowContext(ctx, "SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), lease_expires) FROM notifier_cursors WHERE subscription_id = 'ops'").Scan(&us); err != nil {
			t.Error(err)
		}
		mu.Lock()
		margins = append(margins, time.Duration(us)*time.Microsecond)
		first := len(margins) == 1
		mu.Unlock()
		if !first {
			return
		}
		// Hold the outbox until 1.6 s from now: the next housekeeping's
		// backlog count waits for it.
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := conn.ExecContext(ctx, "LOCK TABLES notifier_outbox WRITE"); err != nil {
			t.Error(err)
			conn.Close()
			return
		}
		go func() {
			defer conn.Close()
			time.Sleep(1600 * time.Millisecond)
			if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
				t.Error(err)
			}
		}()
		// Answer after the status interval, so that the next
		// housekeeping counts the backlog.
		time.Sleep(2 * statusInterval)
	}
	rc.mu.Unlock()
	l := newLeader(t, db)
	l.subscribe("ops", rc.srv.URL, "")
	cfg := testConfig(dsn, "n1")
	cfg.LeaseTTL, cfg.Delivery.Timeout = 3*time.Second, 1500*time.Millisecond
	cfg.StatusInterval = statusInterval
	l.raise("slow", 2)
	start(t, cfg, db, prometheus.NewRegistry())
	waitFor(t, 30*time.Second, "2 rows delivered", func() bool { return len(rc.delivered()) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	for i, m := range margins {
		if m < cfg.Delivery.Timeout {
			t.Errorf("attempt %d started with the lease holding %s more; want at least the timeout (%s)", i+1, m, cfg.Delivery.Timeout)
		}
	}
}

// Dead letters older than dead_letter_retention are deleted; younger ones
// stay (TestExpiryAndRedrive keeps its letters under the default).
func TestDeadLettersPastRetentionAreDeleted(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.setDown(true)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, `,"delivery":{"max_age":"200ms"}`)
	l.raise("alarm", 10)
	cfg := testConfig(dsn, "n1")
	cfg.DeadLetterRetention = 2 * time.Second
	start(t, cfg, db, prometheus.NewRegistry())
	var first time.Time
	waitFor(t, 20*time.Second, "10 dead letters", func() bool {
		dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
		if err == nil && len(dls) == 10 && first.IsZero() {
			first = time.Now()
		}
		return err == nil && len(dls) == 10
	})
	waitFor(t, 20*time.Second, "the dead letters deleted past their retention", func() bool {
		dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
		return err == nil && len(dls) == 0
	})
	if d := time.Since(first); d < time.Second {
		t.Errorf("dead letters deleted %s after they appeared; the retention is 2s", d)
	}
}

// startWith runs a notifier with deps (DB and Logger filled in) until the
// test ends, and returns it.
func startWith(t testing.TB, cfg notifier.Config, db *sql.DB, deps notifier.Deps) *notifier.Notifier {
	t.Helper()
	deps.DB = db
	if deps.Logger == nil {
		deps.Logger = testLogger(t)
	}
	n, err := notifier.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

// TestMaxAgeIgnoresClockSkew: a row's age is the database's to tell (it
// stamped queued_at), not the difference between the notifier host's clock
// and the database's. A notifier whose clock runs two hours ahead must not
// dead-letter fresh rows of a subscription with a one-hour max_age, and one
// whose clock lags two hours must still dead-letter rows older than theirs.
func TestMaxAgeIgnoresClockSkew(t *testing.T) {
	t.Run("notifier clock ahead", func(t *testing.T) {
		db, dsn := openDB(t)
		rcv := newReceiver(t)
		l := newLeader(t, db)
		l.subscribe("ops", rcv.srv.URL, `,"delivery":{"max_age":"1h"}`)
		l.raise("alarm", 5)
		want := expectedIDs(t, db, "ops")
		startWith(t, testConfig(dsn, "n1"), db, notifier.Deps{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
		waitFor(t, 20*time.Second, "the 5 rows delivered or dead-lettered", func() bool {
			var left int
			err := db.QueryRow("SELECT COUNT(*) FROM notifier_outbox").Scan(&left)
			return err == nil && left == 0
		})
		dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 0 {
			t.Fatalf("%d fresh rows dead-lettered (reason %q); want every one delivered", len(dls), dls[0].Reason)
		}
		if diff := cmp.Diff(ids(rcv.delivered()), want); diff != "" {
			t.Fatalf("delivered (-got +want):\n%s", diff)
		}
	})
	t.Run("notifier clock behind", func(t *testing.T) {
		db, dsn := openDB(t)
		rcv := newReceiver(t)
		rcv.setDown(true)
		l := newLeader(t, db)
		l.subscribe("ops", rcv.srv.URL, `,"delivery":{"max_age":"300ms"}`)
		l.raise("alarm", 5)
		startWith(t, testConfig(dsn, "n1"), db, notifier.Deps{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
		waitFor(t, 20*time.Second, "5 dead letters", func() bool {
			dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
			return err == nil && len(dls) == 5
		})
	})
}

// TestRetryAfterIsHonored: a receiver that answers 503 or 429 with
// Retry-After is not asked again before that time (within backoff_max),
// however short the backoff.
func TestRetryAfterIsHonored(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			db, dsn := openDB(t)
			var mu sync.Mutex
			var times []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				mu.Lock()
				times = append(times, time.Now())
				first := len(times) == 1
				mu.Unlock()
				if first {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(code)
				}
			}))
			t.Cleanup(srv.Close)
			l := newLeader(t, db)
			l.subscribe("ops", srv.URL, "")
			l.raise("alarm", 1)
			cfg := testConfig(dsn, "n1") // backoff 5 to 50 ms
			cfg.Delivery.BackoffMax = 5 * time.Second
			start(t, cfg, db, prometheus.NewRegistry())
			waitFor(t, 20*time.Second, "the retry", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(times) >= 2
			})
			mu.Lock()
			defer mu.Unlock()
			if gap := times[1].Sub(times[0]); gap < 900*time.Millisecond {
				t.Fatalf("retried %s after an answer with Retry-After: 1", gap)
			}
		})
	}
}

// logsContaining is the number of records whose message contains substr.
func logsContaining(h logtest.Handler, substr string) int {
	return h.Count(func(r slog.Record) bool { return strings.Contains(r.Message, substr) })
}

// TestLeaseHoldsThroughRetries: a subscriber retried for a long time keeps
// a margin on its lease: the backoff after an attempt renews it a third of
// the TTL after the last renewal, not a third of the TTL after the attempt
// began to wait, by when the attempt (allowed to end up to two thirds of the
// TTL after the last renewal) left nothing.
func TestLeaseHoldsThroughRetries(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	var attempts atomic.Int64
	rcv.hang, rcv.onRequest = true, func() { attempts.Add(1) }
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 1)
	cfg := testConfig(dsn, "n1")
	// With a 1 s TTL the lease is renewed every 333 ms. The backoff
	// (633 ms: the jitter is pinned to its top) ends 300 ms after its
	// renewal; the attempt, which needs no renewal first (300+336 ms is
	// within two thirds of the TTL), times out 636 ms after it.
	cfg.LeaseTTL, cfg.Delivery.Timeout = time.Second, 336*time.Millisecond
	cfg.Delivery.BackoffInitial, cfg.Delivery.BackoffMax = 633*time.Millisecond, 633*time.Millisecond
	cfg.ScanInterval, cfg.StatusInterval = time.Hour, time.Hour // no housekeeping renewals between
	logs := logtest.NewHandler()
	startWith(t, cfg, db, notifier.Deps{Logger: slog.New(logs), Jitter: func() float64 { return 1 - 1e-9 }})
	waitFor(t, 30*time.Second, "the first attempt", func() bool { return attempts.Load() >= 1 })
	// Sample the lease's remaining time over several retries.
	least := cfg.LeaseTTL
	for attempts.Load() < 6 {
		var us int64
		if err := db.QueryRow("SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), lease_expires) FROM notifier_cursors WHERE subscription_id = 'ops'").Scan(&us); err != nil {
			t.Fatal(err)
		}
		least = min(least, time.Duration(us)*time.Microsecond)
		time.Sleep(2 * time.Millisecond)
	}
	if least < cfg.LeaseTTL/6 {
		t.Errorf("the lease came within %s of expiring while the subscriber was retried; want a margin of at least %s", least, cfg.LeaseTTL/6)
	}
	if n := logsContaining(logs, "lease lost"); n > 0 {
		t.Errorf("the lease was lost %d times while the subscriber was retried", n)
	}
}

// TestIdleSubscriberKeepsItsLease: a subscriber with nothing to deliver
// keeps its lease however long the poll interval: the idle wait renews it
// on time rather than after the poll.
func TestIdleSubscriberKeepsItsLease(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	cfg := testConfig(dsn, "n1")
	cfg.LeaseTTL, cfg.Delivery.Timeout, cfg.PollInterval = time.Second, 300*time.Millisecond, 1500*time.Millisecond
	logs := logtest.NewHandler()
	startWith(t, cfg, db, notifier.Deps{Logger: slog.New(logs)})
	time.Sleep(4 * time.Second)
	if n := logsContaining(logs, "lease lost"); n > 0 {
		t.Errorf("an idle subscriber lost its lease %d times", n)
	}
	if n := logsContaining(logs, "draining subscriber"); n != 1 {
		t.Errorf("the subscriber was taken up %d times; want once", n)
	}
}
