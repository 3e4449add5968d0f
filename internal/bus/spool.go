package bus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/causeway/causeway/internal/liveness"
)

// The spool is a bbolt file with two buckets: "events" maps a big-endian
// uint64 key, increasing in commit order, to an encoded record; "corrupt"
// keeps records that failed to decode, for an operator, instead of dropping
// them silently.
var (
	bucketEvents  = []byte("events")
	bucketCorrupt = []byte("corrupt")
)

// record is one spooled message.
type record struct {
	key        uint64 // bbolt key; not part of the encoding
	messageID  string
	routingKey string
	body       []byte
	enqueued   int64 // unix nanoseconds, for the latency metric
	// recordedAt (unix nanoseconds, 0: none) is the recorded_at of the log
	// record a replay re-publishes; sent as RecordedAtHeader.
	recordedAt int64
}

const (
	recordVersion = 1
	// recordVersionAt is a record with a recordedAt after the enqueue time.
	recordVersionAt = 2
	// maxRecordField bounds each decoded length, so garbage cannot make the
	// decoder allocate much.
	maxRecordField = 64 << 20
)

// Batching of deletions; see committer.
const (
	removeDelay = 50 * time.Millisecond
	removeBatch = 4096
)

var (
	errRecordCorrupt = errors.New("corrupt spool record")
	crcTable         = crc32.MakeTable(crc32.Castagnoli)
)

// encodeRecord lays out: version byte, uvarint-prefixed message id, routing
// key and body, 8-byte enqueue time, (version 2 only) 8-byte recordedAt,
// CRC-32C of everything before it. A record without recordedAt is written
// as version 1, the layout spools have always held.
func encodeRecord(r record) []byte {
	n := 1 + 3*binary.MaxVarintLen64 + len(r.messageID) + len(r.routingKey) + len(r.body) + 8 + 8 + 4
	b := make([]byte, 0, n)
	if r.recordedAt != 0 {
		b = append(b, recordVersionAt)
	} else {
		b = append(b, recordVersion)
	}
	for _, f := range [][]byte{[]byte(r.messageID), []byte(r.routingKey), r.body} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.enqueued))
	if r.recordedAt != 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(r.recordedAt))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// decodeRecord parses what encodeRecord wrote; anything else, including
// truncated or bit-flipped input, is an error wrapping errRecordCorrupt. The
// returned record does not alias b.
func decodeRecord(b []byte) (record, error) {
	if len(b) < 1+3+8+4 {
		return record{}, fmt.Errorf("%w: %d bytes is too short", errRecordCorrupt, len(b))
	}
	payload, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(payload, crcTable) != sum {
		return record{}, fmt.Errorf("%w: checksum mismatch", errRecordCorrupt)
	}
	var recordedAt int64
	switch payload[0] {
	case recordVersion:
	case recordVersionAt:
		if len(payload) < 1+3+8+8 {
			return record{}, fmt.Errorf("%w: %d bytes is too short for version %d", errRecordCorrupt, len(b), recordVersionAt)
		}
		recordedAt = int64(binary.BigEndian.Uint64(payload[len(payload)-8:]))
		payload = payload[:len(payload)-8]
		if recordedAt == 0 {
			return record{}, fmt.Errorf("%w: version %d without a recorded time", errRecordCorrupt, recordVersionAt)
		}
	default:
		return record{}, fmt.Errorf("%w: unknown version %d", errRecordCorrupt, payload[0])
	}
	rest := payload[1 : len(payload)-8]
	var fields [3][]byte
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > maxRecordField || n > uint64(len(rest)-k) {
			return record{}, fmt.Errorf("%w: bad length of field %d", errRecordCorrupt, i)
		}
		fields[i] = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	if len(rest) != 0 {
		return record{}, fmt.Errorf("%w: %d trailing bytes", errRecordCorrupt, len(rest))
	}
	return record{
		messageID:  string(fields[0]),
		routingKey: string(fields[1]),
		body:       append([]byte(nil), fields[2]...),
		enqueued:   int64(binary.BigEndian.Uint64(payload[len(payload)-8:])),
		recordedAt: recordedAt,
	}, nil
}

