package graph

import (
	gg "gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/iterator"
)

// View is a gonum graph.Directed over the graph's own storage, so gonum's
// traversal and path algorithms run on it without copying. A View is valid
// until the graph changes.
//
// Gonum's model has one edge per ordered pair of nodes; Causeway's graph has
// one per (from, to, relationship). The view has an edge u->v when at least
// one relationship from u to v passes its filter.
type View struct {
	g *Graph
	// IncludeDeleted makes deleted vertices and edges visible.
	IncludeDeleted bool
	// Relationship, when set, keeps only the edges whose relationship it
	// accepts.
	Relationship func(rel string) bool
	// Vertex, when set, keeps only the vertices it accepts.
	Vertex func(v *Vertex) bool
	// vertex, when set, is a further test of vertices, on the internal form.
	vertex func(v *vertex) bool
	// edge, when set, is a further test of edges (RCA's rule for deleted
	// causal edges).
	edge func(from VertexID, e *edge) bool
}

var _ gg.Directed = (*View)(nil)

// View returns a gonum view of g showing live (non-deleted) vertices and
// edges, or every one when includeDeleted.
func (g *Graph) View(includeDeleted bool) *View {
	return &View{g: g, IncludeDeleted: includeDeleted}
}

// Node is a vertex as a gonum node.
type Node VertexID

// ID implements gonum's graph.Node.
func (n Node) ID() int64 { return int64(n) }

// Line is the gonum edge of a View: the pair and the relationships on it
// that pass the view's filter, sorted.
type Line struct {
	F, T          Node
	Relationships []string
}

// From implements gonum's graph.Edge.
func (l Line) From() gg.Node { return l.F }

// To implements gonum's graph.Edge.
func (l Line) To() gg.Node { return l.T }

// ReversedEdge implements gonum's graph.Edge.
func (l Line) ReversedEdge() gg.Edge { return Line{F: l.T, T: l.F, Relationships: l.Relationships} }

func (w *View) vertexOK(v *vertex) bool {
	if v == nil || (v.deleted && !w.IncludeDeleted) {
		return false
	}
	if w.vertex != nil && !w.vertex(v) {
		return false
	}
	if w.Vertex != nil {
		x := w.g.export(v)
		return w.Vertex(&x)
	}
	return true
}

func (w *View) edgeOK(from VertexID, e *edge) bool {
	if e.deleted && !w.IncludeDeleted {
		return false
	}
	if w.Relationship != nil && !w.Relationship(e.rel) {
		return false
	}
	return w.edge == nil || w.edge(from, e)
}

// Node implements gonum's graph.Graph.
func (w *View) Node(id int64) gg.Node {
	if !w.vertexOK(w.g.get(VertexID(id))) {
		return nil
	}
	return Node(id)
}

// Nodes implements gonum's graph.Graph: the visible vertices, ascending.
func (w *View) Nodes() gg.Nodes {
	var ns []gg.Node
	for _, v := range w.g.verts.All {
		if w.vertexOK(v) {
			ns = append(ns, Node(v.id))
		}
	}
	return iterator.NewOrderedNodes(ns)
}

// From implements gonum's graph.Graph: the targets of visible edges from
// id, ascending.
func (w *View) From(id int64) gg.Nodes {
	v := w.g.get(VertexID(id))
	if !w.vertexOK(v) {
		return gg.Empty
	}
	var ns []gg.Node
	for i := range v.out {
		e := &v.out[i]
		if (len(ns) > 0 && ns[len(ns)-1].ID() == int64(e.to)) || !w.edgeOK(v.id, e) || !w.vertexOK(w.g.get(e.to)) {
			continue
		}
		ns = append(ns, Node(e.to))
	}
	if len(ns) == 0 {
		return gg.Empty
	}
	return iterator.NewOrderedNodes(ns)
}

// To implements gonum's graph.Directed: the sources of visible edges to
// id, ascending.
func (w *View) To(id int64) gg.Nodes {
	v := w.g.get(VertexID(id))
	if !w.vertexOK(v) {
		return gg.Empty
	}
	var ns []gg.Node
	for _, from := range v.in {
		if w.line(from, v.id) != nil {
			ns = append(ns, Node(from))
		}
	}
	if len(ns) == 0 {
		return gg.Empty
	}
	return iterator.NewOrderedNodes(ns)
}

// line returns the visible relationships from -> to, nil if none.
func (w *View) line(from, to VertexID) []string {
	fv, tv := w.g.get(from), w.g.get(to)
	if !w.vertexOK(fv) || !w.vertexOK(tv) {
		return nil
	}
	var rels []string
	i, _ := fv.findOut(to, "")
	for ; i < len(fv.out) && fv.out[i].to == to; i++ {
		if w.edgeOK(from, &fv.out[i]) {
			rels = append(rels, fv.out[i].rel)
		}
	}
	return rels
}

// HasEdgeBetween implements gonum's graph.Graph.
func (w *View) HasEdgeBetween(xid, yid int64) bool {
	return w.HasEdgeFromTo(xid, yid) || w.HasEdgeFromTo(yid, xid)
}

// HasEdgeFromTo implements gonum's graph.Directed.
func (w *View) HasEdgeFromTo(uid, vid int64) bool {
	return w.line(VertexID(uid), VertexID(vid)) != nil
}

// Edge implements gonum's graph.Graph; the result is a Line.
func (w *View) Edge(uid, vid int64) gg.Edge {
	rels := w.line(VertexID(uid), VertexID(vid))
	if rels == nil {
		return nil
	}
	return Line{F: Node(uid), T: Node(vid), Relationships: rels}
}
