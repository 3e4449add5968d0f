// Package event defines the envelope that every producer publishes to the bus
// and that the persister writes to the log: the contract between drivers,
// listeners, the persister and the processors.
//
// An Event is what a producer observed; a Record is that event after the
// persister gave it its place in the one ordered log (Seq, RecordedAt). The
// processors' state is a pure function of a prefix of Records (invariant 3 of
// DESIGN.md), so everything that changes that state — entities, full-sync
// markers, templates, subscriptions and the passage of time — is an Event kind.
//
// The wire form is versioned JSON. Decode is strict: unknown fields, unknown
// kinds, missing identifiers, bad timestamps, oversized or too-deep payloads
// are errors that name the offending field.
package event

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Version is the envelope version this package writes and reads.
const Version = 1

// Kind says what an Event does to the processors' state.
type Kind string

// The kinds of event.
const (
	// KindEntityUpsert reports a resource or an alarm as it is now. An alarm
	// that is raised again or changes severity is an upsert too.
	KindEntityUpsert Kind = "entity.upsert"
	// KindEntityDelete reports that an entity is gone; for an alarm, that it
	// cleared. The graph keeps it, marked deleted, for RCA of the past.
	KindEntityDelete Kind = "entity.delete"
	// KindSyncBegin opens a datasource's full "get all" pull.
	KindSyncBegin Kind = "sync.begin"
	// KindSyncEnd closes it: entities of the source that were not reported
	// since the matching KindSyncBegin become deleted.
	KindSyncEnd Kind = "sync.end"
	// KindTemplatePut adds or replaces a scenario template.
	KindTemplatePut Kind = "template.put"
	// KindTemplateDelete removes a scenario template.
	KindTemplateDelete Kind = "template.delete"
	// KindSubscriptionPut adds or replaces a notification subscription.
	KindSubscriptionPut Kind = "subscription.put"
	// KindSubscriptionDelete removes a notification subscription.
	KindSubscriptionDelete Kind = "subscription.delete"
	// KindTick carries logical time forward (ObservedAt) so that time-driven
	// behaviour is driven by the log, never by a timer inside apply.
	KindTick Kind = "tick"
)

// Kinds lists every kind, in a fixed order.
var Kinds = []Kind{
	KindEntityUpsert, KindEntityDelete, KindSyncBegin, KindSyncEnd,
	KindTemplatePut, KindTemplateDelete, KindSubscriptionPut,
	KindSubscriptionDelete, KindTick,
}

// Categories of entity (Vitrage names).
const (
	CategoryResource = "RESOURCE"
	CategoryAlarm    = "ALARM"
)

// Direction of a Relation, seen from the entity that carries it.
type Direction string

// Directions.
const (
	// Out: entity --relationship--> target (an alarm `on` its resource).
	Out Direction = "out"
	// In: target --relationship--> entity (a host `contains` this instance).
	In Direction = "in"
)

// Event is one observation, as published by a driver or listener.
type Event struct {
	// V is the envelope version (Version).
	V int `json:"v"`
	// EventID is stable across retries and re-publications of the same
	// observation; the persister stores each EventID once.
	EventID string `json:"event_id"`
	// Source names the datasource or listener that produced the event
	// ("static", "alertmanager", "nova", ...).
	Source string `json:"source"`
	// Kind says what the event does.
	Kind Kind `json:"kind"`
	// ObservedAt is when the source sampled what it reports (Vitrage's
	// sample_timestamp). Updates older than what the graph holds are ignored.
	ObservedAt time.Time `json:"observed_at"`

	// Entity is set for entity.upsert and entity.delete.
	Entity *Entity `json:"entity,omitempty"`
	// Sync is set for sync.begin and sync.end.
	Sync *Sync `json:"sync,omitempty"`
	// Template is set for template.put (name, body and params) and template.delete (name).
	Template *Template `json:"template,omitempty"`
	// Subscription is set for subscription.put (id and spec) and subscription.delete (id).
	Subscription *Subscription `json:"subscription,omitempty"`
}

