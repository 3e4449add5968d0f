package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
)

const nicTemplate = `metadata:
  version: 3
  name: host_nic_down
  type: standard
entities:
  nic_alarm:
    category: ALARM
    type: nagios
    name.regex: NIC_DOWN.*
  host:
    type: nova.host
  instance:
    type: nova.instance
scenarios:
  - condition: nic_alarm [ on ] host AND host [contains] instance
    actions:
      - raise_alarm:
          target: instance
          alarm_name: instance_connectivity_lost
          severity: WARNING
          causing_alarm: nic_alarm
      - mark_down:
          target: host
  - condition: nic_alarm [on] host AND NOT host [attached] instance
    actions:
      - set_state:
          target: host
          state: ERROR
`

const hostStateTemplate = `metadata:
  version: 3
  name: host_alarm_state
entities:
  alarm:
    category: ALARM
    type: nagios
  host:
    type: nova.host
scenarios:
  - condition: alarm [on] host
    actions:
      - set_state:
          target: host
          state: SUBOPTIMAL
`

// randomLog makes n events of every kind over a small topology, so that
// templates fire, clear, overlap, and records are refused now and then.
func randomLog(rng *rand.Rand, n int) []event.Event {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	hosts, insts, alarms := 12, 40, 15
	open := map[string]string{} // source -> open sync id
	evs := make([]event.Event, 0, n)
	for i := 0; len(evs) < n; i++ {
		ev := event.Event{V: event.Version, EventID: fmt.Sprintf("e%d", i),
			ObservedAt: t0.Add(time.Duration(i-rng.IntN(20)) * time.Second)}
		switch k := rng.IntN(100); {
		case k < 25:
			ev.Source, ev.Kind = "nova", event.KindEntityUpsert
			h := rng.IntN(hosts)
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: fmt.Sprintf("h%d", h),
				Name: fmt.Sprintf("host-%d", h), State: []string{"available", "ERROR", "SUBOPTIMAL"}[rng.IntN(3)],
				Properties: map[string]string{"rack": fmt.Sprint(rng.IntN(3))}}
		case k < 50:
			ev.Source, ev.Kind = "nova", event.KindEntityUpsert
			in := rng.IntN(insts)
			rels := []event.Relation{{Relationship: "contains", Type: "nova.host", ID: fmt.Sprintf("h%d", rng.IntN(hosts)), Direction: event.In}}
			if rng.IntN(4) == 0 {
				rels = append(rels, event.Relation{Relationship: "attached", Type: "nova.host", ID: fmt.Sprintf("h%d", rng.IntN(hosts)), Direction: event.In})
			}
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: fmt.Sprintf("i%d", in),
				Name: fmt.Sprintf("vm-%d", in), State: "ACTIVE", Relations: rels}
		case k < 65:
			ev.Source, ev.Kind = "nagios", event.KindEntityUpsert
			a := rng.IntN(alarms)
			ev.Entity = &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: fmt.Sprintf("a%d", a),
				Name: []string{"NIC_DOWN", "NIC_DOWN_eth1", "DISK_FULL"}[a%3], Severity: []string{"WARNING", "CRITICAL"}[rng.IntN(2)],
				Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: fmt.Sprintf("h%d", a%hosts), Direction: event.Out}}}
		case k < 75:
			ev.Source, ev.Kind = "nagios", event.KindEntityDelete
			ev.Entity = &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: fmt.Sprintf("a%d", rng.IntN(alarms))}
		case k < 79:
			ev.Source, ev.Kind = "nova", event.KindEntityDelete
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: fmt.Sprintf("i%d", rng.IntN(insts))}
		case k < 85:
			src := []string{"nova", "nagios"}[rng.IntN(2)]
			ev.Source = src
			if id, ok := open[src]; ok && rng.IntN(3) > 0 {
				ev.Kind, ev.Sync = event.KindSyncEnd, &event.Sync{ID: id}
				delete(open, src)
			} else if rng.IntN(5) == 0 {
				ev.Kind, ev.Sync = event.KindSyncEnd, &event.Sync{ID: "never-opened"} // refused
			} else {
				id := fmt.Sprintf("s%d", i)
				ev.Kind, ev.Sync = event.KindSyncBegin, &event.Sync{ID: id}
				open[src] = id
			}
		case k < 92:
			ev.Source, ev.Kind = "clock", event.KindTick
		default:
			ev.Source = "operator"
			switch r := rng.IntN(10); {
			case r < 5:
				ev.Kind, ev.Template = event.KindTemplatePut, &event.Template{Name: "host_nic_down", Body: nicTemplate}
			case r < 7:
				ev.Kind, ev.Template = event.KindTemplatePut, &event.Template{Name: "host_alarm_state", Body: hostStateTemplate}
			case r < 8:
				ev.Kind, ev.Template = event.KindTemplatePut, &event.Template{Name: "broken", Body: "metadata: {version: 3}\nscenarios: 7\n"}
			default:
				ev.Kind, ev.Template = event.KindTemplateDelete, &event.Template{Name: []string{"host_nic_down", "host_alarm_state"}[rng.IntN(2)]}
			}
		}
		evs = append(evs, ev)
	}
	return evs
}

