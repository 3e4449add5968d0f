package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/causeway/causeway/internal/clip"
)

// Limits on what Decode accepts from outside.
const (
	// MaxEventBytes bounds one encoded event.
	MaxEventBytes = 1 << 20
	// MaxDepth bounds JSON nesting (objects and arrays).
	MaxDepth = 32
	// MaxIDLen bounds identifiers (event ids, entity ids, types, names of sources).
	MaxIDLen = 255
	// MaxRelations bounds the relations of one entity.
	MaxRelations = 10000
	// MaxProperties bounds the free properties of one entity.
	MaxProperties = 1000
	// MaxTemplateParams bounds the parameter values of one template.put;
	// each name is an identifier (MaxIDLen).
	MaxTemplateParams = 256
	// MaxParamValueLen bounds one parameter value, in bytes: an alarm
	// name, a state, a regular expression.
	MaxParamValueLen = 4096
)

// Sentinel errors; every decode error wraps one of them.
var (
	// ErrInvalid marks an event that is well-formed JSON but breaks a rule.
	ErrInvalid = errors.New("invalid event")
	// ErrMalformed marks input that is not a decodable envelope at all.
	ErrMalformed = errors.New("malformed event")
	// ErrTooLarge marks input over MaxEventBytes or MaxDepth.
	ErrTooLarge = errors.New("event too large")
)

// ItemError is the error of one event among those of a call (a publish of
// several): Index is its place in the call, so that the caller can leave
// it out and go on with the others.
type ItemError struct {
	Index   int
	EventID string
	Err     error
}

func (e *ItemError) Error() string {
	return fmt.Sprintf("event %d (%q): %v", e.Index, e.EventID, e.Err)
}

// Unwrap returns the event's error.
func (e *ItemError) Unwrap() error { return e.Err }

// FieldError names the field a decode or validation problem is about.
type FieldError struct {
	Field string
	Msg   string
	kind  error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap lets errors.Is match ErrInvalid / ErrMalformed / ErrTooLarge.
func (e *FieldError) Unwrap() error { return e.kind }

// invalid is a refusal of field. The message may quote the input: it is
// clipped, as it goes to answers, log lines and dead letters' headers.
func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: clip.String(fmt.Sprintf(format, args...), 512), kind: ErrInvalid}
}

// Encode returns the wire form of ev, after checking it with Validate.
// Its output is deterministic (fixed field order, sorted map keys) and not
// HTML-escaped. What Encode returns, Decode accepts: an event whose wire
// form is over MaxEventBytes or nests deeper than MaxDepth fails with
// ErrTooLarge, so a producer refuses it instead of handing the persister
// an event it can only dead-letter. The converse holds too: an input whose
// re-encoding is over the limit (invalid UTF-8 becomes U+FFFD, three
// bytes a byte) is refused by Decode with ErrTooLarge. DecodeStored reads
// more than Encode writes: events of rules of input that came later
// (checkInput), a time past year 9999 in UTC among them.
func Encode(ev Event) ([]byte, error) { return encode(ev, true) }

// EncodeStored is Encode for an event read from a log (a replay that
// re-publishes it): it skips the checks of input, as DecodeStored does.
func EncodeStored(ev Event) ([]byte, error) { return encode(ev, false) }

func encode(ev Event, input bool) ([]byte, error) {
	if ev.V == 0 {
		ev.V = Version
	}
	ev.ObservedAt = ev.ObservedAt.UTC()
	if err := ev.validate(); err != nil {
		return nil, err
	}
	if input {
		if err := ev.checkInput(); err != nil {
			return nil, err
		}
	}
	// RFC 3339 has four digits for the year. Decode reads such a time
	// (9999-12-31T23:30:00-01:00 is in year 10000 in UTC), so that a
	// stored one stays readable, but nothing new is encoded with one.
	if y := ev.ObservedAt.Year(); y < 0 || y > 9999 {
		return nil, invalid("observed_at", "year %d (in UTC) is outside 0000-9999", y)
	}
	b, err := Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.EventID, invalid("event", "%v", err))
	}
	if len(b) > MaxEventBytes {
		return nil, &FieldError{Field: "event", Msg: fmt.Sprintf("encodes to %d bytes, over the limit of %d", len(b), MaxEventBytes), kind: ErrTooLarge}
	}
	if err := checkDepth(b, MaxDepth); err != nil {
		return nil, err
	}
	return b, nil
}

