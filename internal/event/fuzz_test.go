package event

import (
	"bytes"
	"testing"
)

// FuzzDecode checks that Decode never panics, and that whatever it accepts
// re-encodes to something it accepts again, with the same encoding.
func FuzzDecode(f *testing.F) {
	seed, _ := Encode(sampleUpsert())
	f.Add(seed)
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"tick","observed_at":"2026-01-01T00:00:00+02:00"}`))
	f.Add([]byte(`{"v":1,"event_id":"e","source":"s","kind":"subscription.put","observed_at":"2026-01-01T00:00:00Z","subscription":{"id":"a","spec":{"url":"x"}}}`))
	f.Add([]byte(`[[[[`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ev, err := Decode(in)
		if err != nil {
			return
		}
		out, err := Encode(ev)
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
