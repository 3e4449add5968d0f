package snapshot

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
)

// gobWithCount gob-encodes a state (a node's, or its engine's alone) with
// one vertex whose properties map holds the single key "zzqq", and then
// rewrites that map's count to count, fixing the value message's length.
func gobWithCount(t testing.TB, engine bool, count uint64) []byte {
	t.Helper()
	s := edgeCaseState()
	s.Version = NodeStateVersion
	s.Engine.Graph.Vertices = append(s.Engine.Graph.Vertices, graph.VertexState{Vertex: graph.Vertex{ID: 9, Properties: map[string]string{"zzqq": "v"}}})
	var v any = &s
	if engine {
		v = &s.Engine
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	at := bytes.Index(raw, []byte("\x01\x04zzqq\x01v"))
	if at < 0 {
		t.Fatal("no map of one entry zzqq in the gob stream")
	}
	// Find the message holding it: messages are (uint length, body).
	in := gobCursor{b: raw}
	for {
		start := len(raw) - len(in.b)
		n, err := in.uint()
		if err != nil {
			t.Fatal(err)
		}
		body := len(raw) - len(in.b)
		if end := body + int(n); at < end {
			cnt := encodeGobUint(count)
			msg := append(append(append([]byte{}, raw[body:at]...), cnt...), raw[at+1:end]...)
			var out []byte
			out = append(out, raw[:start]...)
			out = append(out, encodeGobUint(uint64(len(msg)))...)
			out = append(out, msg...)
			return append(out, raw[end:]...)
		}
		in.b = in.b[n:]
	}
}

func encodeGobUint(u uint64) []byte {
	if u < 0x80 {
		return []byte{byte(u)}
	}
	var b []byte
	for ; u > 0; u >>= 8 {
		b = append([]byte{byte(u)}, b...)
	}
	return append([]byte{byte(-int8(len(b)))}, b...)
}

// TestGobMapCountBomb: a gob snapshot whose map count claims 2^28 entries
// (five corrupt bytes: gob allocates the map before it reads an entry, some
// 17 GB, and the process dies out of memory, which no recover catches) is
// refused as corrupt, so that reconstruction skips it; the stream with the
// true count decodes.
func TestGobMapCountBomb(t *testing.T) {
	if _, err := decodeNodeState(NodeGob, bytes.NewReader(gobWithCount(t, false, 1)), nil); err != nil {
		t.Fatalf("the untouched stream: %v", err)
	}
	for _, count := range []uint64{1 << 28, 1<<64 - 1} {
		if _, err := decodeNodeState(NodeGob, bytes.NewReader(gobWithCount(t, false, count)), nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("node state with a map count of %d: %v; want ErrCorrupt", count, err)
		}
		if _, err := (EngineFactory{}).Restore(context.Background(), EngineGob, bytes.NewReader(gobWithCount(t, true, count))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("engine state with a map count of %d: %v; want ErrCorrupt", count, err)
		}
	}
}

// TestCheckGobAcceptsGob: what gob writes of the states passes checkGob.
func TestCheckGobAcceptsGob(t *testing.T) {
	states, _ := binNodeStates(t, 40)
	withParams, _ := binNodeStates(t, 40, paramsTemplates...)
	for i, s := range append(append(states, withParams...), edgeCaseState(), NodeState{}) {
		for _, v := range []any{&s, &s.Engine, &s.Engine.Graph} {
			var b bytes.Buffer
			if err := gob.NewEncoder(&b).Encode(v); err != nil {
				t.Fatal(err)
			}
			if err := checkGob(b.Bytes()); err != nil {
				t.Fatalf("state %d, %T: %v", i, v, err)
			}
		}
	}
}

// FuzzDecodeGob feeds arbitrary payloads to the legacy gob decoder, as node
// and as engine state: it never panics nor runs out of memory (a count
// larger than the bytes left for its elements is refused).
func FuzzDecodeGob(f *testing.F) {
	f.Add(gobWithCount(f, false, 1))
	f.Add(gobWithCount(f, true, 1))
	f.Add(gobWithCount(f, false, 1<<28))
	states, _ := binNodeStates(f, 20)
	for _, v := range []any{&states[len(states)-1], &states[len(states)-1].Engine} {
		var b bytes.Buffer
		if err := gob.NewEncoder(&b).Encode(v); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var ns NodeState
		_ = decodeGob(bytes.NewReader(payload), &ns)
		var es evaluator.State
		_ = decodeGob(bytes.NewReader(payload), &es)
	})
}
