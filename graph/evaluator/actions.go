package evaluator

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
)

const (
	kindAlarm  = "alarm"
	kindState  = "state"
	kindCauses = "causes"
	kindDown   = "down"
)

// wellFormed reports whether the effect has exactly the fields of its kind
// (as the actions make them): those its key and effectIndex.get tell it by,
// and no other.
func (ef *effect) wellFormed() bool {
	switch ef.kind {
	case kindAlarm:
		return ef.source == 0
	case kindState, kindDown:
		return ef.source == 0 && ef.name == ""
	case kindCauses:
		return ef.name == "" && ef.source != 0 && ef.target != 0
	}
	return false
}

// effectKey is the key of an effect in State and the dump, which orders
// effects by it: the kind and the target, then an alarm's name or a causes
// link's target after its source.
func effectKey(ef *effect) string {
	b := make([]byte, 0, 32+len(ef.name))
	b = append(append(b, ef.kind...), 0)
	switch ef.kind {
	case kindCauses:
		b = strconv.AppendInt(b, int64(ef.source), 10)
		b = strconv.AppendInt(append(b, 0), int64(ef.target), 10)
	case kindAlarm:
		b = strconv.AppendInt(b, int64(ef.target), 10)
		b = append(append(b, 0), ef.name...)
	default:
		b = strconv.AppendInt(b, int64(ef.target), 10)
	}
	return string(b)
}

func supportID(m *match, action int, part string) string {
	return m.key + "\x00#" + strconv.Itoa(action) + part
}

// supportPart is the part that ends the support id of an action of type
// typ (ok false: the action has none).
func supportPart(typ string) (part string, ok bool) {
	switch typ {
	case template.ActionRaiseAlarm:
		return "c", true
	case template.ActionSetState, template.ActionAddCausal, template.ActionMarkDown:
		return "", true
	}
	return "", false
}

// supportIDs yields the support ids of a match's actions, in the order of
// the actions, as supportID makes them: cut from m.ids when newMatchIDs
// made it.
type supportIDs struct {
	m   *match
	pos int // in m.ids
}

// next returns the support id of action i, which has part (supportPart);
// the actions with one are asked in order.
func (s *supportIDs) next(i int, part string) string {
	if s.m.ids == "" {
		return supportID(s.m, i, part)
	}
	n := len(s.m.key) + 2 + digits(i) + len(part)
	id := s.m.ids[s.pos : s.pos+n]
	s.pos += n
	return id
}

// digits is len(strconv.Itoa(i)) for i >= 0.
func digits(i int) int {
	n := 1
	for ; i >= 10; i /= 10 {
		n++
	}
	return n
}

// sid is supportID in the engine's scratch buffer, for lookups.
func (e *Engine) sid(m *match, action int, part string) []byte {
	e.sbuf = append(append(e.sbuf[:0], m.key...), 0, '#')
	e.sbuf = strconv.AppendInt(e.sbuf, int64(action), 10)
	e.sbuf = append(e.sbuf, part...)
	return e.sbuf
}

// do runs the actions of a match that starts to hold, appending the
// changes to out.
func (e *Engine) do(m *match, out []graph.Change) []graph.Change {
	e.addMatch(m)
	ids := supportIDs{m: m}
	for i, a := range m.rule.sc.Actions {
		switch a.Type {
		case template.ActionRaiseAlarm:
			ef := e.effect(kindAlarm, m.vertex(a.Target), 0, a.AlarmName)
			// The alarm's support id is a prefix of its causes link's:
			// both are cut from one string.
			sid := ids.next(i, "c")
			ef.supports.set(sid[:len(sid)-1], a.Severity)
			out = e.settle(ef, out)
			if a.CausingAlarm != "" {
				out = e.supportCauses(m.vertex(a.CausingAlarm), ef.alarmID, sid, out)
			}
		case template.ActionSetState:
			ef := e.effect(kindState, m.vertex(a.Target), 0, "")
			ef.supports.set(ids.next(i, ""), a.State)
			out = e.settle(ef, out)
		case template.ActionAddCausal:
			out = e.supportCauses(m.vertex(a.Source), m.vertex(a.Target), ids.next(i, ""), out)
		case template.ActionMarkDown:
			ef := e.effect(kindDown, m.vertex(a.Target), 0, "")
			ef.supports.set(ids.next(i, ""), "true")
			out = e.settle(ef, out)
		case template.ActionExecuteMistral:
			e.external = append(e.external, ExternalAction{
				ID:       fmt.Sprintf("%d-%d", e.seq, len(e.external)),
				Template: m.rule.tplName, Scenario: m.rule.scenario,
				Type: a.Type, Workflow: a.Workflow,
				Input:    e.resolveInput(m, a.Input),
				Bindings: append([]Binding(nil), m.bindings...),
			})
		}
	}
	return out
}

