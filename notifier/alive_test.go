package notifier_test

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/liveness"
	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/notifier"
)

// skewedClock is the real clock plus an offset the test moves forward,
// so that an operation in flight seems to have run for as long as the
// test says.
type skewedClock struct{ off atomic.Int64 }

func (c *skewedClock) now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

func (c *skewedClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// logsWith is the number of records with message msg.
func logsWith(h logtest.Handler, msg string) int {
	return h.Count(func(r slog.Record) bool { return r.Message == msg })
}

// TestAliveThroughADatabaseOutage: while the database is down (its port
// closed) or hung (a black hole), the notifier's statements fail, at once
// or at query_timeout, scan after scan, and it stays alive all along: a
// watchdog restart would not bring the database back. Once the database
// answers again it delivers what was queued meanwhile.
func TestAliveThroughADatabaseOutage(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cut, repair func(*storetest.Proxy) error
	}{
		{"down", func(p *storetest.Proxy) error { p.Down(); return nil }, (*storetest.Proxy).Up},
		{"hung", func(p *storetest.Proxy) error { p.Hole(); return nil }, func(p *storetest.Proxy) error { p.Pass(); return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, dsn := openDB(t)
			ndb, proxy := openProxied(t, dsn)
			rcv := newReceiver(t)
			l := newLeader(t, db)
			l.subscribe("ops", rcv.srv.URL, "")
			l.raise("before", 3)
			want := expectedIDs(t, db, "ops")
			cfg := testConfig(dsn, "n1")
			cfg.QueryTimeout = 500 * time.Millisecond
			logs := logtest.NewHandler()
			n := startWith(t, cfg, ndb, notifier.Deps{Logger: slog.New(logs)})
			waitFor(t, 30*time.Second, "the rows queued before the outage delivered", func() bool { return len(rcv.delivered()) == len(want) })
			if !n.Alive() {
				t.Fatal("not alive before the outage")
			}

			if err := tc.cut(proxy); err != nil {
				t.Fatal(err)
			}
			failed := logsWith(logs, "scan subscriptions")
			waitFor(t, 30*time.Second, "three scans failed", func() bool {
				if !n.Alive() {
					t.Fatalf("not alive during the outage, after %d failed scans", logsWith(logs, "scan subscriptions")-failed)
				}
				return logsWith(logs, "scan subscriptions") >= failed+3
			})
			l.raise("during", 3)
			for _, id := range expectedIDs(t, db, "ops") {
				if !slices.Contains(want, id) {
					want = append(want, id)
				}
			}
			if err := tc.repair(proxy); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 30*time.Second, "every row delivered once the database answers again", func() bool { return len(rcv.delivered()) == len(want) })
			if got := ids(rcv.delivered()); !slices.Equal(got, want) {
				t.Errorf("delivered %v; want %v", got, want)
			}
			if !n.Alive() {
				t.Error("not alive after the outage")
			}
		})
	}
}

// TestStuckOnlyPastTheLimit: the notifier is stuck once one of its
// operations, a delivery or a statement, has been in flight for longer
// than the stall limit, liveness.Limit(query_timeout, lease_ttl/2), and
// not before; once the operation has ended it is alive again. The clock
// is moved forward rather than waited for.
func TestStuckOnlyPastTheLimit(t *testing.T) {
	check := func(t *testing.T, n *notifier.Notifier, clock *skewedClock, limit time.Duration) {
		t.Helper()
		if !n.Alive() {
			t.Fatal("not alive as the operation began")
		}
		clock.advance(limit - time.Second)
		if !n.Alive() {
			t.Fatalf("not alive with the operation in flight short of the limit (%s)", limit)
		}
		clock.advance(2 * time.Second)
		if n.Alive() {
			t.Fatalf("alive with the operation in flight past the limit (%s)", limit)
		}
	}

	t.Run("delivery", func(t *testing.T) {
		db, dsn := openDB(t)
		rcv := newReceiver(t)
		rcv.holdAt, rcv.release = 1, make(chan struct{})
		release := sync.OnceFunc(func() { close(rcv.release) })
		defer release() // before the notifier stops: its request waits for it
		l := newLeader(t, db)
		l.subscribe("ops", rcv.srv.URL, "")
		l.raise("alarm", 1)
		cfg := testConfig(dsn, "n1")
		cfg.LeaseTTL, cfg.Delivery.Timeout = 10*time.Minute, time.Minute
		var clock skewedClock
		n := startWith(t, cfg, db, notifier.Deps{Now: clock.now})
		waitFor(t, 30*time.Second, "the delivery held by the receiver", func() bool { return rcv.held() == 1 })
		// The default query_timeout (30 s); half the lease is longer.
		check(t, n, &clock, liveness.Limit(notifier.DefaultQueryTimeout, cfg.LeaseTTL/2))
		release()
		waitFor(t, 30*time.Second, "the held delivery answered", func() bool { return len(rcv.delivered()) == 1 })
		waitFor(t, 30*time.Second, "alive once the delivery ended", n.Alive)
	})

	t.Run("statement", func(t *testing.T) {
		_, dsn := openDB(t)
		ndb, proxy := openProxied(t, dsn)
		defer proxy.Pass()
		// The scan's query, and from it on every byte, goes unanswered.
		tripped := proxy.HoleAfter([]byte("FROM notifier_subscriptions"))
		cfg := testConfig(dsn, "n1")
		cfg.QueryTimeout = 5 * time.Second
		var clock skewedClock
		n := startWith(t, cfg, ndb, notifier.Deps{Now: clock.now})
		select {
		case <-tripped:
		case <-time.After(30 * time.Second):
			t.Fatal("the notifier sent no scan")
		}
		check(t, n, &clock, liveness.Limit(cfg.QueryTimeout, cfg.LeaseTTL/2))
		// The statement ends at query_timeout; those after it began after
		// the clock moved.
		waitFor(t, 30*time.Second, "alive once the statement ended", n.Alive)
	})
}
