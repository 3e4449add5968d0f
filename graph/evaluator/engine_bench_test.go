package evaluator

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/event"
)

// benchWorld is a demo-cloud topology of about n resources with the sample
// templates of deploy/templates loaded.
type benchWorld struct {
	e       *Engine
	seq     int64
	clock   time.Time
	hosts   []string
	switchs []string
}

func (w *benchWorld) apply(tb testing.TB, ev event.Event) {
	w.seq++
	w.clock = w.clock.Add(time.Millisecond)
	ev.V = event.Version
	ev.EventID = fmt.Sprint(w.seq)
	ev.ObservedAt = w.clock
	if err := w.e.Apply(event.Record{Seq: w.seq, RecordedAt: w.clock, Event: ev}); err != nil {
		tb.Fatal(err)
	}
}

func newBenchWorld(tb testing.TB, n int) *benchWorld {
	tb.Helper()
	w := &benchWorld{e: New(Config{}, nil), clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	paths, _ := filepath.Glob("../../deploy/templates/*.yaml")
	sort.Strings(paths)
	for _, p := range paths {
		body, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		w.apply(tb, event.Event{Source: "api", Kind: event.KindTemplatePut, Template: &event.Template{Name: filepath.Base(p), Body: string(body)}})
	}
	nz, nsw, nh, nv := max(1, n/1000), max(1, n/100), max(2, n/10), max(1, n/20)
	ni := n - nz - nsw - nh - nv
	up := func(typ, id string, rels []event.Relation) {
		w.apply(tb, event.Event{Source: "static", Kind: event.KindEntityUpsert, Entity: &event.Entity{
			Category: event.CategoryResource, Type: typ, ID: id, Name: id, State: "available", Relations: rels}})
	}
	w.apply(tb, event.Event{Source: "static", Kind: event.KindSyncBegin, Sync: &event.Sync{ID: "s"}})
	for z := 0; z < nz; z++ {
		up("nova.zone", fmt.Sprint("z", z), nil)
	}
	for h := 0; h < nh; h++ {
		id := fmt.Sprint("h", h)
		w.hosts = append(w.hosts, id)
		up("nova.host", id, []event.Relation{{Relationship: "contains", Type: "nova.zone", ID: fmt.Sprint("z", h%nz), Direction: event.In}})
	}
	for s := 0; s < nsw; s++ {
		id := fmt.Sprint("s", s)
		w.switchs = append(w.switchs, id)
		var rels []event.Relation
		for h := s; h < nh; h += nsw {
			rels = append(rels, event.Relation{Relationship: "attached", Type: "nova.host", ID: fmt.Sprint("h", h), Direction: event.Out})
		}
		up("switch", id, rels)
	}
	for i := 0; i < ni; i++ {
		up("nova.instance", fmt.Sprint("i", i), []event.Relation{{Relationship: "contains", Type: "nova.host", ID: fmt.Sprint("h", i%nh), Direction: event.In}})
	}
	for v := 0; v < nv; v++ {
		up("cinder.volume", fmt.Sprint("v", v), []event.Relation{{Relationship: "attached", Type: "nova.instance", ID: fmt.Sprint("i", v%max(1, ni)), Direction: event.Out}})
	}
	w.apply(tb, event.Event{Source: "static", Kind: event.KindSyncEnd, Sync: &event.Sync{ID: "s"}})
	return w
}

var benchSizes = []int{1_000, 10_000, 100_000}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkApply measures records applied per second, a mix of NIC alarms
// raised and cleared on hosts (each fans out to the host's instances), and
// the heap held per entity.
func BenchmarkApply(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			before := heapInUse()
			w := newBenchWorld(b, n)
			after := heapInUse()
			rng := rand.New(rand.NewSource(1))
			// Half raises, half clears: at most 32 NIC alarms outstanding,
			// the oldest cleared first, whatever the size.
			var outstanding []string
			raised := map[string]bool{}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				if len(outstanding) >= 32 || (len(outstanding) > 0 && rng.Intn(2) == 0) {
					h := outstanding[0]
					outstanding = outstanding[1:]
					delete(raised, h)
					w.apply(b, event.Event{Source: "nagios", Kind: event.KindEntityDelete,
						Entity: &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: "nic-" + h}})
					continue
				}
				h := w.hosts[rng.Intn(len(w.hosts))]
				for raised[h] {
					h = w.hosts[rng.Intn(len(w.hosts))]
				}
				raised[h] = true
				outstanding = append(outstanding, h)
				w.apply(b, event.Event{Source: "nagios", Kind: event.KindEntityUpsert, Entity: &event.Entity{
					Category: event.CategoryAlarm, Type: "nagios", ID: "nic-" + h, Name: "NIC_DOWN", Severity: "CRITICAL",
					Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: h, Direction: event.Out}}}})
			}
			// On a shared machine wall time lies; CPU time per event does not.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/event")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(after-before)/float64(n), "heapB/entity")
		})
	}
}

