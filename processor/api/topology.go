package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/causeway/causeway/graph"
)

// ErrBadQuery is what ComputeTopology and TopologyQuery.Check wrap for a
// query that no graph can answer (the API answers 400).
var ErrBadQuery = errors.New("bad query")

// tagged is an error that errors.Is matches with a sentinel while its
// message stays its own.
type tagged struct {
	err, tag error
}

func (t tagged) Error() string        { return t.err.Error() }
func (t tagged) Unwrap() error        { return t.err }
func (t tagged) Is(target error) bool { return target == t.tag }

func badQuery(format string, args ...any) error {
	return tagged{err: fmt.Errorf(format, args...), tag: ErrBadQuery}
}

// TopologyQuery asks for a part of the graph, as Vitrage's `topology show`:
// the query of GET /v1/topology, the body of POST, and the flags of
// `causeway topology show`, live or rebuilt at --at (both answer with
// ComputeTopology).
type TopologyQuery struct {
	// GraphType is graph (default) or tree.
	GraphType string `json:"graph_type"`
	// Root is the vitrage_id the walk starts from. A tree without one is
	// rooted at the openstack.cluster vertex; a graph without one is every
	// vertex that matches.
	Root string `json:"root"`
	// Depth bounds the walk from Root in edges (0: no bound). A graph
	// needs Root to take a depth (as Vitrage refuses it without one).
	Depth int `json:"depth"`
	// Type keeps only vertices of this vitrage_type.
	Type string `json:"type"`
	// Category is RESOURCE (default), ALARM or all.
	Category string `json:"category"`
	// All also shows deleted vertices and edges, and placeholders
	// (vertices referenced before their datasource reported them).
	All bool `json:"all"`
}

// topologyParams is a checked TopologyQuery.
type topologyParams struct {
	tree  bool
	root  graph.VertexID // -1: none
	depth int
	f     filter
}

// Check refuses a query that no graph can answer, naming the parameter.
func (q TopologyQuery) Check() error {
	_, err := q.parse()
	return err
}

func (q TopologyQuery) parse() (topologyParams, error) {
	p := topologyParams{root: -1, depth: q.Depth,
		f: filter{category: graph.CategoryResource, typ: q.Type, includeDeleted: q.All, includePlaceholders: q.All}}
	switch q.GraphType {
	case "", "graph":
	case "tree":
		p.tree = true
	default:
		return p, badQuery("graph_type: %q is not graph or tree", q.GraphType)
	}
	switch strings.ToUpper(q.Category) {
	case "", graph.CategoryResource:
	case graph.CategoryAlarm:
		p.f.category = graph.CategoryAlarm
	case "ALL":
		p.f.category = ""
	default:
		return p, badQuery("category: %q is not RESOURCE, ALARM or all", q.Category)
	}
	if q.Depth < 0 {
		return p, badQuery("depth: %d is negative (0: no bound)", q.Depth)
	}
	if q.Root != "" {
		id, err := parseVertexID(q.Root)
		if err != nil {
			return p, badQuery("root: %w", err)
		}
		p.root = id
	}
	if !p.tree && q.Depth > 0 && p.root < 0 {
		return p, badQuery("depth: a graph takes a depth only from a root (give root, or graph_type tree)")
	}
	return p, nil
}

// ComputeTopology answers q on g into resp's Graph or Tree (the other is
// left nil); resp's Meta is the caller's. The API's handler answers with
// it from the live graph and the CLI's `topology show --at` from a
// reconstructed one, so that both print the same document. Its errors
// wrap ErrBadQuery (the query) or ErrNotFound (the root is not in g, or is
// filtered out; no openstack.cluster vertex to root a tree at).
//
// The graph shape is the vertices that match — all of them, or those
// within Depth edges of Root, edges followed both ways — and the edges
// among them. The tree shape is Vitrage's: its edge query keeps every edge
// that is not deleted, whatever its relationship, and networkx's tree_data
// makes a vertex's successors its children; so the tree follows outgoing
// edges of every relationship from Root, breadth first, each vertex once
// (under the lowest-id parent of the shallowest level), children ascending
// by vitrage_id.
func ComputeTopology(g GraphView, q TopologyQuery, resp *TopologyResponse) error {
	p, err := q.parse()
	if err != nil {
		return err
	}
	root := p.root
	if root >= 0 {
		if v, ok := g.Vertex(root); !ok || !p.f.match(v) {
			return tagged{err: fmt.Errorf("root %d: no such vertex (or it is filtered out)", root), tag: ErrNotFound}
		}
	}
	resp.Graph, resp.Tree = nil, nil
	if !p.tree {
		gr := buildGraph(g, p.f, root, p.depth)
		resp.Graph = &gr
		return nil
	}
	if root < 0 {
		if root = defaultTreeRoot(g, p.f); root < 0 {
			return tagged{err: fmt.Errorf("root: no %s vertex to root the tree at (give root)", graph.ClusterType), tag: ErrNotFound}
		}
	}
	t := buildTree(g, p.f, root, p.depth)
	resp.Tree = &t
	return nil
}

// defaultTreeRoot is the lowest-id openstack.cluster vertex that f
// matches, or -1.
func defaultTreeRoot(g GraphView, f filter) graph.VertexID {
	for _, id := range g.VertexIDs() {
		if v, ok := g.Vertex(id); ok && v.Type == graph.ClusterType && f.match(v) {
			return id
		}
	}
	return -1
}

