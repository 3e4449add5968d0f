package event

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleUpsert() Event {
	return Event{
		V: Version, EventID: "e-1", Source: "static", Kind: KindEntityUpsert,
		ObservedAt: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		Entity: &Entity{
			Category: CategoryResource, Type: "nova.host", ID: "host-1", Name: "compute-1",
			State: "available", ProjectID: "p1", Properties: map[string]string{"rack": "r1"},
			Relations: []Relation{{Relationship: "contains", Type: "nova.zone", ID: "zone-1", Direction: In}},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	events := []Event{
		sampleUpsert(),
		{V: Version, EventID: "e-2", Source: "am", Kind: KindEntityDelete, ObservedAt: time.Unix(5, 0).UTC(),
			Entity: &Entity{Category: CategoryAlarm, Type: "prometheus", ID: "fp1"}},
		{V: Version, EventID: "e-3", Source: "static", Kind: KindSyncBegin, ObservedAt: time.Unix(5, 0).UTC(), Sync: &Sync{ID: "s1"}},
		{V: Version, EventID: "e-4", Source: "static", Kind: KindSyncEnd, ObservedAt: time.Unix(5, 0).UTC(), Sync: &Sync{ID: "s1"}},
		{V: Version, EventID: "e-5", Source: "api", Kind: KindTemplatePut, ObservedAt: time.Unix(5, 0).UTC(), Template: &Template{Name: "t", Body: "metadata: {}"}},
		{V: Version, EventID: "e-5p", Source: "api", Kind: KindTemplatePut, ObservedAt: time.Unix(5, 0).UTC(),
			Template: &Template{Name: "t", Body: "metadata: {}", Params: map[string]string{"sev": "CRITICAL", "name": "a \"b\"\n"}}},
		{V: Version, EventID: "e-6", Source: "api", Kind: KindTemplateDelete, ObservedAt: time.Unix(5, 0).UTC(), Template: &Template{Name: "t"}},
		{V: Version, EventID: "e-7", Source: "api", Kind: KindSubscriptionPut, ObservedAt: time.Unix(5, 0).UTC(), Subscription: &Subscription{ID: "s", Spec: []byte(`{"url":"http://x"}`)}},
		{V: Version, EventID: "e-8", Source: "api", Kind: KindSubscriptionDelete, ObservedAt: time.Unix(5, 0).UTC(), Subscription: &Subscription{ID: "s"}},
		{V: Version, EventID: "e-9", Source: "clock", Kind: KindTick, ObservedAt: time.Unix(5, 0).UTC()},
	}
	for _, ev := range events {
		t.Run(string(ev.Kind)+"/"+ev.EventID, func(t *testing.T) {
			b, err := Encode(ev)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if diff := cmp.Diff(got, ev); diff != "" {
				t.Errorf("round trip (-got +want):\n%s", diff)
			}
			b2, err := Encode(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(b2) != string(b) {
				t.Errorf("encoding is not stable:\n%s\n%s", b, b2)
			}
		})
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	valid := `{"v":1,"event_id":"e","source":"s","kind":"entity.upsert","observed_at":"2026-01-01T00:00:00Z","entity":{"category":"RESOURCE","type":"nova.host","id":"h"}}`
	tests := []struct {
		name, in, field string
		kind            error
	}{
		{"unknown kind", strings.Replace(valid, `"entity.upsert"`, `"entity.frob"`, 1), "kind", ErrInvalid},
		{"missing kind", strings.Replace(valid, `"kind":"entity.upsert",`, ``, 1), "kind", ErrInvalid},
		{"missing event id", strings.Replace(valid, `"event_id":"e",`, ``, 1), "event_id", ErrInvalid},
		{"missing entity id", strings.Replace(valid, `,"id":"h"`, ``, 1), "entity.id", ErrInvalid},
		{"bad timestamp", strings.Replace(valid, `2026-01-01T00:00:00Z`, `yesterday`, 1), "observed_at", ErrInvalid},
		{"missing timestamp", strings.Replace(valid, `"observed_at":"2026-01-01T00:00:00Z",`, ``, 1), "observed_at", ErrInvalid},
		{"wrong version", strings.Replace(valid, `"v":1`, `"v":7`, 1), "v", ErrInvalid},
		{"unknown field", strings.Replace(valid, `"v":1`, `"v":1,"colour":"red"`, 1), "colour", ErrMalformed},
		{"unknown field, its huge name clipped", strings.Replace(valid, `"v":1`, `"v":1,"`+strings.Repeat("k", 1<<19)+`":1`, 1), strings.Repeat("k", 256), ErrMalformed},
		{"wrong type", strings.Replace(valid, `"event_id":"e"`, `"event_id":5`, 1), "event_id", ErrMalformed},
		{"bad category", strings.Replace(valid, `"RESOURCE"`, `"THING"`, 1), "entity.category", ErrInvalid},
		{"entity on tick", strings.Replace(valid, `"entity.upsert"`, `"tick"`, 1), "entity", ErrInvalid},
		{"bad direction", strings.Replace(valid, `"id":"h"}`, `"id":"h","relations":[{"relationship":"on","type":"t","id":"x","direction":"up"}]}`, 1), "entity.relations[0].direction", ErrInvalid},
		{"too deep", `{"v":` + strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + `}`, "event", ErrTooLarge},
		{"too large", `{"v":1,"event_id":"` + strings.Repeat("x", MaxEventBytes) + `"}`, "event", ErrTooLarge},
		{"trailing data", valid + `{}`, "event", ErrMalformed},
		{"not json", `hello`, "event", ErrMalformed},
		{"empty", ``, "event", ErrMalformed},
		{"control char in id", strings.Replace(valid, `"id":"h"`, `"id":"h\u0001"`, 1), "entity.id", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			if err == nil {
				t.Fatal("Decode succeeded, want an error")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if fe.Field != tc.field {
				t.Errorf("field = %q, want %q (error: %v)", fe.Field, tc.field, err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v is not %v", err, tc.kind)
			}
		})
	}
	if _, err := Decode([]byte(valid)); err != nil {
		t.Fatalf("the valid base case fails: %v", err)
	}
}

// TestInputRules: input may not use the evaluator's source or raise
// deduced-type alarms (either could delete or retract what a scenario
// holds), nor have a source too long for its routing key (the bus could
// never send it), but a record already in the log that does is still read
// (DecodeStored, DecodeRecord), so that replay gives what it gave.
func TestInputRules(t *testing.T) {
	base := `{"v":1,"event_id":"e","source":"s","kind":"entity.upsert","observed_at":"2026-01-01T00:00:00Z","entity":{"category":"ALARM","type":"nagios","id":"a"}}`
	tests := []struct{ name, in, field string }{
		{"evaluator source", strings.Replace(base, `"source":"s"`, `"source":"causeway.evaluator"`, 1), "source"},
		{"evaluator source on a sync", `{"v":1,"event_id":"e","source":"causeway.evaluator","kind":"sync.end","observed_at":"2026-01-01T00:00:00Z","sync":{"id":"x"}}`, "source"},
		{"deduced alarm type", strings.Replace(base, `"nagios"`, `"vitrage"`, 1), "entity.type"},
		{"source too long to route", strings.Replace(base, `"source":"s"`, `"source":"`+strings.Repeat("s", MaxSourceLen+1)+`"`, 1), "source"},
		// Its record could not be encoded (time.Time writes years 0-9999
		// only): no batch holding it could go on the bus, nor a replay
		// re-publish it.
		{"year 10000 in UTC", strings.Replace(base, `2026-01-01T00:00:00Z`, `9999-12-31T23:30:00-01:00`, 1), "observed_at"},
		{"year -1 in UTC", strings.Replace(base, `2026-01-01T00:00:00Z`, `0000-01-01T00:30:00+01:00`, 1), "observed_at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode: %v; want an invalid %s", err, tc.field)
			}
			ev, err := DecodeStored([]byte(tc.in))
			if err != nil {
				t.Fatalf("DecodeStored: %v; want the stored event read", err)
			}
			if _, err := Encode(ev); !errors.Is(err, ErrInvalid) {
				t.Errorf("Encode: %v; want it refused", err)
			}
			rec := `{"seq":3,"recorded_at":"2026-01-01T00:00:01Z","event":` + tc.in + `}`
			if _, err := DecodeRecord([]byte(rec)); err != nil {
				t.Errorf("DecodeRecord: %v; want the record read", err)
			}
		})
	}
	for _, k := range []Kind{KindEntityUpsert, KindEntityDelete, KindSyncBegin, KindSyncEnd, KindTemplatePut, KindTemplateDelete,
		KindSubscriptionPut, KindSubscriptionDelete, KindTick} {
		if n := MaxSourceLen + 1 + len(k); n > 255 {
			t.Errorf("the routing key of a %s event can be %d bytes long", k, n)
		}
	}
	if _, err := Decode([]byte(strings.Replace(base, `"source":"s"`, `"source":"`+strings.Repeat("s", MaxSourceLen)+`"`, 1))); err != nil {
		t.Errorf("a source of MaxSourceLen bytes: %v", err)
	}
	// A resource may be of type vitrage: only deduced alarms are the
	// evaluator's.
	if _, err := Decode([]byte(strings.Replace(strings.Replace(base, `"nagios"`, `"vitrage"`, 1), `"ALARM"`, `"RESOURCE"`, 1))); err != nil {
		t.Errorf("a vitrage resource: %v", err)
	}
}

func TestBatchRoundTripAndGaps(t *testing.T) {
	ev := sampleUpsert()
	at := time.Date(2026, 11, 1, 10, 0, 1, 0, time.UTC)
	b := Batch{PrevSeq: 41, Records: []Record{{Seq: 42, RecordedAt: at, Event: ev}, {Seq: 43, RecordedAt: at, Event: ev}}}
	raw, err := EncodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(raw)
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	if diff := cmp.Diff(got, b); diff != "" {
		t.Errorf("batch round trip (-got +want):\n%s", diff)
	}
	if got.FirstSeq() != 42 || got.LastSeq() != 43 {
		t.Errorf("FirstSeq, LastSeq = %d, %d; want 42, 43", got.FirstSeq(), got.LastSeq())
	}
	b.Records[1].Seq = 45
	raw, _ = EncodeBatch(b)
	if _, err := DecodeBatch(raw); err == nil || !strings.Contains(err.Error(), "records[1].seq") {
		t.Errorf("DecodeBatch of a batch with a gap: err = %v, want a records[1].seq error", err)
	}
}

func TestDeriveID(t *testing.T) {
	if DeriveID("ab", "c") == DeriveID("a", "bc") {
		t.Error("DeriveID does not separate its parts")
	}
	// A fixed vector: the id must not change across releases, or a
	// re-published pull would no longer dedup against the log.
	if got, want := DeriveID("x", "y"), "946a0b44bba82efb145c58530ff7b3d4"; got != want {
		t.Errorf("DeriveID(x, y) = %s, want %s", got, want)
	}
	if got := len(DeriveID("x")); got != 32 {
		t.Errorf("len(DeriveID) = %d, want 32", got)
	}
}

// TestEncodeRefusesWhatDecodeRefuses: a producer must not hand the
// persister an event it can only dead-letter, so Encode refuses what
// Decode would: a wire form over MaxEventBytes or deeper than MaxDepth,
// and a time outside what RFC 3339 can write.
func TestEncodeRefusesWhatDecodeRefuses(t *testing.T) {
	big := sampleUpsert()
	big.Entity.Properties = map[string]string{"details": strings.Repeat("<&>", MaxEventBytes/3)}
	deep := Event{V: Version, EventID: "e", Source: "api", Kind: KindSubscriptionPut, ObservedAt: time.Unix(5, 0).UTC(),
		Subscription: &Subscription{ID: "s", Spec: []byte(`{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`)}}
	late := sampleUpsert()
	late.ObservedAt = time.Date(9999, 12, 31, 23, 30, 0, 0, time.FixedZone("", -3600))
	for _, tc := range []struct {
		name  string
		ev    Event
		field string
		kind  error
	}{
		{"over MaxEventBytes", big, "event", ErrTooLarge},
		{"deeper than MaxDepth", deep, "event", ErrTooLarge},
		{"year 10000 in UTC", late, "observed_at", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(tc.ev)
			var fe *FieldError
			if !errors.Is(err, tc.kind) || !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Encode = %v; want a %v on %s", err, tc.kind, tc.field)
			}
		})
	}
	// Such a time is read from the log, so that an event stored with one
	// stays readable, but not written again (TestInputRules: nor taken as
	// input).
	stored, err := DecodeStored([]byte(`{"v":1,"event_id":"e","source":"s","kind":"tick","observed_at":"9999-12-31T23:30:00-01:00"}`))
	if err != nil {
		t.Fatalf("DecodeStored of a time in year 10000 (UTC) = %v; want it read", err)
	}
	if _, err := Encode(stored); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode of a time in year 10000 (UTC) = %v; want ErrInvalid", err)
	}

	// Just under the limit passes, and "<", ">" and "&" are not escaped:
	// an alert text of them costs its own size.
	ok := sampleUpsert()
	ok.Entity.Properties = map[string]string{"details": strings.Repeat("<&>", (MaxEventBytes-1000)/3)}
	b, err := Encode(ok)
	if err != nil {
		t.Fatalf("Encode under the limit: %v", err)
	}
	if len(b) > MaxEventBytes || !strings.Contains(string(b), "<&><&>") {
		t.Errorf("encoded %d bytes, HTML escaped: %v", len(b), !strings.Contains(string(b), "<&>"))
	}
	if got, err := Decode(b); err != nil || got.Entity.Properties["details"] != ok.Entity.Properties["details"] {
		t.Errorf("Decode of the encoding: %v", err)
	}
}

