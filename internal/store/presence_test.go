package store_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// TestPresence: a running Announce makes its node present; a row whose
// refreshes stopped (a killed processor) ages out; a clean stop deletes the
// row at once.
func TestPresence(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	present := func() []string {
		t.Helper()
		ps, err := store.Present(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range ps {
			ids = append(ids, p.NodeID)
		}
		return ids
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- store.Announce(actx, db, "p1", slog.New(slog.DiscardHandler)) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(present()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("p1 not present within 10s of Announce")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A node killed long ago left its row behind.
	if _, err := db.ExecContext(ctx, "INSERT INTO processor_presence (node_id, started_at, seen_at) VALUES ('p2', ?, ?)",
		time.Now().UTC().Add(-time.Hour), time.Now().UTC().Add(-store.PresenceTimeout-time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := present(); len(got) != 1 || got[0] != "p1" {
		t.Fatalf("present = %v; want [p1] (p2's row is stale)", got)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := present(); len(got) != 0 {
		t.Fatalf("present after a clean stop = %v; want none", got)
	}
}
