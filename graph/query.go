package graph

import (
	"errors"
	"slices"

	gg "gonum.org/v1/gonum/graph"
)

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

// Alarms lists the alarms of project — alarms with that project_id or on a
// resource of that project — or of every project when allTenants, ascending
// by id; cleared (deleted) alarms only with includeDeleted.
func (g *Graph) Alarms(project string, allTenants, includeDeleted bool) []Vertex {
	var out []Vertex
	for _, v := range g.verts.All {
		if g.s(v.category) != CategoryAlarm || (v.deleted && !includeDeleted) {
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
