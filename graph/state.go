package graph

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// StateVersion is the version of the State layout.
const StateVersion = 1

// MaxStateID is the highest vertex id FromState accepts: some two billion
// vertices created over the log's life, purged ones included.
const MaxStateID = math.MaxInt32

// State is the whole graph as plain exported data, for snapshots: every
// vertex and edge (deleted and placeholder ones included), the counters and
// the bookkeeping of relations per source and of open syncs.
// FromState(g.State()) is a graph whose Dump equals g's byte for byte.
type State struct {
	Version int
	// Now is the RecordedAt of the last applied record.
	Now time.Time
	// Step counts the records applied.
	Step int64
	// NextID is the id the next new vertex gets.
	NextID VertexID
	// Vertices, ascending by id.
	Vertices []VertexState
	// Syncs are the open syncs, sorted by (Source, ID).
	Syncs []SyncState
}

// VertexState is a vertex with its outgoing edges.
type VertexState struct {
	Vertex
	// Seen is the Step of the last upsert from the vertex's source.
	Seen int64
	// Out are the edges from the vertex, sorted by (To, Relationship).
	Out []EdgeState
}

// EdgeState is an outgoing edge and who asserts it.
type EdgeState struct {
	To           VertexID
	Relationship string
	IsDeleted    bool
	// DeletedWithVertex says the edge was deleted because one of its
	// vertices was, not retracted by its owners.
	DeletedWithVertex bool
	UpdateTimestamp   time.Time
	// Owners are the (entity, source) pairs whose relations assert the
	// edge, sorted; a live edge has at least one.
	Owners []Owner
}

// Owner is an entity whose source asserts an edge.
type Owner struct {
	Entity VertexID
	Source string
}

// SyncState is an open sync: Begin is the Step of its sync.begin.
type SyncState struct {
	Source, ID string
	Begin      int64
}

// State returns a deep copy of the graph as plain data.
func (g *Graph) State() State {
	s := State{
		Version: StateVersion, Now: fromNanos(g.now), Step: g.step,
		NextID:   g.last + 1,
		Vertices: make([]VertexState, 0, g.nverts),
	}
	for _, v := range g.verts.All {
		vs := VertexState{Vertex: g.export(v), Seen: v.seen}
		if len(v.out) > 0 {
			vs.Out = make([]EdgeState, 0, len(v.out))
		}
		for _, e := range v.out {
			es := EdgeState{To: e.to, Relationship: e.rel, IsDeleted: e.deleted, DeletedWithVertex: e.withVertex, UpdateTimestamp: fromNanos(e.update)}
			for _, o := range e.owners {
				es.Owners = append(es.Owners, Owner{Entity: o.entity, Source: o.source})
			}
			vs.Out = append(vs.Out, es)
		}
		s.Vertices = append(s.Vertices, vs)
	}
	for _, o := range g.syncs {
		s.Syncs = append(s.Syncs, SyncState{Source: o.source, ID: o.id, Begin: o.begin})
	}
	return s
}

