// Package emit turns the graph's changes into outbox rows: it detects alarm
// transitions (raised, cleared, severity changed — reported or deduced),
// decides which subscriptions are sent each (Notices: a subscription's
// filter, or its following the alarm's occurrence), and builds
// each subscriber's payload (the alarm, its resource and its causal chain
// up to the root causes) from the graph as it is at the record's seq.
//
// It is pure and deterministic — the same record, changes, graph and
// registry give byte-identical rows, with the same webhook ids — which is
// what lets a new leader rewrite the rows of a seq harmlessly.
//
// # Call contract (processor leader loop)
//
// Every processor node, leader or standby, for each record in seq order:
//
//	res, err := node.ApplyResult(rec)              // snapshot.Node: engine, registry, then emit.Notices
//	rows, err := emit.Build(rec, res.Notices, node.Engine.Graph())
//	pending.Rows = append(pending.Rows, rows...)
//	if res.IsSub { pending.Subscriptions = append(pending.Subscriptions, res.Subscription) }
//	pending.Seq = rec.Seq
//
// Notices records in the registry what each subscription was told: it is
// part of applying the record (snapshot.Node runs it in Apply too, where no
// rows are built), once per record. Without a Node, apply the record to the
// engine and to the registry and call emit.Rows(rec, changes, graph,
// registry), which is Notices then Build. Build must run right after the
// record is applied (it reads the graph as of that seq) and before the
// next record. An error from Build is a payload that cannot be encoded: a
// bug, never input.
//
// The leader then flushes pending with outbox.Write(ctx, db, term, pending)
// — after each batch of records, before acknowledging nothing in particular:
// Write is idempotent and skips seqs at or below the stored head — and
// clears it on success. A standby keeps pending (it is bounded by what the
// leader has not yet written) and prunes the rows at or below
// outbox.Head(ctx, db), read now and then; when it wins an election it calls
// Write with what it holds, covering every seq after the head: no gap, and
// no duplicate, since rows at or below the head are skipped and rows above
// it carry the same keys. The registry, with what its subscriptions were
// told, is part of the processor's state: snapshot it with Registry.State
// and restore it with subscription.Restore. Changes must be the complete
// changes of the record, in the order the graph and the evaluator made them.
package emit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
)

// Transition is one alarm's net change within a record.
type Transition struct {
	// Kind is subscription.Raised, Cleared or SeverityChanged.
	Kind string
	// Alarm is the vertex after the record; Prev before it (nil if new).
	Alarm graph.Vertex
	Prev  *graph.Vertex
}

// Severity is the alarm's effective severity: the normalised one, else the
// reported one.
func Severity(v graph.Vertex) string {
	if v.AggregatedState != "" {
		return v.AggregatedState
	}
	return v.Severity
}

func live(v *graph.Vertex) bool { return v != nil && !v.IsDeleted && !v.IsPlaceholder }

// Detect returns the transition from prev (nil when the vertex did not
// exist) to next, if there is one. Only alarms have transitions.
func Detect(prev *graph.Vertex, next graph.Vertex) (kind string, ok bool) {
	if next.Category != graph.CategoryAlarm {
		return "", false
	}
	was, is := live(prev), live(&next)
	switch {
	case !was && is:
		return subscription.Raised, true
	case was && !is:
		return subscription.Cleared, true
	case was && is && !strings.EqualFold(Severity(*prev), Severity(next)):
		return subscription.SeverityChanged, true
	}
	return "", false
}

