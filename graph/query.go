package graph

import (
	"errors"
	"slices"
	"strconv"

	gg "gonum.org/v1/gonum/graph"
)

// Filter selects vertices. Zero fields match everything; deleted vertices
// match only with IncludeDeleted.
type Filter struct {
	// Category is CategoryResource or CategoryAlarm.
	Category string
	// Types, when not empty, are the accepted types.
	Types []string
	// Properties must all be equal. Keys are Vitrage's property names for
	// the built-in fields (vitrage_type, name, state, vitrage_operational_state,
	// severity, project_id, vitrage_is_placeholder, ...; see propertyOf) or
	// names of free properties; values compare as strings ("true"/"false"
	// for flags).
	Properties map[string]string
	// ProjectID, when set, is the project_id the vertex must have.
	ProjectID string
	// IncludeDeleted also matches deleted vertices.
	IncludeDeleted bool
}

// match reports whether v passes f.
func (f *Filter) match(g *Graph, v *vertex) bool {
	switch {
	case v.deleted && !f.IncludeDeleted,
		f.Category != "" && g.s(v.category) != f.Category,
		len(f.Types) > 0 && !slices.Contains(f.Types, g.s(v.typ)),
		f.ProjectID != "" && g.s(v.project) != f.ProjectID:
		return false
	}
	for k, want := range f.Properties {
		if got, ok := g.propertyOf(v, k); !ok || got != want {
			return false
		}
	}
	return true
}

// propertyOf returns a vertex property by its Vitrage name.
func (g *Graph) propertyOf(v *vertex, k string) (string, bool) {
	switch k {
	case "vitrage_id":
		return strconv.FormatInt(int64(v.id), 10), true
	case "vitrage_category":
		return g.s(v.category), true
	case "vitrage_type":
		return g.s(v.typ), true
	case "id":
		return v.ext, true
	case "name":
		return v.name, true
	case "state":
		return g.s(v.state), true
	case "severity":
		return g.s(v.severity), true
	case "vitrage_state":
		return g.s(v.deduced), true
	case "vitrage_aggregated_state", "vitrage_aggregated_severity":
		return g.s(v.agg), true
	case "vitrage_operational_state", "vitrage_operational_severity":
		return g.s(v.op), true
	case "project_id":
		return g.s(v.project), true
	case "vitrage_datasource_name":
		return g.s(v.source), true
	case "vitrage_is_deleted":
		return strconv.FormatBool(v.deleted), true
	case "vitrage_is_placeholder":
		return strconv.FormatBool(v.placeholder), true
	case "vitrage_is_marked_down":
		return strconv.FormatBool(v.markedDwn), true
	}
	i, ok := slices.BinarySearchFunc(v.props, k, func(p prop, k string) int {
		switch {
		case p.k < k:
			return -1
		case p.k > k:
			return 1
		}
		return 0
	})
	if !ok {
		return "", false
	}
	return v.props[i].v, true
}

// Find returns the vertices that pass f, ascending by id.
func (g *Graph) Find(f Filter) []Vertex {
	var out []Vertex
	for _, v := range g.verts {
		if v == nil || (v.deleted && !f.IncludeDeleted) {
			continue
		}
		if f.match(g, v) {
			out = append(out, g.export(v))
		}
	}
	return out
}

// Direction selects edges by their direction seen from a vertex.
type Direction int

// Directions.
const (
	Both Direction = iota
	Outgoing
	Incoming
)

// NeighbourQuery selects the neighbours of a vertex.
type NeighbourQuery struct {
	Direction Direction
	// Relationships, when not empty, are the accepted relationships.
	Relationships []string
	// IncludeDeleted also follows deleted edges to deleted vertices.
	IncludeDeleted bool
}

// Neighbour is a vertex next to another and the edge between them.
type Neighbour struct {
	Vertex Vertex
	Edge   Edge
}

