package graph

import (
	"slices"

	gg "gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/simple"
	"gonum.org/v1/gonum/graph/topo"
	"gonum.org/v1/gonum/graph/traverse"
)

// RCA is the root-cause analysis of one alarm: the alarms linked to it by
// `causes` edges, both ways (its causes, transitively, and what it causes,
// transitively), the root causes and the causal paths from each root.
//
// Cleared (deleted) alarms are included: a `causes` edge counts when it is
// live, or when it was deleted together with one of its alarms (it held
// until that alarm cleared; it is shown with vitrage_is_deleted). A
// `causes` edge that the evaluator retracted while both alarms stayed
// raised does not count.
type RCA struct {
	// Alarm is the alarm analysed.
	Alarm VertexID
	// Alarms are every alarm of the analysis, Alarm included, ascending.
	Alarms []VertexID
	// Links are the `causes` edges among Alarms that count, sorted by
	// (From, To).
	Links []Edge
	// Roots are the alarms among Alarm and its causes that nothing causes,
	// ascending; Alarm itself when it has no cause. Alarms that cause one
	// another in a cycle that nothing outside it causes are all roots:
	// the cycle is where the causes start.
	Roots []VertexID
	// Paths are the shortest causal paths from each root to Alarm, sorted
	// (by root, then lexicographically); each starts at a root and ends at
	// Alarm. There are at most MaxPaths of them, their number growing
	// exponentially with the layers of alarms between a root and Alarm:
	// each root gets an equal share of the bound, and what a root does
	// not need goes to the others.
	Paths [][]VertexID
	// Truncated says some shortest paths were left out of Paths.
	Truncated bool
	// Depth is the number of edges of the longest shortest path (listed
	// or not).
	Depth int
}

// MaxPaths bounds RCA.Paths.
const MaxPaths = 100

// causalView is the gonum view RCA walks: alarms (deleted included) and the
// `causes` edges that count.
func (g *Graph) causalView() *View {
	w := g.View(true)
	w.vertex = func(v *vertex) bool { return g.s(v.category) == CategoryAlarm }
	w.Relationship = func(rel string) bool { return rel == RelCauses }
	w.edge = func(_ VertexID, e *edge) bool { return !e.deleted || e.withVertex }
	return w
}

// RCA analyses alarm. It returns ErrNotFound when alarm is not an alarm of
// the graph (deleted ones are analysed).
func (g *Graph) RCA(alarm VertexID) (*RCA, error) {
	v := g.get(alarm)
	if v == nil || g.s(v.category) != CategoryAlarm {
		return nil, ErrNotFound
	}
	w := g.causalView()
	in := map[VertexID]bool{alarm: true}
	var causes []VertexID // alarm and its causes, transitively
	// dist is the number of causal edges from each cause to alarm.
	dist := map[VertexID]int{}
	up := traverse.BreadthFirst{Visit: func(n gg.Node) {
		id := VertexID(n.ID())
		in[id] = true
		causes = append(causes, id)
	}}
	up.Walk(reversed{w}, Node(alarm), func(n gg.Node, d int) bool { dist[VertexID(n.ID())] = d; return false })
	down := traverse.BreadthFirst{Visit: func(n gg.Node) { in[VertexID(n.ID())] = true }}
	down.Walk(w, Node(alarm), nil)

	r := &RCA{Alarm: alarm}
	for id := range in {
		r.Alarms = append(r.Alarms, id)
	}
	slices.Sort(r.Alarms)
	r.Links = g.edgesAmong(w, r.Alarms)

	r.Roots = roots(w, causes)
	// How many shortest paths each alarm has to alarm (capped past the
	// bound): causes is in breadth-first order from alarm, so the alarms
	// one step closer are counted first.
	count := map[VertexID]int{alarm: 1}
	for _, u := range causes {
		if u == alarm {
			continue
		}
		n := 0
		for it := w.From(int64(u)); it.Next(); {
			if v := VertexID(it.Node().ID()); dist[v] == dist[u]-1 {
				n = min(n+count[v], MaxPaths+1)
			}
		}
		count[u] = n
	}
	need := make([]int, len(r.Roots))
	for i, root := range r.Roots {
		need[i] = count[root]
		r.Depth = max(r.Depth, dist[root])
	}
	for i, n := range allot(need, MaxPaths) {
		r.Paths = append(r.Paths, shortestPaths(w, r.Roots[i], alarm, dist, n)...)
		r.Truncated = r.Truncated || n < need[i]
	}
	return r, nil
}

// allot shares budget among wants: each gets what it wants up to an equal
// share of what is left, smallest wants first, so that what one does not
// need goes to the others. Ties go by index; with fewer paths than roots,
// some get none.
func allot(want []int, budget int) []int {
	order := make([]int, len(want))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return want[a] - want[b] })
	got := make([]int, len(want))
	for k, i := range order {
		got[i] = min(want[i], budget/(len(order)-k))
		budget -= got[i]
	}
	return got
}

// shortestPaths returns the first limit shortest causal paths from root to
// alarm in lexicographic order. dist holds the distance of every cause of
// alarm to it: a path is shortest exactly when each of its edges brings it
// one step closer, so a depth-first walk along such edges, taking the next
// alarms in ascending order, lists the shortest paths sorted without
// enumerating more than it keeps.
func shortestPaths(w *View, root, alarm VertexID, dist map[VertexID]int, limit int) [][]VertexID {
	if _, ok := dist[root]; !ok || limit <= 0 {
		return nil
	}
	var out [][]VertexID
	cur := []VertexID{root}
	var walk func(u VertexID)
	walk = func(u VertexID) {
		if u == alarm {
			out = append(out, slices.Clone(cur))
			return
		}
		var next []VertexID
		for it := w.From(int64(u)); it.Next(); {
			v := VertexID(it.Node().ID())
			if d, ok := dist[v]; ok && d == dist[u]-1 {
				next = append(next, v)
			}
		}
		slices.Sort(next)
		for _, v := range next {
			cur = append(cur, v)
			walk(v)
			cur = cur[:len(cur)-1]
			if len(out) == limit {
				return
			}
		}
	}
	walk(root)
	return out
}

// roots returns the alarms of causes (an alarm and every alarm causing it,
// transitively, so closed under "is caused by") where causation starts:
// the strongly connected components with no `causes` edge from outside
// them. A component of one alarm is an alarm nothing else causes; a larger
// one is a cycle of alarms causing one another, all of which are roots.
func roots(w *View, causes []VertexID) []VertexID {
	sub := simple.NewDirectedGraph()
	for _, id := range causes {
		if sub.Node(int64(id)) == nil {
			sub.AddNode(simple.Node(id))
		}
	}
	for _, id := range causes {
		for it := w.To(int64(id)); it.Next(); {
			if from := it.Node().ID(); from != int64(id) {
				sub.SetEdge(simple.Edge{F: simple.Node(from), T: simple.Node(id)})
			}
		}
	}
	var out []VertexID
	for _, comp := range topo.TarjanSCC(sub) {
		in := make(map[int64]bool, len(comp))
		for _, n := range comp {
			in[n.ID()] = true
		}
		source := true
		for _, n := range comp {
			for it := sub.To(n.ID()); it.Next() && source; {
				source = in[it.Node().ID()]
			}
		}
		if source {
			for _, n := range comp {
				out = append(out, VertexID(n.ID()))
			}
		}
	}
	slices.Sort(out)
	return out
}