// Transitions returns the alarm transitions of one record's changes: per
// alarm, the state before its first change against the state after its
// last, so an alarm raised and re-severitied by the evaluator in the same
// record gives one "raised" with the final severity, and one raised and
// cleared within the record gives none. They are in the order each alarm
// first changed.
func Transitions(changes []graph.Change) []Transition {
	type span struct {
		first *graph.Vertex // before the first change (nil if added)
		last  graph.Vertex
	}
	var order []graph.VertexID
	spans := map[graph.VertexID]*span{}
	for _, c := range changes {
		if c.Vertex == nil || (c.Op != graph.VertexAdded && c.Op != graph.VertexUpdated && c.Op != graph.VertexDeleted) {
			continue
		}
		if c.Vertex.Category != graph.CategoryAlarm && (c.Prev == nil || c.Prev.Category != graph.CategoryAlarm) {
			continue
		}
		s, ok := spans[c.Vertex.ID]
		if !ok {
			s = &span{}
			if c.Prev != nil {
				p := c.Prev.Clone()
				s.first = &p
			}
			spans[c.Vertex.ID] = s
			order = append(order, c.Vertex.ID)
		}
		s.last = c.Vertex.Clone()
	}
	var out []Transition
	for _, id := range order {
		s := spans[id]
		if kind, ok := Detect(s.first, s.last); ok {
			out = append(out, Transition{Kind: kind, Alarm: s.last, Prev: s.first})
		}
	}
	return out
}

// GraphView is what emit reads of the graph (a *graph.Graph).
type GraphView interface {
	Vertex(id graph.VertexID) (graph.Vertex, bool)
	Out(id graph.VertexID) []graph.Edge
	In(id graph.VertexID) []graph.Edge
}

// Teller is what emit needs of the subscriptions (a *subscription.Registry):
// who to send one alarm transition, recording which open alarms each
// follows, so that it is later sent how the alarm's occurrence goes on and
// ends even when its filter no longer matches the alarm
// (subscription.Registry.Tell).
type Teller interface {
	Tell(key string, a subscription.Alarm) []*subscription.Subscription
}

// maxChain bounds the causal chain walked for one payload.
const maxChain = 1000

// Notice is one alarm transition of a record and the subscriptions to send
// it, in order.
type Notice struct {
	Transition
	// Key is the alarm's key (category/type/id).
	Key string
	// Subscriptions are those told of it, sorted by id; never empty.
	Subscriptions []*subscription.Subscription
	// resource is the resource the alarm is on, nil when none.
	resource *Entity
}

