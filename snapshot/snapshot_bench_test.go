package snapshot

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
)

// benchSizes are the entity counts; the log after the snapshot has as many
// events as there are entities.
var benchSizes = []int{1_000, 10_000, 100_000}

// benchEntities makes n entities: hosts (one in a hundred) and instances
// contained in them, plus the NIC template.
func benchEntities(n int) []event.Event {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hosts := max(1, n/100)
	evs := []event.Event{{V: event.Version, EventID: "tpl", Source: "operator", Kind: event.KindTemplatePut, ObservedAt: t0,
		Template: &event.Template{Name: "host_nic_down", Body: nicTemplate}}}
	for i := 0; i < n; i++ {
		ev := event.Event{V: event.Version, EventID: fmt.Sprintf("ent-%d", i), Source: "nova", Kind: event.KindEntityUpsert,
			ObservedAt: t0.Add(time.Duration(i) * time.Millisecond)}
		if i < hosts {
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: fmt.Sprintf("h%d", i),
				Name: fmt.Sprintf("host-%d", i), State: "available", Properties: map[string]string{"rack": fmt.Sprint(i % 40)}}
		} else {
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: fmt.Sprintf("i%d", i),
				Name: fmt.Sprintf("vm-%d", i), State: "ACTIVE", ProjectID: fmt.Sprintf("p%d", i%17),
				Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: fmt.Sprintf("h%d", i%hosts), Direction: event.In}}}
		}
		evs = append(evs, ev)
	}
	return evs
}

// benchUpdates makes n events over the entities of benchEntities(size):
// instance state changes, and NIC alarms raised and cleared on hosts (each
// deduces an alarm on every instance of its host).
func benchUpdates(size, n int) []event.Event {
	t0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	hosts := max(1, size/100)
	evs := make([]event.Event, 0, n)
	for i := 0; i < n; i++ {
		ev := event.Event{V: event.Version, EventID: fmt.Sprintf("upd-%d", i), ObservedAt: t0.Add(time.Duration(i) * time.Millisecond)}
		switch {
		case i%100 == 0:
			h := (i / 100) % hosts
			ev.Source, ev.Kind = "nagios", event.KindEntityUpsert
			if (i/100/hosts)%2 == 1 {
				ev.Kind = event.KindEntityDelete
			}
			ev.Entity = &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: fmt.Sprintf("nic-%d", h), Name: "NIC_DOWN",
				Severity: "CRITICAL", Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: fmt.Sprintf("h%d", h), Direction: event.Out}}}
		default:
			in := hosts + (i*7919)%(max(1, size-hosts))
			ev.Source, ev.Kind = "nova", event.KindEntityUpsert
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: fmt.Sprintf("i%d", in),
				Name: fmt.Sprintf("vm-%d", in), State: []string{"ACTIVE", "ERROR", "SHUTOFF"}[i%3], ProjectID: fmt.Sprintf("p%d", in%17),
				Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: fmt.Sprintf("h%d", in%hosts), Direction: event.In}}}
		}
		evs = append(evs, ev)
	}
	return evs
}

// benchWorld is a database holding size entities, a snapshot of them, and
// size events after it, plus the live engine at the end of the log.
type benchWorld struct {
	td      *testDB
	norm    *graph.Normalizer
	snapSeq int64
	head    int64
	live    *evaluator.Engine
	last    event.Record
}

func newBenchWorld(b *testing.B, size int, encoding string) *benchWorld {
	b.Helper()
	ctx := context.Background()
	norm, err := graph.NewNormalizer(nil)
	if err != nil {
		b.Fatal(err)
	}
	td := newTestDB(b)
	ents := td.appendEvents(b, benchEntities(size), 1000, time.Second)
	live := evaluator.New(evaluator.Config{}, norm)
	for _, r := range ents {
		_ = live.Apply(r)
	}
	last := ents[len(ents)-1]
	w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}}, WriterDeps{DB: td.db, Fence: FenceFunc(store.CheckFence)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.Take(ctx, 1, func() (Capture, error) { return CaptureEngine(live, last.Seq, last.RecordedAt, encoding) }); err != nil {
		b.Fatal(err)
	}
	upd := td.appendEvents(b, benchUpdates(size, size), 1000, time.Second)
	for _, r := range upd {
		_ = live.Apply(r)
	}
	return &benchWorld{td: td, norm: norm, snapSeq: last.Seq, head: upd[len(upd)-1].Seq, live: live, last: upd[len(upd)-1]}
}