// spool is the on-disk queue of the Publisher. One goroutine, the
// committer, writes the file: each of its transactions takes every append
// and every removal queued while the previous one was being fsynced, so
// concurrent Publish calls share an fsync and confirmed deletions ride along
// for free. append may be called from any goroutine; read, remove, flush and
// quarantine from one goroutine (the sender).
type spool struct {
	db        *bolt.DB
	maxBytes  int64
	maxEvents int

	mu      sync.Mutex
	events  int   // records in the file plus those reserved by pending appends
	bytes   int64 // their encoded sizes
	pending []*appendReq
	removes []uint64     // confirmed keys to delete in the next commit
	flushes []chan error // waiters for the next commit (flush)
	closed  bool

	kick    chan struct{} // wakes the committer
	quit    chan struct{}
	stopped chan struct{}
	// appended is signalled (never blocking) after each commit, to wake
	// the sender.
	appended chan struct{}
	// commitHook observes each group commit's size and duration (metrics).
	commitHook func(records int, d time.Duration)
	// commits are the commits in flight (one at most), each an operation
	// that a disk which stopped answering would hang; nil: not tracked.
	commits *liveness.Ops
}

type appendReq struct {
	vals [][]byte
	size int64
	done chan error // buffered: the committer never blocks on it
}

// openSpool opens the spool at path; commits, if not nil, tracks its
// commits for liveness.
func openSpool(path string, maxBytes int64, maxEvents int, commits *liveness.Ops) (*spool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// Another process holding the file is an error, not a hang.
		Timeout:        time.Second,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	s := &spool{
		db: db, maxBytes: maxBytes, maxEvents: maxEvents,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{}),
		appended:   make(chan struct{}, 1),
		commitHook: func(int, time.Duration) {},
		commits:    commits,
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEvents, bucketCorrupt} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketEvents).ForEach(func(_, v []byte) error {
			s.events++
			s.bytes += int64(len(v))
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	go s.committer()
	return s, nil
}

// append stores vals durably (one fsynced transaction shared with the
// concurrent callers) and returns nil once they are on disk.
func (s *spool) append(ctx context.Context, vals [][]byte) error {
	var size int64
	for _, v := range vals {
		size += int64(len(v))
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.events+len(vals) > s.maxEvents || s.bytes+size > s.maxBytes {
		s.mu.Unlock()
		return fmt.Errorf("spool %d events (%d bytes) more: %w", len(vals), size, ErrSpoolFull)
	}
	s.events += len(vals)
	s.bytes += size
	req := &appendReq{vals: vals, size: size, done: make(chan error, 1)}
	s.pending = append(s.pending, req)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The request still completes; re-publishing is a duplicate.
		return ctx.Err()
	}
}

// committer turns all the appends and removals that queued up during the
// previous commit into the next one.
func (s *spool) committer() {
	defer close(s.stopped)
	// Deletions alone are not urgent (a lost one is a duplicate re-send):
	// they wait up to removeDelay, or for removeBatch of them, or for an
	// append to ride along with, so draining a large spool does not compete
	// with the broker's own fsyncs by fsyncing for every few confirms.
	var deferredSince time.Time
	for {
		var timeout <-chan time.Time
		var timer *time.Timer
		if !deferredSince.IsZero() {
			timer = time.NewTimer(time.Until(deferredSince.Add(removeDelay)))
			timeout = timer.C
		}
		select {
		case <-s.quit:
			if timer != nil {
				timer.Stop()
			}
			return
		case <-s.kick:
		case <-timeout:
		}
		if timer != nil {
			timer.Stop()
		}
		s.mu.Lock()
		if len(s.pending) == 0 && len(s.flushes) == 0 && len(s.removes) < removeBatch &&
			(deferredSince.IsZero() || time.Since(deferredSince) < removeDelay) {
			if len(s.removes) > 0 && deferredSince.IsZero() {
				deferredSince = time.Now()
			}
			s.mu.Unlock()
			continue
		}
		deferredSince = time.Time{}
		batch, removes, flushes := s.pending, s.removes, s.flushes
		s.pending, s.removes, s.flushes = nil, nil, nil
		s.mu.Unlock()
		if len(batch) == 0 && len(removes) == 0 {
			for _, f := range flushes {
				f <- nil
			}
			continue
		}
		start := time.Now()
		n, removed := 0, 0
		var freed int64
		end := s.commits.Begin()
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketEvents)
			n, removed, freed = 0, 0, 0
			for _, key := range removes {
				k := binary.BigEndian.AppendUint64(nil, key)
				v := b.Get(k)
				if v == nil {
					continue
				}
				freed += int64(len(v))
				removed++
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			b.FillPercent = 0.95 // keys only ever grow: pack pages
			for _, r := range batch {
				for _, v := range r.vals {
					seq, err := b.NextSequence()
					if err != nil {
						return err
					}
					if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
						return err
					}
					n++
				}
			}
			return nil
		})
		end()
		s.mu.Lock()
		if err != nil {
			err = fmt.Errorf("spool commit: %w", err)
			for _, r := range batch {
				s.events -= len(r.vals)
				s.bytes -= r.size
			}
		} else {
			s.events -= removed
			s.bytes -= freed
		}
		s.mu.Unlock()
		if err == nil && n > 0 {
			s.commitHook(n, time.Since(start))
		}
		for _, r := range batch {
			r.done <- err
		}
		for _, f := range flushes {
			f <- err
		}
		if err == nil && n > 0 {
			select {
			case s.appended <- struct{}{}:
			default:
			}
		}
	}
}