// undo reverts the actions of a match that stopped holding, last first.
func (e *Engine) undo(m *match, out []graph.Change) []graph.Change {
	acts := m.rule.sc.Actions
	for i := len(acts) - 1; i >= 0; i-- {
		a := acts[i]
		switch a.Type {
		case template.ActionRaiseAlarm:
			ef := e.effects.get(kindAlarm, m.vertex(a.Target), 0, a.AlarmName)
			if ef == nil {
				continue
			}
			// The alarm first: when this was its last support it clears,
			// and its link from the causing alarm is deleted with it, so
			// RCA of the cleared alarm keeps its cause. Dropping the link
			// first would make it a retraction while both were raised.
			alarm := ef.alarmID
			ef.supports.del(e.sid(m, i, ""))
			out = e.settle(ef, out)
			if a.CausingAlarm != "" {
				out = e.dropCauses(m.vertex(a.CausingAlarm), alarm, e.sid(m, i, "c"), out)
			}
		case template.ActionSetState:
			if ef := e.effects.get(kindState, m.vertex(a.Target), 0, ""); ef != nil {
				ef.supports.del(e.sid(m, i, ""))
				out = e.settle(ef, out)
			}
		case template.ActionAddCausal:
			out = e.dropCauses(m.vertex(a.Source), m.vertex(a.Target), e.sid(m, i, ""), out)
		case template.ActionMarkDown:
			if ef := e.effects.get(kindDown, m.vertex(a.Target), 0, ""); ef != nil {
				ef.supports.del(e.sid(m, i, ""))
				out = e.settle(ef, out)
			}
		}
	}
	e.removeMatch(m)
	return out
}

// effect returns the effect of kind on target (see effectIndex.get),
// making it, without supports, when there is none.
func (e *Engine) effect(kind string, target, source graph.VertexID, name string) *effect {
	ef := e.effects.get(kind, target, source, name)
	if ef == nil {
		// Most effects have one support: it shares the effect's
		// room.
		x := e.effectBuf.take()
		x.ef = effect{kind: kind, target: target, source: source, name: name, supports: x.s[:0:1]}
		ef = &x.ef
		e.effects.add(ef)
	}
	return ef
}

// effectBox is an effect with room for one support.
type effectBox struct {
	ef effect
	s  [1]Support
}

func (e *Engine) supportCauses(from, to graph.VertexID, sid string, out []graph.Change) []graph.Change {
	if from == 0 || to == 0 || !e.isAlarm(from) || !e.isAlarm(to) {
		return out
	}
	ef := e.effect(kindCauses, to, from, "")
	ef.supports.set(sid, "")
	return e.settle(ef, out)
}

func (e *Engine) dropCauses(from, to graph.VertexID, sid []byte, out []graph.Change) []graph.Change {
	ef := e.effects.get(kindCauses, to, from, "")
	if ef == nil {
		return out
	}
	ef.supports.del(sid)
	return e.settle(ef, out)
}

func (e *Engine) isAlarm(id graph.VertexID) bool { return e.g.IsAlarm(id) }

// revived reports whether changes bring the deleted vertex id back.
func revived(changes []graph.Change, id graph.VertexID) bool {
	for _, c := range changes {
		if c.Op == graph.VertexUpdated && c.Vertex != nil && c.Vertex.ID == id && c.Prev != nil && c.Prev.IsDeleted {
			return true
		}
	}
	return false
}

// restoreCauses shows again the causes links of the deduced alarm id that
// its clearing deleted while a match still supports them, now that it is
// raised again. A deduced alarm cleared and raised again within one wave
// (its template put again, or one clause of its scenario giving way to
// another) keeps the same vertex, so the matches binding it stay stored
// and would not assert those links again: the link from or to an alarm of
// another template's match was lost while both alarms stayed raised. A
// link whose other alarm is cleared stays deleted with it.
func (e *Engine) restoreCauses(id graph.VertexID, out []graph.Change) []graph.Change {
	var links [][2]graph.VertexID
	collect := func(ed graph.Edge) bool {
		if ed.Relationship != graph.RelCauses || !ed.IsDeleted {
			return true
		}
		other := ed.From
		if other == id {
			other = ed.To
		}
		if x, ok := e.g.Ref(other); !ok || x.IsDeleted() {
			return true
		}
		if ef := e.effects.get(kindCauses, ed.To, ed.From, ""); ef != nil && ef.on {
			links = append(links, [2]graph.VertexID{ed.From, ed.To})
		}
		return true
	}
	e.g.EachOut(id, collect)
	e.g.EachIn(id, collect)
	for _, l := range links {
		out = e.g.AppendSetCausal(out, l[0], l[1], true)
	}
	return out
}

// dominant returns the winning value among an effect's supports: the
// highest rank, ties broken by the smallest support id.
func dominant(ef *effect, rank func(string) int) string {
	best, bestRank := "", -1
	for _, s := range ef.supports { // sorted by id
		if r := rank(s.Value); r > bestRank {
			best, bestRank = s.Value, r
		}
	}
	return best
}

