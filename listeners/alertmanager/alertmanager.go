// Package alertmanager receives Alertmanager webhook notifications
// (payload version 4, with or without the fields newer Alertmanagers add)
// and turns each alert into an alarm event on its resource, mapped with the
// same label rules (package alertmap) as the Alertmanager driver: an
// entity.upsert while the alert fires, an entity.delete once it resolved.
//
// Alertmanager re-sends a group's alerts on every group_interval and
// repeat_interval; the event id is derived from the alert's fingerprint,
// startsAt, status and endsAt, and its alarm's content, so a re-sent alert
// dedups in the log. An alert too large once encoded is shortened (its
// annotations, see Shorten) or dead-lettered, never refused: Alertmanager
// does not retry a 4xx.
package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/causeway/causeway/drivers/alertmap"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/listeners"
)

// Defaults of Config.
const (
	// DefaultSource is the Alertmanager pull driver's default source
	// (drivers/alertmanager): see Config.Source.
	DefaultSource = "alertmanager"
	DefaultPath   = "/v1/alertmanager"
	// DefaultMaxBodyBytes takes a group of tens of thousands of alerts:
	// the big groups come in the big outages, when the RCA matters most.
	DefaultMaxBodyBytes = 32 << 20
	// Version is the webhook payload version understood here.
	Version = "4"
)

// ErrPayload is wrapped by every error of ParsePayload.
var ErrPayload = errors.New("invalid webhook payload")

