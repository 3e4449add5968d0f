package processor

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/snapshot"
)

type fixedIndex struct{ seq, size, rawSize int64 }

func (x fixedIndex) Newest(context.Context) (snapshot.Meta, bool, error) {
	return snapshot.Meta{Seq: x.seq, Size: x.size, RawSize: x.rawSize, CreatedAt: time.Now()}, true, nil
}

// gaugeValue is the value of the gauge name gathered from g, and whether
// it was there.
func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// standbyNode is a node wired as Run wires it (the snapshot writer on the
// node's registry, returned), whose snapshot index is idx.
func standbyNode(t *testing.T, idx fixedIndex) (*node, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	db, err := store.OpenLazily("nobody@tcp(127.0.0.1:1)/causeway")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w, err := snapshot.NewWriter(snapshot.Config{Policy: snapshot.Policy{EveryEvents: 1000}}, snapshot.WriterDeps{DB: db, Fence: snapshot.FenceFunc(store.CheckFence), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{cfg: Config{PageSize: 10, MaxHistoricalQueries: 1}, log: slog.New(slog.DiscardHandler),
		deps: Deps{Logger: slog.New(slog.DiscardHandler), Registerer: reg, Now: time.Now}}
	n, err := p.newNode(Parts{Log: &fakeLog{}, Snapshots: w, SnapshotIndex: idx, Election: &fakeElector{}})
	if err != nil {
		t.Fatal(err)
	}
	return n, reg
}

// TestStandbyShowsTheNewestSnapshotSeq: causeway_snapshot_last_seq, which
// the README says to alert on when it stays still while the log grows,
// was the seq of the last snapshot this process wrote: 0 for ever on a
// standby, and frozen on a deposed leader, so the alert fired on every
// standby of a healthy cluster. Every processor reads the newest stored
// snapshot (for its status); the gauge shows that, wired as Run wires it
// (the writer on the same registry).
func TestStandbyShowsTheNewestSnapshotSeq(t *testing.T) {
	n, reg := standbyNode(t, fixedIndex{seq: 40})
	n.refreshSnapshotMeta(context.Background())
	if got, ok := gaugeValue(t, reg, "causeway_snapshot_last_seq"); !ok || got != 40 {
		t.Errorf("causeway_snapshot_last_seq on a standby = %v (exported %t); want 40, the newest stored snapshot's seq", got, ok)
	}
	// A snapshot written here as leader moves it too.
	n.noteSnapshot(snapshot.Meta{Seq: 55}, time.Now())
	if got, _ := gaugeValue(t, reg, "causeway_snapshot_last_seq"); got != 55 {
		t.Errorf("causeway_snapshot_last_seq after a snapshot at 55 written here = %v; want 55", got)
	}
}

// TestStandbyShowsTheNewestSnapshotSize: causeway_snapshot_size_bytes
// and _raw_size_bytes were the sizes of the last snapshot this process
// wrote: absent or 0 on a standby, and frozen on a deposed leader, while
// causeway_snapshot_last_seq beside them showed the newest stored
// snapshot. They show that snapshot's sizes on every node, as the seq.
func TestStandbyShowsTheNewestSnapshotSize(t *testing.T) {
	n, reg := standbyNode(t, fixedIndex{seq: 40, size: 1234, rawSize: 5678})
	n.refreshSnapshotMeta(context.Background())
	for name, want := range map[string]float64{"causeway_snapshot_size_bytes": 1234, "causeway_snapshot_raw_size_bytes": 5678} {
		if got, ok := gaugeValue(t, reg, name); !ok || got != want {
			t.Errorf("%s on a standby = %v (exported %t); want %v, the newest stored snapshot's", name, got, ok, want)
		}
	}
	// A snapshot written here as leader moves them too.
	n.noteSnapshot(snapshot.Meta{Seq: 55, Size: 2000, RawSize: 9000}, time.Now())
	for name, want := range map[string]float64{"causeway_snapshot_size_bytes": 2000, "causeway_snapshot_raw_size_bytes": 9000} {
		if got, _ := gaugeValue(t, reg, name); got != want {
			t.Errorf("%s after a snapshot written here = %v; want %v", name, got, want)
		}
	}
	// An older snapshot seen afterwards (a stale read) moves nothing.
	n.noteSnapshot(snapshot.Meta{Seq: 50, Size: 1, RawSize: 1}, time.Now())
	if got, _ := gaugeValue(t, reg, "causeway_snapshot_size_bytes"); got != 2000 {
		t.Errorf("causeway_snapshot_size_bytes after an older snapshot = %v; want 2000, the newest's", got)
	}
}

// TestGrowingCountsAreCounters: counts that only ever grow were exported
// as gauges without _total (causeway_processor_pending_drops,
// causeway_processor_outbox_gaps_unrecoverable), so rate() and increase()
// were not to be used on them, by Prometheus' conventions, and an alert on
// "above 0" cleared at the node's next restart.
func TestGrowingCountsAreCounters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := &Processor{cfg: Config{PageSize: 10, MaxHistoricalQueries: 1, MaxPending: 1}, log: slog.New(slog.DiscardHandler),
		deps: Deps{Logger: slog.New(slog.DiscardHandler), Registerer: reg, Now: time.Now}}
	n, err := p.newNode(Parts{Log: &fakeLog{}, Election: &fakeElector{}})
	if err != nil {
		t.Fatal(err)
	}
	n.f.pend.mu.Lock()
	n.f.pend.dropped = 3
	n.f.pend.mu.Unlock()
	n.unrecoverable.Add(2)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"causeway_processor_pending_drops_total": 3, "causeway_processor_outbox_gaps_unrecoverable_total": 2}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.Contains(name, "pending_drops") && !strings.Contains(name, "gaps_unrecoverable") {
			continue
		}
		v, ok := want[name]
		if !ok || mf.GetType() != dto.MetricType_COUNTER || mf.GetMetric()[0].GetCounter().GetValue() != v {
			t.Errorf("exported as %s, a %s of %v; want one of %v, a counter", name, mf.GetType(), mf.GetMetric()[0], want)
		}
		delete(want, name)
	}
	if len(want) > 0 {
		t.Errorf("not exported: %v", want)
	}
}
