package store_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

func idle() store.NodeState { return store.NodeState{} }

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
	go func() { done <- store.Announce(actx, db, "p1", idle, slog.New(slog.DiscardHandler)) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(present()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("p1 not present within 10s of Announce")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A node killed long ago left its row behind.
	if _, err := db.ExecContext(ctx, "INSERT INTO processor_presence (node_id, instance, started_at, seen_at) VALUES ('p2', 'x', ?, ?)",
		time.Now().UTC().Add(-time.Hour), time.Now().UTC().Add(-store.PresenceTimeout-time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := present(); len(got) != 1 || got[0] != "p1" {
		t.Fatalf("present = %v; want [p1] (p2's row is stale)", got)
	}
	// A second run of p1 (an overlapping restart) takes the row over; the
	// first one's stop leaves it.
	instance := func() string {
		t.Helper()
		var in string
		if err := db.QueryRowContext(ctx, "SELECT instance FROM processor_presence WHERE node_id = 'p1'").Scan(&in); err != nil {
			t.Fatal(err)
		}
		return in
	}
	first := instance() // the first run's, read before the second starts
	actx2, stop2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- store.Announce(actx2, db, "p1", idle, slog.New(slog.DiscardHandler)) }()
	deadline = time.Now().Add(10 * time.Second)
	for {
		if instance() != first {
			break // the second run's announcement replaced it
		}
		if time.Now().After(deadline) {
			t.Fatal("the second run of p1 did not take the row over")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The first run may refresh once more before it stops, so take the
	// row back for the second run with its next refresh.
	time.Sleep(store.PresenceInterval + time.Second)
	if got := present(); len(got) != 1 || got[0] != "p1" {
		t.Fatalf("present after the first run of p1 stopped = %v; want p1 (its second run)", got)
	}
	stop2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	if got := present(); len(got) != 0 {
		t.Fatalf("present after a clean stop = %v; want none", got)
	}
}

// TestPresenceSaysReadiness: the row says the node's readiness and applied
// seq; a change of readiness reaches it well before the next periodic
// refresh (PresenceInterval).
func TestPresenceSaysReadiness(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	var mu sync.Mutex
	st := store.NodeState{AppliedSeq: 7}
	state := func() store.NodeState { mu.Lock(); defer mu.Unlock(); return st }
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = store.Announce(actx, db, "p1", state, slog.New(slog.DiscardHandler)) }()
	waitRow := func(want store.NodeState, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			ps, err := store.Present(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) == 1 && ps[0].NodeState == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("presence %+v; want p1 with %+v within %s", ps, want, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitRow(store.NodeState{AppliedSeq: 7}, 10*time.Second)
	// Let the first periodic refresh go by, then turn ready: the row
	// must say so before the next one is due.
	time.Sleep(time.Second)
	mu.Lock()
	st = store.NodeState{Ready: true, AppliedSeq: 9}
	mu.Unlock()
	waitRow(store.NodeState{Ready: true, AppliedSeq: 9}, store.PresenceInterval-time.Second)
}
