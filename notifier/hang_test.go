package notifier_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/notifier"
)

// TestStopWhileCursorCommitUnanswered: a notifier stopped (SIGTERM) while
// the database has not answered the COMMIT that moves a subscriber's
// cursor returns from Run, instead of holding its worker until the
// kernel's TCP timeout ends the connection (past any shutdown grace). The
// COMMIT took effect although the worker could not know it: the stored
// cursor is past every row delivered, so the next instance sends none of
// them again.
func TestStopWhileCursorCommitUnanswered(t *testing.T) {
	db, dsn := openDB(t)
	ndb, proxy := openProxied(t, dsn)
	rcv := newReceiver(t)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 10)
	// The last row's delivery is under way: the worker's next COMMIT is
	// the one that stores the cursor past the batch.
	var tripped <-chan struct{}
	armed := make(chan struct{})
	rcv.onRequest = func() {
		if len(rcv.got) == 9 {
			tripped = proxy.HoleAfter([]byte("COMMIT"))
			close(armed)
		}
	}
	n, err := notifier.New(testConfig(dsn, "n1"), notifier.Deps{DB: ndb, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-armed:
	case <-time.After(30 * time.Second):
		t.Fatal("the tenth delivery never came")
	}
	select {
	case <-tripped:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker sent no COMMIT after the tenth delivery")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the stopped notifier still waits for the answer to its COMMIT a minute later")
	}
	proxy.Pass()

	var delivered, left int
	if err := db.QueryRow("SELECT delivered FROM notifier_cursors WHERE subscription_id = 'ops'").Scan(&delivered); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM notifier_outbox WHERE subscription_id = 'ops'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if delivered != 10 || left != 0 {
		t.Errorf("stored cursor: %d delivered, %d rows left; want 10 delivered, none left", delivered, left)
	}
	if got := len(rcv.delivered()); got != 10 {
		t.Errorf("receiver got %d notifications; want 10", got)
	}
}

// timedOut says whether a record with message msg carries an error that
// ended at its deadline.
func timedOut(h logtest.Handler, msg string) bool {
	return h.Count(func(r slog.Record) bool {
		return r.Message == msg && errors.Is(logtest.Err(r), context.DeadlineExceeded)
	}) > 0
}

// TestQueriesEndAtQueryTimeout: while MariaDB hangs (behind a proxy turned
// black hole: connections accepted, statements read, nothing answered),
// the notifier's statements end at query_timeout, as failed ones: the
// worker draining a subscriber stops and gives its lease up (or leaves it
// to expire), and the scan that would take it up again fails the same way
// at each interval, instead of any of them waiting until the kernel's TCP
// timeout ends the connection (about 15 minutes). Once the database
// answers again the notifier takes the subscriber up from its stored
// cursor and delivers what was queued meanwhile: every row, in order,
// each once (a repeat is an exact repeat of a webhook id).
func TestQueriesEndAtQueryTimeout(t *testing.T) {
	db, dsn := openDB(t)
	ndb, proxy := openProxied(t, dsn)
	rcv := newReceiver(t)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("before", 5)
	want := expectedIDs(t, db, "ops")

	cfg := testConfig(dsn, "n1")
	cfg.QueryTimeout = time.Second
	logs := logtest.NewHandler()
	reg := prometheus.NewRegistry()
	startWith(t, cfg, ndb, notifier.Deps{Logger: slog.New(logs), Registerer: reg})
	waitFor(t, 30*time.Second, "the rows queued before the hang delivered", func() bool { return len(rcv.delivered()) == len(want) })

	proxy.Hole()
	holed := time.Now()
	// The worker polls the outbox every poll_interval (10ms), and renews
	// its lease: its next statement meets the hang at once.
	waitFor(t, 30*time.Second, "the worker stopped by a statement ended at query_timeout", func() bool {
		return timedOut(logs, "subscriber worker stopped")
	})
	if d := time.Since(holed); d > cfg.QueryTimeout+5*time.Second {
		t.Errorf("the worker stopped %s after the hang began; want about query_timeout (%s)", d, cfg.QueryTimeout)
	}
	// The stopped worker gives its lease up (a statement that ends at
	// query_timeout too), and the scans that would take it up again fail.
	waitFor(t, 30*time.Second, "the stopped worker gone from leases_held", func() bool {
		return gauge(t, reg, "causeway_notifier_leases_held") == 0
	})
	waitFor(t, 30*time.Second, "a scan ended at query_timeout", func() bool { return timedOut(logs, "scan subscriptions") })
	if !timedOut(logs, "release lease") {
		t.Error("the stopped worker's release of its lease did not end at query_timeout")
	}

	l.raise("during", 5)
	for _, id := range expectedIDs(t, db, "ops") {
		if !slices.Contains(want, id) {
			want = append(want, id)
		}
	}
	proxy.Pass()
	waitFor(t, 30*time.Second, "every row delivered once the database answers again", func() bool { return len(rcv.delivered()) == len(want) })
	if got := ids(rcv.delivered()); !slices.Equal(got, want) {
		t.Errorf("delivered %v; want %v", got, want)
	}
	if bad := rcv.badSignatures(); len(bad) > 0 {
		t.Errorf("bad signatures: %v", bad)
	}
	waitFor(t, 30*time.Second, "the subscriber's rows deleted behind its stored cursor", func() bool {
		var left int
		if err := db.QueryRow("SELECT COUNT(*) FROM notifier_outbox WHERE subscription_id = 'ops'").Scan(&left); err != nil {
			t.Fatal(err)
		}
		return left == 0
	})
	if got := gauge(t, reg, "causeway_notifier_leases_held"); got != 1 {
		t.Errorf("leases_held = %v after the database came back; want 1", got)
	}
}

