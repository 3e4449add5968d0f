package graph

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	gg "gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/topo"
)

func ids(it gg.Nodes) []int64 {
	var out []int64
	for it.Next() {
		out = append(out, it.Node().ID())
	}
	return out
}

func TestView(t *testing.T) {
	g := New(nil)
	var l logb
	// 1 -contains-> 2, 1 -uses-> 2, 1 -contains-> 3 (deleted later), 4 -> 1, 5 deleted.
	mustApply(t, g, l.upsert("s", 1, res("t", "a", "OK", out("contains", "t", "b"), out("uses", "t", "b"), out("contains", "t", "c"))))
	mustApply(t, g, l.upsert("s", 1, res("t", "d", "OK", out("on", "t", "a"))))
	mustApply(t, g, l.upsert("s", 1, res("t", "e", "OK", in("contains", "t", "a"))))
	mustApply(t, g, l.upsert("s", 2, res("t", "a", "OK", out("contains", "t", "b"), out("uses", "t", "b"))))
	mustApply(t, g, l.del("s", 3, "", "t", "e"))

	live := g.View(false)
	if got, want := ids(live.Nodes()), []int64{1, 2, 3, 4}; !cmp.Equal(got, want) {
		t.Errorf("Nodes = %v, want %v", got, want)
	}
	if got, want := ids(live.From(1)), []int64{2}; !cmp.Equal(got, want) {
		t.Errorf("From(1) = %v, want %v", got, want)
	}
	if got, want := ids(live.To(1)), []int64{4}; !cmp.Equal(got, want) {
		t.Errorf("To(1) = %v, want %v", got, want)
	}
	if live.Node(5) != nil || live.Node(99) != nil || live.Node(0) != nil {
		t.Error("deleted or unknown node visible")
	}
	if !live.HasEdgeFromTo(1, 2) || live.HasEdgeFromTo(2, 1) || !live.HasEdgeBetween(2, 1) || live.HasEdgeFromTo(1, 3) {
		t.Error("HasEdge answers wrong")
	}
	e, ok := live.Edge(1, 2).(Line)
	if !ok || !cmp.Equal(e.Relationships, []string{"contains", "uses"}) || e.From().ID() != 1 || e.To().ID() != 2 {
		t.Errorf("Edge(1,2) = %+v", e)
	}
	if r := e.ReversedEdge(); r.From().ID() != 2 || r.To().ID() != 1 {
		t.Errorf("reversed = %+v", r)
	}
	if live.Edge(1, 3) != nil {
		t.Error("deleted edge visible")
	}
	all := g.View(true)
	if got, want := ids(all.From(1)), []int64{2, 3, 5}; !cmp.Equal(got, want) {
		t.Errorf("From(1) with deleted = %v, want %v", got, want)
	}
	onlyUses := g.View(false)
	onlyUses.Relationship = func(r string) bool { return r == "uses" }
	if e := onlyUses.Edge(1, 2).(Line); !cmp.Equal(e.Relationships, []string{"uses"}) {
		t.Errorf("filtered relationships = %v", e.Relationships)
	}
	onlyUses.Vertex = func(v *Vertex) bool { return v.ExternalID != "b" }
	if onlyUses.HasEdgeFromTo(1, 2) || onlyUses.Node(2) != nil {
		t.Error("vertex filter ignored")
	}
	// gonum's algorithms run on it.
	if !topo.PathExistsIn(live, Node(4), Node(2)) || topo.PathExistsIn(live, Node(2), Node(4)) {
		t.Error("PathExistsIn answers wrong")
	}
	sorted, err := topo.Sort(live)
	if err != nil || len(sorted) != 4 {
		t.Errorf("topo.Sort = %v, %v", sorted, err)
	}
}
