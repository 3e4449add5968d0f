package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

// GraphView is the read side of the entity graph that the handlers need
// (graph.Graph has these methods). It is only used inside Backend.View, so
// implementations need no locking of their own.
type GraphView interface {
	VertexIDs() []graph.VertexID
	Vertex(id graph.VertexID) (graph.Vertex, bool)
	Out(id graph.VertexID) []graph.Edge
	In(id graph.VertexID) []graph.Edge
}

// View is a consistent view of the processor's state at one seq.
type View interface {
	GraphView
	// Templates lists the loaded templates, sorted by name.
	Templates() []Template
	// Subscriptions lists the webhook subscriptions in the log, sorted by
	// id (none for a machine that keeps no subscriptions).
	Subscriptions() []Subscription
	// Following returns the keys (<category>/<type>/<id>) of the open
	// alarms subscription id follows, sorted: those it was told of, whose
	// later transitions it is sent until they clear whatever the rest of
	// its filter says (notifier/subscription.Registry.Tell). It only
	// reads: what a subscription follows is changed by the log alone.
	Following(id string) []string
}

// Subscription is a webhook subscription as the log holds it: its spec
// (notifier/subscription) and the seq of the put that set it.
type Subscription struct {
	ID   string          `json:"id"`
	Seq  int64           `json:"seq"`
	Spec json.RawMessage `json:"spec"`
	// Following is how many open alarms it follows (View.Following).
	Following int `json:"following"`
}

// SubscriptionsResponse is GET /v1/subscriptions.
type SubscriptionsResponse struct {
	Meta
	Items []Subscription `json:"items"`
}

// SubscriptionResponse is GET /v1/subscriptions/{id}.
type SubscriptionResponse struct {
	Meta
	Item Subscription `json:"item"`
	// Following is a page of the alarms it follows (Item.Following
	// counts them all).
	Following FollowingPage `json:"following"`
}

// FollowingPage is a page of the keys of the open alarms a subscription
// follows, sorted: at most ?following_limit= (default 100, at most
// 10000) after the key ?following_after=. Next, when more follow, is the
// following_after of the next page.
type FollowingPage struct {
	Alarms []string `json:"alarms"`
	Next   string   `json:"next,omitempty"`
}

// Template is a loaded scenario template, and the JSON body that
// validate and add read (name is the loaded one's only): params are the
// values of its parameters (Vitrage's `--params`).
type Template struct {
	Name   string            `json:"name"`
	Body   string            `json:"body,omitempty"`
	Params map[string]string `json:"params,omitempty"`
}

// Backend is what the HTTP layer needs from the processor (hraftd style:
// the HTTP layer declares the tiny interface it uses and is tested with a
// fake).
type Backend interface {
	// View calls fn with a consistent view of the live state and the seq it
	// reflects; the state does not change while fn runs, so fn must be quick
	// and must not keep v.
	View(fn func(v View, seq int64) error) error
	// Status is this node's status.
	Status(ctx context.Context) Status
	// Dump captures the canonical dump of the live state: the seq it
	// reflects and what writes it, as it is rendered, to w. write must
	// not hold the live state (a client may take the dump slowly): it
	// writes from a copy, or from bytes rendered already.
	Dump() (write func(w io.Writer) error, seq int64, err error)
	// Reconstruct builds, on a separate graph, the state at seq (if > 0)
	// or else at time at. It never touches the live state. The caller
	// calls the answer's Release, if set, once done with its graph.
	Reconstruct(ctx context.Context, seq int64, at time.Time) (Past, error)
	// Publish sends events to the bus: every change of state goes through
	// the log.
	Publish(ctx context.Context, evs ...event.Event) error
	// Cluster lists the raft members; Join and Remove change them (leader
	// only: otherwise an error wrapping ErrNotLeader).
	Cluster() ([]Member, error)
	Join(id, addr string) error
	Remove(id string) error
}