// FromState rebuilds a graph from s, checking that it is consistent (ids
// below NextID, ascending, keys unique, edges to existing vertices, sorted
// lists). The ids of purged vertices (see DeletedRetention) are holes:
// the graph allocates for the vertices s holds, not for every id below
// NextID, so a corrupt or hostile state's NextID costs nothing; the
// highest id of its vertices, at most MaxStateID, costs the index by id a
// pointer for each 1,024 ids below it (16 MiB at most).
// The states are normalised again with norm (nil: the defaults), so a
// snapshot taken under other normalisation rules takes the new ones.
func FromState(s State, norm *Normalizer) (*Graph, error) {
	if s.Version != StateVersion {
		return nil, fmt.Errorf("graph state version %d: want %d", s.Version, StateVersion)
	}
	if int64(s.NextID)-1 < int64(len(s.Vertices)) || s.NextID > MaxStateID+1 {
		return nil, fmt.Errorf("graph state: next id %d with %d vertices (at most %d ids)", s.NextID, len(s.Vertices), MaxStateID)
	}
	g := New(norm)
	g.now = toNanos(s.Now)
	g.step = s.Step
	g.last, g.nverts = s.NextID-1, len(s.Vertices)
	// The vertices, their edges and the edges' owners are each allocated
	// in one array: a restore makes hundreds of thousands of them. Each
	// vertex's slices are capped at their length, so a later insert
	// copies the slice instead of writing over its neighbour's.
	verts := make([]vertex, len(s.Vertices))
	nout, nown := 0, 0
	for i := range s.Vertices {
		nout += len(s.Vertices[i].Out)
		for j := range s.Vertices[i].Out {
			nown += len(s.Vertices[i].Out[j].Owners)
		}
	}
	edges := make([]edge, 0, nout)
	owners := make([]owner, 0, nown)
	// The strings of a state repeat from vertex to vertex (a snapshot's
	// decoder gives the same string for each occurrence): the last string
	// of each field and its symbol spare most lookups in the symbol table.
	var memo [9]symMemo
	for i := range s.Vertices {
		vs := &s.Vertices[i]
		if vs.ID < 1 || vs.ID >= s.NextID {
			return nil, fmt.Errorf("graph state: vertex id %d out of range [1,%d)", vs.ID, s.NextID)
		}
		// Ascending, as State lists them: the in lists below are built
		// in that order, and the index by id is loaded a page at a time.
		if i > 0 && vs.ID <= s.Vertices[i-1].ID {
			if vs.ID == s.Vertices[i-1].ID {
				return nil, fmt.Errorf("graph state: vertex id %d twice", vs.ID)
			}
			return nil, fmt.Errorf("graph state: vertex id %d after %d: not ascending", vs.ID, s.Vertices[i-1].ID)
		}
		switch vs.Category {
		case CategoryResource, CategoryAlarm:
		default:
			return nil, fmt.Errorf("graph state: vertex %d: category %q", vs.ID, vs.Category)
		}
		v := &verts[i]
		*v = vertex{
			id: vs.ID, category: g.memoSym(&memo[0], vs.Category), typ: g.memoSym(&memo[1], vs.Type), ext: vs.ExternalID, name: vs.Name,
			state: g.memoSym(&memo[2], vs.State), severity: g.memoSym(&memo[3], vs.Severity), deduced: g.memoSym(&memo[4], vs.DeducedState),
			project: g.memoSym(&memo[5], vs.ProjectID), source: g.memoSym(&memo[6], vs.Source),
			deleted: vs.IsDeleted, placeholder: vs.IsPlaceholder, markedDwn: vs.IsMarkedDown,
			sample: toNanos(vs.SampleTimestamp), update: toNanos(vs.UpdateTimestamp),
			props: g.props(vs.Properties), seen: vs.Seen,
		}
		g.normalize(v)
	}
	// The maps of the key index are sized for their vertices, then
	// filled with one map operation a vertex: a key seen before is no
	// new key.
	ntype := map[uint64]int{}
	for i := range verts {
		ntype[typeKey(verts[i].category, verts[i].typ)]++
	}
	for tk, n := range ntype {
		g.keys.byType[tk] = make(map[string]VertexID, n)
	}
	for i := range verts {
		v := &verts[i]
		if k := g.key(v); !g.keys.set(k, v.id) {
			other := verts[slices.IndexFunc(verts[:i], func(o vertex) bool { return g.key(&o) == k })].id
			return nil, fmt.Errorf("graph state: vertices %d and %d share the key %s/%s/%s", other, v.id, s.Vertices[i].Category, s.Vertices[i].Type, v.ext)
		}
	}
	g.verts.Load(func(yield func(int64, *vertex) bool) {
		for i := range verts {
			if !yield(int64(verts[i].id), &verts[i]) {
				return
			}
		}
	})
	// Each vertex's in list gets its place in one array, at most one entry
	// per edge to it: owning counts those edges meanwhile (the owners
	// count it below), where a slice by id would cost a word for each id
	// below NextID.
	for i := range s.Vertices {
		for _, es := range s.Vertices[i].Out {
			if to := g.get(es.To); to != nil {
				to.owning++
			}
		}
	}
	ins := make([]VertexID, nout)
	at := 0
	for i := range verts {
		v := &verts[i]
		v.in = ins[at : at : at+v.owning]
		at += v.owning
		v.owning = 0
	}
	for i := range s.Vertices {
		vs := &s.Vertices[i]
		v := g.get(vs.ID)
		start := len(edges)
		for j, es := range vs.Out {
			to := g.get(es.To)
			if to == nil {
				return nil, fmt.Errorf("graph state: edge %d->%d %s: no vertex %d", v.id, es.To, es.Relationship, es.To)
			}
			if j > 0 && cmpEdgeKey(edgeKey{vs.Out[j-1].To, vs.Out[j-1].Relationship}, edgeKey{es.To, es.Relationship}) >= 0 {
				return nil, fmt.Errorf("graph state: edges of vertex %d not sorted at %d", v.id, j)
			}
			e := edge{to: es.To, rel: g.s(g.memoSym(&memo[7], es.Relationship)), deleted: es.IsDeleted, withVertex: es.DeletedWithVertex && es.IsDeleted, update: toNanos(es.UpdateTimestamp)}
			if len(es.Owners) > 0 {
				o0 := len(owners)
				for _, o := range es.Owners {
					owners = append(owners, owner{o.Entity, g.s(g.memoSym(&memo[8], o.Source))})
				}
				e.owners = owners[o0:len(owners):len(owners)]
			}
			if !slices.IsSortedFunc(e.owners, cmpOwner) {
				return nil, fmt.Errorf("graph state: owners of edge %d->%d %s not sorted", v.id, es.To, es.Relationship)
			}
			edges = append(edges, e)
			if n := len(to.in); n == 0 || to.in[n-1] != v.id {
				to.in = append(to.in, v.id) // vertices are visited in ascending id order
			}
		}
		if len(edges) > start {
			v.out = edges[start:len(edges):len(edges)]
		}
	}
	for _, o := range owners {
		g.owned(o.entity, 1)
	}
	for i := range verts {
		v := &verts[i]
		v.in = slices.Clip(v.in)
		if len(v.in) == 0 {
			v.in = nil
		}
	}
	for _, ss := range s.Syncs {
		o := openSync{source: g.str(ss.Source), id: ss.ID, begin: ss.Begin}
		if n := len(g.syncs); n > 0 && cmpSync(g.syncs[n-1], o) >= 0 {
			return nil, fmt.Errorf("graph state: open syncs not sorted at %s/%s", ss.Source, ss.ID)
		}
		g.syncs = append(g.syncs, o)
	}
	return g, nil
}

// symMemo is the last string a field gave memoSym, and its symbol.
type symMemo struct {
	s   string
	x   sym
	set bool
}

// memoSym is sym(s), without a lookup when s is m's last string.
func (g *Graph) memoSym(m *symMemo, s string) sym {
	if !m.set || m.s != s {
		m.s, m.x, m.set = s, g.sym(s), true
	}
	return m.x
}

func cmpEdgeKey(a, b edgeKey) int {
	switch {
	case a.to != b.to:
		return cmpInt(a.to, b.to)
	case a.rel < b.rel:
		return -1
	case a.rel > b.rel:
		return 1
	}
	return 0
}
