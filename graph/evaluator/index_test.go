package evaluator

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

func deleteHost(id string) event.Event {
	return event.Event{Source: "static", Kind: event.KindEntityDelete, Entity: &event.Entity{
		Category: event.CategoryResource, Type: "nova.host", ID: id}}
}

// TestIndexBoundedByLiveVertices: an engine whose graph churns hosts and
// their alarms (raised, cleared, deleted, purged) holds its indexes by
// vertex id, of the stored matches and of the effects, for the vertices
// that still have some, not a slot for every id the graph ever gave: ids
// are not reused, so a long-running processor would grow without bound.
func TestIndexBoundedByLiveVertices(t *testing.T) {
	const days, perDay = 10, 300
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var l timedLog
	l.add(t0, put("nic", nicTemplate))
	day := t0
	for d := 0; d < days; d++ {
		at := day
		next := func() time.Time {
			at = at.Add(time.Millisecond)
			return at
		}
		for i := 0; i < perDay; i++ {
			h := fmt.Sprintf("h%d-%d", d, i)
			l.add(next(), host(h, "available"))
			l.add(next(), alarmOn("nic-"+h, "NIC_DOWN", h))
		}
		// One host in 50 keeps its alarm, and the deduced one.
		for i := 0; i < perDay; i++ {
			if i%50 != 0 {
				h := fmt.Sprintf("h%d-%d", d, i)
				l.add(next(), clearAlarm("nic-"+h))
				l.add(next(), deleteHost(h))
			}
		}
		day = day.Add(24 * time.Hour)
	}
	l.add(day.Add(graph.DeletedRetention), tick())
	e := New(Config{}, nil)
	applyAll(t, e, l.recs)

	s := e.State()
	if want := days * perDay / 50; len(s.Matches) != want {
		t.Fatalf("%d matches left, want %d", len(s.Matches), want)
	}
	held := map[graph.VertexID]bool{}
	for _, m := range s.Matches {
		for _, b := range m.Bindings {
			held[b.Vertex] = true
		}
	}
	for _, ef := range s.Effects {
		held[ef.Target] = true
	}
	ids := e.Graph().Len()
	if ids < days*perDay*3 {
		t.Fatalf("the graph gave %d ids, want at least %d", ids, days*perDay*3)
	}
	// Some 128 bytes for each vertex a match binds or an effect targets,
	// 16 for each 1,024 ids given, and three pages of 1,024 ids of each
	// index: the newest ids' two, which stay whole, and the one the holes
	// share.
	const entry = 24 + 32 // a list of matches and a list of effects
	bound := len(held)*128 + ids/1024*16 + 3*1024*entry
	t.Logf("indexes %d bytes, bound %d, %d vertices held of %d ids", e.IndexBytes(), bound, len(held), ids)
	if got := e.IndexBytes(); got > bound {
		t.Errorf("the indexes by id hold %d bytes for %d vertices held of %d ids, more than %d", got, len(held), ids, bound)
	}
	// A restore holds no more.
	r, err := Restore(s, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.IndexBytes(); got > bound {
		t.Errorf("restored, the indexes by id hold %d bytes, more than %d", got, bound)
	}
}

// TestRestoreHugeNextID: a state naming a NextID near graph.MaxStateID
// (hand-made, past the checksum) restores with what its vertices, matches
// and effects need, not a slot of each index for every id below it.
func TestRestoreHugeNextID(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var l timedLog
	l.add(t0, host("h1", "available"))
	l.add(t0.Add(time.Second), put("nic", nicTemplate))
	l.add(t0.Add(2*time.Second), alarmOn("nic", "NIC_DOWN", "h1"))
	e := New(Config{}, nil)
	applyAll(t, e, l.recs)
	restore := func(t *testing.T, s State) (*Engine, uint64) {
		t.Helper()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		r, err := Restore(s, Config{}, nil)
		runtime.ReadMemStats(&m1)
		if err != nil {
			t.Fatal(err)
		}
		return r, m1.TotalAlloc - m0.TotalAlloc
	}
	s := e.State()
	if len(s.Matches) == 0 || len(s.Effects) == 0 {
		t.Fatal("no match or effect to restore")
	}
	// What the state's own restore allocates (the templates' compiling
	// most of it).
	_, base := restore(t, s)
	for _, next := range []graph.VertexID{1 << 24, graph.MaxStateID + 1} {
		t.Run(fmt.Sprint("next=", next), func(t *testing.T) {
			s := e.State()
			s.Graph.NextID = next
			r, alloc := restore(t, s)
			if alloc > base+1<<18 {
				t.Errorf("Restore allocated %d bytes with a next id of %d, %d with its own", alloc, next, base)
			}
			if r.Graph().Len() != int(next-1) {
				t.Errorf("Len %d after the restore, want %d", r.Graph().Len(), next-1)
			}
		})
	}
}
