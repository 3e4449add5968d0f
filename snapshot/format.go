package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"
)

// FormatVersion is the snapshot format this package writes. Readers accept
// only the versions they know and skip the others (ErrUnknownVersion).
const FormatVersion = 1

// magic opens every snapshot blob.
var magic = [8]byte{'C', 'W', 'S', 'N', 'A', 'P', 0x00, 0x1a}

// Layout of a version 1 header, all integers big-endian:
//
//	0  magic        [8]byte
//	8  version      uint16
//	10 header len   uint16 (bytes, including the trailing CRC)
//	12 seq          int64
//	20 recorded_at  int64  (Unix nanoseconds, UTC)
//	28 raw size     uint64 (uncompressed payload bytes)
//	36 body size    uint64 (compressed bytes that follow the header)
//	44 body sha256  [32]byte
//	76 enc len      uint8
//	77 encoding     [enc len]byte
//	.. crc32c       uint32 of every header byte before it
const (
	fixedHeaderLen = 77
	maxEncodingLen = 64
	// maxRawSize bounds the payload a reader will inflate (a bad writer
	// cannot make a reader exhaust memory).
	maxRawSize = 16 << 30
	// maxWindow bounds the zstd window a reader accepts.
	maxWindow = 64 << 20
)

// Errors a reader reports; each makes Reconstruct skip the snapshot and try
// an older one.
var (
	// ErrCorrupt marks a snapshot whose bytes do not verify: bad magic,
	// header CRC, checksum, sizes, missing chunks or an undecodable body.
	ErrCorrupt = errors.New("corrupt snapshot")
	// ErrUnknownVersion marks a snapshot of a format version this binary
	// does not read (for instance written by a newer release).
	ErrUnknownVersion = errors.New("unknown snapshot format version")
	// ErrUnknownEncoding marks a payload encoding the Factory cannot restore.
	ErrUnknownEncoding = errors.New("unknown snapshot payload encoding")
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Header describes one snapshot blob.
type Header struct {
	Version    uint16
	Seq        int64
	RecordedAt time.Time
	// Encoding names the payload encoding ("node-state-bin", ...), so a
	// reader can refuse a payload it cannot restore.
	Encoding string
	// RawSize is the uncompressed payload size; BodySize the compressed one.
	RawSize  uint64
	BodySize uint64
	// Checksum is the SHA-256 of the compressed body.
	Checksum [sha256.Size]byte
}

func headerLen(encoding string) int { return fixedHeaderLen + len(encoding) + 4 }

func (h Header) marshal(dst []byte) {
	copy(dst[0:8], magic[:])
	binary.BigEndian.PutUint16(dst[8:], h.Version)
	binary.BigEndian.PutUint16(dst[10:], uint16(headerLen(h.Encoding)))
	binary.BigEndian.PutUint64(dst[12:], uint64(h.Seq))
	binary.BigEndian.PutUint64(dst[20:], uint64(h.RecordedAt.UnixNano()))
	binary.BigEndian.PutUint64(dst[28:], h.RawSize)
	binary.BigEndian.PutUint64(dst[36:], h.BodySize)
	copy(dst[44:76], h.Checksum[:])
	dst[76] = byte(len(h.Encoding))
	copy(dst[77:], h.Encoding)
	n := fixedHeaderLen + len(h.Encoding)
	binary.BigEndian.PutUint32(dst[n:], crc32.Checksum(dst[:n], crcTable))
}

// encoder compresses payloads into snapshot blobs. It is not safe for
// concurrent use; the Writer owns one and serialises snapshots.
type encoder struct {
	zw *zstd.Encoder
}

func newEncoder(level zstd.EncoderLevel) (*encoder, error) {
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level))
	if err != nil {
		return nil, fmt.Errorf("new zstd encoder: %w", err)
	}
	return &encoder{zw: zw}, nil
}

