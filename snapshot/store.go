package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/store"
)

// Fencer checks, inside a transaction, that term is still the current raft
// term of the named fence; a deposed leader's write fails. internal/store
// implements it.
type Fencer interface {
	CheckFence(ctx context.Context, tx *store.Tx, name string, term int64) error
}

// FenceFunc adapts a function, such as store.CheckFence, to a Fencer.
type FenceFunc func(ctx context.Context, tx *store.Tx, name string, term int64) error

// CheckFence calls f.
func (f FenceFunc) CheckFence(ctx context.Context, tx *store.Tx, name string, term int64) error {
	return f(ctx, tx, name, term)
}

// Meta is a snapshot's row in the snapshots table.
type Meta struct {
	ID            int64
	Seq           int64
	RecordedAt    time.Time
	Term          int64
	FormatVersion uint16
	Encoding      string
	// Semantics is the apply semantics of the state (Capture.Semantics);
	// not valid for a snapshot written before the column existed, or of a
	// machine that records none.
	Semantics sql.Null[int]
	// Size is the stored blob (header and compressed body); RawSize the
	// uncompressed payload.
	Size     int64
	RawSize  int64
	Chunks   int
	Checksum []byte
	// CreatedAt is when the writer took the snapshot (its clock).
	CreatedAt time.Time
}

// Store reads and writes the snapshots and snapshot_chunks tables (created
// by internal/store's migrations). It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	log *slog.Logger
	// encodings, when set, are the only payload encodings Prune takes
	// for an anchor (RequireEncodings).
	encodings []string
}

// NewStore returns a Store over db. A nil logger discards.
func NewStore(db *sql.DB, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{db: db, log: logger}
}

// RequireEncodings makes Prune keep as the retention anchor only a
// snapshot in one of encodings, those its readers restore (the
// processors': NodeEncodings), and returns s. A snapshot they would pass
// over (an encoding of another build, an engine-only payload) then never
// stands as the only base of the retention window.
func (s *Store) RequireEncodings(encodings ...string) *Store {
	s.encodings = encodings
	return s
}

