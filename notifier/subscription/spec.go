// Package subscription defines a webhook subscription — the Spec document
// carried by subscription.put events — its strict decoder and validation,
// the filter that decides which alarm transitions a subscriber receives, and
// the Registry that applies subscription events in log order.
//
// Subscriptions are events in the log (invariant 3 of DESIGN.md): a replay to
// seq s knows exactly who was subscribed at s. Everything here is pure and
// deterministic: no clock, no I/O, sorted iteration.
//
// Secrets never travel in the log. A Spec names its signing secret with
// SecretRef, a key of the notifier configuration's `secrets` map (whose value
// is a `whsec_...` string or a file holding one); the notifier resolves it
// when it delivers. A Spec without SecretRef is delivered unsigned.
package subscription

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on a Spec from outside.
const (
	// MaxSpecBytes bounds one encoded Spec.
	MaxSpecBytes = 64 << 10
	// MaxListLen bounds each filter list and the header map.
	MaxListLen = 256
	// MaxStringLen bounds every string in a Spec except the URL.
	MaxStringLen = 1024
	// MaxURLLen bounds the URL.
	MaxURLLen = 2048
)

// Formats of the payload.
const (
	// FormatCauseway is Causeway's own JSON document (the default).
	FormatCauseway = "causeway"
	// FormatAlertmanager is shaped like Alertmanager's webhook (version 4).
	FormatAlertmanager = "alertmanager"
)

// Transitions a subscriber can ask for.
const (
	Raised          = "raised"
	Cleared         = "cleared"
	SeverityChanged = "severity_changed"
)

// Backlog policies, applied when a subscriber's backlog passes its limit.
const (
	// BacklogAlert keeps every row and is loud (metric, log, status): the
	// backlog grows until the subscriber recovers or rows reach max age.
	BacklogAlert = "alert"
	// BacklogDeadLetter moves the oldest pending rows beyond the limit to
	// the dead-letter table (loudly, with the reason), from where
	// `causeway webhooks redrive` can send them again.
	BacklogDeadLetter = "dead_letter"
)

// ErrInvalid is wrapped by every decode and validation error.
var ErrInvalid = errors.New("invalid subscription")

// Spec is a subscription's JSON document (event.Subscription.Spec).
type Spec struct {
	// URL receives POSTs (http or https).
	URL string `json:"url"`
	// Format of the payload: "causeway" (default) or "alertmanager".
	Format string `json:"format,omitempty"`
	// Filter selects the alarm transitions to send; empty sends all.
	Filter Filter `json:"filter,omitzero"`
	// Headers are added to every request (not the webhook-* ones).
	Headers map[string]string `json:"headers,omitempty"`
	// SecretRef names the signing secret in the notifier's config.
	SecretRef string `json:"secret_ref,omitempty"`
	// Delivery overrides the notifier's delivery defaults.
	Delivery Delivery `json:"delivery,omitzero"`
}

// Filter selects alarm transitions. Each non-empty list must match (AND
// across lists, OR within a list); string comparisons ignore case. Once a
// subscription is told of an alarm, its later transitions need only match
// Transitions, until it clears (Registry.Tell).
type Filter struct {
	// Transitions: raised, cleared, severity_changed.
	Transitions []string `json:"transitions,omitempty"`
	// AlarmTypes match the alarm vertex's type ("prometheus", "vitrage", ...).
	AlarmTypes []string `json:"alarm_types,omitempty"`
	// AlarmNames match the alarm's name.
	AlarmNames []string `json:"alarm_names,omitempty"`
	// Severities match the alarm's normalised severity (its raw one if none).
	Severities []string `json:"severities,omitempty"`
	// ResourceTypes match the type of the resource the alarm is on.
	ResourceTypes []string `json:"resource_types,omitempty"`
	// Projects match the alarm's project id (or its resource's).
	Projects []string `json:"projects,omitempty"`
	// Regex is Vitrage's regex_filter: field name -> regular expression,
	// matched from the start of the field's value (Python's re.match). Fields:
	// name, type, severity, state, resource_type, resource_id, resource_name,
	// project_id, id (the alarm's external id), or any free property.
	Regex map[string]string `json:"regex,omitempty"`
}

