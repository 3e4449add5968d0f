package graph

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
	"gonum.org/v1/gonum/graph/simple"
)

var benchSizes = []int{1_000, 10_000, 100_000}

// cloudLog returns the records of a cloud of n resources: one cluster,
// zones of ≤1000, hosts of ≤20 instances, instances (80%) each on a host,
// volumes (the rest) each attached to an instance. Every resource but the
// cluster has one relation, so the graph has about n edges.
func cloudLog(n int) []event.Record {
	var recs []event.Record
	seq := int64(0)
	add := func(src string, e event.Entity) {
		seq++
		recs = append(recs, event.Record{Seq: seq, RecordedAt: t0, Event: event.Event{
			V: event.Version, EventID: strconv.FormatInt(seq, 10), Source: src, Kind: event.KindEntityUpsert,
			ObservedAt: t0, Entity: &e,
		}})
	}
	zones := max(1, n/1000)
	hosts := max(1, n/25)
	volumes := n / 5
	instances := max(1, n-1-zones-hosts-volumes)
	add("static", res("openstack.cluster", "c", "OK"))
	for z := range zones {
		add("nova", res("nova.zone", "z"+strconv.Itoa(z), "available", in("contains", "openstack.cluster", "c")))
	}
	for h := range hosts {
		add("nova", res("nova.host", "h"+strconv.Itoa(h), "available", in("contains", "nova.zone", "z"+strconv.Itoa(h%zones))))
	}
	for i := range instances {
		e := res("nova.instance", "i"+strconv.Itoa(i), "ACTIVE", in("contains", "nova.host", "h"+strconv.Itoa(i%hosts)))
		e.ProjectID = "p" + strconv.Itoa(i%7)
		add("nova", e)
	}
	for v := range volumes {
		add("cinder", res("cinder.volume", "v"+strconv.Itoa(v), "in-use", out("attached", "nova.instance", "i"+strconv.Itoa(v%instances))))
	}
	return recs
}