// Marshal is json.Marshal without HTML escaping, as Encode writes an
// event: "<", ">" and "&", common in alert descriptions, stay one byte
// each instead of six, so an event inside a record or a batch has the size
// Encode measured. Unlike Encode it checks nothing (size, validity).
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// wire mirrors Event with the timestamp as text, so a bad timestamp is
// reported against its field name.
type wire struct {
	V            int           `json:"v"`
	EventID      string        `json:"event_id"`
	Source       string        `json:"source"`
	Kind         Kind          `json:"kind"`
	ObservedAt   *string       `json:"observed_at"`
	Entity       *Entity       `json:"entity"`
	Sync         *Sync         `json:"sync"`
	Template     *Template     `json:"template"`
	Subscription *Subscription `json:"subscription"`
	// observedAt is decodeFast's ObservedAt (hasObservedAt: the key was
	// there): a pointer to it would cost an allocation of its own.
	observedAt    string
	hasObservedAt bool
}

// Decode parses and validates one encoded event given as input (Validate).
func Decode(b []byte) (Event, error) {
	ev, err := DecodeStored(b)
	if err != nil {
		return Event{}, err
	}
	if err := ev.checkInput(); err != nil {
		return Event{}, err
	}
	if len(b) > MaxEventBytes/3 {
		// Its re-encoding, which the bus carries, can be up to three
		// times larger (an invalid UTF-8 byte becomes U+FFFD, U+2028
		// becomes \u2028): over MaxEventBytes, every follower refused
		// the sequenced batch holding it and read the database instead.
		if _, err := EncodeStored(ev); err != nil {
			return Event{}, err
		}
	}
	return ev, nil
}

// DecodeStored is Decode for an event already in the log: it skips the
// checks of input (checkInput), which came after some logs were written.
func DecodeStored(b []byte) (Event, error) {
	if len(b) > MaxEventBytes {
		return Event{}, &FieldError{Field: "event", Msg: fmt.Sprintf("%d bytes exceeds the limit of %d", len(b), MaxEventBytes), kind: ErrTooLarge}
	}
	// The fast path accepts only inputs it reads exactly as encoding/json
	// would (and shallower than MaxDepth); the rest, errors included, goes
	// the strict slow way.
	w, ok := decodeFast(b)
	if !ok {
		if err := checkDepth(b, MaxDepth); err != nil {
			return Event{}, err
		}
		// A wire of its own: passing &w to encoding/json would move w to
		// the heap on the fast path too.
		sw := new(wire)
		if err := decodeStrict(b, sw); err != nil {
			return Event{}, err
		}
		w = *sw
	}
	ev := Event{
		V: w.V, EventID: w.EventID, Source: w.Source, Kind: w.Kind,
		Entity: w.Entity, Sync: w.Sync, Template: w.Template, Subscription: w.Subscription,
	}
	if w.ObservedAt != nil {
		w.observedAt, w.hasObservedAt = *w.ObservedAt, true
	}
	if !w.hasObservedAt {
		return Event{}, invalid("observed_at", "is required")
	}
	t, err := time.Parse(time.RFC3339Nano, w.observedAt)
	if err != nil {
		return Event{}, invalid("observed_at", "%q is not an RFC 3339 timestamp", w.observedAt)
	}
	ev.ObservedAt = t.UTC()
	if err := ev.validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// decodeStrict unmarshals exactly one JSON value with unknown fields refused,
// turning encoding/json's errors into FieldErrors.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "event"
			}
			return &FieldError{Field: field, Msg: "must be " + jsonKind(te.Type.Kind().String()) + ", not " + te.Value, kind: ErrMalformed}
		case errors.As(err, &se):
			return &FieldError{Field: "event", Msg: fmt.Sprintf("JSON syntax error at byte %d: %v", se.Offset, err), kind: ErrMalformed}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			// The name is the input's: clipped like the other quotes of it.
			return &FieldError{Field: clip.String(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), 256), Msg: "unknown field", kind: ErrMalformed}
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return &FieldError{Field: "event", Msg: "truncated or empty JSON", kind: ErrMalformed}
		default:
			return &FieldError{Field: "event", Msg: err.Error(), kind: ErrMalformed}
		}
	}
	if dec.More() {
		return &FieldError{Field: "event", Msg: "trailing data after the JSON object", kind: ErrMalformed}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Field: "event", Msg: "trailing data after the JSON object", kind: ErrMalformed}
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64":
		return "an integer"
	case "struct", "map", "ptr":
		return "an object"
	case "slice":
		return "an array"
	case "bool":
		return "a boolean"
	}
	return goKind
}

