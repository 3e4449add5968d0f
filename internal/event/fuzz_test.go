package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzDecode checks that Decode never panics, and that whatever it accepts
// re-encodes to something it accepts again, with the same encoding (unless
// the input is so large that its re-encoding may pass the size limit, or
// its time is past year 9999 in UTC).
func FuzzDecode(f *testing.F) {
	seed, _ := Encode(sampleUpsert())
	f.Add(seed)
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"tick","observed_at":"2026-01-01T00:00:00+02:00"}`))
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"subscription.put","observed_at":"2026-01-01T00:00:00Z","subscription":{"id":"a","spec":{"url":"x"}}}`))
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"template.put","observed_at":"2026-01-01T00:00:00Z","template":{"name":"t","body":"b","params":{"a":"1","b\u00e9":"x\ny"}}}`))
	f.Add([]byte(`[[[[`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ev, err := Decode(in)
		if err != nil {
			return
		}
		out, err := Encode(ev)
		if errors.Is(err, ErrTooLarge) && len(in) > MaxEventBytes/3 {
			return // re-encoded larger than its input (see Encode)
		}
		if y := ev.ObservedAt.Year(); errors.Is(err, ErrInvalid) && y > 9999 {
			return // read, not written again (see Encode)
		}
		if err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		ev2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%s", err, out)
		}
		out2, err := Encode(ev2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable: %s vs %s (%v)", out, out2, err)
		}
	})
}

// FuzzDecodeBatch checks that DecodeBatch never panics and only accepts dense batches.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"prev_seq":0,"records":[]}`))
	// A batch with records, so that the fuzzer starts inside DecodeRecord
	// and the event decoder rather than at an empty list.
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seed, err := EncodeBatch(Batch{PrevSeq: 41, Records: []Record{
		{Seq: 42, RecordedAt: at, Event: sampleUpsert()},
		{Seq: 43, RecordedAt: at.Add(time.Microsecond), Event: Event{V: Version, EventID: "t", Source: "clock", Kind: KindTick, ObservedAt: at}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := DecodeBatch(seed); err != nil {
		f.Fatalf("the seed batch does not decode: %v", err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := DecodeBatch(in)
		if err != nil {
			return
		}
		for i, r := range b.Records {
			if r.Seq != b.PrevSeq+int64(i)+1 {
				t.Fatalf("accepted a batch with seq %d at %d after %d", r.Seq, i, b.PrevSeq)
			}
		}
	})
}

// FuzzDecodeFast checks that whatever the fast path of Decode accepts,
// encoding/json's strict path reads the same way.
func FuzzDecodeFast(f *testing.F) {
	seed, _ := Encode(sampleUpsert())
	f.Add(seed)
	up, _ := Encode(benchUpsert())
	f.Add(up)
	f.Add([]byte(`{"v":1,"event_id":"e\u00e9\n","source":"s\"\\/","kind":"tick","observed_at":"2026-01-01T00:00:00+02:00"}`))
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"template.put","observed_at":"2026-01-01T00:00:00Z","template":{"name":"t","body":"a:\n  b: \"c\"\t\u2028"}}`))
	f.Add([]byte(`{"v":1,"kind":"template.put","template":{"params":{"sev":"CRITICAL","n\u0061me":"x"},"name":"t","body":"b"}}`))
	f.Add([]byte(`{"template":{"params":{"a":"1","a":"2"}}}`))
	f.Add([]byte(`{"template":{"params":{},"params":{"a":null}}}`))
	f.Add([]byte(` {"v":01,"entity":{"properties":{},"relations":[]}} `))
	f.Add([]byte(`{"v":1,"entity":{"properties":{"a":"1","a":"2"}},"sync":{"id":"x"}}`))
	f.Add([]byte(`{"v":1,"kind":"entity.upsert","entity":{"category":"ALARM","relations":[{"category":"RESOURCE","direction":"out"},{"direction":"in","category":"RESOURCEX"}]}}`))
	f.Add([]byte(`{"kind":"entity.upser","entity":{"category":"ALARM\u0020","relations":[{"direction":"i\u006e"},{"direction":"inn"}]}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		fast, ok := decodeFast(in)
		if !ok {
			return
		}
		if err := checkDepth(in, MaxDepth); err != nil {
			t.Fatalf("fast path accepted what checkDepth refuses: %v", err)
		}
		var slow wire
		if err := decodeStrict(in, &slow); err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses: %v", err)
		}
		// The fast path keeps observed_at in place (DecodeStored reads
		// either).
		if slow.ObservedAt != nil {
			slow.observedAt, slow.hasObservedAt = *slow.ObservedAt, true
			slow.ObservedAt = nil
		}
		if d := cmp.Diff(slow, fast, cmp.AllowUnexported(wire{})); d != "" {
			t.Fatalf("fast path differs from encoding/json (-slow +fast):\n%s", d)
		}
	})
}

// FuzzDecodeBusEqualsLog checks that an event the persister takes reads
// the same whether a follower takes it from the log (DecodeStored of the
// body the persister stored: the input as received) or from the sequenced
// fanout (DecodeRecord of the record the persister re-encoded from what it
// decoded), and that Decode and DecodeStored read alike what both accept.
// Otherwise a node that caught up from the database and one that followed
// the bus would hold different state for the same log. The persister takes
// what Decode accepts, and in a replay (keep_recorded_at) what DecodeStored
// accepts of EncodeStored's output. An empty map or list reads as none
// (re-encoding leaves it out); nothing downstream tells them apart.
func FuzzDecodeBusEqualsLog(f *testing.F) {
	seed, _ := Encode(sampleUpsert())
	f.Add(seed)
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"subscription.put","observed_at":"2026-01-01T00:00:00Z","subscription":{"id":"a","spec":{"url":"x"}}}`))
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"template.put","observed_at":"2026-01-01T00:00:00+02:00","template":{"name":"t","body":"b","params":{"a":"1"}}}`))
	f.Add([]byte(`{"V":1,"event_id":"e","source":"s\ud800","kind":"entity.upsert","observed_at":"2026-01-01T00:00:00.1234567891Z","entity":{"category":"ALARM","type":"t","id":"i","properties":{},"relations":[]}}`))
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"subscription.put","observed_at":"2026-01-01T00:00:00Z","subscription":{"id":"a","spec": { "url" : "x" } }}`))
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"tick","observed_at":"9999-12-31T23:30:00-01:00"}`))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	busEqualsLog := func(t *testing.T, body []byte, logged Event) {
		t.Helper()
		rb, err := EncodeRecord(Record{Seq: 1, RecordedAt: at, Event: logged})
		if err != nil {
			t.Fatalf("a taken event does not encode in a record: %v", err)
		}
		r, err := DecodeRecord(rb)
		if err != nil {
			t.Fatalf("a re-encoded record does not decode: %v\n%s", err, rb)
		}
		if d := cmp.Diff(compactSpec(logged), r.Event, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("the bus reads the event otherwise than the log (-log +bus):\n%s\n%s", d, body)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		stored, err := DecodeStored(in)
		if err != nil {
			if _, err2 := Decode(in); err2 == nil {
				t.Fatalf("Decode accepts what DecodeStored refuses: %v", err)
			}
			return
		}
		if ev, err := Decode(in); err == nil {
			if d := cmp.Diff(stored, ev); d != "" {
				t.Fatalf("Decode and DecodeStored differ (-stored +input):\n%s", d)
			}
			busEqualsLog(t, in, stored)
		}
		// A replay re-publishes the event as EncodeStored writes it.
		out, err := EncodeStored(stored)
		if err != nil {
			return
		}
		replayed, err := DecodeStored(out)
		if err != nil {
			t.Fatalf("a re-published event does not decode: %v\n%s", err, out)
		}
		if d := cmp.Diff(compactSpec(stored), replayed, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("a replay changes the event (-log +replayed):\n%s", d)
		}
		busEqualsLog(t, out, replayed)
	})
}

// compactSpec returns ev with its subscription's spec compacted. KNOWN,
// not fixed: re-encoding compacts a spec (on the bus, in a replay) while
// the log keeps it as received, since the persister stores the input body;
// the fuzz targets compare specs compact to look for other divergences.
func compactSpec(ev Event) Event {
	if s := ev.Subscription; s != nil && len(s.Spec) > 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, s.Spec); err == nil {
			ev.Subscription = &Subscription{ID: s.ID, Spec: c.Bytes()}
		}
	}
	return ev
}
