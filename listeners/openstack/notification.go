// Package openstack consumes OpenStack notifications from RabbitMQ (the
// oslo.messaging envelope, version 2.0, or without it, as oslo's version 1
// "messaging" driver sends them) and turns nova's versioned
// notifications into resource events: instance.* into nova.instance
// upserts (contained by their nova.host), and instance.delete.end, or
// any of an instance in vm_state deleted, into a delete; service.create and service.update of nova-compute into nova.host
// upserts (contained by their nova.zone), and its service.delete into a
// delete of the host.
//
// Invariant 1 of DESIGN.md: a notification is acked only after the events
// made of it were published (Publish returned nil). A notification that is
// not a valid envelope is dead-lettered with its reason, never dropped
// silently; one of a type that has no meaning here is acked and counted.
package openstack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/clip"
	"github.com/causeway/causeway/internal/event"
)

// Entity types and relationship used for nova.
const (
	TypeInstance = "nova.instance"
	TypeHost     = "nova.host"
	TypeZone     = "nova.zone"
	Contains     = "contains"
	// OsloVersion is the envelope version understood here.
	OsloVersion = "2.0"
)

// ErrNotification is wrapped by every decode error: the message can never
// be processed and is dead-lettered.
var ErrNotification = errors.New("invalid notification")

// bad is a refusal. Its text quotes the notification, so it is clipped:
// it goes to a log line and a dead letter's header.
func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotification, clip.String(fmt.Sprintf(format, args...), maxReason))
}

// maxReason bounds the text of a refusal.
const maxReason = 512

// Envelope is oslo.messaging's wire envelope.
type Envelope struct {
	Version string `json:"oslo.version"`
	Message string `json:"oslo.message"`
}

// Notification is the message inside the envelope.
type Notification struct {
	MessageID   string          `json:"message_id"`
	PublisherID string          `json:"publisher_id"`
	EventType   string          `json:"event_type"`
	Priority    string          `json:"priority"`
	Timestamp   string          `json:"timestamp"`
	Payload     json.RawMessage `json:"payload"`
}

// versioned is a nova versioned object.
type versioned struct {
	Name      string          `json:"nova_object.name"`
	Namespace string          `json:"nova_object.namespace"`
	Version   string          `json:"nova_object.version"`
	Data      json.RawMessage `json:"nova_object.data"`
}