// Notices decides, for each transition in Transitions(changes), in order,
// which subscriptions are sent it, and records that in subs: it advances
// the subscriptions' state, so it runs exactly once per record, after the
// record is applied to the graph and to the registry, on every node alike
// (snapshot.Node does), whether or not rows are built from its result.
func Notices(changes []graph.Change, g GraphView, subs Teller) []Notice {
	var out []Notice
	for _, t := range Transitions(changes) {
		n := Notice{Transition: t, Key: t.Alarm.Key(), resource: resourceOf(t.Alarm, g)}
		n.Subscriptions = subs.Tell(n.Key, n.filterView())
		if len(n.Subscriptions) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// Rows returns the outbox rows of one record: Notices(changes, g, subs)
// (which records what each subscription is told) built by Build.
func Rows(rec event.Record, changes []graph.Change, g GraphView, subs Teller) ([]outbox.Row, error) {
	return Build(rec, Notices(changes, g, subs), g)
}

// Build returns the outbox rows of a record's notices: one row per notice
// and subscription, in order, with ords counted per subscription within the
// record. g must be the graph right after the record.
func Build(rec event.Record, notices []Notice, g GraphView) ([]outbox.Row, error) {
	ords := map[string]int{}
	var rows []outbox.Row
	for _, nt := range notices {
		n := describe(nt, g)
		for _, s := range nt.Subscriptions {
			ord := ords[s.ID]
			ords[s.ID] = ord + 1
			id := outbox.WebhookID(s.ID, rec.Seq, n.key, n.t.Kind)
			body, err := n.payload(s, id, rec)
			if err != nil {
				return nil, fmt.Errorf("payload of alarm %s for subscription %s at seq %d: %w", n.key, s.ID, rec.Seq, err)
			}
			rows = append(rows, outbox.Row{SubscriptionID: s.ID, Seq: rec.Seq, Ord: ord, WebhookID: id, RecordedAt: rec.RecordedAt, Payload: body})
		}
	}
	return rows, nil
}

// notice is a transition with what the payload says about it.
type notice struct {
	t          Transition
	key        string
	alarm      Entity
	resource   *Entity
	rootCauses []Entity
	chain      []Link
}

func describe(nt Notice, g GraphView) notice {
	n := notice{t: nt.Transition, key: nt.Key, alarm: entityOf(nt.Alarm), resource: nt.resource}
	n.rootCauses, n.chain = causes(nt.Alarm.ID, g, nt.Alarm.IsDeleted)
	return n
}

// resourceOf returns the resource alarm is on. A cleared alarm's edges are
// deleted with it: follow deleted edges then, so the payload still says
// what it was on.
func resourceOf(alarm graph.Vertex, g GraphView) *Entity {
	withDeleted := alarm.IsDeleted
	var res *Entity
	for _, e := range g.Out(alarm.ID) {
		if e.Relationship != graph.RelOn || (e.IsDeleted && !withDeleted) {
			continue
		}
		if r, ok := g.Vertex(e.To); ok {
			ent := entityOf(r)
			res = &ent
			if !e.IsDeleted {
				break
			}
		}
	}
	return res
}

// causes walks `causes` edges upstream of id (breadth first, by ascending
// vertex id at each step) and returns the root causes — the alarms reached
// that nothing causes — and the links walked.
func causes(id graph.VertexID, g GraphView, withDeleted bool) ([]Entity, []Link) {
	seen := map[graph.VertexID]bool{id: true}
	queue := []graph.VertexID{id}
	var roots []Entity
	var links []Link
	for len(queue) > 0 && len(seen) <= maxChain {
		cur := queue[0]
		queue = queue[1:]
		hasCause := false
		for _, e := range g.In(cur) {
			if e.Relationship != graph.RelCauses || (e.IsDeleted && !withDeleted) {
				continue
			}
			from, ok := g.Vertex(e.From)
			if !ok {
				continue
			}
			hasCause = true
			to, _ := g.Vertex(cur)
			links = append(links, Link{From: from.Key(), To: to.Key()})
			if !seen[e.From] {
				seen[e.From] = true
				queue = append(queue, e.From)
			}
		}
		if !hasCause && cur != id {
			if v, ok := g.Vertex(cur); ok {
				roots = append(roots, entityOf(v))
			}
		}
	}
	slices.SortFunc(roots, func(a, b Entity) int { return int(a.VertexID - b.VertexID) })
	return roots, links
}

func (n Notice) filterView() subscription.Alarm {
	a := subscription.Alarm{
		Transition: n.Kind, ID: n.Alarm.ExternalID, Name: n.Alarm.Name, Type: n.Alarm.Type,
		Severity: Severity(n.Alarm), RawSeverity: n.Alarm.Severity, State: n.Alarm.State, ProjectID: n.Alarm.ProjectID, Properties: n.Alarm.Properties,
	}
	if n.resource != nil {
		a.ResourceID, a.ResourceType, a.ResourceName, a.ResourceProjectID = n.resource.ID, n.resource.Type, n.resource.Name, n.resource.ProjectID
	}
	return a
}

// Entity is a vertex in a payload (Vitrage's field names).
type Entity struct {
	VertexID         int64             `json:"vitrage_id"`
	Category         string            `json:"category"`
	Type             string            `json:"type"`
	ID               string            `json:"id"`
	Name             string            `json:"name,omitempty"`
	State            string            `json:"state,omitempty"`
	Severity         string            `json:"severity,omitempty"`
	AggregatedState  string            `json:"aggregated_state,omitempty"`
	OperationalState string            `json:"operational_state,omitempty"`
	ProjectID        string            `json:"project_id,omitempty"`
	IsDeleted        bool              `json:"is_deleted"`
	SampleTimestamp  time.Time         `json:"sample_timestamp"`
	UpdateTimestamp  time.Time         `json:"update_timestamp"`
	Properties       map[string]string `json:"properties,omitempty"`
}

func entityOf(v graph.Vertex) Entity {
	return Entity{
		VertexID: int64(v.ID), Category: v.Category, Type: v.Type, ID: v.ExternalID, Name: v.Name,
		State: v.State, Severity: v.Severity, AggregatedState: v.AggregatedState, OperationalState: v.OperationalState,
		ProjectID: v.ProjectID, IsDeleted: v.IsDeleted, SampleTimestamp: v.SampleTimestamp.UTC(), UpdateTimestamp: v.UpdateTimestamp.UTC(),
		Properties: v.Properties,
	}
}

// Link is one `causes` edge of the causal chain, by vertex key
// (category/type/id).
type Link struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Notification is the body of the "causeway" format.
type Notification struct {
	// Version of this document.
	Version string `json:"version"`
	// ID is the webhook id (also in the webhook-id header).
	ID             string `json:"id"`
	SubscriptionID string `json:"subscription_id"`
	// Type is "alarm." + the transition.
	Type             string    `json:"type"`
	Seq              int64     `json:"seq"`
	RecordedAt       time.Time `json:"recorded_at"`
	Alarm            Entity    `json:"alarm"`
	PreviousSeverity string    `json:"previous_severity,omitempty"`
	Resource         *Entity   `json:"resource"`
	// RootCauses are the alarms at the start of the causal chain; empty
	// when the alarm has no cause (it is its own root).
	RootCauses []Entity `json:"root_causes"`
	// CausalChain lists the `causes` edges walked from the alarm upstream.
	CausalChain []Link `json:"causal_chain"`
}

func (n notice) payload(s *subscription.Subscription, id string, rec event.Record) ([]byte, error) {
	if s.Spec.Format == subscription.FormatAlertmanager {
		return json.Marshal(n.alertmanager(s, id, rec))
	}
	doc := Notification{
		Version: "1", ID: id, SubscriptionID: s.ID, Type: "alarm." + n.t.Kind, Seq: rec.Seq, RecordedAt: rec.RecordedAt.UTC(),
		Alarm: n.alarm, Resource: n.resource, RootCauses: n.rootCauses, CausalChain: n.chain,
	}
	if doc.RootCauses == nil {
		doc.RootCauses = []Entity{}
	}
	if doc.CausalChain == nil {
		doc.CausalChain = []Link{}
	}
	if n.t.Kind == subscription.SeverityChanged && n.t.Prev != nil {
		doc.PreviousSeverity = Severity(*n.t.Prev)
	}
	return json.Marshal(doc)
}

// AMMessage is the "alertmanager" format: Alertmanager's webhook body,
// version 4, with one alert.
type AMMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []AMAlert         `json:"alerts"`
}

// AMAlert is one alert of an AMMessage.
type AMAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

func (n notice) alertmanager(s *subscription.Subscription, id string, rec event.Record) AMMessage {
	a := n.t.Alarm
	status := "firing"
	var ends time.Time
	if n.t.Kind == subscription.Cleared {
		status, ends = "resolved", rec.RecordedAt.UTC()
	}
	labels := map[string]string{
		"alertname": a.Name, "severity": strings.ToLower(Severity(a)), "alarm_type": a.Type, "alarm_id": a.ExternalID,
	}
	if a.ProjectID != "" {
		labels["project_id"] = a.ProjectID
	}
	if n.resource != nil {
		labels["resource_type"], labels["resource_id"] = n.resource.Type, n.resource.ID
		if n.resource.Name != "" {
			labels["resource_name"] = n.resource.Name
		}
	}
	var roots []string
	for _, r := range n.rootCauses {
		roots = append(roots, r.Type+"/"+r.ID+" ("+r.Name+")")
	}
	ann := map[string]string{
		"transition": n.t.Kind, "webhook_id": id, "seq": strconv.FormatInt(rec.Seq, 10),
	}
	if len(roots) > 0 {
		ann["root_causes"] = strings.Join(roots, "; ")
	}
	if n.t.Kind == subscription.SeverityChanged && n.t.Prev != nil {
		ann["previous_severity"] = Severity(*n.t.Prev)
	}
	starts := a.SampleTimestamp.UTC()
	if n.t.Prev != nil && n.t.Kind != subscription.Raised {
		starts = n.t.Prev.SampleTimestamp.UTC()
	}
	return AMMessage{
		Version: "4", GroupKey: "causeway/" + s.ID + "/" + n.key, Status: status, Receiver: s.ID,
		GroupLabels: map[string]string{"alertname": a.Name}, CommonLabels: labels, CommonAnnotations: ann,
		Alerts: []AMAlert{{
			Status: status, Labels: labels, Annotations: ann, StartsAt: starts, EndsAt: ends,
			Fingerprint: event.DeriveID(n.key)[:16],
		}},
	}
}
