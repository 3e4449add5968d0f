// Package alertmap maps Prometheus/Alertmanager alerts to alarms on
// resources, by configurable label rules: which labels name the resource,
// its type, the alarm and its severity. The Alertmanager driver (pull, API
// v2) and the Alertmanager webhook listener (push) share it, so one alert
// becomes the same alarm entity whichever way it arrives.
package alertmap

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/causeway/causeway/internal/event"
)

// Defaults of Config and Rule.
const (
	DefaultAlarmType      = "prometheus"
	DefaultAlarmNameLabel = "alertname"
	DefaultSeverityLabel  = "severity"
	DefaultRelationship   = "on"
	// StateActive is the state of a firing alarm (Vitrage's name).
	StateActive = "ACTIVE"
)

// Sentinel errors of Map; the message says which labels were missing.
var (
	// ErrNoRule means no rule's Match holds for the alert's labels.
	ErrNoRule = errors.New("no mapping rule matches the alert")
	// ErrMissingLabel means the matching rule needs a label the alert lacks.
	ErrMissingLabel = errors.New("alert lacks a label the mapping needs")
)

// Config is the mapping: the first rule whose Match holds decides.
type Config struct {
	// AlarmType is the entity type of the alarms (default "prometheus",
	// Vitrage's name for Prometheus alarms).
	AlarmType string `yaml:"alarm_type"`
	Rules     []Rule `yaml:"rules"`
}

// Rule maps the alerts it matches.
type Rule struct {
	// Match holds label = value pairs that must all hold; empty matches
	// every alert.
	Match map[string]string `yaml:"match"`
	// ResourceType is the resource type (nova.host, nova.instance...), or
	// ResourceTypeLabel names the label that holds it. Exactly one is set.
	ResourceType      string `yaml:"resource_type"`
	ResourceTypeLabel string `yaml:"resource_type_label"`
	// ResourceIDLabels name the labels that may hold the resource id; the
	// first one present wins.
	ResourceIDLabels []string `yaml:"resource_id_labels"`
	// StripPort turns "host:9100" into "host" (Prometheus' instance label).
	StripPort bool `yaml:"strip_port"`
	// AlarmNameLabel holds the alarm name (default alertname).
	AlarmNameLabel string `yaml:"alarm_name_label"`
	// SeverityLabel holds the severity (default severity); an alert without
	// it gets DefaultSeverity.
	SeverityLabel   string `yaml:"severity_label"`
	DefaultSeverity string `yaml:"default_severity"`
	// Relationship links the alarm to its resource (default "on").
	Relationship string `yaml:"relationship"`
}

