package processor

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/snapshot"
	"github.com/prometheus/client_golang/prometheus"
)

// TestStressFollowLeadSnapshot: a node follows a log appended to
// meanwhile, leads, writes snapshots (shadow and live capture) and serves
// readers, all at once; every snapshot written must equal a replay of
// the log up to its seq.
func TestStressFollowLeadSnapshot(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(map[bool]string{false: "shadow", true: "live"}[live], func(t *testing.T) { stress(t, live) })
	}
}

func stress(t *testing.T, live bool) {
	db := openTestDB(t)
	evs := notifyLog()
	cfg := Config{NodeID: "t", FlushInterval: 5 * time.Millisecond, SnapshotCheck: time.Millisecond, PollInterval: 5 * time.Millisecond}
	cfg.SetDefaults()
	cfg.History.Retention = 100 * 365 * 24 * time.Hour
	log := store.NewLog(db, nil)
	factory := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}
	recon, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{PageSize: 7}, snapshot.ReconstructDeps{DB: db, Events: log, Factory: factory})
	if err != nil {
		t.Fatal(err)
	}
	w, err := snapshot.NewWriter(snapshot.Config{Policy: snapshot.Policy{EveryEvents: 5}}, snapshot.WriterDeps{
		DB: db, Fence: snapshot.FenceFunc(store.CheckFence),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{cfg: cfg, deps: Deps{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Now: time.Now},
		log: slog.New(slog.DiscardHandler)}
	parts := Parts{
		Log: log, Stream: &fakeStream{ch: make(chan bus.Update)}, Reconstructor: recon, Snapshots: w,
		Fence:   newLeaderFence(db, snapshot.DefaultFenceName, time.Second, nil),
		Produce: ProduceNode, Outbox: dbOutbox{db: db}, History: dbHistory{db: db},
		Capture: CaptureEngine, Inspect: InspectEngine, Election: &fakeElector{leader: "t"},
		SnapshotIndex: snapshot.NewStore(db, nil),
	}
	if !live {
		parts.NewShadow = func() *snapshot.Shadow { return snapshot.NewShadow(recon, factory) }
	}
	n, err := p.newNode(parts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = n.follow(ctx) }()
	go func() { defer wg.Done(); n.lead(ctx, 1) }()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_ = n.View(func(v api.View, seq int64) error {
				for _, id := range v.VertexIDs() {
					v.Vertex(id)
				}
				return nil
			})
			if write, _, err := n.Dump(); err == nil {
				_ = write(io.Discard)
			}
			_ = n.Status(ctx)
		}
	}()
	for i := 0; i < len(evs); i += 3 {
		appendEvents(t, db, evs[i:min(i+3, len(evs))], i)
		time.Sleep(2 * time.Millisecond)
	}
	last := int64(len(evs))
	waitFor(t, "applied the whole log", func() bool { return n.f.appliedSeq.Load() == last })
	cancel()
	wg.Wait()

	metas, err := snapshot.NewStore(db, nil).List(context.Background(), math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) < 3 {
		t.Fatalf("%d snapshots written", len(metas))
	}
	for _, m := range metas {
		res, err := recon.Reconstruct(context.Background(), snapshot.AtSeq(m.Seq))
		if err != nil {
			t.Fatal(err)
		}
		if res.SnapshotSeq != m.Seq {
			t.Fatalf("snapshot at %d not used", m.Seq)
		}
		fresh, _ := factory.New()
		recs, err := log.ReadRange(context.Background(), 0, int(m.Seq))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			_ = fresh.Apply(r)
		}
		var a, b bytes.Buffer
		if err := res.Machine.Dump(&a); err != nil {
			t.Fatal(err)
		}
		if err := fresh.Dump(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("snapshot %d at seq %d (recorded_at %s) differs from a replay of 1..%d", m.ID, m.Seq, m.RecordedAt, m.Seq)
		}
		if len(recs) > 0 && !recs[len(recs)-1].RecordedAt.Equal(m.RecordedAt) {
			t.Errorf("snapshot at seq %d says recorded_at %s; seq %d was recorded at %s", m.Seq, m.RecordedAt, m.Seq, recs[len(recs)-1].RecordedAt)
		}
	}
}
