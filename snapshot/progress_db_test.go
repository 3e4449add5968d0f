package snapshot

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// TestReconstructProgressStopsWhenTheDatabaseFreezes: a processor tells
// a slow load of its state from a hung one by the steps the
// reconstruction reports (WithProgress). Against the real database they
// come all along a long replay, page after page; once the database
// freezes (a proxy that forwards nothing more, the connections left
// open, which no timeout ends) they stop while the reconstruction still
// waits, so the watchdog is no longer pinged.
func TestReconstructProgressStopsWhenTheDatabaseFreezes(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	direct, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	td := &testDB{db: direct, clock: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
	td.log = store.NewLog(direct, func() time.Time { return td.clock })
	const events = 6000
	td.appendEvents(t, tickEvents(0, events, nil), 1000, time.Second)
	proxied, proxy := storetest.NewProxy(t, dsn)
	db, err := store.Open(ctx, proxied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rc, err := NewReconstructor(ReconstructConfig{PageSize: 50}, ReconstructDeps{DB: db, Events: store.NewLog(db, time.Now), Factory: kvFactory{}})
	if err != nil {
		t.Fatal(err)
	}

	var steps atomic.Int64
	res, err := rc.Reconstruct(WithProgress(ctx, func() { steps.Add(1) }), Latest())
	if err != nil {
		t.Fatal(err)
	}
	if res.Seq != events {
		t.Fatalf("reconstructed at seq %d, want %d", res.Seq, events)
	}
	if got, want := steps.Load(), int64(2*events/50); got < want {
		t.Errorf("%d steps reported over a replay of %d pages, want %d at least (a read and an apply a page)", got, events/50, want)
	}

	steps.Store(0)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := rc.Reconstruct(WithProgress(lctx, func() {
			if steps.Add(1) == 3 {
				proxy.Hole() // the database freezes a few pages in
			}
		}), Latest())
		done <- err
	}()
	// The pages read ahead are applied; then the steps stop.
	last, still := int64(-1), 0
	for still < 10 {
		select {
		case err := <-done:
			t.Fatalf("reconstruction over a frozen database ended: %v (after %d steps)", err, steps.Load())
		case <-time.After(200 * time.Millisecond):
		}
		if n := steps.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	if last < 3 || last >= int64(2*events/50) {
		t.Fatalf("%d steps before the progress stopped, want some but not the whole replay's", last)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("reconstruction over a frozen database, cancelled: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("reconstruction over a frozen database still waits a minute after its context ended")
	}
}
