package graph

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRCA(t *testing.T) {
	g, ids := fixture(t)
	for _, tc := range []struct {
		name      string
		alarm     string
		alarms    []string
		roots     []string
		paths     [][]string
		depth     int
		linkCount int
	}{
		{"middle of a chain", "d-i1", []string{"nic-h1", "vol-v1", "d-i1"}, []string{"nic-h1"}, [][]string{{"nic-h1", "d-i1"}}, 1, 2},
		{"end of a chain", "vol-v1", []string{"nic-h1", "vol-v1", "d-i1"}, []string{"nic-h1"}, [][]string{{"nic-h1", "d-i1", "vol-v1"}}, 2, 2},
		// The root sees what it causes, transitively, and is its own root.
		{"root", "nic-h1", []string{"nic-h1", "vol-v1", "d-i1", "d-i2"}, []string{"nic-h1"}, [][]string{{"nic-h1"}}, 0, 3},
		// Cleared alarms keep the links they had when they cleared.
		{"cleared", "d-i3", []string{"nic-h2", "d-i3"}, []string{"nic-h2"}, [][]string{{"nic-h2", "d-i3"}}, 1, 1},
		// A retracted link (d-i2 -> vol-v1) does not count.
		{"retracted link", "d-i2", []string{"nic-h1", "d-i2"}, []string{"nic-h1"}, [][]string{{"nic-h1", "d-i2"}}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := g.RCA(ids[tc.alarm])
			if err != nil {
				t.Fatal(err)
			}
			conv := func(ns []string) []VertexID {
				var out []VertexID
				for _, n := range ns {
					out = append(out, ids[n])
				}
				return out
			}
			var paths [][]VertexID
			for _, p := range tc.paths {
				paths = append(paths, conv(p))
			}
			want := RCA{Alarm: ids[tc.alarm], Alarms: sorted(conv(tc.alarms)), Roots: conv(tc.roots), Paths: paths, Depth: tc.depth}
			got := *r
			got.Links = nil
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("RCA (-want +got):\n%s", d)
			}
			if len(r.Links) != tc.linkCount {
				t.Errorf("links %+v, want %d", r.Links, tc.linkCount)
			}
			for _, e := range r.Links {
				if e.Relationship != RelCauses {
					t.Errorf("link %+v is not causes", e)
				}
			}
		})
	}
	if _, err := g.RCA(ids["h1"]); !errors.Is(err, ErrNotFound) {
		t.Errorf("RCA of a resource err = %v", err)
	}
	if _, err := g.RCA(12345); !errors.Is(err, ErrNotFound) {
		t.Errorf("RCA of an unknown id err = %v", err)
	}
}

