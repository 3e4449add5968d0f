package processor

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/snapshot"
	"github.com/prometheus/client_golang/prometheus"
)

// TestLoadOnAFrozenDatabaseIsStuck: a node loading its state from a
// database that froze (its connections open, nothing answered: no
// timeout ends the query) stops being alive once the load has made no
// progress for its limit, so the watchdog restarts it; the real
// reconstructor's steps (snapshot.WithProgress) are what tells it.
func TestLoadOnAFrozenDatabaseIsStuck(t *testing.T) {
	dsn, proxy := storetest.NewProxy(t, storetest.NewDB(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := Config{NodeID: "t", SnapshotCheck: time.Hour}
	cfg.SetDefaults()
	log := store.NewLog(db, nil)
	recon, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
		DB: db, Events: log, Factory: snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{cfg: cfg, deps: Deps{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Now: time.Now},
		log: slog.New(slog.DiscardHandler)}
	n, err := p.newNode(Parts{Log: log, Reconstructor: recon, Election: &fakeElector{}})
	if err != nil {
		t.Fatal(err)
	}
	const limit = 2 * time.Second
	n.loadLimit = limit
	p.node.Store(n)

	proxy.Hole()
	lctx, stop := context.WithCancel(ctx)
	done := make(chan bool, 1)
	start := time.Now()
	go func() { done <- n.load(lctx) }()
	for p.Alive() {
		select {
		case ok := <-done:
			t.Fatalf("load over a frozen database returned %v", ok)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Since(start) > limit+10*time.Second {
			t.Fatalf("a load hung on a frozen database is still alive after %s (its limit %s)", time.Since(start), limit)
		}
	}
	if d := time.Since(start); d < limit {
		t.Errorf("stuck after %s, before the limit %s", d, limit)
	}
	stop()
	select {
	case ok := <-done:
		if ok {
			t.Error("load reported success on a stop")
		}
	case <-time.After(time.Minute):
		t.Fatal("load still waits a minute after its stop")
	}
}
