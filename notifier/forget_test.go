package notifier_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDeletedSubscriptionSeriesAreForgotten: the series labelled with a
// subscription (attempts, deliveries, latency, dead letters) were
// exported for as long as the process ran after the subscription was
// deleted, one set more for every subscription ever deleted. They are
// removed a few scans after it is gone; the others stay.
func TestDeletedSubscriptionSeriesAreForgotten(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.subscribe("dev", rcv.srv.URL, "")
	l.raise("first", 3)
	reg := prometheus.NewRegistry()
	start(t, testConfig(dsn, "n1"), db, reg)
	series := func(name string) int {
		n, err := testutil.GatherAndCount(reg, name)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, 20*time.Second, "deliveries to both", func() bool {
		return series("causeway_notifier_delivered_total") == 2 && len(rcv.delivered()) >= 6
	})
	l.apply(deleteSub("ops"))
	names := []string{"causeway_notifier_delivered_total", "causeway_notifier_delivery_attempts_total", "causeway_notifier_delivery_latency_seconds"}
	waitFor(t, 20*time.Second, "the deleted subscription's series removed", func() bool {
		for _, name := range names {
			if series(name) != 1 {
				return false
			}
		}
		return true
	})
	if got := counter(t, reg, "causeway_notifier_delivered_total"); got != 3 {
		t.Errorf("delivered_total left %v, want dev's 3 (kept)", got)
	}
}
