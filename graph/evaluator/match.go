package evaluator

import (
	"strconv"
	"strings"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
)

// field is a vertex attribute a template filter key names (fProp: a free
// property under the key itself).
type field uint8

const (
	fProp field = iota
	fCategory
	fType
	fID
	fName
	fState
	fSeverity
	fAggregated
	fOperational
	fProject
	fDeduced
	fMarkedDown
	fDeleted
	fPlaceholder
	fSource
)

func fieldOf(k string) field {
	switch k {
	case "category", "vitrage_category":
		return fCategory
	case "type", "vitrage_type":
		return fType
	case "id":
		return fID
	case "name":
		return fName
	case "state":
		return fState
	case "vitrage_state":
		return fDeduced // what set_state wrote, as in Vitrage
	case "severity":
		return fSeverity
	case "aggregated_state", "vitrage_aggregated_state", "aggregated_severity", "vitrage_aggregated_severity":
		return fAggregated
	case "operational_state", "vitrage_operational_state", "operational_severity", "vitrage_operational_severity":
		return fOperational
	case "project_id":
		return fProject
	case "is_marked_down", "vitrage_is_marked_down":
		return fMarkedDown
	case "vitrage_is_deleted", "is_deleted":
		return fDeleted
	case "vitrage_is_placeholder", "is_placeholder":
		return fPlaceholder
	case "source", "vitrage_datasource_name":
		return fSource
	}
	return fProp
}

func fieldValue(v *graph.Vertex, f field, k string) (string, bool) {
	switch f {
	case fCategory:
		return v.Category, true
	case fType:
		return v.Type, true
	case fID:
		return v.ExternalID, true
	case fName:
		return v.Name, v.Name != ""
	case fState:
		if v.State == "" {
			return v.AggregatedState, v.AggregatedState != ""
		}
		return v.State, true
	case fSeverity:
		return v.Severity, v.Severity != ""
	case fAggregated:
		return v.AggregatedState, true
	case fOperational:
		return v.OperationalState, true
	case fProject:
		return v.ProjectID, v.ProjectID != ""
	case fDeduced:
		return v.DeducedState, v.DeducedState != ""
	case fMarkedDown:
		return strconv.FormatBool(v.IsMarkedDown), true
	case fDeleted:
		return strconv.FormatBool(v.IsDeleted), true
	case fPlaceholder:
		return strconv.FormatBool(v.IsPlaceholder), true
	case fSource:
		return v.Source, true
	}
	s, ok := v.Properties[k]
	return s, ok
}

// refValue is fieldValue over a vertex read in place.
func refValue(x graph.VertexRef, f field, k string) (string, bool) {
	switch f {
	case fCategory:
		return x.Category(), true
	case fType:
		return x.Type(), true
	case fID:
		return x.ExternalID(), true
	case fName:
		n := x.Name()
		return n, n != ""
	case fState:
		if s := x.State(); s != "" {
			return s, true
		}
		a := x.AggregatedState()
		return a, a != ""
	case fSeverity:
		s := x.Severity()
		return s, s != ""
	case fAggregated:
		return x.AggregatedState(), true
	case fOperational:
		return x.OperationalState(), true
	case fProject:
		p := x.ProjectID()
		return p, p != ""
	case fDeduced:
		d := x.DeducedState()
		return d, d != ""
	case fMarkedDown:
		return strconv.FormatBool(x.IsMarkedDown()), true
	case fDeleted:
		return strconv.FormatBool(x.IsDeleted()), true
	case fPlaceholder:
		return strconv.FormatBool(x.IsPlaceholder()), true
	case fSource:
		return x.Source(), true
	}
	return x.Property(k)
}

// vertexProp maps a template filter key to the vertex's value.
func vertexProp(v *graph.Vertex, k string) (string, bool) { return fieldValue(v, fieldOf(k), k) }

// live reports whether a vertex takes part in matching: deleted vertices
// and placeholders (not yet reported by their datasource) never do.
func live(v *graph.Vertex) bool { return !v.IsDeleted && !v.IsPlaceholder }