// read returns up to max records with keys after after, in key order.
// Records that do not decode are returned in bad (their keys) instead.
func (s *spool) read(after uint64, max int) (recs []record, bad []uint64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil && len(recs) < max; k, v = c.Next() {
			if len(k) != 8 {
				continue
			}
			key := binary.BigEndian.Uint64(k)
			r, err := decodeRecord(v)
			if err != nil {
				bad = append(bad, key)
				continue
			}
			r.key = key
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read spool: %w", err)
	}
	return recs, bad, nil
}

// remove queues confirmed records for deletion in the next commit; it does
// not wait. A deletion lost in a crash only means a duplicate re-send.
func (s *spool) remove(keys []uint64) {
	if len(keys) == 0 {
		return
	}
	s.mu.Lock()
	s.removes = append(s.removes, keys...)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flush waits until what was queued before it is committed.
func (s *spool) flush() error {
	done := make(chan error, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.flushes = append(s.flushes, done)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-done:
		return err
	case <-s.stopped:
		return ErrClosed
	}
}

// quarantine moves undecodable records to the corrupt bucket.
func (s *spool) quarantine(keys []uint64) error {
	var freed int64
	var n int
	err := s.db.Update(func(tx *bolt.Tx) error {
		from, to := tx.Bucket(bucketEvents), tx.Bucket(bucketCorrupt)
		freed, n = 0, 0
		for _, key := range keys {
			k := binary.BigEndian.AppendUint64(nil, key)
			v := from.Get(k)
			if v == nil {
				continue
			}
			freed += int64(len(v))
			n++
			if err := to.Put(k, append([]byte(nil), v...)); err != nil {
				return err
			}
			if err := from.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("quarantine %d corrupt spool records: %w", len(keys), err)
	}
	s.mu.Lock()
	s.events -= n
	s.bytes -= freed
	s.mu.Unlock()
	return nil
}

func (s *spool) size() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events, s.bytes
}

// close commits the queued deletions, fails the appends not yet committed
// and closes the file.
func (s *spool) close() error {
	_ = s.flush() // best effort: a lost deletion is only a duplicate re-send
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	<-s.stopped
	s.mu.Lock()
	for _, r := range s.pending {
		r.done <- ErrClosed
	}
	for _, f := range s.flushes {
		f <- ErrClosed
	}
	s.pending, s.flushes = nil, nil
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}
