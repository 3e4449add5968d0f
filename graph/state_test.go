package graph

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/event"
)

// checkRoundTrip checks that State/FromState gives a graph with the same
// dump.
func checkRoundTrip(t *testing.T, g *Graph) {
	t.Helper()
	want := dump(t, g)
	r, err := FromState(g.State(), g.norm)
	if err != nil {
		t.Fatalf("FromState: %v", err)
	}
	if got := dump(t, r); got != want {
		t.Fatalf("FromState dump differs:\n got %s\nwant %s", got, want)
	}
}

func TestStateRoundTripKeepsBookkeeping(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))))
	mustApply(t, g, l.upsert("static", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))))
	mustApply(t, g, l.upsert("nova", 1, res("nova.instance", "i2", "ACTIVE")))
	mustApply(t, g, l.sync(event.KindSyncBegin, "nova", "s1"))
	mustApply(t, g, l.upsert("nova", 2, res("nova.host", "h1", "OK")))
	g.SetDeducedState(1, "SUBOPTIMAL")
	g.SetMarkedDown(1, true)
	checkRoundTrip(t, g)

	// Continue both with the same records: same result (owners and the open
	// sync were carried over).
	r, err := FromState(g.State(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rest := []event.Record{
		l.upsert("static", 3, res("nova.host", "h1", "OK")),
		l.sync(event.KindSyncEnd, "nova", "s1"),
	}
	for _, rec := range rest {
		mustApply(t, g, rec)
		mustApply(t, r, rec)
	}
	if dump(t, g) != dump(t, r) {
		t.Errorf("restored graph diverged:\n%s\n%s", dump(t, g), dump(t, r))
	}
	if v := mustLookup(t, r, "", "nova.instance", "i2"); !v.IsDeleted {
		t.Error("open sync lost in the round trip")
	}
	if !mustEdge(t, r, 1, 2, "contains").IsDeleted {
		t.Error("edge owners lost in the round trip")
	}
}

func TestFromStateRejectsInconsistentState(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"), out("attached", "nova.instance", "i1"))))
	mustApply(t, g, l.sync(event.KindSyncBegin, "a", "1"))
	mustApply(t, g, l.sync(event.KindSyncBegin, "b", "1"))
	for _, tc := range []struct {
		name  string
		mod   func(*State)
		error string
	}{
		{"version", func(s *State) { s.Version = 9 }, "version"},
		{"next id", func(s *State) { s.NextID = 1 }, "next id"},
		// A gap in the ids: a state no graph makes, and one whose next
		// id would size the vertex table past anything it holds.
		{"next id past the vertices", func(s *State) { s.NextID = 1 << 40 }, "next id"},
		{"id out of range", func(s *State) { s.Vertices[0].ID = 7 }, "out of range"},
		{"duplicate id", func(s *State) { s.Vertices[1].ID = 1 }, "twice"},
		{"ids not ascending", func(s *State) { s.Vertices[0], s.Vertices[1] = s.Vertices[1], s.Vertices[0] }, "not ascending"},
		{"duplicate key", func(s *State) { s.Vertices[1].Type, s.Vertices[1].ExternalID = "nova.host", "h1" }, "share the key"},
		{"category", func(s *State) { s.Vertices[0].Category = "X" }, "category"},
		{"dangling edge", func(s *State) { s.Vertices[0].Out[0].To = 9 }, "no vertex"},
		{"unsorted edges", func(s *State) {
			s.Vertices[0].Out[0], s.Vertices[0].Out[1] = s.Vertices[0].Out[1], s.Vertices[0].Out[0]
		}, "not sorted"},
		{"unsorted owners", func(s *State) {
			s.Vertices[0].Out[0].Owners = []Owner{{Entity: 2, Source: "a"}, {Entity: 1, Source: "a"}}
		}, "owners"},
		{"unsorted syncs", func(s *State) { s.Syncs[0], s.Syncs[1] = s.Syncs[1], s.Syncs[0] }, "syncs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := g.State()
			tc.mod(&s)
			_, err := FromState(s, nil)
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.error)
			}
		})
	}
}

func TestStateIsACopy(t *testing.T) {
	g := New(nil)
	var l logb
	e := res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))
	e.Properties = map[string]string{"a": "1"}
	mustApply(t, g, l.upsert("nova", 1, e))
	before := dump(t, g)
	s := g.State()
	s.Vertices[0].Properties["a"] = "changed"
	s.Vertices[0].Out[0].Owners[0].Source = "changed"
	v, _ := g.Vertex(1)
	v.Properties["a"] = "changed"
	if dump(t, g) != before {
		t.Error("changing a State or a Vertex copy changed the graph")
	}
}

// TestStateEncodings checks that State survives the encodings snapshots use
// (JSON and gob) with a byte-identical dump.
func TestStateEncodings(t *testing.T) {
	g, _ := fixture(t)
	want := dump(t, g)
	s := g.State()

	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON State
	if err := json.Unmarshal(b, &fromJSON); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		t.Fatal(err)
	}
	var fromGob State
	if err := gob.NewDecoder(&buf).Decode(&fromGob); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]State{"json": fromJSON, "gob": fromGob} {
		r, err := FromState(st, nil)
		if err != nil {
			t.Fatalf("%s: FromState: %v", name, err)
		}
		if got := dump(t, r); got != want {
			t.Errorf("%s: dump after the round trip differs", name)
		}
	}
}