func buildCloud(tb testing.TB, n int) *Graph {
	g := New(nil)
	for _, r := range cloudLog(n) {
		if _, err := g.Apply(r); err != nil {
			tb.Fatal(err)
		}
	}
	return g
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemory reports the heap bytes per entity of the causeway graph
// built from a cloud log, and of a gonum simple.DirectedGraph with the same
// nodes and edges (no properties at all), side by side.
func BenchmarkMemory(b *testing.B) {
	for _, n := range benchSizes {
		recs := cloudLog(n)
		b.Run(fmt.Sprintf("causeway/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var per float64
			for range b.N {
				before := heapInUse()
				g := New(nil)
				for _, r := range recs {
					if _, err := g.Apply(r); err != nil {
						b.Fatal(err)
					}
				}
				per = float64(heapInUse()-before) / float64(g.Len())
				runtime.KeepAlive(g)
			}
			b.ReportMetric(per, "B/entity")
		})
		b.Run(fmt.Sprintf("gonum-simple/%d", n), func(b *testing.B) {
			g0 := New(nil)
			for _, r := range recs {
				g0.Apply(r)
			}
			type pair struct{ f, t int64 }
			var edges []pair
			for _, id := range g0.VertexIDs() {
				for _, e := range g0.Out(id) {
					edges = append(edges, pair{int64(e.From), int64(e.To)})
				}
			}
			nodes := g0.Len()
			g0 = nil
			b.ReportAllocs()
			var per float64
			for range b.N {
				before := heapInUse()
				s := simple.NewDirectedGraph()
				for i := 1; i <= nodes; i++ {
					s.AddNode(simple.Node(i))
				}
				for _, e := range edges {
					s.SetEdge(simple.Edge{F: simple.Node(e.f), T: simple.Node(e.t)})
				}
				per = float64(heapInUse()-before) / float64(nodes)
				runtime.KeepAlive(s)
			}
			b.ReportMetric(per, "B/entity")
		})
	}
}

// BenchmarkApplyUpsert applies upserts of existing instances (state and
// host changing) to a graph of n resources: one op is one record.
func BenchmarkApplyUpsert(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			g := buildCloud(b, n)
			hosts := max(1, n/25)
			instances := max(1, n-1-max(1, n/1000)-hosts-n/5)
			rng := rand.New(rand.NewPCG(1, 2))
			states := []string{"ACTIVE", "ERROR", "SHUTOFF"}
			const ring = 4096
			recs := make([]event.Record, ring)
			for i := range recs {
				e := res("nova.instance", "i"+strconv.Itoa(rng.IntN(instances)), states[rng.IntN(3)], in("contains", "nova.host", "h"+strconv.Itoa(rng.IntN(hosts))))
				recs[i] = event.Record{Event: event.Event{V: 1, EventID: "x", Source: "nova", Kind: event.KindEntityUpsert, Entity: &e}}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := recs[i%ring]
				r.Seq = int64(i)
				r.RecordedAt = t0.Add(time.Duration(i+1) * time.Millisecond)
				r.Event.ObservedAt = r.RecordedAt
				if _, err := g.Apply(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyAlarms raises and clears alarms on hosts (half upserts,
// half deletes) in a graph of n resources.
func BenchmarkApplyAlarms(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			g := buildCloud(b, n)
			hosts := max(1, n/25)
			rng := rand.New(rand.NewPCG(3, 4))
			const ring = 4096
			recs := make([]event.Record, ring)
			for i := range recs {
				a := "a" + strconv.Itoa(rng.IntN(1000))
				if i%2 == 0 {
					e := alarm("prometheus", a, "critical", out("on", "nova.host", "h"+strconv.Itoa(rng.IntN(hosts))))
					recs[i] = event.Record{Event: event.Event{V: 1, EventID: "x", Source: "prometheus", Kind: event.KindEntityUpsert, Entity: &e}}
				} else {
					recs[i] = event.Record{Event: event.Event{V: 1, EventID: "x", Source: "prometheus", Kind: event.KindEntityDelete,
						Entity: &event.Entity{Category: "ALARM", Type: "prometheus", ID: a}}}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := recs[i%ring]
				r.RecordedAt = t0.Add(time.Duration(i+1) * time.Millisecond)
				r.Event.ObservedAt = r.RecordedAt
				if _, err := g.Apply(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// causalCloud adds to a cloud of n resources an alarm on every host and a
// deduced alarm on every instance, each host alarm causing its instances'
// alarms, and every 10th instance alarm causing a volume alarm chain of 3.
func causalCloud(b *testing.B, n int) (*Graph, VertexID) {
	g := buildCloud(b, n)
	var l logb
	l.seq = 1 << 30
	hostAlarm := map[VertexID]VertexID{}
	var probe VertexID
	ofType := func(typ string) []Vertex {
		var out []Vertex
		for _, v := range everyVertex(g) {
			if v.Type == typ && !v.IsDeleted {
				out = append(out, v)
			}
		}
		return out
	}
	for _, h := range ofType("nova.host") {
		mustApply(b, g, l.upsert("prometheus", 1, alarm("prometheus", "nic-"+h.ExternalID, "critical", out("on", "nova.host", h.ExternalID))))
		id, _ := g.Lookup("ALARM", "prometheus", "nic-"+h.ExternalID)
		hostAlarm[h.ID] = id
	}
	for k, inst := range ofType("nova.instance") {
		d, _ := g.RaiseDeducedAlarm(DeducedAlarm{Target: inst.ID, Name: "degraded", Severity: "SEVERE"})
		for _, e := range g.In(inst.ID) {
			if e.Relationship == "contains" && !e.IsDeleted {
				g.SetCausal(hostAlarm[e.From], d, true)
			}
		}
		if k%10 == 0 {
			prev := d
			for j := range 3 {
				x, _ := g.RaiseDeducedAlarm(DeducedAlarm{Target: inst.ID, Name: "chain" + strconv.Itoa(j), Severity: "WARNING"})
				g.SetCausal(prev, x, true)
				prev = x
			}
			probe = prev
		}
	}
	return g, probe
}

func BenchmarkRCA(b *testing.B) {
	for _, n := range benchSizes[:2] {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			g, probe := causalCloud(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r, err := g.RCA(probe)
				if err != nil || r.Depth != 4 {
					b.Fatalf("RCA = %+v, %v", r, err)
				}
			}
		})
	}
}

func BenchmarkDump(b *testing.B) {
	g := buildCloud(b, 10_000)
	b.ReportAllocs()
	for range b.N {
		var w countWriter
		if err := g.Dump(&w); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(w))
	}
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// BenchmarkPurgeScan measures the scan the first record of each hour of
// log time makes (graph.DeletedRetention) over a cloud with nothing to
// remove: its cost an hour of log time, in a replay too.
func BenchmarkPurgeScan(b *testing.B) {
	for _, n := range benchSizes {
		g := buildCloud(b, n)
		g.now = toNanos(t0.Add(DeletedRetention))
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				g.purge()
			}
		})
	}
}
