package bus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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
	// reason (empty: none) makes the record a dead letter: it is sent to
	// DeadLetterExchange, the reason in ReasonHeader, instead of to the
	// publisher's exchange (Publisher.PublishOrDeadLetter).
	reason string
}

const (
	recordVersion = 1
	// recordVersionAt is a record with a recordedAt after the enqueue time.
	recordVersionAt = 2
	// recordVersionDead is a dead letter: a fourth field, the reason,
	// after the body, and no recordedAt.
	recordVersionDead = 3
	// maxRecordField bounds each decoded length, so garbage cannot make the
	// decoder allocate much.
	maxRecordField = 64 << 20
)

// Batching of deletions; see committer.
const (
	removeDelay = 50 * time.Millisecond
	removeBatch = 4096
)

// Compaction of a drained spool; see compactIfDrained.
const (
	// spoolCompactMin is the file size from which the Publisher's spool is
	// compacted once drained: the size of a backlog of some 60,000 events
	// of 1 KiB, far above what a spool holds while the broker keeps up.
	spoolCompactMin = 64 << 20
	// compactSuffix names the copy a compaction writes next to the spool
	// file before renaming it over that file.
	compactSuffix = ".compact"
	// compactTxMaxSize bounds each transaction of the copy.
	compactTxMaxSize = 16 << 20
)

var (
	errRecordCorrupt = errors.New("corrupt spool record")
	crcTable         = crc32.MakeTable(crc32.Castagnoli)
)