type countWriter struct {
	w io.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

// encode runs fn to produce the payload and returns the whole blob (header
// and compressed body) with its header.
func (e *encoder) encode(seq int64, recordedAt time.Time, encoding string, fn func(io.Writer) error) ([]byte, Header, error) {
	if len(encoding) == 0 || len(encoding) > maxEncodingLen {
		return nil, Header{}, fmt.Errorf("payload encoding %q: length must be 1..%d", encoding, maxEncodingLen)
	}
	hl := headerLen(encoding)
	buf := bytes.NewBuffer(make([]byte, hl, 1<<20))
	e.zw.Reset(buf)
	cw := &countWriter{w: e.zw}
	if err := fn(cw); err != nil {
		_ = e.zw.Close()
		return nil, Header{}, fmt.Errorf("encode payload: %w", err)
	}
	if err := e.zw.Close(); err != nil {
		return nil, Header{}, fmt.Errorf("compress payload: %w", err)
	}
	blob := buf.Bytes()
	h := Header{
		Version:    FormatVersion,
		Seq:        seq,
		RecordedAt: recordedAt.UTC(),
		Encoding:   encoding,
		RawSize:    cw.n,
		BodySize:   uint64(len(blob) - hl),
		Checksum:   sha256.Sum256(blob[hl:]),
	}
	h.marshal(blob[:hl])
	return blob, h, nil
}

// parseHeader reads and checks the header at the start of blob and returns
// it with the header's length. It does not look at the body.
func parseHeader(blob []byte) (Header, int, error) {
	if len(blob) < 12 {
		return Header{}, 0, fmt.Errorf("%w: %d bytes is shorter than a header", ErrCorrupt, len(blob))
	}
	if !bytes.Equal(blob[:8], magic[:]) {
		return Header{}, 0, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	h := Header{Version: binary.BigEndian.Uint16(blob[8:])}
	if h.Version != FormatVersion {
		return h, 0, fmt.Errorf("%w: %d (this binary reads %d)", ErrUnknownVersion, h.Version, FormatVersion)
	}
	hl := int(binary.BigEndian.Uint16(blob[10:]))
	if hl < fixedHeaderLen+4 || hl > len(blob) {
		return h, 0, fmt.Errorf("%w: header length %d out of range", ErrCorrupt, hl)
	}
	n := hl - 4
	if got, want := crc32.Checksum(blob[:n], crcTable), binary.BigEndian.Uint32(blob[n:]); got != want {
		return h, 0, fmt.Errorf("%w: header crc %08x, want %08x", ErrCorrupt, got, want)
	}
	encLen := int(blob[76])
	if encLen == 0 || encLen > maxEncodingLen || fixedHeaderLen+encLen != n {
		return h, 0, fmt.Errorf("%w: encoding length %d does not match header length %d", ErrCorrupt, encLen, hl)
	}
	h.Seq = int64(binary.BigEndian.Uint64(blob[12:]))
	h.RecordedAt = time.Unix(0, int64(binary.BigEndian.Uint64(blob[20:]))).UTC()
	h.RawSize = binary.BigEndian.Uint64(blob[28:])
	h.BodySize = binary.BigEndian.Uint64(blob[36:])
	copy(h.Checksum[:], blob[44:76])
	h.Encoding = string(blob[77 : 77+encLen])
	if h.Seq < 0 {
		return h, 0, fmt.Errorf("%w: negative seq %d", ErrCorrupt, h.Seq)
	}
	if h.RawSize > maxRawSize {
		return h, 0, fmt.Errorf("%w: payload size %d over the limit %d", ErrCorrupt, h.RawSize, uint64(maxRawSize))
	}
	return h, hl, nil
}

// Decode verifies a whole snapshot blob — magic, version, header CRC, body
// size and SHA-256 — and returns its header and compressed body. Nothing in
// the body is trusted before the checksum matched.
func Decode(blob []byte) (Header, []byte, error) {
	h, hl, err := parseHeader(blob)
	if err != nil {
		return h, nil, err
	}
	body := blob[hl:]
	if uint64(len(body)) != h.BodySize {
		return h, nil, fmt.Errorf("%w: body is %d bytes, header says %d", ErrCorrupt, len(body), h.BodySize)
	}
	if sum := sha256.Sum256(body); sum != h.Checksum {
		return h, nil, fmt.Errorf("%w: body checksum mismatch", ErrCorrupt)
	}
	return h, body, nil
}

// payloadReader inflates a verified body and checks that it yields exactly
// the header's RawSize bytes and a clean end of stream.
type payloadReader struct {
	zr   *zstd.Decoder
	want uint64
	n    uint64
	err  error
}

func openPayload(h Header, body []byte) (*payloadReader, error) {
	zr, err := zstd.NewReader(bytes.NewReader(body),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderMaxMemory(maxRawSize))
	if err != nil {
		return nil, fmt.Errorf("%w: open zstd stream: %v", ErrCorrupt, err)
	}
	return &payloadReader{zr: zr, want: h.RawSize}, nil
}

func (p *payloadReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if rest := p.want - p.n; uint64(len(b)) > rest+1 {
		// Read at most one byte past the announced size, to notice excess.
		b = b[:rest+1]
	}
	n, err := p.zr.Read(b)
	p.n += uint64(n)
	switch {
	case p.n > p.want:
		p.err = fmt.Errorf("%w: payload longer than its announced %d bytes", ErrCorrupt, p.want)
		return n - int(p.n-p.want), p.err
	case errors.Is(err, io.EOF):
		if p.n != p.want {
			p.err = fmt.Errorf("%w: payload is %d bytes, header says %d", ErrCorrupt, p.n, p.want)
			return n, p.err
		}
		p.err = io.EOF
		return n, io.EOF
	case err != nil:
		p.err = fmt.Errorf("%w: inflate payload: %v", ErrCorrupt, err)
		return n, p.err
	}
	return n, nil
}

// finish drains what the consumer left unread and reports whether the
// payload was whole; a consumer that stopped early must not hide trailing
// garbage or a truncated stream.
func (p *payloadReader) finish() error {
	_, err := io.Copy(io.Discard, p)
	p.zr.Close()
	return err
}

// ReadPayload inflates a blob verified by Decode and returns its payload.
// Intended for tools and tests; Reconstruct streams instead.
func ReadPayload(h Header, body []byte) ([]byte, error) {
	pr, err := openPayload(h, body)
	if err != nil {
		return nil, err
	}
	defer pr.zr.Close()
	out, err := io.ReadAll(pr)
	if err != nil {
		return nil, err
	}
	return out, nil
}