// TestBatchCarriesWhatEncodeAccepts: an event Encode accepts fits in a
// record and a batch too (no HTML escaping there either, which would make
// an event of "<", ">" and "&" up to six times larger than Encode measured
// and the batch undecodable).
func TestBatchCarriesWhatEncodeAccepts(t *testing.T) {
	ev := sampleUpsert()
	ev.Entity.Properties = map[string]string{"details": strings.Repeat("<b>&</b>", 480<<10/8)}
	if _, err := Encode(ev); err != nil {
		t.Fatal(err)
	}
	b, err := EncodeBatch(Batch{PrevSeq: 6, Records: []Record{{Seq: 7, RecordedAt: time.Unix(9, 0).UTC(), Event: ev}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatalf("DecodeBatch of %d bytes: %v", len(b), err)
	}
	if got.Records[0].Event.Entity.Properties["details"] != ev.Entity.Properties["details"] {
		t.Error("the event changed in the batch")
	}
	r, err := EncodeRecord(got.Records[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRecord(r); err != nil {
		t.Errorf("DecodeRecord: %v", err)
	}
}

func TestCheckSource(t *testing.T) {
	for _, src := range []string{"", "causeway.evaluator", strings.Repeat("s", MaxSourceLen+1), "a\x00b", "\xff"} {
		if err := CheckSource(src); !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "source: ") {
			t.Errorf("CheckSource(%q): %v, want a source error", src, err)
		}
	}
	for _, src := range []string{"nova", "alertmanager", strings.Repeat("s", MaxSourceLen)} {
		if err := CheckSource(src); err != nil {
			t.Errorf("CheckSource(%q): %v", src, err)
		}
	}
}

// TestInputThatReEncodesTooLarge: an input under MaxEventBytes whose
// re-encoding is over it (each invalid UTF-8 byte becomes a three-byte
// U+FFFD) was taken; the record the bus carries then holds the re-encoded
// event, which DecodeRecord refuses, so every follower refused the batch
// and read the database instead. Decode refuses it as too large.
func TestInputThatReEncodesTooLarge(t *testing.T) {
	name := strings.Repeat("\xff", 400<<10)
	in := []byte(`{"v":1,"event_id":"e","source":"s","kind":"entity.upsert","observed_at":"2026-01-01T00:00:00Z",` +
		`"entity":{"category":"ALARM","type":"nagios","id":"a","name":"` + name + `"}}`)
	if len(in) > MaxEventBytes {
		t.Fatalf("the input is %d bytes, over the limit itself", len(in))
	}
	if _, err := Decode(in); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode of %d bytes re-encoding larger than %d: %v; want ErrTooLarge", len(in), MaxEventBytes, err)
	}
	// A large input that re-encodes within the limit is taken.
	ok := bytes.ReplaceAll(in, []byte{0xff}, []byte("x"))
	if _, err := Decode(ok); err != nil {
		t.Errorf("Decode of %d plain bytes: %v", len(ok), err)
	}
}
