package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
)

// TestWriteUnansweredEndsWithItsContext: over a database that stops
// answering right after an outbox write's COMMIT reached it, Write returns
// once its context ends (the leader's round limit), not when the kernel's
// TCP timeout would end the connection. The COMMIT took effect although
// Write could not know it: writing the same batch again, as the leader
// does after a failed round, stores no row twice.
func TestWriteUnansweredEndsWithItsContext(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	proxied, proxy := storetest.NewProxy(t, dsn)
	db, err := store.Open(ctx, proxied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	put := subscription.Update{ID: "ops", Seq: 1, Spec: json.RawMessage(`{"url":"http://a/"}`)}
	b := outbox.Batch{Seq: 2, Subscriptions: []subscription.Update{put}, Rows: []outbox.Row{row(2, 0), row(2, 1)}}

	tripped := proxy.HoleAfter([]byte("COMMIT"))
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := outbox.Write(wctx, db, 1, b)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("outbox write whose COMMIT went unanswered = %v; want a deadline error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("outbox write still waits for the answer to its COMMIT a minute past its deadline")
	}
	select {
	case <-tripped:
	default:
		t.Fatal("outbox write sent no COMMIT")
	}
	proxy.Pass()

	if n, err := outbox.Write(ctx, db, 1, b); err != nil || n != 0 {
		t.Fatalf("outbox write again = %d, %v; want 0 rows (the COMMIT took effect)", n, err)
	}
	if head, err := outbox.Head(ctx, db); err != nil || head != 2 {
		t.Errorf("head = %d, %v; want 2", head, err)
	}
	for q, want := range map[string]int{
		"SELECT COUNT(*) FROM notifier_outbox":                                 2,
		"SELECT COUNT(*) FROM notifier_subscriptions WHERE id = 'ops'":         1,
		"SELECT COUNT(*) FROM notifier_cursors WHERE subscription_id = 'ops'":  1,
		"SELECT COUNT(DISTINCT webhook_id) FROM notifier_outbox WHERE seq = 2": 2,
	} {
		if c := count(t, db, q); c != want {
			t.Errorf("%s = %d; want %d", q, c, want)
		}
	}
}
