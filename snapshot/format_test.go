package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func testBlob(t testing.TB, payload []byte) ([]byte, Header) {
	t.Helper()
	enc, err := newEncoder(zstd.SpeedDefault)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 5, 0, 0, 123456789, time.UTC)
	blob, h, err := enc.encode(42, at, "test-enc", func(w io.Writer) error {
		_, err := w.Write(payload)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return blob, h
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 3 << 20} {
		payload := bytes.Repeat([]byte("causeway snapshot "), n/18+1)[:n]
		blob, want := testBlob(t, payload)
		h, body, err := Decode(blob)
		if err != nil {
			t.Fatalf("%d bytes: decode: %v", n, err)
		}
		if h != want {
			t.Errorf("%d bytes: header %+v; want %+v", n, h, want)
		}
		if h.Seq != 42 || h.RawSize != uint64(n) || h.Encoding != "test-enc" || !h.RecordedAt.Equal(time.Date(2026, 11, 22, 5, 0, 0, 123456789, time.UTC)) {
			t.Errorf("%d bytes: header fields %+v", n, h)
		}
		got, err := ReadPayload(h, body)
		if err != nil {
			t.Fatalf("%d bytes: read payload: %v", n, err)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("%d bytes: payload differs (got %d bytes)", n, len(got))
		}
	}
}

func TestEncodeRefusesBadEncodingName(t *testing.T) {
	enc, err := newEncoder(zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", strings.Repeat("x", maxEncodingLen+1)} {
		if _, _, err := enc.encode(1, time.Time{}, name, func(io.Writer) error { return nil }); err == nil {
			t.Errorf("encoding %q accepted", name)
		}
	}
	if _, _, err := enc.encode(1, time.Time{}, "x", func(io.Writer) error { return errors.New("boom") }); err == nil {
		t.Error("payload error not reported")
	}
}

// Every single-byte change of a blob is refused: by the magic, the version,
// the header CRC, the sizes or the body checksum.
func TestDecodeRefusesEveryByteFlip(t *testing.T) {
	blob, _ := testBlob(t, bytes.Repeat([]byte("abcdefgh"), 500))
	for i := range blob {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x5a
		_, _, err := Decode(bad)
		if err == nil {
			t.Fatalf("flip at byte %d accepted", i)
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownVersion) {
			t.Fatalf("flip at byte %d: error %v wraps neither ErrCorrupt nor ErrUnknownVersion", i, err)
		}
	}
}

func TestDecodeRefusesTruncationAndExtension(t *testing.T) {
	blob, _ := testBlob(t, bytes.Repeat([]byte("abcdefgh"), 500))
	for n := 0; n < len(blob); n += 7 {
		if _, _, err := Decode(blob[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err %v; want ErrCorrupt", n, err)
		}
	}
	if _, _, err := Decode(append(bytes.Clone(blob), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("extended: err %v; want ErrCorrupt", err)
	}
}

func TestDecodeUnknownVersion(t *testing.T) {
	blob, _ := testBlob(t, []byte("x"))
	binary.BigEndian.PutUint16(blob[8:], FormatVersion+1)
	if _, _, err := Decode(blob); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("err %v; want ErrUnknownVersion", err)
	}
}

// reseal rewrites a header field and makes the header CRC valid again, as a
// buggy writer would: the payload reader must still catch the lie.
func reseal(blob []byte, h Header) []byte {
	out := bytes.Clone(blob)
	h.marshal(out[:headerLen(h.Encoding)])
	return out
}

func TestPayloadSizeMustMatch(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 1000)
	blob, h := testBlob(t, payload)
	for _, raw := range []uint64{0, h.RawSize - 1, h.RawSize + 1, 1 << 30, 1 << 40} {
		lie := h
		lie.RawSize = raw
		h2, body, err := Decode(reseal(blob, lie))
		if raw > maxRawSize {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("raw %d over the limit: err %v; want ErrCorrupt", raw, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("raw %d: decode: %v", raw, err)
		}
		if _, err := ReadPayload(h2, body); !errors.Is(err, ErrCorrupt) {
			t.Errorf("raw size %d (true %d): err %v; want ErrCorrupt", raw, h.RawSize, err)
		}
	}
}

func TestPayloadNotZstd(t *testing.T) {
	body := []byte("this is not a zstd stream at all")
	h := Header{Version: FormatVersion, Seq: 1, Encoding: "e", RawSize: 10, BodySize: uint64(len(body)), Checksum: sha256.Sum256(body)}
	blob := make([]byte, headerLen(h.Encoding), headerLen(h.Encoding)+len(body))
	h.marshal(blob)
	blob = append(blob, body...)
	h2, b2, err := Decode(blob)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if _, err := ReadPayload(h2, b2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("err %v; want ErrCorrupt", err)
	}
}

func splitChunks(blob []byte, size int) []chunk {
	var cs []chunk
	for i := 0; i*size < len(blob); i++ {
		cs = append(cs, chunk{idx: int64(i), data: blob[i*size : min((i+1)*size, len(blob))]})
	}
	return cs
}

func TestVerifyChunks(t *testing.T) {
	blob, h := testBlob(t, bytes.Repeat([]byte("chunky "), 2000))
	cs := splitChunks(blob, 20)
	if len(cs) < 4 {
		t.Fatalf("only %d chunks", len(cs))
	}
	m := Meta{Seq: h.Seq, Size: int64(len(blob)), Chunks: len(cs), Checksum: h.Checksum[:]}
	if _, _, err := verify(m, cs); err != nil {
		t.Fatalf("whole: %v", err)
	}
	swapped := append([]chunk(nil), cs...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	otherSeq := m
	otherSeq.Seq++
	otherSum := m
	otherSum.Checksum = make([]byte, 32)
	fewer := m
	fewer.Chunks--
	renumbered := append([]chunk(nil), cs...)
	renumbered[3].idx = 17
	for name, tc := range map[string]struct {
		m  Meta
		cs []chunk
	}{
		"missing last":   {m, cs[:len(cs)-1]},
		"missing first":  {m, cs[1:]},
		"swapped":        {m, swapped},
		"renumbered":     {m, renumbered},
		"row seq":        {otherSeq, cs},
		"row checksum":   {otherSum, cs},
		"row chunks":     {fewer, cs},
		"no chunks":      {Meta{Chunks: 0}, nil},
		"empty row size": {Meta{Chunks: 1}, []chunk{{idx: 0}}},
	} {
		if _, _, err := verify(tc.m, tc.cs); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v; want ErrCorrupt", name, err)
		}
	}
}
