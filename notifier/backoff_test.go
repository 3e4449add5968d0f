package notifier_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/notifier"
)

// TestURLFixEndsTheBackoff: an operator who points a failing subscription
// at a working URL has its rows delivered there within a scan interval,
// not after the backoff the old URL earned (up to backoff_max, five
// minutes by default): the wait between attempts reads the subscription
// too.
func TestURLFixEndsTheBackoff(t *testing.T) {
	db, dsn := openDB(t)
	broken, fixed := newReceiver(t), newReceiver(t)
	broken.setDown(true)
	l := newLeader(t, db)
	l.subscribe("ops", broken.srv.URL, "")
	l.raise("alarm", 3)
	cfg := testConfig(dsn, "n1")
	cfg.Delivery.BackoffInitial, cfg.Delivery.BackoffMax = time.Minute, time.Minute
	start(t, cfg, db, prometheus.NewRegistry())
	waitFor(t, 10*time.Second, "a failed attempt at the broken URL", func() bool { return len(broken.receipts()) > 0 })
	l.subscribe("ops", fixed.srv.URL, "")
	waitFor(t, 5*time.Second, "the 3 rows at the fixed URL", func() bool { return len(fixed.delivered()) >= 3 })
	if n := len(broken.receipts()); n != 1 {
		t.Errorf("the broken URL got %d requests; want the 1 before the fix", n)
	}
}

// TestDeletionEndsTheBackoff: a failing subscription deleted while it
// waits out its backoff has its rows moved to the dead-letter table within
// a scan interval, not after the backoff.
func TestDeletionEndsTheBackoff(t *testing.T) {
	db, dsn := openDB(t)
	rcv := newReceiver(t)
	rcv.setDown(true)
	l := newLeader(t, db)
	l.subscribe("ops", rcv.srv.URL, "")
	l.raise("alarm", 3)
	cfg := testConfig(dsn, "n1")
	cfg.Delivery.BackoffInitial, cfg.Delivery.BackoffMax = time.Minute, time.Minute
	start(t, cfg, db, prometheus.NewRegistry())
	waitFor(t, 10*time.Second, "a failed attempt", func() bool { return len(rcv.receipts()) > 0 })
	l.apply(deleteSub("ops"))
	waitFor(t, 5*time.Second, "3 dead letters", func() bool {
		dls, err := notifier.DeadLetters(context.Background(), db, "ops", 100)
		return err == nil && len(dls) == 3 && strings.Contains(dls[0].Reason, "deleted")
	})
}

// TestFilterChangeKeepsTheBackoff: a change of the subscription that does
// not touch where or how its rows are sent (here its filter) does not end
// the wait: a receiver that asked for time (Retry-After) gets it.
func TestFilterChangeKeepsTheBackoff(t *testing.T) {
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
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	l := newLeader(t, db)
	l.subscribe("ops", srv.URL, "")
	l.raise("alarm", 1)
	cfg := testConfig(dsn, "n1") // backoff 5 to 50 ms, scan every 100 ms
	cfg.Delivery.BackoffMax = 5 * time.Second
	start(t, cfg, db, prometheus.NewRegistry())
	attempts := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(times)
	}
	waitFor(t, 10*time.Second, "the first attempt", func() bool { return attempts() >= 1 })
	l.subscribe("ops", srv.URL, `,"filter":{"alarm_names":["other"]}`)
	waitFor(t, 10*time.Second, "the retry", func() bool { return attempts() >= 2 })
	mu.Lock()
	defer mu.Unlock()
	if gap := times[1].Sub(times[0]); gap < 1900*time.Millisecond {
		t.Fatalf("retried %s after an answer with Retry-After: 2; the filter change ended the wait", gap)
	}
}
