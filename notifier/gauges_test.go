package notifier_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestBacklogGaugesMoveWhileBackingOff: a subscriber that does not take
// its webhooks is retried with a backoff of up to backoff_max (5 minutes
// by default), and its backlog was counted only between attempts, so
// causeway_notifier_backlog_rows and _oldest_pending_age_seconds, which
// the README says to alert on for such a subscriber, stood still for
// minutes at a time (and the backlog went over max_backlog unseen as
// long). They are counted every status_interval while the worker waits.
func TestBacklogGaugesMoveWhileBackingOff(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.setDown(true)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("first", 10)
	cfg := testConfig(dsn, "n1")
	cfg.Delivery.BackoffInitial, cfg.Delivery.BackoffMax = 20*time.Second, 20*time.Second
	reg := prometheus.NewRegistry()
	start(t, cfg, db, reg)
	waitFor(t, 10*time.Second, "the first failed attempt", func() bool { return len(rcv.receipts()) >= 1 })
	waitFor(t, 10*time.Second, "the first backlog count", func() bool { return gauge(t, reg, "causeway_notifier_backlog_rows") == 10 })
	age := gauge(t, reg, "causeway_notifier_oldest_pending_age_seconds")
	l.raise("more", 5)
	// The attempt after the first is 10 to 20 seconds away.
	waitFor(t, 5*time.Second, "the backlog counted again while backing off", func() bool {
		return gauge(t, reg, "causeway_notifier_backlog_rows") == 15 && gauge(t, reg, "causeway_notifier_oldest_pending_age_seconds") > age
	})
	if n := len(rcv.receipts()); n != 1 {
		t.Errorf("receiver asked %d times; want once (the test measured during the backoff)", n)
	}
}