// readRows scans the event rows after the snapshot without decoding them:
// the floor any replay from MariaDB pays.
func (bw *benchWorld) readRows(b *testing.B) time.Duration {
	start := time.Now()
	rows, err := bw.td.db.QueryContext(context.Background(), "SELECT seq, recorded_at, body FROM events WHERE seq > ? ORDER BY seq", bw.snapSeq)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var seq int64
		var at time.Time
		var body []byte
		if err := rows.Scan(&seq, &at, &body); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if int64(n) != bw.head-bw.snapSeq {
		b.Fatalf("read %d rows; want %d", n, bw.head-bw.snapSeq)
	}
	return time.Since(start)
}

// BenchmarkReconstruct measures a cold reconstruction (newest snapshot of
// size entities in the bin encoding, then size events after it) and reports it as a ratio of
// the time to merely read those event rows from MariaDB (target: within
// 3x), and of the time to read and decode them. To show where the time
// goes it also reports, measured once outside the timer: reading and
// decoding the events (store.Log.ReadRange), loading and restoring the
// snapshot alone, applying the events in memory, and applying them to the
// graph alone (no template evaluation: the floor of any apply).
func BenchmarkReconstruct(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("entities=%d", size), func(b *testing.B) {
			ctx := context.Background()
			bw := newBenchWorld(b, size, EngineBin)
			rc, err := NewReconstructor(ReconstructConfig{}, ReconstructDeps{DB: bw.td.db, Events: bw.td.log, Factory: EngineFactory{Normalizer: bw.norm}})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			recs, err := bw.td.log.ReadRange(ctx, bw.snapSeq, size+1)
			readDecode := time.Since(start)
			if err != nil || len(recs) != size {
				b.Fatalf("read %d records: %v", len(recs), err)
			}
			start = time.Now()
			base, err := rc.Reconstruct(ctx, AtSeq(bw.snapSeq))
			restore := time.Since(start)
			if err != nil || base.Replayed != 0 {
				b.Fatalf("restore: %+v, %v", base, err)
			}
			// The graph alone, without the evaluator, over the same
			// records: the floor of the apply whatever the templates.
			bare, err := graph.FromState(base.Machine.(*evaluator.Engine).State().Graph, bw.norm)
			if err != nil {
				b.Fatal(err)
			}
			start = time.Now()
			for _, r := range recs {
				_, _ = bare.Apply(r)
			}
			graphOnly := time.Since(start)
			start = time.Now()
			for _, r := range recs {
				_ = base.Machine.Apply(r)
			}
			apply := time.Since(start)

			var read, total time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				read += bw.readRows(b)
				b.StartTimer()
				start := time.Now()
				res, err := rc.Reconstruct(ctx, Latest())
				total += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if res.Seq != bw.head || res.SnapshotSeq != bw.snapSeq {
					b.Fatalf("reconstructed seq %d from %d; want %d from %d", res.Seq, res.SnapshotSeq, bw.head, bw.snapSeq)
				}
			}
			b.ReportMetric(read.Seconds()*1000/float64(b.N), "read_rows_ms")
			b.ReportMetric(total.Seconds()/read.Seconds(), "x_read_rows")
			b.ReportMetric(readDecode.Seconds()*1000, "read_decode_ms")
			// The same total against reading and decoding the events: the
			// floor of any replay that looks at what it reads.
			b.ReportMetric(total.Seconds()/float64(b.N)/readDecode.Seconds(), "x_read_decode")
			b.ReportMetric(restore.Seconds()*1000, "restore_ms")
			b.ReportMetric(apply.Seconds()*1000, "apply_ms")
			b.ReportMetric(graphOnly.Seconds()*1000, "graph_only_apply_ms")
		})
	}
}

// BenchmarkSnapshot measures one snapshot of size entities: the pause
// (state capture under the lock), encode+compress, the fenced write, and
// the stored size, for each payload encoding.
func BenchmarkSnapshot(b *testing.B) {
	for _, size := range benchSizes {
		for _, enc := range []string{EngineBin, EngineGob, EngineJSON} {
			b.Run(fmt.Sprintf("entities=%d/%s", size, enc), func(b *testing.B) {
				bw := newBenchWorld(b, size, enc)
				w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}}, WriterDeps{DB: bw.td.db, Fence: FenceFunc(store.CheckFence)})
				if err != nil {
					b.Fatal(err)
				}
				var pause, maxPause, encode, write time.Duration
				var last Result
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					last, err = w.Take(context.Background(), 1, func() (Capture, error) {
						return CaptureEngine(bw.live, bw.last.Seq, bw.last.RecordedAt, enc)
					})
					if err != nil {
						b.Fatal(err)
					}
					pause += last.Pause
					maxPause = max(maxPause, last.Pause)
					encode += last.Encode
					write += last.Write
				}
				n := float64(b.N)
				b.ReportMetric(pause.Seconds()*1000/n, "pause_ms")
				b.ReportMetric(maxPause.Seconds()*1000, "max_pause_ms")
				b.ReportMetric(encode.Seconds()*1000/n, "encode_ms")
				b.ReportMetric(write.Seconds()*1000/n, "write_ms")
				b.ReportMetric(float64(last.Meta.Size), "stored_bytes")
				b.ReportMetric(float64(last.Meta.RawSize), "raw_bytes")
			})
		}
	}
}

