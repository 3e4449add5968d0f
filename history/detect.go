package history

import (
	"cmp"
	"slices"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/emit"
	"github.com/causeway/causeway/notifier/subscription"
)

// Kind says what an Item records.
type Kind string

// The kinds of Item.
const (
	Raised          Kind = "raised"
	Cleared         Kind = "cleared"
	SeverityChanged Kind = "severity_changed"
	LinkStarted     Kind = "link_started"
	LinkEnded       Kind = "link_ended"
)

// Alarm is an alarm as an Item describes it.
type Alarm struct {
	// Key is category/type/external id: stable across snapshots, nodes and
	// reconstructions (vitrage ids are too, for one log, but keys read
	// better and survive a rebuilt log).
	Key       string `json:"key"`
	VitrageID int64  `json:"vitrage_id"`
	Type      string `json:"type"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	// Severity is the effective (normalised) severity after the record.
	Severity string `json:"severity"`
	Deduced  bool   `json:"deduced"`
	// EventAt is the alarm's sample time as its source reported it.
	EventAt  time.Time `json:"event_at"`
	Resource Resource  `json:"resource"`
}

// Resource is the resource an alarm is on ("" fields when none).
type Resource struct {
	Key  string `json:"key,omitempty"`
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Item is one fact of the history, found in one record.
type Item struct {
	Kind       Kind      `json:"kind"`
	Seq        int64     `json:"seq"`
	RecordedAt time.Time `json:"recorded_at"`
	// Alarm is set for Raised, Cleared and SeverityChanged.
	Alarm Alarm `json:"alarm"`
	// PrevSeverity is set for SeverityChanged.
	PrevSeverity string `json:"prev_severity,omitempty"`
	// From and To are the alarm keys of a link (LinkStarted, LinkEnded).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// Graph is what Detect reads of the graph as of the record (a *graph.Graph).
type Graph interface {
	Vertex(id graph.VertexID) (graph.Vertex, bool)
	AlarmResource(alarm graph.VertexID) (graph.Vertex, bool)
}

// Detect returns the history items of one record's changes: the alarm
// transitions of emit.Transitions (in the order each alarm first changed),
// then the `causes` links that started or ended, net over the record (an
// edge added and deleted within one record gives nothing), in the order
// each edge first changed. It is pure and deterministic.
func Detect(rec event.Record, changes []graph.Change, g Graph) []Item {
	var out []Item
	for _, t := range emit.Transitions(changes) {
		it := Item{Seq: rec.Seq, RecordedAt: rec.RecordedAt.UTC(), Alarm: alarmOf(t.Alarm, g)}
		switch t.Kind {
		case subscription.Raised:
			it.Kind = Raised
		case subscription.Cleared:
			it.Kind = Cleared
		case subscription.SeverityChanged:
			it.Kind = SeverityChanged
			if t.Prev != nil {
				it.PrevSeverity = emit.Severity(*t.Prev)
			}
		default:
			continue
		}
		out = append(out, it)
	}
	return append(out, links(rec, changes, g)...)
}

func alarmOf(v graph.Vertex, g Graph) Alarm {
	a := Alarm{
		Key: v.Key(), VitrageID: int64(v.ID), Type: v.Type, ID: v.ExternalID, Name: v.Name,
		Severity: emit.Severity(v), Deduced: v.Type == graph.DeducedType || v.Source == graph.EvaluatorSource,
		EventAt: v.SampleTimestamp.UTC(),
	}
	if r, ok := g.AlarmResource(v.ID); ok {
		a.Resource = Resource{Key: r.Key(), Type: r.Type, ID: r.ExternalID, Name: r.Name}
	}
	return a
}

type edgeID struct {
	from, to graph.VertexID
}

func links(rec event.Record, changes []graph.Change, g Graph) []Item {
	type span struct{ was, is bool }
	var order []edgeID
	spans := map[edgeID]*span{}
	for _, c := range changes {
		if c.Edge == nil || c.Edge.Relationship != graph.RelCauses ||
			(c.Op != graph.EdgeAdded && c.Op != graph.EdgeUpdated && c.Op != graph.EdgeDeleted) {
			continue
		}
		id := edgeID{c.Edge.From, c.Edge.To}
		s, ok := spans[id]
		if !ok {
			s = &span{was: c.PrevEdge != nil && !c.PrevEdge.IsDeleted}
			spans[id] = s
			order = append(order, id)
		}
		s.is = !c.Edge.IsDeleted
	}
	var out []Item
	for _, id := range order {
		s := spans[id]
		if s.was == s.is {
			continue
		}
		from, ok1 := g.Vertex(id.from)
		to, ok2 := g.Vertex(id.to)
		if !ok1 || !ok2 {
			continue
		}
		it := Item{Kind: LinkStarted, Seq: rec.Seq, RecordedAt: rec.RecordedAt.UTC(), From: from.Key(), To: to.Key()}
		if !s.is {
			it.Kind = LinkEnded
		}
		out = append(out, it)
	}
	return out
}

// Batch is what the leader writes: the items of the records up to Seq.
type Batch struct {
	// Seq is the last seq whose items are all in Items.
	Seq int64
	// Reconcile, when set, is the whole state after the record
	// Reconcile.Seq (at or below Seq), which the stored history is made to
	// agree with before Items are written, if its head is below that seq:
	// a leader sets it when the records between the head and it are past
	// retention and their items cannot be rebuilt. Items at or below it
	// are then skipped: the state stands for them.
	Reconcile *State
	Items     []Item
}

// Prune drops the items at or below seq (written already, by Head).
func (b *Batch) Prune(seq int64) {
	i := 0
	for i < len(b.Items) && b.Items[i].Seq <= seq {
		i++
	}
	b.Items = b.Items[i:]
}

// State is what is active after one record, whole: the alarms raised and
// not cleared, and the `causes` links that hold. It is what the history
// must show open at that seq, whatever happened in the records before it.
type State struct {
	Seq        int64     `json:"seq"`
	RecordedAt time.Time `json:"recorded_at"`
	// Alarms are the active alarms, by key.
	Alarms []Alarm `json:"alarms"`
	// Links are the `causes` links that hold, by from then to key.
	Links []LinkKey `json:"links"`
}

// LinkKey names a `causes` link by the keys of its two alarms.
type LinkKey struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// StateGraph is what ActiveAt reads of the graph (a *graph.Graph).
type StateGraph interface {
	Graph
	VertexIDs() []graph.VertexID
	IsAlarm(id graph.VertexID) bool
	EachOut(id graph.VertexID, yield func(graph.Edge) bool)
}

// ActiveAt returns the state of g, as of the record seq recorded at
// recordedAt: an alarm is active as Detect's transitions see it (neither
// deleted nor a placeholder), a link while its `causes` edge is not
// deleted. It is pure and deterministic (sorted by key, not by vertex id).
func ActiveAt(seq int64, recordedAt time.Time, g StateGraph) State {
	s := State{Seq: seq, RecordedAt: recordedAt.UTC()}
	for _, id := range g.VertexIDs() {
		// A vertex is copied out only when it is an alarm or a link's
		// source: most are neither.
		var v *graph.Vertex
		if g.IsAlarm(id) {
			x, ok := g.Vertex(id)
			if !ok {
				continue
			}
			if v = &x; !x.IsDeleted && !x.IsPlaceholder {
				s.Alarms = append(s.Alarms, alarmOf(x, g))
			}
		}
		g.EachOut(id, func(e graph.Edge) bool {
			if e.Relationship != graph.RelCauses || e.IsDeleted {
				return true
			}
			if v == nil {
				x, ok := g.Vertex(id)
				if !ok {
					return false
				}
				v = &x
			}
			if to, ok := g.Vertex(e.To); ok {
				s.Links = append(s.Links, LinkKey{From: v.Key(), To: to.Key()})
			}
			return true
		})
	}
	slices.SortFunc(s.Alarms, func(a, b Alarm) int { return cmp.Compare(a.Key, b.Key) })
	slices.SortFunc(s.Links, func(a, b LinkKey) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	return s
}