// Neighbours returns the neighbours of id with the edges that lead to them:
// outgoing edges first (by target, relationship), then incoming ones (by
// source, relationship). A vertex linked by several edges appears once per
// edge.
func (g *Graph) Neighbours(id VertexID, q NeighbourQuery) []Neighbour {
	var out []Neighbour
	add := func(e Edge, other VertexID) {
		if e.IsDeleted && !q.IncludeDeleted {
			return
		}
		if len(q.Relationships) > 0 && !slices.Contains(q.Relationships, e.Relationship) {
			return
		}
		v := g.get(other)
		if v.deleted && !q.IncludeDeleted {
			return
		}
		out = append(out, Neighbour{Vertex: g.export(v), Edge: e})
	}
	if q.Direction != Incoming {
		for _, e := range g.Out(id) {
			add(e, e.To)
		}
	}
	if q.Direction != Outgoing {
		for _, e := range g.In(id) {
			add(e, e.From)
		}
	}
	return out
}

// AlarmResource returns the resource an alarm is `on`: the lowest-id target
// of a live `on` edge, else of a deleted one (a cleared alarm keeps its
// resource).
func (g *Graph) AlarmResource(alarm VertexID) (Vertex, bool) {
	v := g.get(alarm)
	if v == nil || g.s(v.category) != CategoryAlarm {
		return Vertex{}, false
	}
	var deleted *vertex
	for i := range v.out {
		e := &v.out[i]
		if e.rel != RelOn {
			continue
		}
		t := g.get(e.to)
		if !e.deleted {
			return g.export(t), true
		}
		if deleted == nil {
			deleted = t
		}
	}
	if deleted != nil {
		return g.export(deleted), true
	}
	return Vertex{}, false
}

// inScope reports whether v belongs to project: a resource by its
// project_id, an alarm by its own project_id or its resource's. shared also
// admits what has no project (the infrastructure: zones, hosts, the cluster,
// and alarms on them).
func (g *Graph) inScope(v *vertex, project string, shared bool) bool {
	if g.s(v.category) != CategoryAlarm {
		return g.s(v.project) == project || (shared && g.s(v.project) == "")
	}
	if g.s(v.project) != "" && g.s(v.project) == project {
		return true
	}
	r, ok := g.AlarmResource(v.id)
	if ok && r.ProjectID != "" {
		return r.ProjectID == project
	}
	return shared && g.s(v.project) == ""
}

// Resources lists the live resources of project (or of every project when
// allTenants), ascending by id.
func (g *Graph) Resources(project string, allTenants bool) []Vertex {
	var out []Vertex
	for _, v := range g.verts {
		if v == nil || v.deleted || g.s(v.category) != CategoryResource {
			continue
		}
		if allTenants || g.s(v.project) == project {
			out = append(out, g.export(v))
		}
	}
	return out
}

// Alarms lists the alarms of project — alarms with that project_id or on a
// resource of that project — or of every project when allTenants, ascending
// by id; cleared (deleted) alarms only with includeDeleted.
func (g *Graph) Alarms(project string, allTenants, includeDeleted bool) []Vertex {
	var out []Vertex
	for _, v := range g.verts {
		if v == nil || g.s(v.category) != CategoryAlarm || (v.deleted && !includeDeleted) {
			continue
		}
		if allTenants || g.inScope(v, project, false) {
			out = append(out, g.export(v))
		}
	}
	return out
}

// ClusterType is the type of Vitrage's topology root.
const ClusterType = "openstack.cluster"

// ErrNotFound is returned for an alarm that the graph does not
// hold (or that the query filters out).
var ErrNotFound = errors.New("vertex not found")

// edgesAmong returns the visible edges between the given vertices, sorted by
// (From, To, Relationship).
func (g *Graph) edgesAmong(w *View, ids []VertexID) []Edge {
	set := make(map[VertexID]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	var out []Edge
	for _, id := range sorted {
		v := g.get(id)
		for i := range v.out {
			e := &v.out[i]
			if set[e.to] && w.edgeOK(id, e) {
				out = append(out, exportEdge(id, e))
			}
		}
	}
	return out
}

// reversed presents a View with every edge turned around.
type reversed struct{ w *View }

func (r reversed) From(id int64) gg.Nodes { return r.w.To(id) }

func (r reversed) Edge(uid, vid int64) gg.Edge {
	if e := r.w.Edge(vid, uid); e != nil {
		return e.ReversedEdge()
	}
	return nil
}