// checkDepth refuses JSON nested deeper than max, before any allocation by
// the decoder. Brackets inside strings are skipped.
func checkDepth(b []byte, max int) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return &FieldError{Field: "event", Msg: fmt.Sprintf("nesting deeper than %d", max), kind: ErrTooLarge}
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// Names the evaluator owns in the graph (graph.EvaluatorSource and
// graph.DeducedType): deduced alarms, and the edges it asserts. An event
// from outside that used them could retract or delete what a scenario
// still holds, behind the evaluator's back.
const (
	EvaluatorSource = "causeway.evaluator"
	DeducedType     = "vitrage"
)

// MaxSourceLen bounds the source of input events: the bus routes an event
// by "<source>.<kind>", which AMQP limits to 255 bytes.
const MaxSourceLen = 255 - len(".") - len(KindSubscriptionDelete)

// Validate checks the rules of the envelope that the type system does not,
// and those of input (checkInput).
func (ev Event) Validate() error {
	if err := ev.validate(); err != nil {
		return err
	}
	return ev.checkInput()
}

// CheckSource reports why source cannot name a producer's events (empty,
// a control character, too long to route, the evaluator's own), or nil:
// the rules every event of it is checked by. A producer's configuration
// checks its source with it, since each event of such a source would be
// refused at run time. The error names the field "source".
func CheckSource(source string) error {
	if err := checkID("source", source); err != nil {
		return err
	}
	return Event{Source: source}.checkInput()
}

// checkInput refuses what may not enter the log any more: the evaluator's
// source, alarms of the deduced type, sources too long to route, and times
// outside years 0000-9999 in UTC. Only
// input is checked: a log written before these rules may hold such events,
// and replay reads it as it was (DecodeStored).
func (ev Event) checkInput() error {
	if len(ev.Source) > MaxSourceLen {
		return invalid("source", "is %d bytes long, over the limit of %d (the routing key \"<source>.<kind>\" must fit in 255 bytes)", len(ev.Source), MaxSourceLen)
	}
	if ev.Source == EvaluatorSource {
		return invalid("source", "%q is the evaluator's own; no producer may use it", EvaluatorSource)
	}
	if ev.Entity != nil && ev.Entity.Category == CategoryAlarm && ev.Entity.Type == DeducedType {
		return invalid("entity.type", "%q is the type of deduced alarms, which only the evaluator raises", DeducedType)
	}
	// A record of such a time cannot be encoded (time.Time writes years
	// 0000-9999 only): every batch holding it would fail to go on the
	// bus, and a replay could not re-publish it.
	if y := ev.ObservedAt.UTC().Year(); y < 0 || y > 9999 {
		return invalid("observed_at", "year %d (in UTC) is outside 0000-9999", y)
	}
	return nil
}

