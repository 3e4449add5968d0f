package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// VertexMap is a vertex as the API shows it, with Vitrage's property names:
// vitrage_id (a string, as Vitrage's), vitrage_category, vitrage_type, id,
// name, vitrage_is_deleted, vitrage_is_placeholder, vitrage_is_marked_down,
// vitrage_sample_timestamp, update_timestamp, project_id,
// vitrage_datasource_name; for resources state, vitrage_state (deduced),
// vitrage_aggregated_state, vitrage_operational_state; for alarms state,
// severity, vitrage_aggregated_severity, vitrage_operational_severity and
// the alarm's resource (vitrage_resource_id, vitrage_resource_type,
// vitrage_resource_project_id); then the free properties, which never
// override a name above. Encoded with encoding/json, keys come out sorted.
func (g *Graph) VertexMap(id VertexID) map[string]any {
	v := g.get(id)
	if v == nil {
		return nil
	}
	m := make(map[string]any, 20+len(v.props))
	m["vitrage_id"] = strconv.FormatInt(int64(v.id), 10)
	m["vitrage_category"] = g.s(v.category)
	m["vitrage_type"] = g.s(v.typ)
	m["id"] = v.ext
	m["name"] = v.name
	m["vitrage_is_deleted"] = v.deleted
	m["vitrage_is_placeholder"] = v.placeholder
	m["vitrage_is_marked_down"] = v.markedDwn
	if v.sample != 0 {
		m["vitrage_sample_timestamp"] = fmtTime(v.sample)
	}
	m["update_timestamp"] = fmtTime(v.update)
	if g.s(v.project) != "" {
		m["project_id"] = g.s(v.project)
	}
	if g.s(v.source) != "" {
		m["vitrage_datasource_name"] = g.s(v.source)
	}
	if g.s(v.state) != "" {
		m["state"] = g.s(v.state)
	}
	if g.s(v.category) == CategoryAlarm {
		m["severity"] = g.s(v.severity)
		m["vitrage_aggregated_severity"] = g.s(v.agg)
		m["vitrage_operational_severity"] = g.s(v.op)
		if r, ok := g.AlarmResource(v.id); ok {
			m["vitrage_resource_id"] = strconv.FormatInt(int64(r.ID), 10)
			m["vitrage_resource_type"] = r.Type
			if r.ProjectID != "" {
				m["vitrage_resource_project_id"] = r.ProjectID
			}
		}
	} else {
		if g.s(v.deduced) != "" {
			m["vitrage_state"] = g.s(v.deduced)
		}
		m["vitrage_aggregated_state"] = g.s(v.agg)
		m["vitrage_operational_state"] = g.s(v.op)
	}
	for _, p := range v.props {
		if _, taken := m[p.k]; !taken {
			m[p.k] = p.v
		}
	}
	return m
}

func fmtTime(n int64) string {
	if n == 0 {
		return ""
	}
	return fromNanos(n).Format(time.RFC3339Nano)
}

// NodeLink is Vitrage's graph shape (networkx node-link data): nodes, and
// links that point into nodes by index.
type NodeLink struct {
	Directed   bool             `json:"directed"`
	Graph      struct{}         `json:"graph"`
	Links      []Link           `json:"links"`
	Multigraph bool             `json:"multigraph"`
	Nodes      []map[string]any `json:"nodes"`
}

// Link is an edge of a NodeLink.
type Link struct {
	Key              string `json:"key"`
	RelationshipType string `json:"relationship_type"`
	Source           int    `json:"source"`
	Target           int    `json:"target"`
	IsDeleted        bool   `json:"vitrage_is_deleted"`
	UpdateTimestamp  string `json:"update_timestamp,omitempty"`
}

// nodeLink builds a NodeLink of the vertices (ascending) and edges (sorted
// by from, to, relationship).
func (g *Graph) nodeLink(ids []VertexID, edges []Edge) *NodeLink {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	nl := &NodeLink{Directed: true, Links: []Link{}, Nodes: make([]map[string]any, 0, len(ids))}
	index := make(map[VertexID]int, len(ids))
	for i, id := range ids {
		index[id] = i
		nl.Nodes = append(nl.Nodes, g.VertexMap(id))
	}
	for _, e := range edges {
		s, ok1 := index[e.From]
		t, ok2 := index[e.To]
		if !ok1 || !ok2 {
			continue
		}
		nl.Links = append(nl.Links, Link{
			Key: e.Relationship, RelationshipType: e.Relationship, Source: s, Target: t,
			IsDeleted: e.IsDeleted, UpdateTimestamp: dumpTime(e.UpdateTimestamp),
		})
	}
	return nl
}