// TestLargeDeadLetterMoveFitsQueryTimeout: a subscription deleted with a
// backlog far larger than one transaction can move within query_timeout
// still has every row moved to the dead-letter table: the move is made
// of transactions of a bounded size, the cursor stored after each, rather
// than one that ends at the timeout, rolled back, and is tried again whole
// at every scan for ever.
func TestLargeDeadLetterMoveFitsQueryTimeout(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	// The rows of the subscription's first seq, written straight away:
	// their delivery is not what is tested, and a leader derives them far
	// more slowly. Each seq_1_to_N is a table of MariaDB's Sequence engine.
	const rows = 200_000
	for from := 0; from < rows; from += 20_000 {
		if _, err := db.Exec(`INSERT INTO notifier_outbox (subscription_id, seq, ord, webhook_id, recorded_at, queued_at, term, payload)
			SELECT 'ops', ?, ? + seq, CONCAT('bulk-', ? + seq), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1, REPEAT('x', 600) FROM seq_1_to_20000`,
			l.seq, from, from); err != nil {
			t.Fatal(err)
		}
	}
	l.apply(deleteSub("ops"))
	// Moving all of them in one transaction takes several seconds here
	// (300,000 such rows took 13 s; 120,000, their pages in the buffer
	// pool, 2 s).
	cfg := testConfig(dsn, "n1")
	cfg.QueryTimeout = time.Second
	reg := prometheus.NewRegistry()
	start(t, cfg, db, reg)
	waitFor(t, 2*time.Minute, "every row moved to the dead-letter table", func() bool {
		return counter(t, reg, "causeway_notifier_dead_lettered_total") == rows
	})
	var dead, left int
	if err := db.QueryRow("SELECT COUNT(*) FROM notifier_dead_letters WHERE subscription_id = 'ops'").Scan(&dead); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM notifier_outbox WHERE subscription_id = 'ops'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if dead != rows || left != 0 {
		t.Errorf("%d dead letters, %d rows left in the outbox; want %d and none", dead, left, rows)
	}
	if n := rcv.requests(); n != 0 {
		t.Errorf("the receiver got %d requests for a deleted subscription; want none", n)
	}
}

// openProxied opens a pool on dsn through a proxy that can black-hole it.
func openProxied(t *testing.T, dsn string) (*sql.DB, *storetest.Proxy) {
	t.Helper()
	proxied, proxy := storetest.NewProxy(t, dsn)
	db, err := store.Open(context.Background(), proxied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, proxy
}