func (ev Event) validate() error {
	if ev.V != Version {
		return invalid("v", "unsupported envelope version %d (want %d)", ev.V, Version)
	}
	if err := checkID("event_id", ev.EventID); err != nil {
		return err
	}
	if err := checkID("source", ev.Source); err != nil {
		return err
	}
	if ev.ObservedAt.IsZero() {
		return invalid("observed_at", "is required")
	}
	has := [...]bool{ev.Entity != nil, ev.Sync != nil, ev.Template != nil, ev.Subscription != nil}
	want := ""
	switch ev.Kind {
	case KindEntityUpsert, KindEntityDelete:
		want = "entity"
	case KindSyncBegin, KindSyncEnd:
		want = "sync"
	case KindTemplatePut, KindTemplateDelete:
		want = "template"
	case KindSubscriptionPut, KindSubscriptionDelete:
		want = "subscription"
	case KindTick:
	case "":
		return invalid("kind", "is required")
	default:
		return invalid("kind", "unknown kind %q", ev.Kind)
	}
	for i, f := range [...]string{"entity", "sync", "template", "subscription"} {
		if f == want && !has[i] {
			return invalid(f, "is required for kind %s", ev.Kind)
		}
		if f != want && has[i] {
			return invalid(f, "is not allowed for kind %s", ev.Kind)
		}
	}
	switch want {
	case "entity":
		return ev.Entity.validate(ev.Kind)
	case "sync":
		return checkID("sync.id", ev.Sync.ID)
	case "template":
		if err := checkID("template.name", ev.Template.Name); err != nil {
			return err
		}
		if ev.Kind == KindTemplatePut && strings.TrimSpace(ev.Template.Body) == "" {
			return invalid("template.body", "is required for kind %s", ev.Kind)
		}
		if ev.Kind == KindTemplateDelete && ev.Template.Body != "" {
			return invalid("template.body", "is not allowed for kind %s", ev.Kind)
		}
		if ev.Kind == KindTemplateDelete && len(ev.Template.Params) > 0 {
			return invalid("template.params", "are not allowed for kind %s", ev.Kind)
		}
		return checkParams(ev.Template.Params)
	case "subscription":
		if err := checkID("subscription.id", ev.Subscription.ID); err != nil {
			return err
		}
		spec := bytes.TrimSpace(ev.Subscription.Spec)
		if ev.Kind == KindSubscriptionPut && (len(spec) == 0 || spec[0] != '{') {
			return invalid("subscription.spec", "must be a JSON object for kind %s", ev.Kind)
		}
		if ev.Kind == KindSubscriptionDelete && len(spec) != 0 {
			return invalid("subscription.spec", "is not allowed for kind %s", ev.Kind)
		}
	}
	return nil
}

// checkParams bounds a template's parameter values: their count, each
// name as an identifier, each value's size, and UTF-8.
func checkParams(params map[string]string) error {
	if len(params) > MaxTemplateParams {
		return invalid("template.params", "%d parameters exceed the limit of %d", len(params), MaxTemplateParams)
	}
	// Sorted, so that the first bad one is named whatever the map's order.
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		switch {
		case !checkIDOK(k):
			return invalid("template.params", "name %q: names must be 1 to %d bytes of UTF-8 without control characters", k, MaxIDLen)
		case len(v) > MaxParamValueLen:
			return invalid("template.params", "%q: the value is %d bytes long, over the limit of %d", k, len(v), MaxParamValueLen)
		case !utf8.ValidString(v):
			return invalid("template.params", "%q: the value is not valid UTF-8", k)
		}
	}
	return nil
}

func (e *Entity) validate(kind Kind) error {
	switch e.Category {
	case CategoryResource, CategoryAlarm:
	case "":
		return invalid("entity.category", "is required")
	default:
		return invalid("entity.category", "must be %s or %s, not %q", CategoryResource, CategoryAlarm, e.Category)
	}
	if err := checkID("entity.type", e.Type); err != nil {
		return err
	}
	if err := checkID("entity.id", e.ID); err != nil {
		return err
	}
	for _, f := range [...]struct{ name, v string }{
		{"entity.name", e.Name}, {"entity.state", e.State},
		{"entity.severity", e.Severity}, {"entity.project_id", e.ProjectID},
	} {
		if !utf8.ValidString(f.v) {
			return invalid(f.name, "is not valid UTF-8")
		}
	}
	if len(e.Properties) > MaxProperties {
		return invalid("entity.properties", "%d properties exceed the limit of %d", len(e.Properties), MaxProperties)
	}
	badProp := func(k string) bool { return k == "" || !utf8.ValidString(k) || !utf8.ValidString(e.Properties[k]) }
	for k := range e.Properties {
		if badProp(k) {
			// Name the first bad key in sorted order, whatever the map's.
			keys := make([]string, 0, len(e.Properties))
			for k := range e.Properties {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if badProp(k) {
					return invalid("entity.properties", "key %q: keys must be non-empty and keys and values valid UTF-8", k)
				}
			}
		}
	}
	if kind == KindEntityDelete && len(e.Relations) > 0 {
		return invalid("entity.relations", "are not allowed for kind %s", kind)
	}
	if len(e.Relations) > MaxRelations {
		return invalid("entity.relations", "%d relations exceed the limit of %d", len(e.Relations), MaxRelations)
	}
	for i := range e.Relations {
		if err := e.Relations[i].validate(i); err != nil {
			return err
		}
	}
	return nil
}