// Entity is a resource or an alarm as its source reports it.
type Entity struct {
	Category  string `json:"category"`
	Type      string `json:"type"`
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	State     string `json:"state,omitempty"`
	Severity  string `json:"severity,omitempty"`
	ProjectID string `json:"project_id,omitempty"`
	// Properties are free properties; keys and values are strings so that
	// template matching and the canonical dump need no type rules.
	Properties map[string]string `json:"properties,omitempty"`
	// Relations are the complete set of relations this Source asserts for
	// the entity: an upsert replaces the set the same source gave before and
	// leaves other sources' relations alone.
	Relations []Relation `json:"relations,omitempty"`
}

// Relation links an entity to another, named by its type and external id.
// A target not yet known becomes a placeholder vertex.
type Relation struct {
	Relationship string    `json:"relationship"`
	Category     string    `json:"category,omitempty"` // default RESOURCE
	Type         string    `json:"type"`
	ID           string    `json:"id"`
	Direction    Direction `json:"direction"`
}

// Sync identifies one full pull of a datasource.
type Sync struct {
	ID string `json:"id"`
}

// Template carries a scenario template.
type Template struct {
	Name string `json:"name"`
	// Body is the template's YAML, as the operator wrote it (template.put only).
	Body string `json:"body,omitempty"`
	// Params are the values of the template's parameters (template.put
	// only; Vitrage's `template add --params`): each get_param(name) of
	// the body reads its value here, else the parameter's default. They
	// are applied as the template is loaded, on every node and in every
	// replay alike, and kept with it.
	Params map[string]string `json:"params,omitempty"`
}

// Subscription carries a notification subscription. Spec is the notifier's
// own JSON document; the envelope only checks that it is a JSON object.
type Subscription struct {
	ID   string          `json:"id"`
	Spec json.RawMessage `json:"spec,omitempty"`
}

// Record is an Event with its place in the log.
type Record struct {
	// Seq is dense and increasing from 1, in commit order.
	Seq int64 `json:"seq"`
	// RecordedAt is the persister's commit time; it never decreases along Seq,
	// so "the state at time T" is a prefix of the log.
	RecordedAt time.Time `json:"recorded_at"`
	Event      Event     `json:"event"`
}

// Batch is a run of consecutive Records as the persister committed them,
// published on the sequenced fanout. PrevSeq is the seq just before the
// first record, so a follower detects a gap with PrevSeq != its applied seq.
type Batch struct {
	PrevSeq int64    `json:"prev_seq"`
	Records []Record `json:"records"`
}

// FirstSeq is the seq of the batch's first record (PrevSeq+1).
func (b Batch) FirstSeq() int64 { return b.PrevSeq + 1 }

// LastSeq is the seq of the batch's last record (PrevSeq if empty).
func (b Batch) LastSeq() int64 { return b.PrevSeq + int64(len(b.Records)) }

// ContentHash is a stable hash of an entity's content (encoding/json writes
// struct fields in order and map keys sorted): part of the event ids of
// reports that may repeat, so that a repeat dedups and a change does not.
func ContentHash(e Entity) string {
	b, err := json.Marshal(e)
	if err != nil {
		// An Entity holds only strings, maps and slices of them; Marshal
		// cannot fail. Stay total anyway.
		b = fmt.Appendf(nil, "%#v", e)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// DeriveID returns a stable event id from the parts that identify an
// observation, so re-publishing the same observation dedups in the log.
func DeriveID(parts ...string) string {
	// One buffer, hashed at once: each part length-prefixed (8 bytes,
	// little endian) so ("ab","c") and ("a","bc") differ.
	var stack [256]byte
	b := stack[:0]
	for _, p := range parts {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(p)))
		b = append(b, p...)
	}
	sum := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

// ClampFuture moves the ObservedAt of every event observed after latest
// back to latest, and returns how many it moved. A producer whose clock is
// ahead would otherwise date events in the future, and the graph, which
// takes an entity's newest observation, would then pass over every later
// report of that entity (dated right) until the real time caught up.
func ClampFuture(evs []Event, latest time.Time) int {
	n := 0
	for i := range evs {
		if evs[i].ObservedAt.After(latest) {
			evs[i].ObservedAt = latest
			n++
		}
	}
	return n
}