// Load decodes a mapping from YAML strictly (unknown keys are errors) and
// validates it.
func Load(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("decode mapping: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports every problem of c, naming its YAML path.
func (c Config) Validate() error {
	var errs []error
	if err := checkName(c.AlarmType); c.AlarmType != "" && err != nil {
		errs = append(errs, fmt.Errorf("alarm_type: %w", err))
	}
	if c.AlarmType == event.DeducedType {
		// Every alarm of it would be refused as input: no alert would map.
		errs = append(errs, fmt.Errorf("alarm_type: %q is the type of deduced alarms, which only the evaluator raises", c.AlarmType))
	}
	if len(c.Rules) == 0 {
		errs = append(errs, errors.New("rules: at least one rule is required"))
	}
	for i, r := range c.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.ResourceType == "" && r.ResourceTypeLabel == "":
			errs = append(errs, fmt.Errorf("%s: one of resource_type and resource_type_label is required", p))
		case r.ResourceType != "" && r.ResourceTypeLabel != "":
			errs = append(errs, fmt.Errorf("%s: resource_type and resource_type_label exclude each other", p))
		case r.ResourceType != "":
			if err := checkName(r.ResourceType); err != nil {
				errs = append(errs, fmt.Errorf("%s.resource_type: %w", p, err))
			}
		}
		if len(r.ResourceIDLabels) == 0 {
			errs = append(errs, fmt.Errorf("%s.resource_id_labels: at least one label is required", p))
		}
		for j, l := range r.ResourceIDLabels {
			if l == "" {
				errs = append(errs, fmt.Errorf("%s.resource_id_labels[%d]: must not be empty", p, j))
			}
		}
		for k := range r.Match {
			if k == "" {
				errs = append(errs, fmt.Errorf("%s.match: label names must not be empty", p))
			}
		}
		if r.Relationship != "" {
			if err := checkName(r.Relationship); err != nil {
				errs = append(errs, fmt.Errorf("%s.relationship: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

func checkName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if len(s) > event.MaxIDLen {
		return fmt.Errorf("is %d bytes long, over the limit of %d", len(s), event.MaxIDLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// Mapper applies a validated Config. It is immutable and safe for
// concurrent use.
type Mapper struct {
	cfg Config
}

// New validates cfg and fills its defaults.
func New(cfg Config) (*Mapper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alert mapping: %w", err)
	}
	if cfg.AlarmType == "" {
		cfg.AlarmType = DefaultAlarmType
	}
	rules := make([]Rule, len(cfg.Rules))
	copy(rules, cfg.Rules)
	for i := range rules {
		r := &rules[i]
		if r.AlarmNameLabel == "" {
			r.AlarmNameLabel = DefaultAlarmNameLabel
		}
		if r.SeverityLabel == "" {
			r.SeverityLabel = DefaultSeverityLabel
		}
		if r.Relationship == "" {
			r.Relationship = DefaultRelationship
		}
	}
	cfg.Rules = rules
	return &Mapper{cfg: cfg}, nil
}

// Alarm is what the mapping found in an alert's labels.
type Alarm struct {
	Name         string
	Severity     string
	ResourceType string
	ResourceID   string
	Relationship string
}

// Map applies the first matching rule to labels. Its errors wrap ErrNoRule
// or ErrMissingLabel and name the rule and the labels.
func (m *Mapper) Map(labels map[string]string) (Alarm, error) {
	for i, r := range m.cfg.Rules {
		if !matches(r.Match, labels) {
			continue
		}
		a := Alarm{Relationship: r.Relationship}
		a.Name = labels[r.AlarmNameLabel]
		if a.Name == "" {
			return Alarm{}, fmt.Errorf("%w: rules[%d] needs label %q (the alarm name)", ErrMissingLabel, i, r.AlarmNameLabel)
		}
		a.ResourceType = r.ResourceType
		if r.ResourceTypeLabel != "" {
			a.ResourceType = labels[r.ResourceTypeLabel]
			if a.ResourceType == "" {
				return Alarm{}, fmt.Errorf("%w: rules[%d] needs label %q (the resource type)", ErrMissingLabel, i, r.ResourceTypeLabel)
			}
		}
		for _, l := range r.ResourceIDLabels {
			if v := labels[l]; v != "" {
				a.ResourceID = v
				break
			}
		}
		if a.ResourceID == "" {
			return Alarm{}, fmt.Errorf("%w: rules[%d] needs one of the labels %q (the resource id)", ErrMissingLabel, i, r.ResourceIDLabels)
		}
		if r.StripPort {
			if h, _, err := net.SplitHostPort(a.ResourceID); err == nil && h != "" {
				a.ResourceID = h
			}
		}
		a.Severity = labels[r.SeverityLabel]
		if a.Severity == "" {
			a.Severity = r.DefaultSeverity
		}
		return a, nil
	}
	return Alarm{}, fmt.Errorf("%w: labels %s", ErrNoRule, labelString(labels))
}

func matches(match, labels map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func labelString(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Alert is an Alertmanager alert, in the fields both the webhook payload
// and API v2 give.
type Alert struct {
	Fingerprint  string
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	GeneratorURL string
}

// AlarmID is the external id of the alarm of an alert: its fingerprint,
// or, when the sender gave none, a hash of its sorted labels.
func AlarmID(a Alert) string {
	if a.Fingerprint != "" {
		return a.Fingerprint
	}
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		parts = append(parts, k, a.Labels[k])
	}
	return event.DeriveID(parts...)
}

// Entity maps a firing alert to its alarm entity: category ALARM, type
// AlarmType, id AlarmID, the alarm's name and severity, state ACTIVE, the
// labels and annotations as properties ("label.<name>",
// "annotation.<name>"), and one Out relation to its resource.
func (m *Mapper) Entity(a Alert) (event.Entity, error) {
	al, err := m.Map(a.Labels)
	if err != nil {
		return event.Entity{}, err
	}
	props := make(map[string]string, len(a.Labels)+len(a.Annotations)+2)
	for k, v := range a.Labels {
		props["label."+k] = v
	}
	for k, v := range a.Annotations {
		props["annotation."+k] = v
	}
	if !a.StartsAt.IsZero() {
		props["starts_at"] = a.StartsAt.UTC().Format(time.RFC3339Nano)
	}
	if a.GeneratorURL != "" {
		props["generator_url"] = a.GeneratorURL
	}
	return event.Entity{
		Category:   event.CategoryAlarm,
		Type:       m.cfg.AlarmType,
		ID:         AlarmID(a),
		Name:       al.Name,
		State:      StateActive,
		Severity:   al.Severity,
		Properties: props,
		Relations: []event.Relation{{
			Relationship: al.Relationship,
			Category:     event.CategoryResource,
			Type:         al.ResourceType,
			ID:           al.ResourceID,
			Direction:    event.Out,
		}},
	}, nil
}

// Ref is the entity of a resolved alert, for an entity.delete: category,
// type and id only.
func (m *Mapper) Ref(a Alert) event.Entity {
	return event.Entity{Category: event.CategoryAlarm, Type: m.cfg.AlarmType, ID: AlarmID(a)}
}

// ShortenedProperty is the property of an alarm whose annotations were
// shortened to fit the event size limit (ShortenAnnotations): the names of
// those annotations, sorted, comma-separated.
const ShortenedProperty = "shortened_annotations"

// MaxEntityBytes bounds an alarm entity once encoded as JSON, so that
// its event, whatever its envelope (event id, source, kind, time: well
// under 4 KiB), fits under event.MaxEventBytes.
const MaxEntityBytes = event.MaxEventBytes - 4<<10

// ShortenAnnotations makes an alarm entity over MaxEntityBytes once
// encoded fit under it by shortening its annotations ("annotation.<name>"
// properties: descriptions, runbooks), which say things about the alert
// but do not identify it: its id, labels and relations are kept whole. The
// room left by everything else is shared fairly: each annotation shorter
// than its share is kept whole, each longer one is cut to its share on a
// character boundary and ends with a note of its full size. Their names
// are listed in ShortenedProperty. It is a pure function of e (the
// webhook and the pull cut an alert alike, and the same alert again the
// same way), and leaves e unchanged. An entity that fits is returned as it
// is; cut says whether it was shortened. It fails when the entity is over
// the bound without its annotations.
func ShortenAnnotations(e event.Entity) (short event.Entity, cut bool, err error) {
	if surelyFits(e) {
		return e, false, nil // the common case, without encoding e
	}
	size, err := entityLen(e)
	if err != nil || size <= MaxEntityBytes {
		return e, false, err
	}
	type ann struct {
		key, name, val string
		size           int // encoded, quotes left out
	}
	props := make(map[string]string, len(e.Properties)+1)
	var anns []ann
	for k, v := range e.Properties {
		props[k] = v
		if name, ok := strings.CutPrefix(k, "annotation."); ok {
			anns = append(anns, ann{key: k, name: name, val: v, size: jsonLen(v)})
			props[k] = ""
		}
	}
	// Smallest first, ties by name: the order, and so the result, is the
	// same whatever the map's.
	sort.Slice(anns, func(i, j int) bool {
		if anns[i].size != anns[j].size {
			return anns[i].size < anns[j].size
		}
		return anns[i].key < anns[j].key
	})
	all := make([]string, len(anns))
	for i, a := range anns {
		all[i] = a.name
	}
	sort.Strings(all)
	// What is left with every annotation empty, and the marker at its
	// longest (every annotation cut).
	props[ShortenedProperty] = strings.Join(all, ",")
	e.Properties = props
	base, err := entityLen(e)
	if err != nil {
		return e, false, err
	}
	if len(anns) == 0 || base > MaxEntityBytes {
		return e, false, fmt.Errorf("without its annotations its alarm still encodes to %d bytes, over %d: its labels (and other fields), which identify it, cannot be cut",
			base, MaxEntityBytes)
	}
	// Fair shares: each annotation, smallest first, takes what it needs up
	// to an equal share of the room still free.
	free := MaxEntityBytes - base
	var names []string
	for i, a := range anns {
		share := free / (len(anns) - i)
		v := a.val
		if a.size > share {
			v = cutTo(a.val, share)
			names = append(names, a.name)
		}
		props[a.key] = v
		free -= jsonLen(v)
	}
	if len(names) == 0 { // not reached: the whole would have fitted
		delete(props, ShortenedProperty)
		return e, false, nil
	}
	sort.Strings(names)
	props[ShortenedProperty] = strings.Join(names, ",")
	return e, true, nil
}

// surelyFits reports whether e is under MaxEntityBytes once encoded
// whatever its escapes: each byte of a string takes six at most (\u00XX),
// and the keys and punctuation of a property or a relation much less than
// the room allowed for them.
func surelyFits(e event.Entity) bool {
	n := len(e.Category) + len(e.Type) + len(e.ID) + len(e.Name) + len(e.State) + len(e.Severity) + len(e.ProjectID)
	for k, v := range e.Properties {
		n += len(k) + len(v)
	}
	for _, r := range e.Relations {
		n += len(r.Relationship) + len(r.Category) + len(r.Type) + len(r.ID) + len(r.Direction)
	}
	return 6*n+16*len(e.Properties)+128*len(e.Relations)+512 <= MaxEntityBytes
}

// cutTo cuts s to at most max bytes once JSON-encoded (quotes left out),
// on a character boundary, ending with a note of its full size.
func cutTo(s string, max int) string {
	note := fmt.Sprintf(" [... shortened by Causeway from %d bytes]", len(s))
	room := max - len(note)
	if room < 0 {
		room, note = max, ""
	}
	n := 0
	for i, r := range s {
		w := runeJSONLen(r, s[i:])
		if n+w > room {
			return s[:i] + note
		}
		n += w
	}
	return s + note
}

// jsonLen is the length of s encoded as a JSON string as event.Encode
// writes it (no HTML escaping), quotes left out; an upper bound for the
// rare escapes whose form it does not know.
func jsonLen(s string) int {
	n := 0
	for i, r := range s {
		n += runeJSONLen(r, s[i:])
	}
	return n
}

func runeJSONLen(r rune, at string) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '\u2028' || r == '\u2029':
		return 6
	case r == utf8.RuneError:
		if _, w := utf8.DecodeRuneInString(at); w == 1 {
			return 6 // an invalid byte: written \ufffd
		}
	}
	return utf8.RuneLen(r)
}

// entityLen is the size of e encoded as event.Encode writes it.
func entityLen(e event.Entity) (int, error) {
	b, err := event.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("encode entity %s: %w", e.ID, err)
	}
	return len(b), nil
}