// Status is a processor node's status (GET /v1/status).
type Status struct {
	NodeID string `json:"node_id"`
	// Role is raft's state of the node: Leader, Follower, Candidate, Shutdown.
	Role string `json:"role"`
	// Leader is the id of the leader this node knows ("" if none).
	Leader     string `json:"leader"`
	LeaderAddr string `json:"leader_addr,omitempty"`
	Term       uint64 `json:"term"`
	// LeaderTerm is the fencing term while this node runs the leader's
	// duties, 0 otherwise.
	LeaderTerm uint64 `json:"leader_term"`
	AppliedSeq int64  `json:"applied_seq"`
	LogHead    int64  `json:"log_head"`
	Lag        int64  `json:"lag"`
	Ready      bool   `json:"ready"`
	// Loaded is false while the node reconstructs its state at start.
	Loaded bool `json:"loaded"`
	// OutOfOrder counts applications of a record whose seq was not
	// applied_seq+1 (a duplicate or a skipped seq): it must stay 0.
	OutOfOrder int64 `json:"out_of_order_applications"`
	// DuplicatesSkipped counts records received again and not applied.
	DuplicatesSkipped int64 `json:"duplicates_skipped"`
	// GapsRepaired counts repairs from the database.
	GapsRepaired int64 `json:"gaps_repaired"`
	// ApplyErrors counts records the state machine refused (applied as
	// no-ops, the same on every node).
	ApplyErrors      int64     `json:"apply_errors"`
	LastSnapshotSeq  int64     `json:"last_snapshot_seq"`
	LastSnapshotAt   time.Time `json:"last_snapshot_at,omitzero"`
	SnapshotsWritten int64     `json:"snapshots_written"`
	FencedWrites     int64     `json:"fenced_writes"`
	// OutboxRowsWritten counts the outbox rows this node inserted as
	// leader; RowsRegenerated and ItemsRegenerated the outbox rows and
	// history items it rebuilt on a separate machine to fill the gap below
	// its pending ones (a cold start past the heads).
	OutboxRowsWritten int64 `json:"outbox_rows_written"`
	RowsRegenerated   int64 `json:"outbox_rows_regenerated"`
	ItemsRegenerated  int64 `json:"history_items_regenerated"`
	// PendingRows and PendingItems are the outbox rows and history items
	// derived here and not known to be written yet.
	PendingRows  int `json:"pending_outbox_rows"`
	PendingItems int `json:"pending_history_items"`
	// UnrecoverableGaps counts outbox and history gaps (one per table) that
	// could not be regenerated whole because their first events are past
	// retention (must stay 0): the
	// outbox rows and history items up to the newest snapshot before the
	// gap's end are lost; those after it are rebuilt, and the webhook
	// subscriptions are rewritten whole.
	UnrecoverableGaps int64 `json:"unrecoverable_gaps,omitempty"`
	// StaleSemantics says the state was loaded from a snapshot computed by
	// a build that applies the log differently: it may differ from this
	// build's replay of the log on what the semantics changed
	// (evaluator.Semantics; snapshot's package doc says how to rebuild).
	StaleSemantics bool   `json:"stale_semantics,omitempty"`
	Error          string `json:"error,omitempty"`
}

// Member is one raft member.
type Member struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// Resource is a vertex as the API shows it, with Vitrage's field names.
type Resource struct {
	VitrageID        string            `json:"vitrage_id"`
	ID               string            `json:"id"`
	Category         string            `json:"vitrage_category"`
	Type             string            `json:"vitrage_type"`
	Name             string            `json:"name,omitempty"`
	State            string            `json:"state,omitempty"`
	Severity         string            `json:"severity,omitempty"`
	DeducedState     string            `json:"vitrage_deduced_state,omitempty"`
	AggregatedState  string            `json:"vitrage_aggregated_state,omitempty"`
	OperationalState string            `json:"vitrage_operational_state,omitempty"`
	ProjectID        string            `json:"project_id,omitempty"`
	Source           string            `json:"vitrage_datasource_name,omitempty"`
	IsDeleted        bool              `json:"vitrage_is_deleted"`
	IsPlaceholder    bool              `json:"vitrage_is_placeholder"`
	IsMarkedDown     bool              `json:"is_marked_down,omitempty"`
	SampleTimestamp  time.Time         `json:"vitrage_sample_timestamp,omitzero"`
	UpdateTimestamp  time.Time         `json:"update_timestamp,omitzero"`
	Properties       map[string]string `json:"properties,omitempty"`
}

// Link is an edge of a node-link graph (networkx style, as Vitrage
// returns): Source and Target index Nodes.
type Link struct {
	Source       int    `json:"source"`
	Target       int    `json:"target"`
	Relationship string `json:"relationship_type"`
	Key          string `json:"key"`
	IsDeleted    bool   `json:"vitrage_is_deleted"`
}

// Graph is a node-link graph.
type Graph struct {
	Directed   bool       `json:"directed"`
	Multigraph bool       `json:"multigraph"`
	Nodes      []Resource `json:"nodes"`
	Links      []Link     `json:"links"`
	// InspectedIndex (RCA only) indexes the alarm asked about.
	InspectedIndex *int `json:"inspected_index,omitempty"`
}

// Tree is a topology tree rooted at one vertex.
type Tree struct {
	Resource
	Children []Tree `json:"children,omitempty"`
}

// Meta is carried by every response body, as X-Causeway-Seq and
// X-Causeway-Leader carry it in the headers.
type Meta struct {
	Seq    int64  `json:"seq"`
	Leader string `json:"leader"`
	Node   string `json:"node"`
}

