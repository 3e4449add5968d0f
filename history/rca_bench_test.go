package history_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/snapshot"
)

// shippedPolicy is the snapshot policy of deploy/causeway.yaml, the one an
// installation starts with.
func shippedPolicy(b *testing.B) snapshot.Policy {
	body, err := os.ReadFile("../deploy/causeway.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var cfg struct {
		Processor struct {
			Snapshot struct {
				Policy snapshot.Policy `yaml:"policy"`
			} `yaml:"snapshot"`
		} `yaml:"processor"`
	}
	if err := yaml.Unmarshal(body, &cfg); err != nil {
		b.Fatal(err)
	}
	p := cfg.Processor.Snapshot.Policy
	if err := p.Validate(); err != nil {
		b.Fatalf("deploy/causeway.yaml: %v", err)
	}
	return p
}

// BenchmarkHistoricalRCA measures what `causeway rca show --at` costs at
// the worst point between two snapshots of the shipped policy — load the
// newest snapshot, replay every event up to the one before the policy
// takes the next snapshot, analyse — against loading that snapshot alone
// and against an RCA query on a graph already in memory.
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
	policy := shippedPolicy(b)
	hosts := entities / 10
	s := historytest.Scenario{Hosts: hosts, InstancesPerHost: 9, Start: t0}
	topo := s.Events()
	// Enough alarm rounds for every_events to fire if nothing else does.
	maxTail := int(policy.EveryEvents)
	if maxTail == 0 {
		maxTail = 1_000_000
	}
	s.Rounds = 3*(maxTail/max(1, hosts*2/3)) + 6
	evs := s.Events()
	if len(evs) < len(topo)+maxTail {
		b.Fatalf("scenario gives %d events after the topology; want %d", len(evs)-len(topo), maxTail)
	}
	evs = evs[:len(topo)+maxTail]

	// The log is written and applied to a live engine as a leader would:
	// the snapshot is taken right after the topology, and the policy,
	// asked after every record, says where the next one would be. The
	// record before that is the worst point.
	clock := t0
	now := func() time.Time { clock = clock.Add(time.Millisecond); return clock }
	l := store.NewLog(db, now)
	live := evaluator.New(evaluator.Config{}, graph.DefaultNormalizer())
	factory := snapshot.EngineFactory{Normalizer: graph.DefaultNormalizer()}
	w, err := snapshot.NewWriter(snapshot.Config{Policy: policy},
		snapshot.WriterDeps{DB: db, Fence: snapshot.FenceFunc(store.CheckFence), Now: func() time.Time { return clock }})
	if err != nil {
		b.Fatal(err)
	}
	var snapSeq, lastSeq, snapChanges, lastChanges int64
	done := false
	for start := 0; start < len(evs) && !done; start += 1000 {
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
			due := w.Due(rec.Seq, live.ChangesApplied())
			switch {
			case rec.Seq == int64(len(topo)):
				if _, err := w.Take(ctx, 1, func() (snapshot.Capture, error) {
					return snapshot.CaptureEngine(live, rec.Seq, rec.RecordedAt, snapshot.EngineBin)
				}); err != nil {
					b.Fatal(err)
				}
				snapSeq, snapChanges = rec.Seq, live.ChangesApplied()
			case snapSeq > 0 && due:
				done = true
			}
			if done {
				break
			}
			lastSeq, lastChanges = rec.Seq, live.ChangesApplied()
		}
	}
	if !done {
		lastSeq = int64(len(evs)) // the policy did not fire: the whole tail
	}
	recon, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{DB: db, Events: l, Factory: factory})
	if err != nil {
		b.Fatal(err)
	}
	// The alarm analysed: a deduced alarm active at the worst point, with
	// its cause.
	at, err := recon.Reconstruct(ctx, snapshot.AtSeq(lastSeq))
	if err != nil {
		b.Fatal(err)
	}
	g := at.Machine.(*evaluator.Engine).Graph()
	var alarm graph.VertexID
	for _, a := range g.Alarms("", true, false) {
		if a.Type == graph.DeducedType {
			alarm = a.ID
			break
		}
	}
	if alarm == 0 {
		b.Fatal("no active deduced alarm at the worst point")
	}
	if r, err := g.RCA(alarm); err != nil || len(r.Roots) == 0 || r.Roots[0] == alarm {
		b.Fatalf("rca of %d: %+v, %v; want a cause", alarm, r, err)
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
		b.ReportMetric(float64(lastChanges-snapChanges), "changes-replayed")
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
		for b.Loop() {
			if _, err := g.RCA(alarm); err != nil {
				b.Fatal(err)
			}
		}
	})
}