func sorted(ids []VertexID) []VertexID {
	out := append([]VertexID(nil), ids...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestRCADiamondAndCycle(t *testing.T) {
	// a -> b -> d, a -> c -> d, e -> d: two shortest paths from a, one from e.
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("s", 1, res("t", "r", "OK")))
	n := map[string]VertexID{}
	for _, name := range []string{"a", "b", "c", "d", "e", "x", "y", "z", "p", "q", "s", "u"} {
		mustApply(t, g, l.upsert("s", 1, alarm("prometheus", name, "warning", out("on", "t", "r"))))
		n[name] = mustLookup(t, g, "ALARM", "prometheus", name).ID
	}
	// x <-> y -> z: a cycle that nothing else causes; s -> p <-> q -> u: a
	// cycle with a cause from outside.
	for _, p := range [][2]string{{"a", "b"}, {"a", "c"}, {"b", "d"}, {"c", "d"}, {"e", "d"}, {"x", "y"}, {"y", "x"}, {"y", "z"},
		{"s", "p"}, {"p", "q"}, {"q", "p"}, {"q", "u"}} {
		g.SetCausal(n[p[0]], n[p[1]], true)
	}
	r, err := g.RCA(n["d"])
	if err != nil {
		t.Fatal(err)
	}
	wantPaths := [][]VertexID{{n["a"], n["b"], n["d"]}, {n["a"], n["c"], n["d"]}, {n["e"], n["d"]}}
	if !cmp.Equal(r.Paths, wantPaths) || !cmp.Equal(r.Roots, []VertexID{n["a"], n["e"]}) || r.Depth != 2 {
		t.Errorf("RCA = %+v", r)
	}
	// A cycle that nothing else causes is where the causes start: all its
	// alarms are roots.
	for _, tc := range []struct {
		alarm string
		roots []string
		paths [][]string
	}{
		{"z", []string{"x", "y"}, [][]string{{"x", "y", "z"}, {"y", "z"}}},
		{"x", []string{"x", "y"}, [][]string{{"x"}, {"y", "x"}}},
		// A cycle with a cause from outside is not: that cause is the root.
		{"u", []string{"s"}, [][]string{{"s", "p", "q", "u"}}},
	} {
		r, err := g.RCA(n[tc.alarm])
		if err != nil {
			t.Fatal(err)
		}
		var roots []VertexID
		for _, x := range tc.roots {
			roots = append(roots, n[x])
		}
		var paths [][]VertexID
		for _, p := range tc.paths {
			var ids []VertexID
			for _, x := range p {
				ids = append(ids, n[x])
			}
			paths = append(paths, ids)
		}
		if !cmp.Equal(r.Roots, roots) || !cmp.Equal(r.Paths, paths) {
			t.Errorf("RCA of %s: roots %v paths %v; want %v %v", tc.alarm, r.Roots, r.Paths, roots, paths)
		}
	}
}

func TestRCAGolden(t *testing.T) {
	g, ids := fixture(t)
	r, err := g.RCA(ids["vol-v1"])
	if err != nil {
		t.Fatal(err)
	}
	var dot bytes.Buffer
	if err := g.WriteRCADOT(&dot, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "rca.dot.golden", dot.Bytes())
	r, err = g.RCA(ids["d-i3"])
	if err != nil {
		t.Fatal(err)
	}
	dot.Reset()
	if err := g.WriteRCADOT(&dot, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "rca_cleared.dot.golden", dot.Bytes())
}

func TestDOTEscape(t *testing.T) {
	if got, want := dotEscape("a\"b\\c\nd\re"), `a\"b\\c\nde`; got != want {
		t.Errorf("dotEscape = %q, want %q", got, want)
	}
}

func TestRCADeletedLinks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		steps   func(g *Graph, a, b VertexID)
		linked  bool
		deleted bool
	}{
		{"live", func(g *Graph, a, b VertexID) {}, true, false},
		{"cleared effect keeps its cause", func(g *Graph, a, b VertexID) { g.ClearDeducedAlarm(b) }, true, true},
		{"cleared cause stays a cause", func(g *Graph, a, b VertexID) { g.ClearDeducedAlarm(a) }, true, true},
		{"kept after later changes to the cleared alarm", func(g *Graph, a, b VertexID) {
			g.ClearDeducedAlarm(b)
			g.SetMarkedDown(b, true)
		}, true, true},
		{"retracted", func(g *Graph, a, b VertexID) { g.SetCausal(a, b, false) }, false, false},
		{"retracted then cleared", func(g *Graph, a, b VertexID) {
			g.SetCausal(a, b, false)
			g.ClearDeducedAlarm(b)
		}, false, false},
		{"cleared, link retracted after the clear", func(g *Graph, a, b VertexID) {
			g.ClearDeducedAlarm(b)
			g.SetCausal(a, b, false)
		}, true, true}, // a no-op: the evaluator retracting links of cleared alarms must not erase their history
		{"cleared then raised again without the link", func(g *Graph, a, b VertexID) {
			g.ClearDeducedAlarm(b)
			g.SetCausal(a, b, false)
			g.RaiseDeducedAlarm(DeducedAlarm{Target: 1, Name: "b", Severity: "warning"})
		}, false, false}, // the new occurrence has no cause: the old link belonged to the previous one
		{"cause cleared then raised again without the link", func(g *Graph, a, b VertexID) {
			g.ClearDeducedAlarm(a)
			g.RaiseDeducedAlarm(DeducedAlarm{Target: 1, Name: "a", Severity: "critical"})
		}, true, true}, // b, still raised, was caused by a's previous occurrence
		{"cleared then raised again with the link", func(g *Graph, a, b VertexID) {
			g.ClearDeducedAlarm(b)
			g.RaiseDeducedAlarm(DeducedAlarm{Target: 1, Name: "b", Severity: "warning"})
			g.SetCausal(a, b, true)
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(nil)
			var l logb
			mustApply(t, g, l.upsert("s", 1, res("t", "r", "OK")))
			a, _ := g.RaiseDeducedAlarm(DeducedAlarm{Target: 1, Name: "a", Severity: "critical"})
			b, _ := g.RaiseDeducedAlarm(DeducedAlarm{Target: 1, Name: "b", Severity: "warning"})
			g.SetCausal(a, b, true)
			tc.steps(g, a, b)
			r, err := g.RCA(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(r.Links) == 1; got != tc.linked {
				t.Fatalf("linked = %v (%+v), want %v", got, r, tc.linked)
			}
			if tc.linked && r.Links[0].IsDeleted != tc.deleted {
				t.Errorf("link deleted = %v, want %v", r.Links[0].IsDeleted, tc.deleted)
			}
			checkRoundTrip(t, g)
		})
	}
}