func dumpSum(t *testing.T, m Machine) [32]byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b.Bytes())
}

// TestReconstructEqualsReplay is the acceptance property (invariants 3 and
// 4 of DESIGN.md) on the real evaluator engine and MariaDB: for random logs
// with snapshots at random seqs, reconstruct(seq) equals a from-scratch
// apply of events[1..seq], compared by the canonical dump.
func TestReconstructEqualsReplay(t *testing.T) {
	norm, err := graph.NewNormalizer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		seed     uint64
		events   int
		encoding string
	}{
		{1, 3000, EngineGob},
		{2, 1500, EngineJSON},
		{3, 3000, EngineBin},
	} {
		if testing.Short() {
			tc.events = 600
		}
		t.Run(fmt.Sprintf("seed%d_%s", tc.seed, tc.encoding), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, 99))
			td := newTestDB(t)
			evs := randomLog(rng, tc.events)
			for start := 0; start < len(evs); {
				n := 1 + rng.IntN(120)
				step := time.Duration(rng.IntN(3000)) * time.Millisecond
				if rng.IntN(4) == 0 {
					// Days of log time pass: what was deleted before
					// expires (graph.DeletedRetention) and is purged.
					step += time.Duration(48+rng.IntN(96)) * time.Hour
				}
				td.appendEvents(t, evs[start:min(start+n, len(evs))], n, step)
				start += n
			}
			ctx := context.Background()
			recs, err := td.log.ReadRange(ctx, 0, len(evs)+1)
			if err != nil || len(recs) != len(evs) {
				t.Fatalf("read back %d of %d records: %v", len(recs), len(evs), err)
			}

			// The leader: a live engine following the log, snapshotting at random seqs.
			w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}, ChunkSize: 4096}, WriterDeps{DB: td.db, Fence: FenceFunc(store.CheckFence)})
			if err != nil {
				t.Fatal(err)
			}
			// Half the snapshots capture the live engine (Take), half a
			// shadow that follows the log (TakeFromLog).
			factory := EngineFactory{Normalizer: norm, Encoding: tc.encoding}
			shadowRC, err := NewReconstructor(ReconstructConfig{PageSize: 53}, ReconstructDeps{DB: td.db, Events: td.log, Factory: factory})
			if err != nil {
				t.Fatal(err)
			}
			shadow := NewShadow(shadowRC, factory)
			live := evaluator.New(evaluator.Config{}, norm)
			snaps := map[int64]bool{}
			refused, shadowed := 0, 0
			for _, r := range recs {
				if err := live.Apply(r); err != nil {
					refused++
				}
				if rng.IntN(150) == 0 || r.Seq == 1 {
					var err error
					if rng.IntN(2) == 0 {
						_, err = w.TakeFromLog(ctx, 1, shadow, r.Seq)
						shadowed++
					} else {
						_, err = w.Take(ctx, 1, func() (Capture, error) { return CaptureEngine(live, r.Seq, r.RecordedAt, tc.encoding) })
					}
					if err != nil {
						t.Fatalf("snapshot at %d: %v", r.Seq, err)
					}
					snaps[r.Seq] = true
				}
			}
			if shadowed == 0 || shadowed == len(snaps) {
				t.Errorf("%d of %d snapshots from the shadow; want some of each kind", shadowed, len(snaps))
			}
			if refused == 0 {
				t.Error("no record was refused; the log does not exercise refusals")
			}

			// The reference: one from-scratch replay, its dump at every target.
			targets := map[int64]bool{0: true, int64(len(recs)): true}
			for s := range snaps {
				for _, d := range []int64{-1, 0, 1, 2} {
					if s+d >= 0 && s+d <= int64(len(recs)) {
						targets[s+d] = true
					}
				}
			}
			sample := 150
			if testing.Short() {
				sample = 60
			}
			for len(targets) < sample {
				targets[rng.Int64N(int64(len(recs))+1)] = true
			}
			want := map[int64][32]byte{}
			// refusedUpTo[s] counts the records of 1..s the reference
			// refused: a reconstruction replaying (snapshot, s] must refuse
			// exactly those in between, no more and no fewer.
			refusedUpTo := make([]int64, len(recs)+1)
			ref := evaluator.New(evaluator.Config{}, norm)
			if targets[0] {
				want[0] = dumpSum(t, ref)
			}
			for _, r := range recs {
				refusedUpTo[r.Seq] = refusedUpTo[r.Seq-1]
				if err := ref.Apply(r); err != nil {
					refusedUpTo[r.Seq]++
				}
				if targets[r.Seq] {
					want[r.Seq] = dumpSum(t, ref)
				}
			}
			if dumpSum(t, ref) != dumpSum(t, live) {
				t.Fatal("the live engine and the reference differ: apply is not deterministic")
			}
			if g := ref.Graph(); !testing.Short() && len(g.VertexIDs()) == g.Len() {
				t.Error("nothing was purged: the log does not exercise graph.DeletedRetention")
			}
			var final bytes.Buffer
			if err := ref.Dump(&final); err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"instance_connectivity_lost", "causes", "SUBOPTIMAL"} {
				if !bytes.Contains(final.Bytes(), []byte(s)) {
					t.Errorf("final state has no %q: the templates never fired", s)
				}
			}

			rc, err := NewReconstructor(ReconstructConfig{PageSize: 97}, ReconstructDeps{DB: td.db, Events: td.log,
				Factory: EngineFactory{Normalizer: norm}})
			if err != nil {
				t.Fatal(err)
			}
			order := make([]int64, 0, len(targets))
			for s := range targets {
				order = append(order, s)
			}
			sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
			fromSnap := 0
			for _, s := range order {
				res, err := rc.Reconstruct(ctx, AtSeq(s))
				if err != nil {
					t.Fatalf("reconstruct %d: %v", s, err)
				}
				if res.Skipped != 0 {
					t.Fatalf("reconstruct %d skipped %d snapshots", s, res.Skipped)
				}
				if res.SnapshotSeq > 0 {
					fromSnap++
				}
				// The state is the one asked for, built from the newest
				// snapshot at or before it, each later seq applied once:
				// a dump equal by luck (records that change nothing) must
				// not hide a reconstruction that stopped short, started
				// from an older snapshot, or skipped or repeated a seq.
				var newest int64
				for snap := range snaps {
					if snap <= s && snap > newest {
						newest = snap
					}
				}
				if res.Seq != s || res.SnapshotSeq != newest || res.Replayed != s-newest {
					t.Fatalf("reconstruct(%d): seq %d from snapshot %d, %d replayed; want seq %d from snapshot %d, %d replayed",
						s, res.Seq, res.SnapshotSeq, res.Replayed, s, newest, s-newest)
				}
				if want := refusedUpTo[s] - refusedUpTo[newest]; res.ApplyErrors != want {
					t.Fatalf("reconstruct(%d) from snapshot %d refused %d records; a replay from scratch refuses %d of seqs %d..%d",
						s, newest, res.ApplyErrors, want, newest+1, s)
				}
				if got := dumpSum(t, res.Machine); got != want[s] {
					t.Fatalf("reconstruct(%d) from snapshot %d differs from apply(events[1..%d])", s, res.SnapshotSeq, s)
				}
			}
			if fromSnap < len(order)/2 {
				t.Errorf("only %d of %d reconstructions started from a snapshot", fromSnap, len(order))
			}
			t.Logf("%d events, %d refused, %d snapshots (%d from the shadow), %d targets checked", len(recs), refused, len(snaps), shadowed, len(order))
		})
	}
}