// GraphJSON returns the topology in Vitrage's graph shape,
// {"directed":true,"graph":{},"links":[...],"multigraph":false,"nodes":[...]},
// nodes ascending by id.
func (g *Graph) GraphJSON(t *Topology) *NodeLink {
	return g.nodeLink(t.Vertices, t.Edges)
}

// TreeJSON returns a tree topology in Vitrage's tree shape: the root's
// properties with "children", recursively, children ascending by id
// (leaves have no "children").
func (g *Graph) TreeJSON(t *Topology) map[string]any {
	if len(t.Vertices) == 0 {
		return map[string]any{}
	}
	children := make(map[VertexID][]VertexID)
	for _, id := range t.Vertices[1:] {
		p := t.Parent[id]
		children[p] = append(children[p], id)
	}
	var build func(id VertexID) map[string]any
	build = func(id VertexID) map[string]any {
		m := g.VertexMap(id)
		cs := children[id]
		slices.Sort(cs)
		if len(cs) > 0 {
			list := make([]map[string]any, 0, len(cs))
			for _, c := range cs {
				list = append(list, build(c))
			}
			m["children"] = list
		}
		return m
	}
	return build(t.Vertices[0])
}

// TopologyJSON encodes t in its shape (tree or graph).
func (g *Graph) TopologyJSON(t *Topology) ([]byte, error) {
	var v any = g.GraphJSON(t)
	if t.Tree {
		v = g.TreeJSON(t)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode topology: %w", err)
	}
	return b, nil
}

// Severity colours of the DOT rendering, by operational severity.
var dotColour = map[string]string{
	OpCritical: "#e06666", OpSevere: "#f6b26b", OpWarning: "#ffd966", OpOK: "#93c47d",
}

// WriteRCADOT writes r as a Graphviz digraph: one node per alarm (labelled
// with name, type and severity, filled by severity; the analysed alarm with
// a double border; cleared ones dashed), one edge per `causes` link (dashed
// when deleted). The output is deterministic.
func (g *Graph) WriteRCADOT(w io.Writer, r *RCA) error {
	var b strings.Builder
	b.WriteString("digraph rca {\n\trankdir=LR;\n\tnode [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n")
	roots := make(map[VertexID]bool, len(r.Roots))
	for _, id := range r.Roots {
		roots[id] = true
	}
	for _, id := range r.Alarms {
		v := g.get(id)
		label := fmt.Sprintf("%s\\n%s %s", dotEscape(v.name), dotEscape(g.s(v.typ)), dotEscape(g.s(v.severity)))
		if res, ok := g.AlarmResource(id); ok {
			label += fmt.Sprintf("\\non %s %s", dotEscape(res.Type), dotEscape(res.Name))
		}
		attrs := []string{fmt.Sprintf("label=\"%s\"", label)}
		fill := dotColour[g.s(v.op)]
		if fill == "" {
			fill = "#cccccc"
		}
		attrs = append(attrs, fmt.Sprintf("fillcolor=\"%s\"", fill))
		if v.deleted {
			attrs = append(attrs, "style=\"rounded,filled,dashed\"")
		}
		if id == r.Alarm {
			attrs = append(attrs, "peripheries=2")
		}
		if roots[id] {
			attrs = append(attrs, "penwidth=2")
		}
		fmt.Fprintf(&b, "\t\"%d\" [%s];\n", id, strings.Join(attrs, ", "))
	}
	for _, e := range r.Links {
		style := ""
		if e.IsDeleted {
			style = ", style=dashed"
		}
		fmt.Fprintf(&b, "\t\"%d\" -> \"%d\" [label=\"%s\"%s];\n", e.From, e.To, dotEscape(e.Relationship), style)
	}
	b.WriteString("}\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write rca dot: %w", err)
	}
	return nil
}

// dotEscape makes s safe inside a double-quoted DOT string.
func dotEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