// matcher is a rule's entity filter and the filters equivalent to it
// (equivalence templates).
type matcher struct {
	e    *template.Entity
	alts []*template.Entity
	// filters are e's checks then each alternative's, with each key
	// resolved to a vertex field once (see compile).
	filters [][]check
}

// check is a template filter check with its key resolved.
type check struct {
	f field
	template.Check
	// memo remembers what Re said of the values seen (scratch: a pure
	// function of the value), up to maxMemo of them.
	memo map[string]bool
}

const maxMemo = 1024

// pass reports whether a value (and whether the vertex has it) passes c,
// as template.Entity.Matches decides it.
func (c *check) pass(v string, ok bool) bool {
	if c.Exact {
		if !ok {
			return false
		}
		if c.Fold {
			if !strings.EqualFold(v, c.Want) {
				return false
			}
		} else if v != c.Want {
			return false
		}
	}
	if c.Re != nil {
		if !ok {
			return false
		}
		m, seen := c.memo[v]
		if !seen {
			m = c.Re.MatchString(v)
			if len(c.memo) < maxMemo {
				c.memo[v] = m
			}
		}
		if !m {
			return false
		}
	}
	return true
}

// compile resolves the keys of e and alts; call it whenever alts change.
func (m *matcher) compile() {
	m.filters = m.filters[:0]
	for _, te := range append([]*template.Entity{m.e}, m.alts...) {
		cs := te.Checks()
		fs := make([]check, len(cs))
		for i, c := range cs {
			fs[i] = check{f: fieldOf(c.Key), Check: c}
			if c.Re != nil {
				fs[i].memo = map[string]bool{}
			}
		}
		m.filters = append(m.filters, fs)
	}
}

func matchesVertex(m *matcher, v *graph.Vertex) bool {
	if m == nil || v == nil || !live(v) {
		return false
	}
	if m.filters == nil {
		m.compile()
	}
next:
	for _, fs := range m.filters {
		for i := range fs {
			c := &fs[i]
			val, ok := fieldValue(v, c.f, c.Key)
			if !c.pass(val, ok) {
				continue next
			}
		}
		return true
	}
	return false
}

// matchesRef is matchesVertex over a vertex read in place (found false:
// no such vertex).
func matchesRef(m *matcher, x graph.VertexRef, found bool) bool {
	if m == nil || !found || x.IsDeleted() || x.IsPlaceholder() {
		return false
	}
	if m.filters == nil {
		m.compile()
	}
next:
	for _, fs := range m.filters {
		for i := range fs {
			c := &fs[i]
			val, ok := refValue(x, c.f, c.Key)
			if !c.pass(val, ok) {
				continue next
			}
		}
		return true
	}
	return false
}

// enumerator finds every binding of a clause's positive terms. Entities are
// the rule's slots (sorted entity ids); bind[slot] is 0 while unbound.
type enumerator struct {
	e    *Engine
	r    *rule
	bind []graph.VertexID
	done []bool
	out  []Binding
	emit func([]Binding)
}

// fits reports whether vertex id fits matcher m.
func (en *enumerator) fits(m *matcher, id graph.VertexID) bool {
	x, ok := en.e.g.Ref(id)
	return matchesRef(m, x, ok)
}

// tryBind binds slot to id if the vertex fits and no other slot holds it,
// calls next, and unbinds.
func (en *enumerator) tryBind(slot int, id graph.VertexID, next func()) {
	if en.bound(id) {
		return
	}
	if !en.fits(en.r.slotM[slot], id) {
		return
	}
	en.bind[slot] = id
	next()
	en.bind[slot] = 0
}