// settle makes the graph show the effect's dominant value, or removes the
// effect once it has no support. It appends the changes to out.
func (e *Engine) settle(ef *effect, out []graph.Change) []graph.Change {
	if len(ef.supports) == 0 {
		e.effects.remove(ef)
		if !ef.on {
			return out
		}
		switch ef.kind {
		case kindAlarm:
			return e.g.AppendClearDeducedAlarm(out, ef.alarmID)
		case kindState:
			return e.g.AppendSetDeducedState(out, ef.target, "")
		case kindCauses:
			return e.g.AppendSetCausal(out, ef.source, ef.target, false)
		case kindDown:
			return e.g.AppendSetMarkedDown(out, ef.target, false)
		}
		return out
	}
	switch ef.kind {
	case kindAlarm:
		want := dominant(ef, func(v string) int {
			return e.norm.Lookup(graph.CategoryAlarm, graph.DeducedType, v).Priority*1000 + severityRank(v)
		})
		if ef.on && ef.applied == want {
			return out
		}
		start := len(out)
		var id graph.VertexID
		id, out = e.g.AppendRaiseDeducedAlarm(out, graph.DeducedAlarm{Target: ef.target, Name: ef.name, Severity: want})
		ef.alarmID, ef.applied, ef.on = id, want, true
		if revived(out[start:], id) {
			out = e.restoreCauses(id, out)
		}
		return out
	case kindState:
		typ := ""
		if v, ok := e.g.Vertex(ef.target); ok {
			typ = v.Type
		}
		want := dominant(ef, func(v string) int {
			return e.norm.Lookup(graph.CategoryResource, typ, v).Priority*1000 + stateRank(v)
		})
		if ef.on && ef.applied == want {
			return out
		}
		ef.applied, ef.on = want, true
		return e.g.AppendSetDeducedState(out, ef.target, want)
	case kindCauses:
		if ef.on {
			return out
		}
		ef.on = true
		return e.g.AppendSetCausal(out, ef.source, ef.target, true)
	case kindDown:
		if ef.on {
			return out
		}
		ef.on = true
		return e.g.AppendSetMarkedDown(out, ef.target, true)
	}
	return out
}

var getAttrRe = regexp.MustCompile(`^\s*get_attr\(\s*([^,()\s]+)\s*,\s*([^,()\s]+)\s*\)\s*$`)

// resolveInput evaluates get_attr(entity, attr) in execute_mistral input.
func (e *Engine) resolveInput(m *match, in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		if sm := getAttrRe.FindStringSubmatch(v); sm != nil {
			if id := m.vertex(sm[1]); id != 0 {
				if vx, ok := e.g.Vertex(id); ok {
					v, _ = vertexProp(&vx, sm[2])
				}
			}
		}
		out[k] = v
	}
	return out
}

// forget drops what the engine holds of the vertices the graph purged
// (graph.Graph.Purged), appending the changes it makes to out. A state
// this build computed holds nothing of them: the graph purges only
// vertices deleted long before, deleted vertices match nothing, so no
// stored match binds them and no effect names them. A state left half
// evaluated (ErrNoFixpoint), or restored from an older build, may: its
// matches that bind a purged vertex are undone, in key order, and its
// effects that still name one are dropped, but for a deduced alarm purged
// while its effect held, which is raised again (as a new vertex).
func (e *Engine) forget(ids []graph.VertexID, out []graph.Change) []graph.Change {
	if len(ids) == 0 {
		return out
	}
	var ms []*match
	for _, id := range ids {
		for _, en := range e.byAnchor.at(id) {
			for m := range en.set.all {
				ms = append(ms, m)
			}
		}
	}
	slices.SortFunc(ms, func(a, b *match) int { return strings.Compare(a.key, b.key) })
	ms = slices.CompactFunc(ms, func(a, b *match) bool { return a.key == b.key })
	for _, m := range ms {
		out = e.undo(m, out)
	}
	purged := func(id graph.VertexID) bool {
		_, ok := slices.BinarySearch(ids, id)
		return ok
	}
	var efs []*effect
	for ef := range e.effects.all {
		if purged(ef.target) || purged(ef.source) || purged(ef.alarmID) {
			efs = append(efs, ef)
		}
	}
	slices.SortFunc(efs, func(a, b *effect) int { return strings.Compare(effectKey(a), effectKey(b)) })
	for _, ef := range efs {
		if ef.kind == kindAlarm && !purged(ef.target) {
			ef.alarmID, ef.applied, ef.on = 0, "", false
			out = e.settle(ef, out)
			continue
		}
		e.effects.remove(ef)
	}
	// What the engine held of the purged vertices is gone: give the pages
	// back (see paged.Table.Trim), once a purge.
	e.byAnchor.byVertex.Trim()
	e.effects.byTarget.Trim()
	return out
}
