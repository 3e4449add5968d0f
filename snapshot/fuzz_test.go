package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"
)

func seedBlobs(f *testing.F) {
	for _, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("snapshot"), 300)} {
		blob, _ := testBlob(f, p)
		f.Add(blob)
	}
	f.Add([]byte{})
	f.Add(magic[:])
}

// FuzzDecode feeds arbitrary blobs to the decoder: it never panics, never
// accepts a body whose checksum does not match its header, and a payload it
// reads is exactly as long as announced.
func FuzzDecode(f *testing.F) {
	seedBlobs(f)
	f.Fuzz(func(t *testing.T, blob []byte) {
		h, body, err := Decode(blob)
		if err != nil {
			return
		}
		if sha256.Sum256(body) != h.Checksum {
			t.Fatal("accepted a body with a bad checksum")
		}
		if uint64(len(body)) != h.BodySize {
			t.Fatal("accepted a body of the wrong size")
		}
		if h.RawSize > 1<<24 {
			return // a valid checksum over a huge claim: do not inflate in a fuzz run
		}
		p, err := ReadPayload(h, body)
		if err == nil && uint64(len(p)) != h.RawSize {
			t.Fatalf("payload of %d bytes accepted; header says %d", len(p), h.RawSize)
		}
	})
}

// FuzzVerifyChunks cuts a valid blob into chunks at fuzzed sizes, fuzzes
// their indexes and one byte, and checks that verify accepts exactly the
// untouched, complete, ordered chunk list.
func FuzzVerifyChunks(f *testing.F) {
	blob, h := testBlob(f, bytes.Repeat([]byte("chunk me "), 400))
	f.Add(uint16(100), uint8(0), uint8(0), uint16(0), uint8(0))
	f.Add(uint16(7), uint8(3), uint8(1), uint16(50), uint8(0x10))
	f.Add(uint16(1000), uint8(1), uint8(2), uint16(9), uint8(1))
	f.Fuzz(func(t *testing.T, size uint16, at, newIdx uint8, flipAt uint16, flip uint8) {
		if size == 0 {
			return
		}
		cs := splitChunks(bytes.Clone(blob), int(size))
		m := Meta{Seq: h.Seq, Size: int64(len(blob)), Chunks: len(cs), Checksum: h.Checksum[:]}
		intact := true
		if i := int(at) % len(cs); int64(newIdx) != cs[i].idx && newIdx != 0 {
			cs[i].idx = int64(newIdx)
			intact = false
		}
		if flip != 0 {
			pos := int(flipAt) % len(blob)
			cs[pos/int(size)].data[pos%int(size)] ^= flip
			intact = false
		}
		_, _, err := verify(m, cs)
		if intact && err != nil {
			t.Fatalf("intact chunks refused: %v", err)
		}
		if !intact && err == nil {
			t.Fatal("damaged chunks accepted")
		}
	})
}

// FuzzNodeRestore feeds arbitrary payloads to the node decoder in every
// encoding: it fails cleanly, never panics, and what it accepts dumps.
func FuzzNodeRestore(f *testing.F) {
	encodings := []string{NodeBin, NodeGob, NodeJSON}
	for i, enc := range encodings {
		m, _ := NodeFactory{}.New()
		c, err := NodeFactory{Encoding: enc}.Capture(m, 0, time.Time{})
		if err != nil {
			f.Fatal(err)
		}
		var b bytes.Buffer
		if err := c.Encode(&b); err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b.Bytes())
	}
	f.Add(uint8(2), []byte(`{"version":1,"subscriptions":[{"id":"s","seq":1,"spec":{"url":"http://x/"}}]}`))
	f.Add(uint8(2), []byte(`{"version":2,"subscriptions":[{"id":"s","seq":1,"spec":{"url":"http://x/"},"told":["ALARM/p/a"]}]}`))
	states, _ := binNodeStates(f, 40)
	f.Add(uint8(0), encodeBin(f, &states[len(states)-1]))
	f.Fuzz(func(t *testing.T, enc uint8, payload []byte) {
		m, err := NodeFactory{}.Restore(context.Background(), encodings[int(enc)%len(encodings)], bytes.NewReader(payload))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := m.Dump(&out); err != nil {
			t.Fatalf("restored node does not dump: %v", err)
		}
	})
}

// FuzzDecodeStateBin feeds arbitrary payloads to the bin decoders, as
// node and as engine states (one target: the header's kind picks the
// decoder that can accept): they never panic, and a state they accept
// encodes again to a payload that decodes to an equal state.
func FuzzDecodeStateBin(f *testing.F) {
	states, _ := binNodeStates(f, 40)
	withParams, _ := binNodeStates(f, 40, paramsTemplates...)
	for _, s := range []NodeState{states[0], states[len(states)-1], withParams[len(withParams)-1], edgeCaseState()} {
		f.Add(encodeBin(f, &s))
		var b bytes.Buffer
		if err := encodeEngineBin(&b, &s.Engine); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		// The reader allocates up to binReadAhead on the header's word:
		// only payloads holding what they claim go through it, to keep
		// the runs fast.
		if n, err := checkBinHeader(payload); err == nil && n <= uint64(len(payload)) {
			data, err := readBin(bytes.NewReader(payload))
			if (err == nil) != (n == uint64(len(payload))) {
				t.Fatalf("reader on a payload of %d bytes announcing %d: %v", len(payload), n, err)
			}
			if err == nil && !bytes.Equal(data, payload) {
				t.Fatal("reader returned other bytes")
			}
		}
		_ = decodeBoth(t, payload)
	})
}