// ParseEnvelope unwraps an oslo.messaging message. As oslo's own
// listeners do, it takes a body with both envelope keys as the 2.0
// envelope, and any other JSON object as the notification itself: what
// oslo's "messaging" notification driver (version 1) sends.
func ParseEnvelope(body []byte) (Notification, error) {
	var env struct {
		Version *string `json:"oslo.version"`
		Message *string `json:"oslo.message"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Notification{}, bad("envelope is not JSON: %v", err)
	}
	field := "oslo.message."
	msg := body
	if env.Version != nil && env.Message != nil {
		if *env.Version != OsloVersion {
			return Notification{}, bad("oslo.version: unsupported %q (want %q)", *env.Version, OsloVersion)
		}
		if *env.Message == "" {
			return Notification{}, bad("oslo.message: is required")
		}
		msg = []byte(*env.Message)
	} else {
		field = ""
	}
	var n Notification
	if err := json.Unmarshal(msg, &n); err != nil {
		if field == "" {
			return Notification{}, bad("not a JSON notification: %v", err)
		}
		return Notification{}, bad("oslo.message is not a JSON notification: %v", err)
	}
	if n.EventType == "" {
		return Notification{}, bad("%sevent_type: is required", field)
	}
	return n, nil
}

// timeLayouts of oslo's timestamps: Python's str() of a datetime,
// "2026-03-01 10:00:00.123456" (UTC; no fraction when it is zero), with
// the zone when the datetime is aware ("+00:00"), and the ISO forms. A
// time without a zone is UTC.
var timeLayouts = []string{"2006-01-02 15:04:05.999999", "2006-01-02 15:04:05.999999Z07:00", time.RFC3339Nano, "2006-01-02T15:04:05.999999"}

func parseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, bad("oslo.message.timestamp: %q is not a timestamp", s)
}

// Nova's notifications of a service's life: all three carry a
// ServiceStatusPayload.
const (
	serviceCreate = "service.create"
	serviceUpdate = "service.update"
	serviceDelete = "service.delete"
)

// Handled reports whether event type t becomes events here.
func Handled(t string) bool {
	switch t {
	case serviceCreate, serviceUpdate, serviceDelete:
		return true
	}
	return strings.HasPrefix(t, "instance.")
}

// Decode turns one message body into events of source. It returns no
// events and no error for a notification of a type that is not handled,
// and an error wrapping ErrNotification for a message that can never be
// processed.
func Decode(source string, body []byte) ([]event.Event, error) {
	n, err := ParseEnvelope(body)
	if err != nil {
		return nil, err
	}
	if !Handled(n.EventType) {
		return nil, nil
	}
	at, err := parseTime(n.Timestamp)
	if err != nil {
		return nil, err
	}
	var obj versioned
	if err := json.Unmarshal(n.Payload, &obj); err != nil || len(obj.Data) == 0 {
		return nil, bad("payload of %s: not a versioned notification (nova_object.data missing)", n.EventType)
	}
	id := n.MessageID
	if id == "" {
		id = event.DeriveID(string(body))
	}
	ev := event.Event{V: event.Version, EventID: event.DeriveID(source, id), Source: source, ObservedAt: at}
	switch {
	case n.EventType == serviceCreate || n.EventType == serviceUpdate:
		ent, ok, err := hostEntity(obj.Data)
		if err != nil || !ok {
			return nil, err
		}
		ev.Kind, ev.Entity = event.KindEntityUpsert, ent
	case n.EventType == serviceDelete:
		// The compute service is gone from nova (openstack compute
		// service delete): so is its host.
		ent, ok, err := hostEntity(obj.Data)
		if err != nil || !ok {
			return nil, err
		}
		ev.Kind, ev.Entity = event.KindEntityDelete, &event.Entity{Category: ent.Category, Type: ent.Type, ID: ent.ID}
	default:
		ent, err := instanceEntity(obj.Data)
		if err != nil {
			return nil, err
		}
		ev.Kind, ev.Entity = event.KindEntityUpsert, ent
		// An instance in vm_state deleted is gone, whatever the
		// notification: an upsert would bring it back into the graph,
		// live. Nova's usage audit sends instance.exists, dated after the
		// delete, for every instance deleted in the past period.
		if n.EventType == "instance.delete.end" || ent.State == stateDeleted {
			ev.Kind, ev.Entity = event.KindEntityDelete, &event.Entity{Category: ent.Category, Type: ent.Type, ID: ent.ID}
		}
	}
	if err := ev.Validate(); err != nil {
		return nil, bad("%s: %v", n.EventType, err)
	}
	return []event.Event{ev}, nil
}

// fields reads a versioned object's data as a map of raw values.
func fields(data json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, bad("nova_object.data is not an object: %v", err)
	}
	return m, nil
}

// str reads a scalar field as a string; null and absent are "".
func str(m map[string]json.RawMessage, k string) string {
	raw, ok := m[k]
	if !ok {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return ""
	}
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

func instanceEntity(data json.RawMessage) (*event.Entity, error) {
	m, err := fields(data)
	if err != nil {
		return nil, err
	}
	uuid := str(m, "uuid")
	if uuid == "" {
		return nil, bad("nova_object.data.uuid: is required")
	}
	e := &event.Entity{
		Category:  event.CategoryResource,
		Type:      TypeInstance,
		ID:        uuid,
		Name:      str(m, "display_name"),
		State:     instanceState(str(m, "state")),
		ProjectID: str(m, "tenant_id"),
	}
	props := map[string]string{}
	for _, k := range []string{"host", "node", "power_state", "task_state", "availability_zone", "image_uuid", "user_id", "host_name"} {
		if v := str(m, k); v != "" {
			props[k] = v
		}
	}
	if raw, ok := m["flavor"]; ok {
		var f versioned
		if json.Unmarshal(raw, &f) == nil && len(f.Data) > 0 {
			if fm, err := fields(f.Data); err == nil {
				if v := str(fm, "name"); v != "" {
					props["flavor"] = v
				}
			}
		}
	}
	if raw, ok := m["state_update"]; ok {
		var su versioned
		if json.Unmarshal(raw, &su) == nil && len(su.Data) > 0 {
			if sm, err := fields(su.Data); err == nil {
				if v := str(sm, "old_state"); v != "" {
					props["old_state"] = v
				}
			}
		}
	}
	if len(props) > 0 {
		e.Properties = props
	}
	if h := str(m, "host"); h != "" {
		e.Relations = []event.Relation{{Relationship: Contains, Category: event.CategoryResource, Type: TypeHost, ID: h, Direction: event.In}}
	}
	return e, nil
}

// hostEntity maps a ServiceStatusPayload; only nova-compute services are
// hosts (ok false for the others).
func hostEntity(data json.RawMessage) (*event.Entity, bool, error) {
	m, err := fields(data)
	if err != nil {
		return nil, false, err
	}
	if str(m, "binary") != "nova-compute" {
		return nil, false, nil
	}
	host := str(m, "host")
	if host == "" {
		return nil, false, bad("nova_object.data.host: is required")
	}
	state := "available"
	switch {
	case str(m, "forced_down") == "true":
		state = "down"
	case str(m, "disabled") == "true":
		state = "disabled"
	}
	e := &event.Entity{Category: event.CategoryResource, Type: TypeHost, ID: host, Name: host, State: state}
	props := map[string]string{}
	for _, k := range []string{"binary", "disabled", "disabled_reason", "forced_down", "last_seen_up", "uuid", "version"} {
		if v := str(m, k); v != "" {
			props[k] = v
		}
	}
	e.Properties = props
	if z := str(m, "availability_zone"); z != "" {
		e.Relations = []event.Relation{{Relationship: Contains, Category: event.CategoryResource, Type: TypeZone, ID: z, Direction: event.In}}
	}
	return e, true, nil
}

// stateDeleted is the state of an instance in nova's vm_state deleted.
const stateDeleted = "DELETED"

// instanceState is the state of an instance as the states configuration
// names it (graph/states/nova.instance.yaml): nova's vm_state in capitals,
// but for soft-delete, whose name there is the API's SOFT_DELETED.
func instanceState(vmState string) string {
	if vmState == "soft-delete" {
		return "SOFT_DELETED"
	}
	return strings.ToUpper(vmState)
}