// BenchmarkRCA measures live RCA (graph.RCA) of a deduced instance alarm
// two `causes` hops below a switch uplink alarm.
func BenchmarkRCA(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			w := newBenchWorld(b, n)
			for _, s := range w.switchs {
				w.apply(b, event.Event{Source: "snmp", Kind: event.KindEntityUpsert, Entity: &event.Entity{
					Category: event.CategoryAlarm, Type: "snmp", ID: "up-" + s, Name: "uplink down", Severity: "CRITICAL",
					Relations: []event.Relation{{Relationship: "on", Type: "switch", ID: s, Direction: event.Out}}}})
			}
			g := w.e.Graph()
			inst, ok := g.Lookup(graph.CategoryResource, "nova.instance", "i0")
			if !ok {
				b.Fatal("no instance i0")
			}
			alarm, ok := g.Lookup(graph.CategoryAlarm, graph.DeducedType, graph.DeducedExternalID(inst, "instance_network_unreachable"))
			if !ok {
				b.Fatal("no deduced alarm on i0")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := g.RCA(alarm)
				if err != nil || len(r.Roots) != 1 || r.Depth != 2 {
					b.Fatalf("rca = %+v, %v", r, err)
				}
			}
		})
	}
}

// BenchmarkCapture measures Engine.State, a sorted deep copy: what a
// snapshot capture costs the machine it captures. Every host has a NIC
// alarm, so matches and effects are many.
func BenchmarkCapture(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
			w := newBenchWorld(b, n)
			for _, h := range w.hosts {
				w.apply(b, event.Event{Source: "nagios", Kind: event.KindEntityUpsert, Entity: &event.Entity{
					Category: event.CategoryAlarm, Type: "nagios", ID: "nic-" + h, Name: "NIC_DOWN", Severity: "CRITICAL",
					Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: h, Direction: event.Out}}}})
			}
			b.Run("Engine.State", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = w.e.State()
				}
			})
		})
	}
}

// BenchmarkReplay measures the mix a reconstruction replays: mostly
// instance upserts whose state moves (ACTIVE, ERROR, SHUTOFF), and one in a
// hundred a NIC alarm raised or cleared on a host.
func BenchmarkReplay(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			w := newBenchWorld(b, n)
			var insts []string
			for _, id := range w.e.g.VertexIDs() {
				if v, _ := w.e.g.Vertex(id); v.Type == "nova.instance" {
					insts = append(insts, v.ExternalID)
				}
			}
			hostOf := map[string]string{}
			for i := range insts {
				hostOf[fmt.Sprint("i", i)] = fmt.Sprint("h", i%len(w.hosts))
			}
			states := []string{"ACTIVE", "ERROR", "SHUTOFF"}
			raised := map[string]bool{}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			i := 0
			for b.Loop() {
				i++
				if i%100 == 0 {
					h := w.hosts[(i/100)%len(w.hosts)]
					if raised[h] {
						delete(raised, h)
						w.apply(b, event.Event{Source: "nagios", Kind: event.KindEntityDelete,
							Entity: &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: "nic-" + h}})
						continue
					}
					raised[h] = true
					w.apply(b, event.Event{Source: "nagios", Kind: event.KindEntityUpsert, Entity: &event.Entity{
						Category: event.CategoryAlarm, Type: "nagios", ID: "nic-" + h, Name: "NIC_DOWN", Severity: "CRITICAL",
						Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: h, Direction: event.Out}}}})
					continue
				}
				id := fmt.Sprint("i", (i*7919)%len(insts))
				w.apply(b, event.Event{Source: "static", Kind: event.KindEntityUpsert, Entity: &event.Entity{
					Category: event.CategoryResource, Type: "nova.instance", ID: id, Name: id, State: states[i%3],
					Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: hostOf[id], Direction: event.In}}}})
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/event")
		})
	}
}

// BenchmarkHistoryTail applies, in memory, the events a historical RCA
// replays in history's benchmark: up to 49,999 alarm-heavy events after
// the topology of historytest's scenario, each raising, escalating or
// clearing a host's NIC alarm and with it nine deduced alarms. It reports
// the time and the graph changes per event replayed (the work the
// snapshot policy's every_changes counts).
func BenchmarkHistoryTail(b *testing.B) {
	const tailLen = 49_999
	for _, entities := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entities=%d", entities), func(b *testing.B) {
			hosts := entities / 10
			s := historytest.Scenario{Hosts: hosts, InstancesPerHost: 9, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			topo := len(s.Events())
			s.Rounds = 3*(tailLen/max(1, hosts*2/3)) + 6
			evs := s.Events()
			recs := make([]event.Record, topo+tailLen)
			for i := range recs {
				recs[i] = event.Record{Seq: int64(i + 1), RecordedAt: evs[i].ObservedAt, Event: evs[i]}
			}
			b.ReportAllocs()
			var applied time.Duration
			var changes int64
			for b.Loop() {
				b.StopTimer()
				e := New(Config{}, graph.DefaultNormalizer())
				for _, r := range recs[:topo] {
					if err := e.Apply(r); err != nil {
						b.Fatal(err)
					}
				}
				before := e.ChangesApplied()
				b.StartTimer()
				t := time.Now()
				for _, r := range recs[topo:] {
					if err := e.Apply(r); err != nil {
						b.Fatal(err)
					}
				}
				applied += time.Since(t)
				changes += e.ChangesApplied() - before
			}
			b.ReportMetric(float64(applied.Nanoseconds())/float64(b.N*tailLen), "ns/event")
			b.ReportMetric(float64(changes)/float64(b.N*tailLen), "changes/event")
		})
	}
}