// TestRCAPathsBounded: alarms in fully linked layers have exponentially
// many shortest paths (8^4 from the root here); RCA lists MaxPaths in all,
// in order, what a root does not need going to the others, and says it
// left some out. Under the bound nothing is left out, however many roots
// share it; over it with more roots than paths, the bound still holds.
func TestRCAPathsBounded(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("s", 1, res("t", "r", "OK")))
	add := func(name string) VertexID {
		mustApply(t, g, l.upsert("s", 1, alarm("prometheus", name, "warning", out("on", "t", "r"))))
		return mustLookup(t, g, "ALARM", "prometheus", name).ID
	}
	layers := func(root VertexID, prefix string, n, width int) []VertexID {
		prev := []VertexID{root}
		for layer := 0; layer < n; layer++ {
			var cur []VertexID
			for i := 0; i < width; i++ {
				cur = append(cur, add(fmt.Sprintf("%s%d-%d", prefix, layer, i)))
			}
			for _, a := range prev {
				for _, b := range cur {
					g.SetCausal(a, b, true)
				}
			}
			prev = cur
		}
		return prev
	}
	root, other, last := add("root"), add("other"), add("last")
	for _, a := range layers(root, "l", 4, 8) {
		g.SetCausal(a, last, true)
	}
	g.SetCausal(other, last, true) // a second root, one edge away
	r, err := g.RCA(last)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(r.Roots, []VertexID{root, other}) || r.Depth != 5 || !r.Truncated || len(r.Paths) != MaxPaths {
		t.Fatalf("roots %v depth %d truncated %v, %d paths; want [%d %d], 5, true, %d", r.Roots, r.Depth, r.Truncated, len(r.Paths), root, other, MaxPaths)
	}
	fromRoot := r.Paths[:MaxPaths-1]
	if !slices.IsSortedFunc(fromRoot, slices.Compare) || len(slices.CompactFunc(slices.Clone(fromRoot), slices.Equal)) != len(fromRoot) {
		t.Error("the root's paths are not sorted and distinct")
	}
	// The first is the smallest: the first alarm of every layer.
	if want := []VertexID{root, root + 3, root + 11, root + 19, root + 27, last}; !cmp.Equal(fromRoot[0], want) {
		t.Errorf("first path %v; want %v", fromRoot[0], want)
	}
	if !cmp.Equal(r.Paths[MaxPaths-1], []VertexID{other, last}) {
		t.Errorf("the other root's path: %v", r.Paths[MaxPaths-1])
	}

	// Two roots with 64 and 1 paths: under the bound, all listed.
	a, b, end := add("a"), add("b"), add("end")
	for _, x := range layers(a, "m", 2, 8) {
		g.SetCausal(x, end, true)
	}
	g.SetCausal(b, end, true)
	if r, _ = g.RCA(end); len(r.Paths) != 65 || r.Truncated {
		t.Errorf("64+1 paths: listed %d, truncated %v; want 65, false", len(r.Paths), r.Truncated)
	}

	// A cycle of 150 alarms, all roots, with one path each: 100 listed.
	cyc := make([]VertexID, 150)
	for i := range cyc {
		cyc[i] = add(fmt.Sprintf("c%d", i))
	}
	for i := range cyc {
		g.SetCausal(cyc[i], cyc[(i+1)%len(cyc)], true)
	}
	if r, _ = g.RCA(cyc[0]); len(r.Roots) != 150 || len(r.Paths) != MaxPaths || !r.Truncated || r.Depth != 149 {
		t.Errorf("cycle: %d roots, %d paths, truncated %v, depth %d; want 150, %d, true, 149", len(r.Roots), len(r.Paths), r.Truncated, r.Depth, MaxPaths)
	}
}
