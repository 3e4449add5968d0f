package graph

import (
	"strconv"

	"github.com/causeway/causeway/internal/event"
)

// The primitives below are how the evaluator acts on the graph. Each returns
// the changes it made so that the evaluator can evaluate them in turn. Their
// timestamps are Now(): the RecordedAt of the record being evaluated.

// DeducedExternalID is the external id of the deduced alarm name raised on
// target: stable for a given (target, name).
func DeducedExternalID(target VertexID, name string) string {
	// The target's digits are formatted on the stack: FormatInt would
	// allocate them for every deduced alarm raised.
	var buf [20]byte
	return event.DeriveID("deduced", string(strconv.AppendInt(buf[:0], int64(target), 10)), name)
}

// RaiseDeducedAlarm raises the deduced alarm a: an ALARM vertex of type
// DeducedType, owned by EvaluatorSource, with an `on` edge to a.Target. A
// re-raise updates name, severity and properties and undeletes the alarm
// and its edge. It returns 0 and no change when the target does not exist.
func (g *Graph) RaiseDeducedAlarm(a DeducedAlarm) (VertexID, []Change) {
	if g.get(a.Target) == nil {
		return 0, nil
	}
	return g.AppendRaiseDeducedAlarm(make([]Change, 0, 2), a) // the alarm and its edge
}

// AppendRaiseDeducedAlarm is RaiseDeducedAlarm appending its changes to
// changes: the evaluator collects the changes of a wave in one slice, where
// a slice of each primitive's own was an allocation per action.
func (g *Graph) AppendRaiseDeducedAlarm(changes []Change, a DeducedAlarm) (VertexID, []Change) {
	t := g.get(a.Target)
	if t == nil {
		return 0, changes
	}
	ext := DeducedExternalID(a.Target, a.Name)
	var v *vertex
	var prev Vertex
	id, exists := g.keys.get(vkey{symAlarm, symDeduced, ext})
	if exists {
		v = g.get(id)
		prev = g.export(v)
	} else {
		v = g.newDeduced(ext)
	}
	v.name = a.Name
	v.severity = g.sym(a.Severity)
	v.state = symActive
	v.project = t.project
	v.source = symEvaluator
	if v.deleted {
		g.revive(v)
	}
	v.placeholder = false
	v.sample, v.update = g.now, g.now
	v.props = g.props(a.Properties)
	g.normalize(v)
	switch {
	case !exists:
		changes = append(changes, Change{Op: VertexAdded, Vertex: g.exportPtr(v)})
	case g.vertexChanged(&prev, v):
		changes = append(changes, g.updated(VertexUpdated, prev, v))
	}
	changes = g.assertEdge(triple{v.id, t.id, RelOn}, owner{v.id, EvaluatorSource}, changes)
	return v.id, changes
}

// ClearDeducedAlarm soft-deletes the alarm id and all its edges; they stay in
// the graph for RCA (until DeletedRetention has passed). Clearing a deleted or unknown vertex does nothing.
func (g *Graph) ClearDeducedAlarm(id VertexID) []Change {
	return g.AppendClearDeducedAlarm(nil, id)
}

// AppendClearDeducedAlarm is ClearDeducedAlarm appending its changes to
// changes.
func (g *Graph) AppendClearDeducedAlarm(changes []Change, id VertexID) []Change {
	v := g.get(id)
	if v == nil || v.deleted {
		return changes
	}
	return g.softDelete(v, changes)
}

// SetCausal adds (present) or removes the `causes` edge from -> to. A
// removed edge is kept, marked deleted. Unknown vertices: no change.
func (g *Graph) SetCausal(from, to VertexID, present bool) []Change {
	return g.AppendSetCausal(nil, from, to, present)
}

// AppendSetCausal is SetCausal appending its changes to changes.
func (g *Graph) AppendSetCausal(changes []Change, from, to VertexID, present bool) []Change {
	f, t := g.get(from), g.get(to)
	if f == nil || t == nil {
		return changes
	}
	tr := triple{from, to, RelCauses}
	own := owner{from, EvaluatorSource}
	if present {
		return g.assertEdge(tr, own, changes)
	}
	return g.retractEdge(tr, own, changes)
}

// SetDeducedState sets the state the evaluator deduced for id ("" removes
// it) and normalises the vertex again.
func (g *Graph) SetDeducedState(id VertexID, state string) []Change {
	return g.AppendSetDeducedState(nil, id, state)
}

// AppendSetDeducedState is SetDeducedState appending its change to
// changes.
func (g *Graph) AppendSetDeducedState(changes []Change, id VertexID, state string) []Change {
	v := g.get(id)
	if v == nil || g.s(v.deduced) == state {
		return changes
	}
	prev := g.export(v)
	v.deduced = g.sym(state)
	v.update = g.now
	g.normalize(v)
	return append(changes, g.updated(VertexUpdated, prev, v))
}

// SetMarkedDown sets or clears the vertex's is_marked_down flag.
func (g *Graph) SetMarkedDown(id VertexID, down bool) []Change {
	return g.AppendSetMarkedDown(nil, id, down)
}

// AppendSetMarkedDown is SetMarkedDown appending its change to changes.
func (g *Graph) AppendSetMarkedDown(changes []Change, id VertexID, down bool) []Change {
	v := g.get(id)
	if v == nil || v.markedDwn == down {
		return changes
	}
	prev := g.export(v)
	v.markedDwn = down
	v.update = g.now
	return append(changes, g.updated(VertexUpdated, prev, v))
}
