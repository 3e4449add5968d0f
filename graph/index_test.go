package graph

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
)

// TestIndexBoundedByLiveVertices: a graph that creates and deletes
// thousands of vertices a day, and keeps one in a hundred of them, holds
// its index by id for the vertices it keeps once the others are purged
// (DeletedRetention), not a slot for every id it ever gave: ids are not
// reused, so a long-running processor would grow without bound.
func TestIndexBoundedByLiveVertices(t *testing.T) {
	const days, perDay = 20, 1000
	var l tlog
	g := New(nil)
	day := hour0
	for d := 0; d < days; d++ {
		for i := 0; i < perDay; i++ {
			mustApply(t, g, l.upsert(day.Add(time.Duration(i)*time.Millisecond), "nova",
				res("nova.instance", fmt.Sprintf("i%d-%d", d, i), "ACTIVE", in("contains", "nova.host", "h1"))))
		}
		for i := 0; i < perDay; i++ {
			if i%100 != 0 {
				mustApply(t, g, l.del(day.Add(time.Hour+time.Duration(i)*time.Millisecond), "nova",
					event.CategoryResource, "nova.instance", fmt.Sprintf("i%d-%d", d, i)))
			}
		}
		day = day.Add(24 * time.Hour)
	}
	mustApply(t, g, l.tick(day.Add(DeletedRetention)))
	live := len(g.VertexIDs())
	if want := 1 + days*perDay/100; live != want {
		t.Fatalf("%d vertices left after the purge, want %d", live, want)
	}
	if g.Len() != days*perDay+1 {
		t.Fatalf("Len %d: ids given, want %d", g.Len(), days*perDay+1)
	}
	// Some 64 bytes for each vertex left, 8 for each 1,024 ids given,
	// and three pages of 1,024 pointers: the newest ids' two, which stay
	// whole, and the one the holes share.
	bound := live*64 + g.Len()/1024*8 + 3*1024*8
	t.Logf("index %d bytes, bound %d, live %d, ids %d", g.IndexBytes(), bound, live, g.Len())
	if got := g.IndexBytes(); got > bound {
		t.Errorf("the index by id holds %d bytes for %d vertices left of %d ids, more than %d", got, live, g.Len(), bound)
	}
	// The survivors are still found by their ids, and new ones follow.
	for _, id := range g.VertexIDs() {
		if v, ok := g.Vertex(id); !ok || v.ID != id {
			t.Fatalf("vertex %d: %+v, %v", id, v, ok)
		}
	}
	mustApply(t, g, l.upsert(day.Add(DeletedRetention+time.Second), "nova", res("nova.instance", "new", "ACTIVE")))
	if v := mustLookup(t, g, "", "nova.instance", "new"); v.ID != VertexID(days*perDay+2) {
		t.Errorf("a new vertex has id %d, want %d", v.ID, days*perDay+2)
	}
}

// TestFromStateHugeNextID: the ids below NextID that no vertex holds are
// those of purged vertices; a restore allocates for the vertices the state
// holds, not for every id, so that a state naming a NextID near
// MaxStateID (hand-made, past the checksum) does not allocate gigabytes.
func TestFromStateHugeNextID(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))))
	for _, next := range []VertexID{1 << 24, MaxStateID + 1} {
		t.Run(fmt.Sprint("next=", next), func(t *testing.T) {
			s := g.State()
			s.NextID = next
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			r, err := FromState(s, nil)
			runtime.ReadMemStats(&m1)
			if err != nil {
				t.Fatal(err)
			}
			if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 1<<20 {
				t.Errorf("FromState allocated %d bytes for 2 vertices and a next id of %d", alloc, next)
			}
			if got := r.IndexBytes(); got > 1<<16 {
				t.Errorf("the index by id holds %d bytes", got)
			}
			if r.Len() != int(next-1) || r.State().NextID != next {
				t.Errorf("Len %d, NextID %d after the restore, want %d", r.Len(), r.State().NextID, next)
			}
		})
	}
	// A vertex at the highest id costs the page pointers below it: 8
	// bytes for 1,024 ids.
	s := g.State()
	s.NextID = MaxStateID + 1
	s.Vertices[1].ID = MaxStateID
	s.Vertices[0].Out[0].To = MaxStateID
	s.Vertices[0].Out[0].Owners[0].Entity = s.Vertices[0].ID
	r, err := FromState(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, most := r.IndexBytes(), MaxStateID/1024*8+1<<16; got > most {
		t.Errorf("the index by id holds %d bytes with a vertex at id %d, more than %d", got, MaxStateID, most)
	}
	if v, ok := r.Vertex(MaxStateID); !ok || v.ExternalID != "i1" {
		t.Errorf("vertex %d: %+v, %v", MaxStateID, v, ok)
	}
}