// validate checks relation i; the field prefix is formatted only for an error.
func (r *Relation) validate(i int) error {
	f := func() string { return fmt.Sprintf("entity.relations[%d]", i) }
	if checkIDOK(r.Relationship) && checkIDOK(r.Type) && checkIDOK(r.ID) &&
		(r.Category == "" || r.Category == CategoryResource || r.Category == CategoryAlarm) &&
		(r.Direction == Out || r.Direction == In) {
		return nil
	}
	if err := checkID(f()+".relationship", r.Relationship); err != nil {
		return err
	}
	switch r.Category {
	case "", CategoryResource, CategoryAlarm:
	default:
		return invalid(f()+".category", "must be %s or %s, not %q", CategoryResource, CategoryAlarm, r.Category)
	}
	if err := checkID(f()+".type", r.Type); err != nil {
		return err
	}
	if err := checkID(f()+".id", r.ID); err != nil {
		return err
	}
	if r.Direction != Out && r.Direction != In {
		return invalid(f()+".direction", "must be %q or %q, not %q", Out, In, r.Direction)
	}
	return nil
}

// checkIDOK reports whether checkID would accept v, without an error value.
func checkIDOK(v string) bool {
	if v == "" || len(v) > MaxIDLen || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func checkID(field, v string) error {
	switch {
	case v == "":
		return invalid(field, "is required")
	case len(v) > MaxIDLen:
		return invalid(field, "is %d bytes long, over the limit of %d", len(v), MaxIDLen)
	case !utf8.ValidString(v):
		return invalid(field, "is not valid UTF-8")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return invalid(field, "contains a control character")
		}
	}
	return nil
}

// EncodeRecord returns the wire form of a Record.
func EncodeRecord(r Record) ([]byte, error) {
	b, err := Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record %d: %w", r.Seq, err)
	}
	return b, nil
}

// EncodeBatch returns the wire form of a Batch.
func EncodeBatch(b Batch) ([]byte, error) {
	out, err := Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode batch after seq %d: %w", b.PrevSeq, err)
	}
	return out, nil
}

// DecodeBatch parses a sequenced batch and checks that its seqs are dense
// and follow PrevSeq and that every event is valid.
func DecodeBatch(b []byte) (Batch, error) {
	var raw struct {
		PrevSeq int64             `json:"prev_seq"`
		Records []json.RawMessage `json:"records"`
	}
	if err := decodeStrict(b, &raw); err != nil {
		return Batch{}, fmt.Errorf("decode batch: %w", err)
	}
	if raw.PrevSeq < 0 {
		return Batch{}, invalid("prev_seq", "must not be negative")
	}
	out := Batch{PrevSeq: raw.PrevSeq, Records: make([]Record, 0, len(raw.Records))}
	for i, rb := range raw.Records {
		r, err := DecodeRecord(rb)
		if err != nil {
			return Batch{}, fmt.Errorf("decode batch record %d: %w", i, err)
		}
		if want := raw.PrevSeq + int64(i) + 1; r.Seq != want {
			return Batch{}, invalid(fmt.Sprintf("records[%d].seq", i), "is %d, want %d (seqs must be dense after prev_seq)", r.Seq, want)
		}
		out.Records = append(out.Records, r)
	}
	return out, nil
}

// DecodeRecord parses one Record and validates its event (as DecodeStored:
// a record is in the log already).
func DecodeRecord(b []byte) (Record, error) {
	var raw struct {
		Seq        int64           `json:"seq"`
		RecordedAt string          `json:"recorded_at"`
		Event      json.RawMessage `json:"event"`
	}
	if err := decodeStrict(b, &raw); err != nil {
		return Record{}, err
	}
	if raw.Seq < 1 {
		return Record{}, invalid("seq", "must be at least 1, not %d", raw.Seq)
	}
	t, err := time.Parse(time.RFC3339Nano, raw.RecordedAt)
	if err != nil {
		return Record{}, invalid("recorded_at", "%q is not an RFC 3339 timestamp", raw.RecordedAt)
	}
	ev, err := DecodeStored(raw.Event)
	if err != nil {
		return Record{}, fmt.Errorf("event: %w", err)
	}
	return Record{Seq: raw.Seq, RecordedAt: t.UTC(), Event: ev}, nil
}
