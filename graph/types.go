package graph

import (
	"maps"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/event"
)

// VertexID identifies a vertex inside one graph. IDs are assigned by a
// counter in creation order, so the same log gives the same ids on every
// node (gonum's NewNode reuses ids at random after deletions and is never
// used). They are dense but for the ids of purged vertices (see
// DeletedRetention), which are never given again.
type VertexID int64

// Categories of vertex (Vitrage names).
const (
	CategoryResource = "RESOURCE"
	CategoryAlarm    = "ALARM"
)

// Relationships the graph itself creates.
const (
	// RelOn links an alarm to the resource it is raised on (alarm -> resource).
	RelOn = "on"
	// RelCauses links a cause alarm to the alarm it causes.
	RelCauses = "causes"
)

// Names used for deduced alarms, which the evaluator raises through the graph.
const (
	// DeducedType is the type of deduced alarm vertices (Vitrage's "vitrage").
	DeducedType = event.DeducedType
	// EvaluatorSource owns deduced alarms and the edges the evaluator creates
	// (`on` edges of deduced alarms, `causes` edges). No datasource upsert or
	// sync touches what it owns: event.Validate refuses input that names it
	// (or DeducedType alarms).
	EvaluatorSource = event.EvaluatorSource
)

// Vertex is a resource or an alarm. Values returned by the graph are copies.
type Vertex struct {
	ID       VertexID
	Category string // CategoryResource | CategoryAlarm
	// Type, ExternalID and Name: ExternalID is Vitrage's `id`; the key of a
	// vertex is (Category, Type, ExternalID).
	Type, ExternalID, Name string
	// State and Severity are as the datasource reported them (raw).
	State, Severity string
	// DeducedState is set by the evaluator's set_state ("" = none).
	DeducedState string
	// AggregatedState and OperationalState are normalised: the worse of the
	// reported and the deduced state wins. For alarms they hold the
	// aggregated and operational severity.
	AggregatedState, OperationalState string
	ProjectID, Source                 string
	IsDeleted, IsPlaceholder          bool
	IsMarkedDown                      bool
	SampleTimestamp, UpdateTimestamp  time.Time
	// Properties are free properties.
	Properties map[string]string
}

// Clone returns a deep copy of v.
func (v Vertex) Clone() Vertex {
	v.Properties = maps.Clone(v.Properties)
	return v
}

// Key is the vertex's stable key, "<category>/<type>/<external id>": what
// alarm history, notifications and the CLI name an entity by, the same
// across restarts and replays. "%" and "/" in the type are escaped as
// "%25" and "%2F" (the category holds neither, and the external id is
// last), so two vertices never share a key; a type without them reads as
// it is.
func (v Vertex) Key() string {
	typ := v.Type
	if strings.ContainsAny(typ, "%/") {
		typ = strings.NewReplacer("%", "%25", "/", "%2F").Replace(typ)
	}
	return v.Category + "/" + typ + "/" + v.ExternalID
}

// Edge is a labelled, directed edge. Edge identity is (From, To, Relationship).
type Edge struct {
	From, To     VertexID
	Relationship string
	IsDeleted    bool
	// DeletedWithVertex says the edge was deleted because one of its
	// vertices was (not retracted by its owners).
	DeletedWithVertex bool
	UpdateTimestamp   time.Time
}

// ChangeOp says what a Change did.
type ChangeOp int

// The change operations.
const (
	VertexAdded ChangeOp = iota + 1
	VertexUpdated
	VertexDeleted
	EdgeAdded
	EdgeUpdated
	EdgeDeleted
)

var changeOpNames = [...]string{"", "VertexAdded", "VertexUpdated", "VertexDeleted", "EdgeAdded", "EdgeUpdated", "EdgeDeleted"}

func (o ChangeOp) String() string {
	if o > 0 && int(o) < len(changeOpNames) {
		return changeOpNames[o]
	}
	return "ChangeOp(?)"
}

// Change is one effect of Apply or of an evaluator primitive, in the order
// the graph made them. For vertex ops Vertex is the vertex after the change
// and Prev before it (nil when added); for edge ops Edge is the edge after
// and PrevEdge before (nil when added). An edge that is undeleted is
// reported as EdgeUpdated (PrevEdge.IsDeleted true), a vertex that is revived
// as VertexUpdated (Prev.IsDeleted true). A delete of an entity the graph
// did not know adds it deleted (a tombstone): VertexAdded with
// Vertex.IsDeleted true, which is no alarm raised.
type Change struct {
	Op       ChangeOp
	Vertex   *Vertex
	Prev     *Vertex
	Edge     *Edge
	PrevEdge *Edge
}

// DeducedAlarm is what the evaluator asks the graph to raise.
type DeducedAlarm struct {
	Target     VertexID
	Name       string
	Severity   string
	Properties map[string]string
}