// enumerate calls emit with every binding of r that binds slot to v (or
// every binding at all when v is 0), sorted by entity. The slice passed to
// emit is reused: emit copies what it keeps. The enumerator is reused from
// call to call; enumerate is not reentrant (emit must not call it).
func (e *Engine) enumerate(r *rule, slot int, v graph.VertexID, emit func([]Binding)) {
	en := e.en
	if en == nil {
		en = &enumerator{e: e}
		e.en = en
	}
	en.r, en.emit = r, emit
	if cap(en.bind) < len(r.slots) {
		en.bind = make([]graph.VertexID, len(r.slots))
	}
	en.bind = en.bind[:len(r.slots)]
	clear(en.bind)
	if cap(en.done) < len(r.pos) {
		en.done = make([]bool, len(r.pos))
	}
	en.done = en.done[:len(r.pos)]
	clear(en.done)
	defer func() { en.emit = nil }()
	if v != 0 {
		en.tryBind(slot, v, en.step)
		return
	}
	for _, id := range e.g.VertexIDs() {
		en.tryBind(slot, id, en.step)
	}
}

func (en *enumerator) step() {
	// Pick the first pending term that touches a bound entity, else the
	// first pending term.
	pick := -1
	for i := range en.r.posT {
		if en.done[i] {
			continue
		}
		t := &en.r.posT[i]
		if en.bind[t.src] != 0 || (!t.entity && en.bind[t.dst] != 0) {
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
	t := &en.r.posT[pick]
	s := en.bind[t.src]
	if t.entity {
		if s != 0 {
			en.step()
			return
		}
		for _, id := range en.e.g.VertexIDs() {
			en.tryBind(t.src, id, en.step)
		}
		return
	}
	d := en.bind[t.dst]
	switch {
	case s != 0 && d != 0:
		if en.e.hasEdge(s, d, t.label) {
			en.step()
		}
	case s != 0:
		en.e.g.EachOut(s, func(ed graph.Edge) bool {
			if ed.Relationship == t.label && !ed.IsDeleted {
				en.tryBind(t.dst, ed.To, en.step)
			}
			return true
		})
	case d != 0:
		en.e.g.EachIn(d, func(ed graph.Edge) bool {
			if ed.Relationship == t.label && !ed.IsDeleted {
				en.tryBind(t.src, ed.From, en.step)
			}
			return true
		})
	default:
		for _, id := range en.e.g.VertexIDs() {
			en.tryBind(t.src, id, func() {
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
	for i := range en.r.negT {
		if en.negHolds(&en.r.negT[i]) {
			return
		}
	}
	en.out = en.out[:0]
	for slot, id := range en.bind {
		if id != 0 {
			en.out = append(en.out, Binding{Entity: en.r.slots[slot], Vertex: id})
		}
	}
	en.emit(en.out)
}

// bound reports whether a slot of the binding holds vertex id.
func (en *enumerator) bound(id graph.VertexID) bool {
	for _, b := range en.bind {
		if b == id {
			return true
		}
	}
	return false
}

// negHolds reports whether the relationship of a negated term exists. As
// for positive terms (tryBind), and as in Vitrage's matching
// (_remove_used_graph_candidates), a vertex bound to another entity of the
// clause is no candidate for the term's unbound end: "host [contains]
// instance AND NOT host [contains] other" holds on a host with one
// instance.
func (en *enumerator) negHolds(t *negTerm) bool {
	var s, d graph.VertexID
	if t.src >= 0 {
		s = en.bind[t.src]
	}
	if t.dst >= 0 {
		d = en.bind[t.dst]
	}
	holds := false
	switch {
	case s != 0 && d != 0:
		return en.e.hasEdge(s, d, t.label)
	case s != 0:
		en.e.g.EachOut(s, func(ed graph.Edge) bool {
			holds = ed.Relationship == t.label && !ed.IsDeleted && !en.bound(ed.To) && en.fits(t.dstM, ed.To)
			return !holds
		})
	case d != 0:
		en.e.g.EachIn(d, func(ed graph.Edge) bool {
			holds = ed.Relationship == t.label && !ed.IsDeleted && !en.bound(ed.From) && en.fits(t.srcM, ed.From)
			return !holds
		})
	}
	return holds
}