// TestStaleSemanticsSnapshot checks what Reconstruct does with a snapshot
// computed by a build of other semantics (evaluator.Semantics), on the
// real engine and MariaDB: it is used, like any snapshot, whether or not
// the log before it is still stored, and reported; a snapshot of a seq-0
// state is just the empty machine; and the state keeps its semantics
// through the next snapshot.
func TestStaleSemanticsSnapshot(t *testing.T) {
	ctx := context.Background()
	norm, err := graph.NewNormalizer(nil)
	if err != nil {
		t.Fatal(err)
	}
	td := newTestDB(t)
	recs := td.appendEvents(t, randomLog(rand.New(rand.NewPCG(5, 5)), 600), 50, time.Second)
	live := evaluator.New(evaluator.Config{}, norm)
	w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}}, WriterDeps{DB: td.db, Fence: FenceFunc(store.CheckFence)})
	if err != nil {
		t.Fatal(err)
	}
	// The state at seq as an older build wrote it.
	takeStale := func(seq int64) {
		t.Helper()
		if _, err := w.Take(ctx, 1, func() (Capture, error) {
			s := live.State()
			s.Semantics = evaluator.Semantics - 1
			c := Capture{Seq: seq, Encoding: EngineGob, Encode: func(w io.Writer) error { return gob.NewEncoder(w).Encode(&s) }}
			if seq > 0 {
				c.RecordedAt = recs[seq-1].RecordedAt
			}
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	takeStale(0)
	reg := prometheus.NewRegistry()
	rc, err := NewReconstructor(ReconstructConfig{}, ReconstructDeps{DB: td.db, Events: td.log, Factory: EngineFactory{Normalizer: norm}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	res, err := rc.Reconstruct(ctx, AtSeq(10))
	if err != nil {
		t.Fatal(err)
	}
	if res.StaleSemantics || res.Machine.(*evaluator.Engine).StaleSemantics() {
		t.Fatal("a stale snapshot of the empty state made the reconstruction stale")
	}

	const at = 300
	for _, r := range recs[:at] {
		_ = live.Apply(r)
	}
	takeStale(at)
	for _, r := range recs[at:] {
		_ = live.Apply(r)
	}
	want := dumpSum(t, live)
	for round, dropped := range []bool{false, true} {
		if dropped { // retention drops the events up to the snapshot
			if _, err := td.db.ExecContext(ctx, "DELETE FROM events WHERE seq <= ?", at); err != nil {
				t.Fatal(err)
			}
		}
		res, err := rc.Reconstruct(ctx, Latest())
		if err != nil {
			t.Fatal(err)
		}
		if res.SnapshotSeq != at || res.Skipped != 0 || !res.StaleSemantics || res.Replayed != int64(len(recs)-at) {
			t.Fatalf("log before the snapshot dropped=%v: from snapshot %d, skipped %d, stale %v, replayed %d; want the snapshot at %d, stale",
				dropped, res.SnapshotSeq, res.Skipped, res.StaleSemantics, res.Replayed, at)
		}
		if dumpSum(t, res.Machine) != want {
			t.Fatal("the reconstruction from the stale snapshot differs from the live engine")
		}
		if got := metricValue(t, rc.staleUsed); got != float64(round+1) {
			t.Errorf("stale snapshots used = %v; want %d", got, round+1)
		}
		// A snapshot of that state is as stale as the one it came from.
		c, err := EngineFactory{Normalizer: norm}.Capture(res.Machine, res.Seq, res.RecordedAt)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := c.Encode(&b); err != nil {
			t.Fatal(err)
		}
		s, err := readEngineBin(&b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Semantics != evaluator.Semantics-1 {
			t.Fatalf("a snapshot of the restored state has semantics %d; want %d", s.Semantics, evaluator.Semantics-1)
		}
	}
	// The earliest state (a leader's salvage base) from that snapshot says
	// so as Reconstruct does: flagged, counted and logged.
	var logs bytes.Buffer
	re, err := NewReconstructor(ReconstructConfig{}, ReconstructDeps{DB: td.db, Events: td.log, Factory: EngineFactory{Normalizer: norm},
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	res, err = re.ReconstructEarliest(ctx, int64(len(recs)))
	if err != nil {
		t.Fatal(err)
	}
	if res.SnapshotSeq != at || !res.StaleSemantics {
		t.Fatalf("earliest: from snapshot %d, stale %v; want the stale snapshot at %d", res.SnapshotSeq, res.StaleSemantics, at)
	}
	if got := metricValue(t, re.staleUsed); got != 1 {
		t.Errorf("stale snapshots used by the earliest state = %v; want 1", got)
	}
	if !strings.Contains(logs.String(), "other semantics") {
		t.Errorf("the earliest state from a stale snapshot was not logged:\n%s", logs.String())
	}
}
