package history_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/snapshot"
)

// defaultSnapshotEvery is the snapshot policy of deploy/causeway.yaml
// (every_events: 50000): the worst moment for a historical RCA is the
// event just before the next snapshot, 49,999 events after the last one.
const defaultSnapshotEvery = 50000

// BenchmarkHistoricalRCA measures what `causeway rca show --at` costs at
// the worst point between two snapshots — load the newest snapshot, replay
// 49,999 events, analyse — against loading that snapshot alone and against
// a live RCA query on a graph already in memory.
func BenchmarkHistoricalRCA(b *testing.B) {
	for _, entities := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("entities=%d", entities), func(b *testing.B) {
			benchHistoricalRCA(b, entities)
		})
	}
}

func benchHistoricalRCA(b *testing.B, entities int) {
	ctx := context.Background()
	db := openDB(b)
	hosts := entities / 10
	s := historytest.Scenario{Hosts: hosts, InstancesPerHost: 9, Start: t0}
	topo := s.Events()
	s.Rounds = 3*(defaultSnapshotEvery/max(1, hosts*2/3)) + 6
	all := s.Events()
	tail := all[len(topo):]
	if len(tail) < defaultSnapshotEvery-1 {
		b.Fatalf("scenario gives %d events after the snapshot", len(tail))
	}
	evs := append(topo, tail[:defaultSnapshotEvery-1]...)

	clock := t0
	l := store.NewLog(db, func() time.Time { clock = clock.Add(time.Millisecond); return clock })
	live := evaluator.New(evaluator.Config{}, graph.DefaultNormalizer())
	factory := snapshot.EngineFactory{Normalizer: graph.DefaultNormalizer()}
	w, err := snapshot.NewWriter(snapshot.Config{Policy: snapshot.Policy{EveryEvents: defaultSnapshotEvery}},
		snapshot.WriterDeps{DB: db, Fence: snapshot.FenceFunc(store.CheckFence)})
	if err != nil {
		b.Fatal(err)
	}
	var snapSeq, lastSeq int64
	for start := 0; start < len(evs); start += 1000 {
		var entries []store.Entry
		for _, ev := range evs[start:min(start+1000, len(evs))] {
			body, err := event.Encode(ev)
			if err != nil {
				b.Fatal(err)
			}
			entries = append(entries, store.Entry{Event: ev, Body: body})
		}
		app, err := l.Append(ctx, entries)
		if err != nil {
			b.Fatal(err)
		}
		for _, rec := range app.Batch.Records {
			if err := live.Apply(rec); err != nil {
				b.Fatalf("apply seq %d: %v", rec.Seq, err)
			}
			lastSeq = rec.Seq
			// The snapshot is taken right after the topology.
			if rec.Seq == int64(len(topo)) {
				if _, err := w.Take(ctx, 1, func() (snapshot.Capture, error) {
					return snapshot.CaptureEngine(live, rec.Seq, rec.RecordedAt, snapshot.EngineGob)
				}); err != nil {
					b.Fatal(err)
				}
				snapSeq = rec.Seq
			}
		}
	}
	// The alarm analysed: a deduced alarm active at the end, with its cause.
	var alarm graph.VertexID
	for _, a := range live.Graph().Alarms("", true, false) {
		if a.Type == graph.DeducedType {
			alarm = a.ID
			break
		}
	}
	if alarm == 0 {
		b.Fatal("no active deduced alarm at the end")
	}
	if r, err := live.Graph().RCA(alarm); err != nil || len(r.Roots) == 0 || r.Roots[0] == alarm {
		b.Fatalf("rca of %d: %+v, %v; want a cause", alarm, r, err)
	}
	recon, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{DB: db, Events: l, Factory: factory})
	if err != nil {
		b.Fatal(err)
	}

	b.Run("rca-show-at-worst", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := recon.Reconstruct(ctx, snapshot.AtSeq(lastSeq))
			if err != nil {
				b.Fatal(err)
			}
			if res.SnapshotSeq != snapSeq || res.Replayed != lastSeq-snapSeq {
				b.Fatalf("reconstructed from seq %d replaying %d; want snapshot %d + %d", res.SnapshotSeq, res.Replayed, snapSeq, lastSeq-snapSeq)
			}
			if _, err := res.Machine.(*evaluator.Engine).Graph().RCA(alarm); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(lastSeq-snapSeq), "events-replayed")
	})
	b.Run("load-snapshot-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res, err := recon.Reconstruct(ctx, snapshot.AtSeq(snapSeq))
			if err != nil || res.SnapshotSeq != snapSeq || res.Replayed != 0 {
				b.Fatalf("load snapshot: %+v, %v", res, err)
			}
		}
	})
	b.Run("live-rca", func(b *testing.B) {
		b.ReportAllocs()
		g := live.Graph()
		for b.Loop() {
			if _, err := g.RCA(alarm); err != nil {
				b.Fatal(err)
			}
		}
	})
}