// BenchmarkProcessingStall runs an apply loop (the processor, holding its
// lock per record) while snapshots are taken, and reports the longest time
// one record waited for the lock: the stall a snapshot causes to event
// processing (target < 50 ms). mode=live captures the live engine under the
// lock (Take); mode=shadow snapshots a shadow engine (TakeFromLog), which
// never takes the lock: what remains is CPU contention.
func BenchmarkProcessingStall(b *testing.B) {
	for _, size := range benchSizes {
		for _, mode := range []string{"live", "shadow"} {
			b.Run(fmt.Sprintf("entities=%d/mode=%s", size, mode), func(b *testing.B) {
				ctx := context.Background()
				bw := newBenchWorld(b, size, EngineBin)
				w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}}, WriterDeps{DB: bw.td.db, Fence: FenceFunc(store.CheckFence)})
				if err != nil {
					b.Fatal(err)
				}
				var shadow *Shadow
				if mode == "shadow" {
					f := EngineFactory{Normalizer: bw.norm}
					rc, err := NewReconstructor(ReconstructConfig{}, ReconstructDeps{DB: bw.td.db, Events: bw.td.log, Factory: f})
					if err != nil {
						b.Fatal(err)
					}
					shadow = NewShadow(rc, f)
					// The shadow's first catch-up (restore + replay) happens once
					// per leadership; keep it out of the measured loop.
					if _, err := w.TakeFromLog(ctx, 1, shadow, bw.snapSeq); err != nil {
						b.Fatal(err)
					}
				}
				more := benchUpdates(size, 50_000)
				var mu sync.Mutex
				seq, at := bw.last.Seq, bw.last.RecordedAt
				stop := make(chan struct{})
				done := make(chan [2]float64)
				go func() {
					var worst time.Duration
					applied := 0
					for i := 0; ; i++ {
						select {
						case <-stop:
							done <- [2]float64{worst.Seconds() * 1000, float64(applied)}
							return
						default:
						}
						ev := more[i%len(more)]
						ev.EventID = fmt.Sprintf("stall-%d", i)
						t0 := time.Now()
						mu.Lock()
						worst = max(worst, time.Since(t0))
						seq++
						at = at.Add(time.Millisecond)
						_ = bw.live.Apply(event.Record{Seq: seq, RecordedAt: at, Event: ev})
						mu.Unlock()
						applied++
					}
				}()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var err error
					if mode == "shadow" {
						// Alternate targets so each snapshot replays real events.
						target := bw.head
						if i%2 == 1 {
							target = bw.snapSeq + (bw.head-bw.snapSeq)/2
						}
						_, err = w.TakeFromLog(ctx, 1, shadow, target)
					} else {
						_, err = w.Take(ctx, 1, func() (Capture, error) {
							mu.Lock()
							defer mu.Unlock()
							return CaptureEngine(bw.live, seq, at, EngineBin)
						})
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				close(stop)
				r := <-done
				b.ReportMetric(r[0], "max_stall_ms")
				b.ReportMetric(r[1]/b.Elapsed().Seconds(), "applied/s")
			})
		}
	}
}

// memEngine builds, without a database, an engine holding size entities
// and size updates.
func memEngine(b *testing.B, size int) (*evaluator.Engine, *graph.Normalizer) {
	b.Helper()
	norm, err := graph.NewNormalizer(nil)
	if err != nil {
		b.Fatal(err)
	}
	e := evaluator.New(evaluator.Config{}, norm)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var seq int64
	for _, evs := range [][]event.Event{benchEntities(size), benchUpdates(size, size)} {
		for _, ev := range evs {
			seq++
			_ = e.Apply(event.Record{Seq: seq, RecordedAt: at.Add(time.Duration(seq) * time.Microsecond), Event: ev})
		}
	}
	return e, norm
}

// BenchmarkCapture measures what a live capture (snapshot_capture_live)
// holds the processor's lock for: evaluator.Engine.State, a deep copy
// into plain data, against the graph's part of it alone (graph.State).
func BenchmarkCapture(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("entities=%d", size), func(b *testing.B) {
			e, _ := memEngine(b, size)
			for name, fn := range map[string]func(){
				"evaluator.State": func() { _ = e.State() },
				"graph.State":     func() { _ = e.Graph().State() },
			} {
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					for i := 0; i < b.N; i++ {
						fn()
					}
				})
			}
		})
	}
}
