// Package events is the generic event API, POST /v1/events, in the shape
// of Vitrage's `vitrage event post --type T --time T --details '{...}'`
// (the OPNFV Doctor inspector's format): an event type, a time, and details
// that name the resource (hostname, or resource_type and resource_id) and
// carry status down/up, severity, source, monitor ids. Status down raises an
// alarm named after the event type on the resource (entity.upsert); status
// up clears it (entity.delete).
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/listeners"
)

// Defaults of Config.
const (
	DefaultSource       = "events"
	DefaultPath         = "/v1/events"
	DefaultAlarmType    = "doctor"
	DefaultResourceType = "nova.host"
	StateActive         = "ACTIVE"
)

// ErrEvent is wrapped by every error of Parse.
var ErrEvent = errors.New("invalid event")

// Config configures the endpoint.
type Config struct {
	// Source names the listener in the events (default "events").
	Source string `yaml:"source"`
	// Path of the endpoint (default /v1/events): a clean URL path of ASCII
	// letters, digits and -._~/ (listeners.CheckPath).
	Path string `yaml:"path"`
	// AlarmType is the entity type of the alarms (default "doctor", the
	// Vitrage datasource of such events).
	AlarmType string `yaml:"alarm_type"`
	// ResourceType is the type of the resource named by details.hostname
	// (default nova.host); details.resource_type overrides it.
	ResourceType string `yaml:"resource_type"`
}

// Validate reports every problem of c, naming its YAML key.
func (c Config) Validate() error {
	var errs []error
	if c.Path != "" {
		if err := listeners.CheckPath(c.Path); err != nil {
			errs = append(errs, fmt.Errorf("path: %w", err))
		}
	}
	if c.Source != "" {
		if err := event.CheckSource(c.Source); err != nil {
			errs = append(errs, err) // "source: ..."
		}
	}
	if c.AlarmType == event.DeducedType {
		// Every alarm of it would be refused as input.
		errs = append(errs, fmt.Errorf("alarm_type: %q is the type of deduced alarms, which only the evaluator raises", c.AlarmType))
	}
	for _, f := range [...]struct{ name, v string }{{"alarm_type", c.AlarmType}, {"resource_type", c.ResourceType}} {
		if len(f.v) > event.MaxIDLen || strings.ContainsFunc(f.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			errs = append(errs, fmt.Errorf("%s: must be at most %d bytes without control characters", f.name, event.MaxIDLen))
		}
	}
	return errors.Join(errs...)
}

// Event is the request body.
type Event struct {
	Type    string         `json:"type"`
	Time    string         `json:"time"`
	Details map[string]any `json:"details"`
}

// Statuses of details.status.
const (
	StatusDown = "down"
	StatusUp   = "up"
)

// timeLayouts are accepted for Event.Time; a time without a zone is UTC,
// as Vitrage's clients send it.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
}

// Parse decodes a request body strictly (unknown top-level fields are
// errors) and returns the event with its parsed time.
func Parse(b []byte) (Event, time.Time, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return Event{}, time.Time{}, fmt.Errorf("%w: %s: must be %s, not %s", ErrEvent, te.Field, te.Type, te.Value)
		case errors.Is(err, io.EOF):
			return Event{}, time.Time{}, fmt.Errorf("%w: empty body", ErrEvent)
		}
		return Event{}, time.Time{}, fmt.Errorf("%w: malformed JSON: %v", ErrEvent, err)
	}
	if dec.More() {
		return Event{}, time.Time{}, fmt.Errorf("%w: trailing data after the JSON object", ErrEvent)
	}
	var errs []error
	if e.Type == "" {
		errs = append(errs, fmt.Errorf("%w: type: is required", ErrEvent))
	}
	var at time.Time
	if e.Time == "" {
		errs = append(errs, fmt.Errorf("%w: time: is required", ErrEvent))
	} else {
		var err error
		for _, l := range timeLayouts {
			if at, err = time.Parse(l, e.Time); err == nil {
				break
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: time: %q is not an ISO 8601 timestamp", ErrEvent, e.Time))
		}
	}
	if e.Details == nil {
		errs = append(errs, fmt.Errorf("%w: details: is required", ErrEvent))
	}
	if err := errors.Join(errs...); err != nil {
		return Event{}, time.Time{}, err
	}
	return e, at.UTC(), nil
}

// API is the endpoint's decoder; it is immutable and safe for concurrent use.
type API struct {
	cfg Config
}

// New validates cfg.
func New(cfg Config) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("events config: %w", err)
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.AlarmType == "" {
		cfg.AlarmType = DefaultAlarmType
	}
	if cfg.ResourceType == "" {
		cfg.ResourceType = DefaultResourceType
	}
	return &API{cfg: cfg}, nil
}

// Endpoint is the API as an endpoint of the listener server.
func (a *API) Endpoint() listeners.Endpoint {
	return listeners.Endpoint{Name: "events", Path: a.cfg.Path, Decoder: a}
}

func detail(d map[string]any, k string) (string, error) {
	v, ok := d[k]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: details.%s: must be a string", ErrEvent, k)
	}
	return s, nil
}

// Decode turns a body into one alarm event.
func (a *API) Decode(body []byte) ([]event.Event, error) {
	e, at, err := Parse(body)
	if err != nil {
		return nil, err
	}
	var errs []error
	get := func(k string) string {
		s, err := detail(e.Details, k)
		if err != nil {
			errs = append(errs, err)
		}
		return s
	}
	rtype, rid, host := get("resource_type"), get("resource_id"), get("hostname")
	status, severity := strings.ToLower(get("status")), get("severity")
	if rtype == "" {
		rtype = a.cfg.ResourceType
	}
	if rid == "" {
		rid = host
	}
	if rid == "" {
		errs = append(errs, fmt.Errorf("%w: details.hostname: is required (or details.resource_id) to name the resource", ErrEvent))
	}
	if status != StatusDown && status != StatusUp {
		errs = append(errs, fmt.Errorf("%w: details.status: must be %q or %q, not %q", ErrEvent, StatusDown, StatusUp, status))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	id := event.DeriveID(e.Type, rtype, rid)
	ev := event.Event{
		V:          event.Version,
		EventID:    event.DeriveID(a.cfg.Source, e.Type, at.Format(time.RFC3339Nano), rtype, rid, status),
		Source:     a.cfg.Source,
		ObservedAt: at,
	}
	if status == StatusUp {
		ev.Kind = event.KindEntityDelete
		ev.Entity = &event.Entity{Category: event.CategoryAlarm, Type: a.cfg.AlarmType, ID: id}
		return []event.Event{ev}, nil
	}
	props := make(map[string]string, len(e.Details))
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := e.Details[k].(type) {
		case nil:
		case string:
			props["detail."+k] = v
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("%w: details.%s: %v", ErrEvent, k, err)
			}
			props["detail."+k] = string(b)
		}
	}
	ev.Kind = event.KindEntityUpsert
	ev.Entity = &event.Entity{
		Category: event.CategoryAlarm, Type: a.cfg.AlarmType, ID: id,
		Name: e.Type, State: StateActive, Severity: severity, Properties: props,
		Relations: []event.Relation{{Relationship: "on", Category: event.CategoryResource, Type: rtype, ID: rid, Direction: event.Out}},
	}
	// A report of the same moment with other severity or details is
	// another observation, not a repeat to drop.
	ev.EventID = event.DeriveID(ev.EventID, event.ContentHash(*ev.Entity))
	return []event.Event{ev}, nil
}
