package evaluator

import (
	"sort"
	"strconv"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
)

// vertexProp maps a template filter key to the vertex's value.
func vertexProp(v *graph.Vertex, k string) (string, bool) {
	switch k {
	case "category", "vitrage_category":
		return v.Category, true
	case "type", "vitrage_type":
		return v.Type, true
	case "id":
		return v.ExternalID, true
	case "name":
		return v.Name, v.Name != ""
	case "state", "vitrage_state":
		if v.State == "" {
			return v.AggregatedState, v.AggregatedState != ""
		}
		return v.State, true
	case "severity":
		return v.Severity, v.Severity != ""
	case "aggregated_state", "vitrage_aggregated_state", "aggregated_severity", "vitrage_aggregated_severity":
		return v.AggregatedState, true
	case "operational_state", "vitrage_operational_state", "operational_severity", "vitrage_operational_severity":
		return v.OperationalState, true
	case "project_id":
		return v.ProjectID, v.ProjectID != ""
	case "is_marked_down", "vitrage_is_marked_down":
		return strconv.FormatBool(v.IsMarkedDown), true
	case "vitrage_is_deleted", "is_deleted":
		return strconv.FormatBool(v.IsDeleted), true
	case "vitrage_is_placeholder", "is_placeholder":
		return strconv.FormatBool(v.IsPlaceholder), true
	case "source", "vitrage_datasource_name":
		return v.Source, true
	}
	s, ok := v.Properties[k]
	return s, ok
}

// live reports whether a vertex takes part in matching: deleted vertices
// and placeholders (not yet reported by their datasource) never do.
func live(v *graph.Vertex) bool { return !v.IsDeleted && !v.IsPlaceholder }

// matcher is a rule's entity filter and the filters equivalent to it
// (equivalence templates).
type matcher struct {
	e    *template.Entity
	alts []*template.Entity
}

func matchesVertex(m *matcher, v *graph.Vertex) bool {
	if m == nil || v == nil || !live(v) {
		return false
	}
	get := func(k string) (string, bool) { return vertexProp(v, k) }
	if m.e.Matches(get) {
		return true
	}
	for _, a := range m.alts {
		if a.Matches(get) {
			return true
		}
	}
	return false
}

// enumerator finds every binding of a clause's positive terms.
type enumerator struct {
	e     *Engine
	r     *rule
	bind  map[string]graph.VertexID
	used  map[graph.VertexID]string
	cache map[graph.VertexID]int // index in arena, -1: no such vertex
	arena []graph.Vertex
	done  []bool
	emit  func([]Binding)
}

func (en *enumerator) vertex(id graph.VertexID) *graph.Vertex {
	if i, ok := en.cache[id]; ok {
		if i < 0 {
			return nil
		}
		return &en.arena[i]
	}
	v, ok := en.e.g.Vertex(id)
	if !ok {
		en.cache[id] = -1
		return nil
	}
	// Pointers handed out earlier may point into an older backing array
	// after this append; they stay valid (read-only copies).
	en.arena = append(en.arena, v)
	en.cache[id] = len(en.arena) - 1
	return &en.arena[len(en.arena)-1]
}

// tryBind binds entity to id if the vertex fits, calls next, and unbinds.
func (en *enumerator) tryBind(entity string, id graph.VertexID, next func()) {
	if _, taken := en.used[id]; taken {
		return
	}
	if !matchesVertex(en.r.ents[entity], en.vertex(id)) {
		return
	}
	en.bind[entity] = id
	en.used[id] = entity
	next()
	delete(en.bind, entity)
	delete(en.used, id)
}