// insert writes one snapshot blob in chunks in one transaction that first
// passes the fence, and returns the new row. The chunk size is
// chunkSize(limit), limit being the max_allowed_packet of the
// transaction's own connection, read in it: a session keeps the limit of
// the server when it connected, so after the server's was changed the
// pool's connections differ, and a limit read once, or on another
// connection, may be above the one the chunks are sent under. ctx
// bounds the COMMIT too (store.Tx): a write whose COMMIT went unanswered
// fails when ctx ends, yet may have been stored. Writing it again is safe
// but not idempotent: it stores a second row at the same seq, which
// readers pass over (the newest id wins) and retention removes in time.
func (s *Store) insert(ctx context.Context, fence Fencer, fenceName string, term int64, h Header, semantics sql.Null[int], blob []byte, chunkSize func(limit int64) int, createdAt time.Time) (Meta, error) {
	tx, err := store.Begin(ctx, s.db)
	if err != nil {
		return Meta{}, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := fence.CheckFence(ctx, tx, fenceName, term); err != nil {
		return Meta{}, fmt.Errorf("check fence %q term %d: %w", fenceName, term, err)
	}
	var limit int64
	if err := tx.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&limit); err != nil {
		return Meta{}, fmt.Errorf("read max_allowed_packet: %w", err)
	}
	size := chunkSize(limit)
	if size < 1 {
		return Meta{}, fmt.Errorf("chunk size %d for a max_allowed_packet of %d", size, limit)
	}
	m := Meta{
		Seq:           h.Seq,
		RecordedAt:    h.RecordedAt,
		Term:          term,
		FormatVersion: h.Version,
		Encoding:      h.Encoding,
		Semantics:     semantics,
		Size:          int64(len(blob)),
		RawSize:       int64(h.RawSize),
		Chunks:        (len(blob) + size - 1) / size,
		Checksum:      h.Checksum[:],
		CreatedAt:     createdAt.UTC(),
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO snapshots
		(seq, recorded_at, term, format_version, encoding, semantics, size, raw_size, chunks, checksum, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.Seq, m.RecordedAt, m.Term, m.FormatVersion, m.Encoding, m.Semantics, m.Size, m.RawSize, m.Chunks, m.Checksum, m.CreatedAt)
	if err != nil {
		return Meta{}, fmt.Errorf("insert snapshot row seq %d: %w", m.Seq, err)
	}
	if m.ID, err = res.LastInsertId(); err != nil {
		return Meta{}, fmt.Errorf("snapshot row id: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO snapshot_chunks (snapshot_id, idx, data) VALUES (?, ?, ?)")
	if err != nil {
		return Meta{}, fmt.Errorf("prepare chunk insert: %w", err)
	}
	defer stmt.Close()
	for i := 0; i < m.Chunks; i++ {
		end := min((i+1)*size, len(blob))
		if _, err := stmt.ExecContext(ctx, m.ID, i, blob[i*size:end]); err != nil {
			return Meta{}, fmt.Errorf("insert chunk %d/%d of snapshot seq %d: %w", i+1, m.Chunks, m.Seq, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Meta{}, fmt.Errorf("commit snapshot seq %d: %w", m.Seq, err)
	}
	return m, nil
}

const metaColumns = "id, seq, recorded_at, term, format_version, encoding, semantics, size, raw_size, chunks, checksum, created_at"

func scanMeta(rows *sql.Rows) (Meta, error) {
	var m Meta
	var rec, created dbTime
	if err := rows.Scan(&m.ID, &m.Seq, &rec, &m.Term, &m.FormatVersion, &m.Encoding, &m.Semantics,
		&m.Size, &m.RawSize, &m.Chunks, &m.Checksum, &created); err != nil {
		return Meta{}, fmt.Errorf("scan snapshot row: %w", err)
	}
	m.RecordedAt, m.CreatedAt = rec.t, created.t
	return m, nil
}

// List returns the snapshots with seq <= maxSeq, newest first (by seq, then
// by id).
func (s *Store) List(ctx context.Context, maxSeq int64) ([]Meta, error) {
	return s.query(ctx, "SELECT "+metaColumns+" FROM snapshots WHERE seq <= ? ORDER BY seq DESC, id DESC", maxSeq)
}

// Newest returns the newest snapshot row, or ok=false when there is none.
func (s *Store) Newest(ctx context.Context) (Meta, bool, error) {
	ms, err := s.query(ctx, "SELECT "+metaColumns+" FROM snapshots ORDER BY seq DESC, id DESC LIMIT 1")
	if err != nil || len(ms) == 0 {
		return Meta{}, false, err
	}
	return ms[0], true, nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Meta, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	defer rows.Close()
	var out []Meta
	for rows.Next() {
		m, err := scanMeta(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return out, nil
}

// Load reads a snapshot's chunks and verifies the blob against its row and
// its own header. A blob that does not verify yields an error wrapping
// ErrCorrupt or ErrUnknownVersion; a database failure any other error.
func (s *Store) Load(ctx context.Context, m Meta) (Header, []byte, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT idx, data FROM snapshot_chunks WHERE snapshot_id = ? ORDER BY idx", m.ID)
	if err != nil {
		return Header{}, nil, fmt.Errorf("read chunks of snapshot %d: %w", m.ID, err)
	}
	defer rows.Close()
	var chunks []chunk
	for rows.Next() {
		var c chunk
		if err := rows.Scan(&c.idx, &c.data); err != nil {
			return Header{}, nil, fmt.Errorf("scan chunk of snapshot %d: %w", m.ID, err)
		}
		chunks = append(chunks, c)
		Step(ctx)
	}
	if err := rows.Err(); err != nil {
		return Header{}, nil, fmt.Errorf("read chunks of snapshot %d: %w", m.ID, err)
	}
	return verify(m, chunks)
}

type chunk struct {
	idx  int64
	data []byte
}

// verify assembles chunks (which must be exactly 0..m.Chunks-1, in order)
// and checks the blob against the row and its own header.
func verify(m Meta, chunks []chunk) (Header, []byte, error) {
	if len(chunks) != m.Chunks {
		return Header{}, nil, fmt.Errorf("%w: %d chunks, row says %d", ErrCorrupt, len(chunks), m.Chunks)
	}
	size := 0
	for i, c := range chunks {
		if c.idx != int64(i) {
			return Header{}, nil, fmt.Errorf("%w: chunk %d where %d was expected", ErrCorrupt, c.idx, i)
		}
		size += len(c.data)
	}
	if int64(size) != m.Size {
		return Header{}, nil, fmt.Errorf("%w: chunks hold %d bytes, row says %d", ErrCorrupt, size, m.Size)
	}
	blob := make([]byte, 0, size)
	for _, c := range chunks {
		blob = append(blob, c.data...)
	}
	h, body, err := Decode(blob)
	if err != nil {
		return h, nil, err
	}
	if h.Seq != m.Seq {
		return h, nil, fmt.Errorf("%w: header seq %d, row says %d", ErrCorrupt, h.Seq, m.Seq)
	}
	if string(h.Checksum[:]) != string(m.Checksum) {
		return h, nil, fmt.Errorf("%w: header checksum differs from the row's", ErrCorrupt)
	}
	return h, body, nil
}

// PruneResult says what Prune kept and removed.
type PruneResult struct {
	// AnchorSeq is the seq of the snapshot kept as the base of the
	// retention window (0 when there is none at or before the boundary):
	// events with seq <= AnchorSeq are no longer needed by reconstruction
	// of any moment at or after the boundary.
	AnchorSeq int64
	// AnchorRecordedAt is the anchor's recorded_at: event retention may
	// drop the events recorded before it (never after), e.g. with
	// store.Log.DropBefore(AnchorRecordedAt), and then delete those up to
	// AnchorSeq (store.Log.TrimThrough).
	AnchorRecordedAt time.Time
	// Deleted counts the snapshots removed.
	Deleted int
}

// Prune deletes the snapshots that retention no longer needs: those older
// than the newest snapshot recorded at or before keepAfter that verifies
// and whose payload inflates whole (the anchor). Snapshots after the anchor are kept, and so is the anchor,
// so every moment at or after keepAfter stays reconstructible from a
// snapshot and the events after it. With no verified anchor nothing is
// deleted.
func (s *Store) Prune(ctx context.Context, keepAfter time.Time) (PruneResult, error) {
	cands, err := s.query(ctx, "SELECT "+metaColumns+" FROM snapshots WHERE recorded_at <= ? ORDER BY seq DESC, id DESC", keepAfter.UTC())
	if err != nil {
		return PruneResult{}, err
	}
	var anchor *Meta
	for i := range cands {
		h, body, err := s.Load(ctx, cands[i])
		if err == nil && len(s.encodings) > 0 && !slices.Contains(s.encodings, h.Encoding) {
			err = fmt.Errorf("%w: %q is not one of %v, which the processors restore", ErrUnknownEncoding, h.Encoding, s.encodings)
		}
		if err == nil {
			// A checksum only says the blob is as written: a payload that
			// does not inflate to its announced size (a writer's bug) is
			// skipped by Reconstruct, and must not be the one snapshot
			// kept below the boundary.
			err = inflates(h, body)
		}
		if err == nil {
			anchor = &cands[i]
			break
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownVersion) && !errors.Is(err, ErrUnknownEncoding) {
			return PruneResult{}, err
		}
		s.log.Warn("snapshot unusable as retention anchor", "snapshot_id", cands[i].ID, "seq", cands[i].Seq, "err", err)
	}
	if anchor == nil {
		return PruneResult{}, nil
	}
	res := PruneResult{AnchorSeq: anchor.Seq, AnchorRecordedAt: anchor.RecordedAt}
	for _, m := range cands {
		if m.Seq > anchor.Seq || (m.Seq == anchor.Seq && m.ID >= anchor.ID) {
			continue
		}
		if err := s.delete(ctx, m.ID); err != nil {
			return res, err
		}
		res.Deleted++
	}
	return res, nil
}

// inflates reads the whole payload of a verified body, as Reconstruct
// does, and reports whether it is whole and exact (nil) or ErrCorrupt.
func inflates(h Header, body []byte) error {
	pr, err := openPayload(h, body)
	if err != nil {
		return err
	}
	return pr.finish()
}

// delete removes one snapshot in its own transaction, so retention never
// holds one long transaction over many blobs.
func (s *Store) delete(ctx context.Context, id int64) error {
	tx, err := store.Begin(ctx, s.db)
	if err != nil {
		return fmt.Errorf("begin delete of snapshot %d: %w", id, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.ExecContext(ctx, "DELETE FROM snapshot_chunks WHERE snapshot_id = ?", id); err != nil {
		return fmt.Errorf("delete chunks of snapshot %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM snapshots WHERE id = ?", id); err != nil {
		return fmt.Errorf("delete snapshot %d: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit delete of snapshot %d: %w", id, err)
	}
	return nil
}

// dbTime scans a DATETIME whether the driver parses times or not.
type dbTime struct{ t time.Time }

func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		d.t = v.UTC()
		return nil
	case []byte:
		return d.parse(string(v))
	case string:
		return d.parse(v)
	case nil:
		d.t = time.Time{}
		return nil
	}
	return fmt.Errorf("scan %T as a time", src)
}

func (d *dbTime) parse(s string) error {
	s = strings.TrimSpace(s)
	t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, time.UTC)
	if err != nil {
		return fmt.Errorf("parse time %q: %w", s, err)
	}
	d.t = t
	return nil
}