// Config configures the webhook endpoint.
type Config struct {
	// Source names the listener in the events (default "alertmanager").
	// The default is the Alertmanager pull driver's source: an alert is
	// then one source's, whichever way it arrived, and the pull's full
	// syncs also remove an alert whose resolve notification was lost (or
	// never sent: send_resolved false). The pull publishes its sync.begin
	// before it reads Alertmanager, so an alert the webhook reports
	// meanwhile is normally not removed (package drivers says when it is,
	// until the next pull). Give it another name when the webhooks come
	// from an Alertmanager the pull driver does not read, or with another
	// mapping than the pull's: the pull would remove their alerts.
	Source string `yaml:"source"`
	// Path of the endpoint (default /v1/alertmanager): a clean URL path of
	// ASCII letters, digits and -._~/ (listeners.CheckPath).
	Path string `yaml:"path"`
	// Mapping maps alerts to alarms on resources.
	Mapping alertmap.Config `yaml:"mapping"`
	// MaxBodyBytes bounds a webhook's body (default 32 MiB), in place of
	// the server's max_body_bytes. Alertmanager sends a group's alerts in
	// one request and does not retry a 413: a larger group is lost
	// (logged as an error, counted as too_large). Alertmanager's
	// max_alerts (webhook_config) keeps its groups under it: the alerts it
	// leaves out are then reported (see Decode).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Validate reports every problem of c, naming its YAML path.
func (c Config) Validate() error {
	var errs []error
	if c.Source != "" {
		if err := event.CheckSource(c.Source); err != nil {
			errs = append(errs, err) // "source: ..."
		}
	}
	if c.Path != "" {
		if err := listeners.CheckPath(c.Path); err != nil {
			errs = append(errs, fmt.Errorf("path: %w", err))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("max_body_bytes: must not be negative"))
	}
	if err := c.Mapping.Validate(); err != nil {
		errs = append(errs, prefix("mapping.", err))
	}
	return errors.Join(errs...)
}

func prefix(p string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, fmt.Errorf("%s%w", p, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s%w", p, err)
}

// Payload is the webhook body. Top-level fields this package does not use
// (whatever newer Alertmanagers add) are accepted and ignored, so a newer
// sender keeps working. A payload with truncatedAlerts is taken in part:
// the alerts Alertmanager left out are a refused part (see Decode).
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Payload.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// ParsePayload decodes and checks a webhook body. Its errors wrap
// ErrPayload and name the offending field.
func ParsePayload(b []byte) (*Payload, error) {
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, fmt.Errorf("%w: %s: must be %s, not %s", ErrPayload, te.Field, te.Type, te.Value)
		}
		return nil, fmt.Errorf("%w: malformed JSON: %v", ErrPayload, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrPayload)
	}
	if p.Version != Version {
		return nil, fmt.Errorf("%w: version: unsupported webhook payload version %q (want %q)", ErrPayload, p.Version, Version)
	}
	var errs []error
	for i, a := range p.Alerts {
		f := fmt.Sprintf("alerts[%d]", i)
		if a.Status != StatusFiring && a.Status != StatusResolved {
			errs = append(errs, fmt.Errorf("%w: %s.status: must be %q or %q, not %q", ErrPayload, f, StatusFiring, StatusResolved, a.Status))
		}
		if len(a.Labels) == 0 {
			errs = append(errs, fmt.Errorf("%w: %s.labels: is required", ErrPayload, f))
		}
		if a.StartsAt.IsZero() {
			errs = append(errs, fmt.Errorf("%w: %s.startsAt: is required", ErrPayload, f))
		}
		if a.Status == StatusResolved && a.EndsAt.IsZero() {
			errs = append(errs, fmt.Errorf("%w: %s.endsAt: is required for a resolved alert", ErrPayload, f))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &p, nil
}

// Webhook is the endpoint's decoder. It is immutable and safe for
// concurrent use.
type Webhook struct {
	cfg    Config
	mapper *alertmap.Mapper
}

// New validates cfg and builds the mapper.
func New(cfg Config) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alertmanager webhook config: %w", err)
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	m, err := alertmap.New(cfg.Mapping)
	if err != nil {
		return nil, err
	}
	return &Webhook{cfg: cfg, mapper: m}, nil
}

// Endpoint is the webhook as an endpoint of the listener server.
func (w *Webhook) Endpoint() listeners.Endpoint {
	// Alertmanager does not retry a 4xx: one bad alert must not cost the
	// others of its group.
	return listeners.Endpoint{Name: "alertmanager", Path: w.cfg.Path, Decoder: w, InPart: true, Shorten: Shorten, MaxBodyBytes: w.cfg.MaxBodyBytes}
}

// Decode turns a webhook body into one event per alert: entity.upsert of
// the alarm while firing (ObservedAt startsAt), entity.delete once resolved
// (ObservedAt endsAt). A firing alert the mapping rules cannot map is
// refused (a *listeners.Refused beside the other alerts' events): the
// others of its group are taken all the same. A resolved one needs no
// mapping: its alarm is named by the fingerprint. The alerts of a payload
// that Alertmanager truncated (truncatedAlerts, over the receiver's
// max_alerts) are taken too, with the truncation refused: it is logged
// and counted, never passed over in silence.
func (w *Webhook) Decode(body []byte) ([]event.Event, error) {
	p, err := ParsePayload(body)
	if err != nil {
		return nil, err
	}
	evs := make([]event.Event, 0, len(p.Alerts))
	var errs []error
	for i, a := range p.Alerts {
		al := alertmap.Alert{Fingerprint: a.Fingerprint, Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL}
		ent, err := w.mapper.Entity(al)
		var content string // hashed into the event id
		switch {
		case err == nil:
			content = event.ContentHash(ent)
		case a.Status == StatusResolved:
			// The alarm of a resolved alert is named by the alarm type
			// and the fingerprint alone: it clears even if no rule maps
			// the alert's labels any more (the mapping changed since it
			// fired). Had it never been mapped, the delete finds no
			// alarm and changes nothing.
			content = event.ContentHash(w.mapper.Ref(al))
		default:
			errs = append(errs, fmt.Errorf("alerts[%d] (fingerprint %q): %w", i, a.Fingerprint, err))
			continue
		}
		// The id names the report: a repeat dedups, while a firing alert
		// whose annotations (the alarm's properties) changed is a new one.
		ev := event.Event{
			V: event.Version,
			EventID: event.DeriveID(w.cfg.Source, alertmap.AlarmID(al), a.StartsAt.UTC().Format(time.RFC3339Nano),
				a.Status, a.EndsAt.UTC().Format(time.RFC3339Nano), content),
			Source: w.cfg.Source,
		}
		if a.Status == StatusFiring {
			ev.Kind, ev.ObservedAt, ev.Entity = event.KindEntityUpsert, a.StartsAt.UTC(), &ent
		} else {
			ref := w.mapper.Ref(al)
			ev.Kind, ev.ObservedAt, ev.Entity = event.KindEntityDelete, a.EndsAt.UTC(), &ref
		}
		if err := ev.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("alerts[%d] (fingerprint %q): %w", i, a.Fingerprint, err))
			continue
		}
		evs = append(evs, ev)
	}
	if p.TruncatedAlerts > 0 {
		// Alertmanager sent only the first max_alerts alerts of the
		// group: the others cannot be taken from this payload.
		errs = append(errs, fmt.Errorf("truncatedAlerts: %d alerts of group %q were left out by Alertmanager (the receiver's max_alerts); "+
			"they are not reported by this webhook", p.TruncatedAlerts, p.GroupKey))
	}
	if len(errs) > 0 {
		return evs, &listeners.Refused{Errs: errs}
	}
	return evs, nil
}

// ShortenedProperty is the property of an alarm whose annotations were
// shortened to fit the event size limit: the names of those annotations,
// sorted, comma-separated.
const ShortenedProperty = alertmap.ShortenedProperty

// Shorten shortens the annotations of an alert's alarm over
// alertmap.MaxEntityBytes once encoded, which say things about the alert
// but do not identify it (alertmap.ShortenAnnotations, which the
// Alertmanager driver's pull applies at the same bound, so an alert gives
// the same alarm whichever way it arrives); cut says whether it did. The
// event id, derived by Decode from the whole alert, is kept: an alert sent
// again gives the same event, and two alerts that differ only past the cut
// keep two ids. It fails when the alarm is over the bound without its
// annotations (its labels, which identify it, are never cut): the event is
// then published whole if it fits, else dead-lettered
// (listeners.Endpoint.Shorten).
func Shorten(ev event.Event) (short event.Event, cut bool, err error) {
	if ev.Entity == nil {
		return ev, false, nil
	}
	ent, cut, err := alertmap.ShortenAnnotations(*ev.Entity)
	if err != nil || !cut {
		return ev, false, err
	}
	ev.Entity = &ent
	return ev, true, nil
}