// encodeRecord lays out: version byte, uvarint-prefixed message id, routing
// key and body, (version 3 only) uvarint-prefixed dead-letter reason,
// 8-byte enqueue time, (version 2 only) 8-byte recordedAt, CRC-32C of
// everything before it. A record without recordedAt or reason is written
// as version 1, the layout spools have always held. (A release before
// version 3 quarantines a dead letter left in its spool as corrupt.)
func encodeRecord(r record) []byte {
	n := 1 + 4*binary.MaxVarintLen64 + len(r.messageID) + len(r.routingKey) + len(r.body) + len(r.reason) + 8 + 8 + 4
	b := make([]byte, 0, n)
	fields := [][]byte{[]byte(r.messageID), []byte(r.routingKey), r.body}
	switch {
	case r.reason != "":
		b = append(b, recordVersionDead)
		fields = append(fields, []byte(r.reason))
	case r.recordedAt != 0:
		b = append(b, recordVersionAt)
	default:
		b = append(b, recordVersion)
	}
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.enqueued))
	if r.recordedAt != 0 && r.reason == "" {
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
	nFields := 3
	switch payload[0] {
	case recordVersion:
	case recordVersionDead:
		nFields = 4
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
	var fields [4][]byte
	for i := range nFields {
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
	if nFields == 4 && len(fields[3]) == 0 {
		return record{}, fmt.Errorf("%w: version %d without a reason", errRecordCorrupt, recordVersionDead)
	}
	return record{
		messageID:  string(fields[0]),
		routingKey: string(fields[1]),
		body:       append([]byte(nil), fields[2]...),
		enqueued:   int64(binary.BigEndian.Uint64(payload[len(payload)-8:])),
		recordedAt: recordedAt,
		reason:     string(fields[3]),
	}, nil
}

// spool is the on-disk queue of the Publisher. One goroutine, the
// committer, writes the file: each of its transactions takes every append
// and every removal queued while the previous one was being fsynced, so
// concurrent Publish calls share an fsync and confirmed deletions ride along
// for free; it also compacts the file once a backlog has drained
// (compactIfDrained). append may be called from any goroutine; read,
// remove, flush and quarantine from one goroutine (the sender).
type spool struct {
	path string
	log  *slog.Logger
	// db is replaced by a compaction, which holds dbMu: read and
	// quarantine hold it shared. The committer's commits need not take
	// it, since only the committer replaces db.
	db        *bolt.DB
	dbMu      sync.RWMutex
	maxBytes  int64
	maxEvents int
	// compactMin is the file size from which a drained spool is compacted.
	compactMin int64
	// compactions counts the compactions done (a metric).
	compactions atomic.Int64
	// dirsUnsynced are directories whose new entries a crash could still
	// roll back: the spool file's, after openSpool created the file (and
	// the parent of each directory it created for it), or after a
	// compaction renamed its copy over it but could not fsync it (a crash
	// could bring the old file back). No commit goes in until a retry has
	// fsynced them all: events acknowledged into a file that a power loss
	// unnames are lost. Committer only (and openSpool before it starts).
	dirsUnsynced []string
	// syncDir fsyncs a directory (tests make it fail).
	syncDir func(dir string) error
	// compactHook, when set (tests), is called by a compaction between
	// its copy and the rename that puts the copy in place.
	compactHook func()

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

// spoolOptions are the bbolt options of a spool file and of its
// compacted copy.
func spoolOptions() *bolt.Options {
	return &bolt.Options{
		// Another process holding the file is an error, not a hang.
		Timeout:        time.Second,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	}
}

// openSpool opens the spool at path, compacting it if it drained in an
// earlier run (compactIfDrained); commits, if not nil, tracks its commits
// and compactions for liveness.
func openSpool(path string, maxBytes int64, maxEvents int, compactMin int64, commits *liveness.Ops, log *slog.Logger) (*spool, error) {
	unsynced, err := createdEntries(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, spoolOptions())
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	// A copy left by a compaction that a crash interrupted is never needed:
	// until its rename the spool file is complete without it, and after
	// the rename it no longer has this name. Removed only now that the
	// spool file is locked, so it is not another process's copy in the
	// making.
	switch err := os.Remove(path + compactSuffix); {
	case err == nil:
		log.Info("removed the copy of an unfinished spool compaction", "path", path+compactSuffix)
	case !errors.Is(err, fs.ErrNotExist):
		_ = db.Close()
		return nil, fmt.Errorf("remove the copy of an unfinished spool compaction: %w", err)
	}
	s := &spool{
		path: path, log: log,
		db: db, maxBytes: maxBytes, maxEvents: maxEvents, compactMin: compactMin,
		syncDir: syncDir,
		kick:    make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{}),
		appended:     make(chan struct{}, 1),
		commitHook:   func(int, time.Duration) {},
		commits:      commits,
		dirsUnsynced: unsynced,
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
	// A spool that drained before this process started (maybe under a
	// release that did not compact) gives its disk back now.
	s.compactIfDrained()
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
			for len(s.dirsUnsynced) > 0 {
				if err := s.syncDir(s.dirsUnsynced[0]); err != nil {
					return fmt.Errorf("fsync directory %s, which names the spool file anew: %w", s.dirsUnsynced[0], err)
				}
				s.dirsUnsynced = s.dirsUnsynced[1:]
			}
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
		if err == nil && removed > 0 {
			s.compactIfDrained()
		}
	}
}

// compactIfDrained compacts the spool file once a backlog has drained:
// bbolt reuses the pages of deleted records but never gives them back, so
// the file would keep the size of the largest backlog for ever. It
// compacts when the file is at least compactMin bytes and the pages in use
// are at most a sixteenth of that: the spool is empty, or holds little more
// than the records in flight to the broker, so the copy is short. It runs
// in the committer (or in openSpool, before the committer starts), so no
// commit races with it; appends queued meanwhile wait for the next commit,
// into the new file. A failure is logged: the spool carries on in the file
// it had.
func (s *spool) compactIfDrained() {
	maxInUse := s.compactMin / 16
	s.mu.Lock()
	spooled := s.bytes
	s.mu.Unlock()
	if spooled > maxInUse {
		return
	}
	fi, err := os.Stat(s.path)
	if err != nil || fi.Size() < s.compactMin {
		return
	}
	st := s.db.Stats()
	var inUse int64
	_ = s.db.View(func(tx *bolt.Tx) error {
		inUse = tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
		return nil
	})
	if inUse > maxInUse {
		return
	}
	start := time.Now()
	size, err := s.compact()
	if err != nil {
		s.log.Error("compact spool", "path", s.path, "err", err)
		return
	}
	s.compactions.Add(1)
	s.log.Info("spool compacted", "path", s.path, "from_bytes", fi.Size(), "to_bytes", size, "took", time.Since(start))
}

// compact copies the spool into a new file next to it (fsynced by each of
// bbolt's commits), renames that over the spool file, fsyncs the directory
// and carries on with the copy; it returns the new file's size. A crash at
// any point leaves a complete spool file holding the same records: the old
// one until the rename, the new one after it (a copy left behind is
// removed by openSpool). The copy's handle is kept, not the file reopened,
// so nothing can fail between the rename and the switch to the new file,
// which would leave commits going to a file no longer named (bbolt's Path
// of the handle still names the copy). The copy keeps
// every key and each bucket's sequence, so keys keep growing and the
// sender's cursor and records in flight stay valid.
func (s *spool) compact() (int64, error) {
	end := s.commits.Begin()
	defer end()
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	tmp := s.path + compactSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("remove the copy of an earlier compaction: %w", err)
	}
	dst, err := bolt.Open(tmp, 0o600, spoolOptions())
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", tmp, err)
	}
	err = bolt.Compact(dst, s.db, compactTxMaxSize)
	if err == nil && s.compactHook != nil {
		s.compactHook()
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("copy the spool into %s: %w", tmp, err)
	}
	old := s.db
	s.db = dst
	if err := old.Close(); err != nil {
		s.log.Warn("close the spool file a compaction replaced", "err", err)
	}
	if err := s.syncDir(filepath.Dir(s.path)); err != nil {
		s.dirsUnsynced = append(s.dirsUnsynced, filepath.Dir(s.path))
		return 0, fmt.Errorf("renamed the compacted copy over the spool, but fsync its directory (commits wait for it): %w", err)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, fmt.Errorf("stat the compacted spool: %w", err)
	}
	return fi.Size(), nil
}

// createdEntries lists the directories that will hold a new entry once
// openSpool has created the spool file at path and the directories
// missing on its way: each must be fsynced before the file's contents
// count as durable (bbolt fsyncs the file, never a directory).
func createdEntries(path string) ([]string, error) {
	var dirs []string
	for p := path; ; {
		switch _, err := os.Stat(p); {
		case err == nil:
			return dirs, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("open spool %s: %w", path, err)
		}
		parent := filepath.Dir(p)
		dirs = append(dirs, parent)
		if parent == p {
			return dirs, nil
		}
		p = parent
	}
}

// syncDir fsyncs the directory dir, making a rename in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileSize is the size of the spool file on disk (NaN if it cannot be
// read), for a metric.
func (s *spool) fileSize() float64 {
	fi, err := os.Stat(s.path)
	if err != nil {
		return math.NaN()
	}
	return float64(fi.Size())
}

// read returns up to max records with keys after after, in key order.
// Records that do not decode are returned in bad (their keys) instead.
func (s *spool) read(after uint64, max int) (recs []record, bad []uint64, err error) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
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
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
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