// buildGraph returns the vertices that match f — all of them, or those
// within depth hops of root (edges followed both ways) — and the edges
// between them.
func buildGraph(g GraphView, f filter, root graph.VertexID, depth int) Graph {
	var ids []graph.VertexID
	if root < 0 {
		for _, id := range g.VertexIDs() {
			if v, ok := g.Vertex(id); ok && f.match(v) {
				ids = append(ids, id)
			}
		}
	} else {
		seen := map[graph.VertexID]bool{root: true}
		ids = []graph.VertexID{root}
		frontier := []graph.VertexID{root}
		for d := 0; len(frontier) > 0 && (depth == 0 || d < depth); d++ {
			var next []graph.VertexID
			for _, id := range frontier {
				for _, e := range append(g.Out(id), g.In(id)...) {
					other := e.To
					if other == id {
						other = e.From
					}
					if seen[other] || (e.IsDeleted && !f.includeDeleted) {
						continue
					}
					if v, ok := g.Vertex(other); ok && f.match(v) {
						seen[other] = true
						ids = append(ids, other)
						next = append(next, other)
					}
				}
			}
			frontier = next
		}
		slices.Sort(ids)
	}
	return nodeLink(g, ids, func(e graph.Edge) bool { return f.includeDeleted || !e.IsDeleted })
}

// buildTree is the breadth-first spanning tree of the outgoing edges from
// root that f keeps (see ComputeTopology), to depth levels (0: no bound).
func buildTree(g GraphView, f filter, root graph.VertexID, depth int) Tree {
	children := map[graph.VertexID][]graph.VertexID{}
	seen := map[graph.VertexID]bool{root: true}
	frontier := []graph.VertexID{root}
	for d := 0; len(frontier) > 0 && (depth == 0 || d < depth); d++ {
		var next []graph.VertexID
		for _, id := range frontier {
			for _, e := range g.Out(id) {
				if seen[e.To] || (e.IsDeleted && !f.includeDeleted) {
					continue
				}
				if v, ok := g.Vertex(e.To); ok && f.match(v) {
					seen[e.To] = true
					children[id] = append(children[id], e.To)
					next = append(next, e.To)
				}
			}
		}
		// Parents in ascending order: a vertex two of them reach hangs
		// under the lowest, whatever order a view lists its edges in.
		slices.Sort(next)
		frontier = next
	}
	var build func(id graph.VertexID) Tree
	build = func(id graph.VertexID) Tree {
		v, _ := g.Vertex(id)
		t := Tree{Resource: toResource(v)}
		cs := children[id]
		slices.Sort(cs)
		for _, c := range cs {
			t.Children = append(t.Children, build(c))
		}
		return t
	}
	return build(root)
}

// topologyQuery reads the query of GET /v1/topology, or the JSON body of
// POST.
func topologyQuery(r *http.Request) (TopologyQuery, error) {
	var q TopologyQuery
	if r.Method == http.MethodPost && r.ContentLength != 0 {
		return q, decodeJSON(r, &q)
	}
	v := r.URL.Query()
	q.GraphType, q.Root, q.Type, q.Category = v.Get("graph_type"), v.Get("root"), v.Get("type"), v.Get("category")
	if s := v.Get("depth"); s != "" {
		d, err := strconv.Atoi(s)
		if err != nil {
			return q, fmt.Errorf("depth: %q is not an integer", s)
		}
		q.Depth = d
	}
	if s := v.Get("all"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, fmt.Errorf("all: %q is not a boolean", s)
		}
		q.All = b
	}
	return q, nil
}

// topology answers GET and POST /v1/topology from the live graph.
func (s *Server) topology(w http.ResponseWriter, r *http.Request) {
	q, err := topologyQuery(r)
	if err != nil {
		s.fail(w, bodyStatus(err), 0, err)
		return
	}
	if err := q.Check(); err != nil {
		s.fail(w, http.StatusBadRequest, 0, err)
		return
	}
	var resp TopologyResponse
	var cerr error
	verr := s.b.View(func(g View, seq int64) error {
		resp.Meta = s.meta(seq)
		cerr = ComputeTopology(g, q, &resp)
		return nil
	})
	switch {
	case verr != nil:
		s.fail(w, http.StatusServiceUnavailable, 0, verr)
	case errors.Is(cerr, ErrNotFound):
		s.fail(w, http.StatusNotFound, resp.Seq, cerr)
	case cerr != nil:
		s.fail(w, http.StatusBadRequest, resp.Seq, cerr)
	case resp.Graph != nil:
		s.replyGraph(w, resp.Meta, resp.Graph)
	default:
		s.reply(w, http.StatusOK, resp.Meta, resp)
	}
}

// replyGraph answers a node-link graph, as reply answers it, written a
// node and a link at a time (writeGraphJSON).
func (s *Server) replyGraph(w http.ResponseWriter, m Meta, gr *Graph) {
	w.Header().Set(HeaderSeq, strconv.FormatInt(m.Seq, 10))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderLeader, m.Leader)
	w.Header().Set(HeaderNode, m.Node)
	w.WriteHeader(http.StatusOK)
	if err := writeGraphJSON(w, m, gr); err != nil {
		s.log.Debug("write response", "err", err)
	}
}