// Delivery is the per-subscription delivery policy; zero values take the
// notifier's defaults.
type Delivery struct {
	// Timeout of one HTTP attempt ("10s").
	Timeout Duration `json:"timeout,omitzero"`
	// MaxAge: a row still undelivered this long after it was queued moves
	// to the dead-letter table.
	MaxAge Duration `json:"max_age,omitzero"`
	// BackoffInitial and BackoffMax bound the exponential backoff.
	BackoffInitial Duration `json:"backoff_initial,omitzero"`
	BackoffMax     Duration `json:"backoff_max,omitzero"`
	// MaxBacklog is the pending-row count over which the backlog is loud.
	MaxBacklog int `json:"max_backlog,omitempty"`
	// BacklogPolicy: "alert" or "dead_letter".
	BacklogPolicy string `json:"backlog_policy,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("1m30s").
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: "non-string", Type: reflect.TypeFor[Duration]()}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: strconv.Quote(s), Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(v)
	return nil
}

// Decode parses and validates a Spec strictly: unknown fields, trailing
// data, oversized input and every rule of Validate are errors naming the
// field.
func Decode(b []byte) (Spec, error) {
	if len(b) > MaxSpecBytes {
		return Spec{}, fmt.Errorf("%w: spec: %d bytes exceeds the limit of %d", ErrInvalid, len(b), MaxSpecBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			field, want := te.Field, te.Type.Kind().String()
			if field == "" {
				field = "spec"
			}
			if te.Type == reflect.TypeFor[Duration]() {
				want = "a duration string like \"30s\""
			}
			return Spec{}, fmt.Errorf("%w: %s: must be %s, not %s", ErrInvalid, field, want, te.Value)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return Spec{}, fmt.Errorf("%w: spec: truncated or empty JSON", ErrInvalid)
		default:
			return Spec{}, fmt.Errorf("%w: spec: %v", ErrInvalid, err)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return Spec{}, fmt.Errorf("%w: spec: trailing data after the JSON object", ErrInvalid)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// Encode returns the canonical JSON of s after validating it.
func Encode(s Spec) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	return b, nil
}

// Validate joins every problem of s, each naming its JSON path.
func (s Spec) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	switch u, err := url.Parse(s.URL); {
	case s.URL == "":
		bad("url", "is required")
	case len(s.URL) > MaxURLLen:
		bad("url", "longer than %d bytes", MaxURLLen)
	case err != nil:
		bad("url", "%q is not a URL", s.URL)
	case u.Scheme != "http" && u.Scheme != "https":
		bad("url", "scheme must be http or https, not %q", u.Scheme)
	case u.Host == "":
		bad("url", "has no host")
	case u.User != nil:
		bad("url", "must not carry credentials (use headers with a secret-free value, or a signing secret)")
	}
	switch s.Format {
	case "", FormatCauseway, FormatAlertmanager:
	default:
		bad("format", "must be %q or %q, not %q", FormatCauseway, FormatAlertmanager, s.Format)
	}
	f := s.Filter
	for _, l := range []struct {
		name string
		v    []string
	}{
		{"filter.transitions", f.Transitions}, {"filter.alarm_types", f.AlarmTypes}, {"filter.alarm_names", f.AlarmNames},
		{"filter.severities", f.Severities}, {"filter.resource_types", f.ResourceTypes}, {"filter.projects", f.Projects},
	} {
		if len(l.v) > MaxListLen {
			bad(l.name, "more than %d entries", MaxListLen)
		}
		for i, v := range l.v {
			if v == "" || len(v) > MaxStringLen {
				bad(fmt.Sprintf("%s[%d]", l.name, i), "must be 1 to %d bytes", MaxStringLen)
			}
		}
	}
	for i, t := range f.Transitions {
		if t != Raised && t != Cleared && t != SeverityChanged {
			bad(fmt.Sprintf("filter.transitions[%d]", i), "must be %s, %s or %s, not %q", Raised, Cleared, SeverityChanged, t)
		}
	}
	if len(f.Regex) > MaxListLen {
		bad("filter.regex", "more than %d entries", MaxListLen)
	}
	for _, k := range sortedKeys(f.Regex) {
		if k == "" || len(k) > MaxStringLen || len(f.Regex[k]) > MaxStringLen {
			bad("filter.regex."+k, "field and pattern must be 1 to %d bytes", MaxStringLen)
			continue
		}
		if _, err := regexp.Compile(f.Regex[k]); err != nil {
			bad("filter.regex."+k, "bad regular expression: %v", err)
		}
	}
	if len(s.Headers) > MaxListLen {
		bad("headers", "more than %d entries", MaxListLen)
	}
	for _, k := range sortedKeys(s.Headers) {
		v := s.Headers[k]
		switch {
		case !validHeaderName(k):
			bad("headers."+k, "is not a valid header name")
		case strings.HasPrefix(strings.ToLower(k), "webhook-"), strings.EqualFold(k, "content-type"), strings.EqualFold(k, "host"), strings.EqualFold(k, "content-length"):
			bad("headers."+k, "is set by the notifier")
		case len(v) > MaxStringLen || strings.ContainsAny(v, "\r\n\x00"):
			bad("headers."+k, "value must be at most %d bytes without CR, LF or NUL", MaxStringLen)
		}
	}
	if len(s.SecretRef) > MaxStringLen || strings.ContainsAny(s.SecretRef, " \t\r\n") {
		bad("secret_ref", "must be a name of at most %d bytes without spaces", MaxStringLen)
	}
	d := s.Delivery
	for _, x := range []struct {
		name string
		v    Duration
	}{{"delivery.timeout", d.Timeout}, {"delivery.max_age", d.MaxAge}, {"delivery.backoff_initial", d.BackoffInitial}, {"delivery.backoff_max", d.BackoffMax}} {
		if x.v < 0 {
			bad(x.name, "must not be negative")
		}
	}
	if d.BackoffInitial > 0 && d.BackoffMax > 0 && d.BackoffInitial > d.BackoffMax {
		bad("delivery.backoff_initial", "is larger than delivery.backoff_max")
	}
	if d.MaxBacklog < 0 {
		bad("delivery.max_backlog", "must not be negative")
	}
	switch d.BacklogPolicy {
	case "", BacklogAlert, BacklogDeadLetter:
	default:
		bad("delivery.backlog_policy", "must be %q or %q, not %q", BacklogAlert, BacklogDeadLetter, d.BacklogPolicy)
	}
	return errors.Join(errs...)
}

func validHeaderName(k string) bool {
	if k == "" || len(k) > 256 {
		return false
	}
	for _, r := range k {
		// RFC 9110 token characters.
		if r > 126 || r <= 32 || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r) {
			return false
		}
	}
	return http.CanonicalHeaderKey(k) != ""
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