// enumerate calls emit with every binding of r that binds entity to v (or
// every binding at all when v is 0). The enumerator's maps are reused from
// call to call; enumerate is not reentrant (emit must not call it).
func (e *Engine) enumerate(r *rule, entity string, v graph.VertexID, emit func([]Binding)) {
	en := e.en
	if en == nil {
		en = &enumerator{
			e:     e,
			bind:  map[string]graph.VertexID{},
			used:  map[graph.VertexID]string{},
			cache: map[graph.VertexID]int{},
		}
		e.en = en
	}
	en.r, en.emit = r, emit
	clear(en.bind)
	clear(en.used)
	clear(en.cache)
	if cap(en.done) < len(r.pos) {
		en.done = make([]bool, len(r.pos))
	}
	en.done = en.done[:len(r.pos)]
	clear(en.done)
	en.arena = en.arena[:0]
	defer func() { en.emit = nil; clear(en.cache); clear(en.arena); en.arena = en.arena[:0] }()
	if v != 0 {
		en.tryBind(entity, v, en.step)
		return
	}
	for _, id := range e.g.VertexIDs() {
		en.tryBind(entity, id, en.step)
	}
}

func (en *enumerator) step() {
	// Pick the first pending term that touches a bound entity, else the
	// first pending term.
	pick := -1
	for i, t := range en.r.pos {
		if en.done[i] {
			continue
		}
		_, sb := en.bind[t.Source]
		_, tb := en.bind[t.Target]
		if sb || (!t.IsEntity() && tb) {
			pick = i
			break
		}
		if pick < 0 {
			pick = i
		}
	}
	if pick < 0 {
		en.finish()
		return
	}
	en.done[pick] = true
	defer func() { en.done[pick] = false }()
	t := en.r.pos[pick]
	s, sb := en.bind[t.Source]
	if t.IsEntity() {
		if sb {
			en.step()
			return
		}
		for _, id := range en.e.g.VertexIDs() {
			en.tryBind(t.Source, id, en.step)
		}
		return
	}
	d, tb := en.bind[t.Target]
	switch {
	case sb && tb:
		if en.e.hasEdge(s, d, t.Label) {
			en.step()
		}
	case sb:
		for _, ed := range en.e.g.Out(s) {
			if ed.Relationship == t.Label && !ed.IsDeleted {
				en.tryBind(t.Target, ed.To, en.step)
			}
		}
	case tb:
		for _, ed := range en.e.g.In(d) {
			if ed.Relationship == t.Label && !ed.IsDeleted {
				en.tryBind(t.Source, ed.From, en.step)
			}
		}
	default:
		for _, id := range en.e.g.VertexIDs() {
			en.tryBind(t.Source, id, func() {
				en.done[pick] = false
				en.step()
				en.done[pick] = true
			})
		}
	}
}

func (e *Engine) hasEdge(from, to graph.VertexID, label string) bool {
	ed, ok := e.g.EdgeOf(from, to, label)
	return ok && !ed.IsDeleted
}

// finish checks the negated terms and emits the binding.
func (en *enumerator) finish() {
	for _, t := range en.r.neg {
		if en.negHolds(t) {
			return
		}
	}
	b := make([]Binding, 0, len(en.bind))
	for ent, id := range en.bind {
		b = append(b, Binding{Entity: ent, Vertex: id})
	}
	sort.Slice(b, func(i, j int) bool { return b[i].Entity < b[j].Entity })
	en.emit(b)
}

// negHolds reports whether the relationship of a negated term exists.
func (en *enumerator) negHolds(t template.Term) bool {
	s, sb := en.bind[t.Source]
	d, tb := en.bind[t.Target]
	switch {
	case sb && tb:
		return en.e.hasEdge(s, d, t.Label)
	case sb:
		te := en.r.ents[t.Target]
		for _, ed := range en.e.g.Out(s) {
			if ed.Relationship == t.Label && !ed.IsDeleted && matchesVertex(te, en.vertex(ed.To)) {
				return true
			}
		}
	case tb:
		te := en.r.ents[t.Source]
		for _, ed := range en.e.g.In(d) {
			if ed.Relationship == t.Label && !ed.IsDeleted && matchesVertex(te, en.vertex(ed.From)) {
				return true
			}
		}
	}
	return false
}
