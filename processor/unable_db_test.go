package processor

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// TestLeaderCutOffFromTheDatabaseHandsOver: a leader whose database goes
// away (here its port closes; in the field its host's route or its grants
// go) can neither claim its fencing rows nor read who else is ready, while
// raft, which reaches the other voters, keeps it leading: every
// notification and snapshot would wait on it for as long as that lasts.
// It hands leadership over; the database answering again, a leader that
// can do its duties keeps it.
func TestLeaderCutOffFromTheDatabaseHandsOver(t *testing.T) {
	defer func(d time.Duration) { unableHandOverAfter = d }(unableHandOverAfter)
	unableHandOverAfter = 200 * time.Millisecond
	dsn, proxy := storetest.NewProxy(t, storetest.NewDB(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// p2 is ready to take over: its presence row says so.
	actx, stopAnnounce := context.WithCancel(context.Background())
	announced := make(chan struct{})
	go func() {
		defer close(announced)
		_ = store.Announce(actx, db, "p2", func() store.NodeState { return store.NodeState{Ready: true} }, slog.New(slog.DiscardHandler))
	}()
	defer func() { stopAnnounce(); <-announced }()
	waitFor(t, "p2's presence row", func() bool { ps, err := store.Present(ctx, db); return err == nil && len(ps) == 1 })
	n := dbNode(t, db)
	n.parts.Present = func(ctx context.Context) ([]store.Presence, error) { return store.Present(ctx, db) }
	handedOver := func(e *fakeElector) bool { return e.stepDowns.Load() > 0 }

	proxy.Down()
	if got := leadFor(t, n, 4, 20*time.Second, handedOver); got == 0 {
		t.Fatal("a leader cut off from the database never handed leadership over")
	}
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	// A pool of its own: the first pool's connections were cut with the
	// proxy, and a statement on one of them fails once (unexpected EOF),
	// which a leader rightly counts as a failing write.
	db2, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	able := dbNode(t, db2)
	able.elect = &fakeElector{leader: "t"}
	able.cfg.PollInterval = time.Hour
	able.f.setHead(0) // the log is empty: caught up
	able.parts.Present = func(ctx context.Context) ([]store.Presence, error) { return store.Present(ctx, db2) }
	// Claiming the fencing rows may take a while on a loaded machine:
	// that is not being unable, so give it more than the first leader had.
	unableHandOverAfter = time.Second
	if got := leadFor(t, able, 5, 5*unableHandOverAfter, handedOver); got != 0 {
		t.Errorf("%d hand-overs by a leader that reaches the database", got)
	}
}
