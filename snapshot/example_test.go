package snapshot_test

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/snapshot"
)

// A processor's wiring: a cold start reconstructs the newest state, and the
// leader snapshots a shadow engine so that event processing never waits.
func Example() {
	ctx := context.Background()
	var db *sql.DB // store.Open(ctx, dsn), migrated
	norm, _ := graph.NewNormalizer(nil)
	factory := snapshot.EngineFactory{Normalizer: norm}
	rc, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
		DB: db, Events: store.NewLog(db, nil), Factory: factory, Logger: slog.Default(),
	})
	if err != nil {
		return
	}
	// Cold start: the newest usable snapshot, then the log; then follow the
	// sequenced stream from res.Seq+1.
	res, err := rc.Reconstruct(ctx, snapshot.Latest())
	if err != nil {
		return
	}
	_ = res.Machine

	w, err := snapshot.NewWriter(snapshot.Config{Policy: snapshot.Policy{EveryEvents: 100_000, EveryChanges: 400_000, EveryInterval: 10 * time.Minute}},
		snapshot.WriterDeps{DB: db, Fence: snapshot.FenceFunc(store.CheckFence), Logger: slog.Default()})
	if err != nil {
		return
	}
	shadow := snapshot.NewShadow(rc, factory)
	// Leader loop, outside the apply lock:
	// (changes: the live machine's ChangesApplied, read with applied.)
	var term, applied, changes int64
	if w.Due(applied, changes) {
		_, _ = w.TakeFromLog(ctx, term, shadow, applied)
	}
}
