package notifier_test

import (
	"context"
	"testing"
	"time"

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
	proxied, proxy := storetest.NewProxy(t, dsn)
	ndb, err := store.Open(context.Background(), proxied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ndb.Close() })
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