// ResponseMeta returns the Meta a response embeds.
func (m Meta) ResponseMeta() Meta { return m }

// TopologyResponse is GET /v1/topology.
type TopologyResponse struct {
	Meta
	Graph *Graph `json:"graph,omitempty"`
	Tree  *Tree  `json:"tree,omitempty"`
}

// ResourcesResponse is a list of resources or alarms.
type ResourcesResponse struct {
	Meta
	Items []Resource `json:"items"`
	// Next is the marker of the next page (?marker=): the vitrage_id of
	// the last item of this one; none on the last page.
	Next string `json:"next,omitempty"`
}

// ResourceResponse is one resource or alarm.
type ResourceResponse struct {
	Meta
	Item Resource `json:"item"`
}

// CountResponse counts resources or alarms by a property.
type CountResponse struct {
	Meta
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
}

// Past is a state reconstructed for a historical query.
type Past struct {
	Graph GraphView
	// Seq is the last seq applied; RecordedAt its recorded_at (zero at
	// seq 0).
	Seq        int64
	RecordedAt time.Time
	// StaleSemantics says it was rebuilt from a snapshot computed by a
	// build with other semantics (Status.StaleSemantics).
	StaleSemantics bool
	// Release, when set, ends the query: the caller calls it once it
	// has done with Graph (before writing its answer), so that the bound
	// on the historical queries (ErrBusy) covers the graphs in use, not
	// only their reconstruction.
	Release func()
}

// RCAResponse is the root-cause analysis of an alarm.
type RCAResponse struct {
	Meta
	// Historical is true when the graph was reconstructed (?seq= or ?at=);
	// RecordedAt is then the recorded_at of its seq, and StaleSemantics
	// says it was rebuilt from a snapshot of a build with other semantics.
	Historical     bool      `json:"historical"`
	RecordedAt     time.Time `json:"recorded_at,omitzero"`
	StaleSemantics bool      `json:"stale_semantics,omitempty"`
	Graph          Graph     `json:"graph"`
	// RootCauses are the vitrage ids of alarms in the RCA graph that have
	// no cause themselves.
	RootCauses []string `json:"root_causes"`
	// Paths are the causal paths from each root cause to the alarm asked
	// about, as vitrage ids: at most MaxRCAPaths, shared out among the
	// roots.
	Paths [][]string `json:"paths"`
	// PathsTruncated says some paths were left out of Paths.
	PathsTruncated bool `json:"paths_truncated,omitempty"`
}

// TemplatesResponse lists templates.
type TemplatesResponse struct {
	Meta
	Items []Template `json:"items"`
}

// TemplateResponse is one template.
type TemplateResponse struct {
	Meta
	Item Template `json:"item"`
}

// ValidateResponse reports template validation.
type ValidateResponse struct {
	Meta
	Name     string    `json:"name,omitempty"`
	Valid    bool      `json:"valid"`
	Problems []Problem `json:"problems,omitempty"`
}

// Problem is one template validation finding.
type Problem struct {
	Code    int    `json:"code"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// String says p as `causeway templates validate` does.
func (p Problem) String() string {
	if p.Path == "" {
		return fmt.Sprintf("%s (code %d)", p.Message, p.Code)
	}
	return fmt.Sprintf("%s: %s (code %d)", p.Path, p.Message, p.Code)
}

// AcceptedResponse answers a change that was published to the log.
type AcceptedResponse struct {
	Meta
	EventIDs []string `json:"event_ids"`
}

// StatusResponse is GET /v1/status.
type StatusResponse struct {
	Meta
	Status Status `json:"status"`
}

// ReadyResponse is GET /readyz: whether the node is ready (a leader known,
// caught up to within ready_lag, not stopping) and its lag.
type ReadyResponse struct {
	Meta
	Ready bool  `json:"ready"`
	Lag   int64 `json:"lag"`
	// Stopping says the node's stop has begun: it is not ready, and
	// will not be again in this run.
	Stopping bool `json:"stopping,omitempty"`
}

// ClusterResponse is GET /v1/cluster.
type ClusterResponse struct {
	Meta
	Servers []Member `json:"servers"`
}

// ErrorResponse is the body of every error.
type ErrorResponse struct {
	Meta
	Error string `json:"error"`
	// RequestID is a 500's, and a 503's for a dependency that failed: the
	// id under which the node logged the error, which Error does not say
	// (see the package comment).
	RequestID string `json:"request_id,omitempty"`
	// Historical says the error is a historical query's: Seq is then the
	// seq the state was reconstructed at, and X-Causeway-Seq is absent
	// when nothing was reconstructed (Seq is 0 then).
	Historical bool `json:"historical,omitempty"`
}
