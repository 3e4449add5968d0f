package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"time"

	"github.com/causeway/causeway/internal/event"
)

// ErrTruncated reports that the answer lies in the part of the log that
// retention has dropped.
var ErrTruncated = errors.New("before the retained log")

// ErrCorrupt reports a log that breaks its own invariants (a stored body
// that does not decode, a gap in seq): a bug or a hand edit, never normal.
var ErrCorrupt = errors.New("corrupt event log")

// Log is the event log: the events and log_counter tables. It is safe for
// concurrent use; writers in any number of processes serialise on the
// counter row.
type Log struct {
	db  *sql.DB
	now func() time.Time

	mu        sync.Mutex
	maxPacket int // server max_allowed_packet, read on first Append
}

// NewLog returns the log stored in db (migrated by Migrate). now gives
// recorded_at; nil means the database server's clock, read in the
// statement that locks the log: one clock for every writer, so that a
// persister whose host clock runs far ahead (and then hands over to one
// that does not) cannot hold recorded_at at a future time.
func NewLog(db *sql.DB, now func() time.Time) *Log {
	return &Log{db: db, now: now}
}

// Entry is an event to append: the decoded event and the bytes stored as
// its body (its wire form as received, already validated).
type Entry struct {
	Event event.Event
	Body  []byte
	// RecordedAt, when set, is the record's recorded_at instead of the
	// log's clock: a log fed by `causeway replay --republish-url` keeps the
	// times of the log it replays (persister keep_recorded_at). It is still
	// raised to the previous record's, so recorded_at never decreases.
	RecordedAt time.Time
}

// Appended is the result of Append.
type Appended struct {
	// Batch holds the new records, with PrevSeq the log head before them.
	// It is empty (PrevSeq the head) when every entry was a duplicate.
	Batch event.Batch
	// Duplicates are the indexes of the entries not stored because their
	// event_id was already in the log or earlier in the same call.
	Duplicates []int
	// ClockBehind is how far the log's clock was behind its last
	// recorded_at (0 when it was not): the records took that recorded_at
	// instead. With the database's clock that happens only when it steps
	// back; with a writer's own clock (NewLog's now), a writer whose clock
	// runs behind another's sees it on every call.
	ClockBehind time.Duration
}

const (
	// insertMaxRows bounds the rows of one INSERT statement.
	insertMaxRows = 1000
	// rowOverhead estimates the bytes of SQL text a row costs beyond its
	// escaped values.
	rowOverhead = 64
	// dedupChunk bounds the event ids of one dedup lookup.
	dedupChunk = 1000
)

// Append stores entries as the next records of the log, in one
// transaction, and returns what it stored.
//
// The transaction's first statement locks the counter row (SELECT ... FOR
// UPDATE), so concurrent Appends — in this process or another — run one at
// a time: seq is dense, commit order equals seq order, and the dedup check
// against the event_id index cannot race with another writer. recorded_at
// is max(now, the counter's last recorded_at), so it never decreases along
// seq even when writers' clocks differ; all records of one call share it,
// but for entries that bring their own RecordedAt (raised likewise).
//
// A writer that vanishes in the middle of a call (its host crashed or was
// cut off) holds the counter row for the idle bound of every Tx at most
// (30 s): the server then drops its connection and rolls its transaction
// back (boundIdle).
//
// If Append returns an error, nothing of the call is visible — or, when the
// COMMIT itself failed in flight or ctx ended while its answer was awaited,
// possibly all of it: calling Append again with the same entries is always
// safe, because the stored ones come back as duplicates (the dedup runs
// under the counter lock, so a retry waits for, and then sees, a commit
// still in flight on the server).
//
// ctx bounds every statement, the COMMIT and ROLLBACK included: on a server
// that stopped answering, Append returns once ctx ends, instead of when the
// kernel's TCP timeout ends the connection.
func (l *Log) Append(ctx context.Context, entries []Entry) (Appended, error) {
	budget, err := l.insertBudget(ctx)
	if err != nil {
		return Appended{}, err
	}
	// A Tx, not a sql.Tx: ctx bounds its COMMIT and ROLLBACK too.
	tx, err := Begin(ctx, l.db)
	if err != nil {
		return Appended{}, fmt.Errorf("append %d events: begin: %w", len(entries), err)
	}
	defer tx.Rollback(ctx)

	var lastSeq int64
	var lastAt, at time.Time
	err = tx.QueryRowContext(ctx, "SELECT last_seq, last_recorded_at, UTC_TIMESTAMP(6) FROM log_counter WHERE id = 1 FOR UPDATE").Scan(&lastSeq, &lastAt, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Appended{}, fmt.Errorf("append %d events: log_counter row missing (run causeway migrate)", len(entries))
	}
	if err != nil {
		return Appended{}, fmt.Errorf("append %d events: lock log_counter: %w", len(entries), err)
	}

	stored, err := existingIDs(ctx, tx, entries)
	if err != nil {
		return Appended{}, fmt.Errorf("append %d events: %w", len(entries), err)
	}
	if l.now != nil {
		at = l.now()
	}
	at = at.UTC().Truncate(time.Microsecond)
	out := Appended{Batch: event.Batch{PrevSeq: lastSeq}}
	if lastAt = lastAt.UTC(); at.Before(lastAt) {
		out.ClockBehind, at = lastAt.Sub(at), lastAt
	}
	keep := make([]int, 0, len(entries))
	for i, e := range entries {
		if stored[e.Event.EventID] {
			out.Duplicates = append(out.Duplicates, i)
			continue
		}
		stored[e.Event.EventID] = true
		keep = append(keep, i)
		recAt := at
		if !e.RecordedAt.IsZero() {
			recAt = e.RecordedAt.UTC().Truncate(time.Microsecond)
		}
		if recAt.Before(lastAt) {
			recAt = lastAt
		}
		lastAt = recAt
		out.Batch.Records = append(out.Batch.Records, event.Record{
			Seq: lastSeq + int64(len(out.Batch.Records)) + 1, RecordedAt: recAt, Event: e.Event,
		})
	}
	if len(keep) == 0 {
		// The deferred rollback releases the lock; should it fail, the
		// answer stands: nothing was written.
		return out, nil
	}
	if err := insertRows(ctx, tx, entries, keep, out.Batch.Records, budget); err != nil {
		return Appended{}, fmt.Errorf("append %d events after seq %d: %w", len(keep), lastSeq, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE log_counter SET last_seq = ?, last_recorded_at = ? WHERE id = 1",
		out.Batch.LastSeq(), lastAt); err != nil {
		return Appended{}, fmt.Errorf("append %d events: update log_counter: %w", len(keep), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Appended{}, fmt.Errorf("append %d events: commit seq %d..%d: %w", len(keep), out.Batch.FirstSeq(), out.Batch.LastSeq(), err)
	}
	return out, nil
}

// insertBudget returns the bytes of SQL text one INSERT may use: half the
// server's max_allowed_packet, since interpolation can double a BLOB.
func (l *Log) insertBudget(ctx context.Context) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxPacket == 0 {
		n, err := MaxPacket(ctx, l.db)
		if err != nil {
			return 0, err
		}
		l.maxPacket = n
	}
	return l.maxPacket / 2, nil
}

// existingIDs returns which event ids of entries the log already holds.
// Called under the counter lock, so no other writer can add one meanwhile.
func existingIDs(ctx context.Context, tx *Tx, entries []Entry) (map[string]bool, error) {
	found := make(map[string]bool, len(entries))
	for start := 0; start < len(entries); start += dedupChunk {
		end := min(start+dedupChunk, len(entries))
		args := make([]any, 0, end-start)
		for _, e := range entries[start:end] {
			args = append(args, e.Event.EventID)
		}
		// FOR UPDATE, although no other writer can interfere: it takes the
		// table's write metadata lock at once, so the INSERT that follows
		// needs no lock upgrade, which would deadlock with a partition
		// ALTER (MaintainPartitions, DropBefore) queued in between.
		q := "SELECT event_id FROM events WHERE event_id IN (?" + strings.Repeat(",?", len(args)-1) + ") FOR UPDATE"
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("look up stored event ids: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up stored event ids: %w", err)
			}
			found[id] = true
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, fmt.Errorf("look up stored event ids: %w", err)
		}
		rows.Close()
	}
	return found, nil
}

// insertRows inserts the kept entries as multi-row INSERTs, each under
// budget bytes (one row alone may exceed it; the server then refuses it).
func insertRows(ctx context.Context, tx *Tx, entries []Entry, keep []int, recs []event.Record, budget int) error {
	const head = "INSERT INTO events (seq, recorded_at, event_id, source, kind, body) VALUES "
	for start := 0; start < len(keep); {
		size := len(head)
		end := start
		for end < len(keep) && end-start < insertMaxRows {
			e := entries[keep[end]]
			row := rowOverhead + 2*(len(e.Body)+len(e.Event.EventID)+len(e.Event.Source)+len(e.Event.Kind))
			if end > start && size+row > budget {
				break
			}
			size += row
			end++
		}
		var q strings.Builder
		q.Grow(len(head) + 15*(end-start))
		q.WriteString(head)
		args := make([]any, 0, 6*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?)")
			e, r := entries[keep[i]], recs[i]
			args = append(args, r.Seq, r.RecordedAt, e.Event.EventID, e.Event.Source, string(e.Event.Kind), e.Body)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert seq %d..%d: %w", recs[start].Seq, recs[end-1].Seq, err)
		}
		start = end
	}
	return nil
}

// Now returns the log's clock, which dates its records: NewLog's now, or
// the database server's. Retention goes by it, so that the clock of the
// host that applies it does not decide which records are old.
func (l *Log) Now(ctx context.Context) (time.Time, error) {
	if l.now != nil {
		return l.now().UTC(), nil
	}
	var t time.Time
	if err := l.db.QueryRowContext(ctx, "SELECT UTC_TIMESTAMP(6)").Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("read the log's clock: %w", err)
	}
	return t.UTC(), nil
}

// Ping checks that the database answers: one round trip on a connection
// of the pool (a new one if none is idle), bounded by ctx. A persister
// tells by it a database that is slow from one that does not answer.
func (l *Log) Ping(ctx context.Context) error {
	if err := l.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping the database: %w", err)
	}
	return nil
}

// Writable checks that the log takes an append now: in a transaction
// that it rolls back, it updates the counter row to its own value, which
// takes the row's lock as an Append does. A database that answers a ping
// but refuses writes (read-only, a Galera node out of the primary
// component, a trigger, a revoked grant) fails it at once; one whose
// counter row another session holds locked fails it when ctx ends. A
// write that only a whole batch needs (an insert into a full disk) is
// not tried.
func (l *Log) Writable(ctx context.Context) error {
	tx, err := Begin(ctx, l.db)
	if err != nil {
		return fmt.Errorf("check the log takes writes: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.ExecContext(ctx, "UPDATE log_counter SET last_seq = last_seq WHERE id = 1"); err != nil {
		return fmt.Errorf("check the log takes writes: update log_counter: %w", err)
	}
	return nil
}

// Head returns the last seq of the log and its recorded_at; (0, zero time)
// for an empty log. It reads the counter row, so it survives retention.
func (l *Log) Head(ctx context.Context) (int64, time.Time, error) {
	var seq int64
	var at time.Time
	if err := l.db.QueryRowContext(ctx, "SELECT last_seq, last_recorded_at FROM log_counter WHERE id = 1").Scan(&seq, &at); err != nil {
		return 0, time.Time{}, fmt.Errorf("read log head: %w", err)
	}
	if seq == 0 {
		return 0, time.Time{}, nil
	}
	return seq, at.UTC(), nil
}

// First returns the oldest seq still stored (retention drops the older
// ones), or 0 when no event is stored.
func (l *Log) First(ctx context.Context) (int64, error) {
	var seq int64
	err := l.db.QueryRowContext(ctx, "SELECT seq FROM events ORDER BY seq LIMIT 1").Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read first stored seq: %w", err)
	}
	return seq, nil
}

// SeqAt returns the last seq whose recorded_at is at or before t: the log
// prefix that makes up the state at t. It is 0 when t is before the first
// event, and ErrTruncated when the events up to t were dropped by
// retention — but for a t at or after the recorded_at of a snapshot stored
// at the seq right before the oldest stored event (the retention anchor,
// whose events retention deleted with it: TrimThrough), which is that
// snapshot's seq. The answer for a t close to now can still grow if a writer's
// clock lags the caller's; recorded_at is the writers' clock.
func (l *Log) SeqAt(ctx context.Context, t time.Time) (int64, error) {
	t = t.UTC()
	head, headAt, err := l.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("seq at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	if head == 0 {
		return 0, nil
	}
	// recorded_at is a whole microsecond: at or before t exactly when at
	// or before t truncated to one. Sent so, a finer t is not left to the
	// server, which rounds it (sql_mode TIME_ROUND_FRACTIONAL) into the
	// microsecond after it.
	at := t.Truncate(time.Microsecond)
	if !at.Before(headAt) {
		return head, nil
	}
	// Two index lookups: the last recorded_at <= t (resolved from the
	// index alone), then the greatest seq with exactly that recorded_at (a
	// batch shares one). An ORDER BY ... LIMIT 1 form sorts the whole range.
	var seq sql.NullInt64
	if err := l.db.QueryRowContext(ctx,
		"SELECT MAX(seq) FROM events WHERE recorded_at = (SELECT MAX(recorded_at) FROM events WHERE recorded_at <= ?)", at).Scan(&seq); err != nil {
		return 0, fmt.Errorf("seq at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	if seq.Valid {
		return seq.Int64, nil
	}
	first, err := l.First(ctx)
	if err != nil {
		return 0, fmt.Errorf("seq at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	if first > 1 {
		// Retention deletes the events up to the snapshot it keeps
		// (TrimThrough): from that snapshot's recorded_at on, the answer
		// is its seq, right before the oldest stored event.
		var n int
		err := l.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM snapshots WHERE seq = ? AND recorded_at <= ?", first-1, at).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("seq at %s: %w", t.Format(time.RFC3339Nano), err)
		}
		if n > 0 {
			return first - 1, nil
		}
	}
	if first > 1 || first == 0 {
		// Events before first (or all of them) were dropped; the answer
		// may have been one of them.
		return 0, fmt.Errorf("seq at %s: %w (oldest stored seq %d)", t.Format(time.RFC3339Nano), ErrTruncated, first)
	}
	return 0, nil
}

// ReadRange returns up to limit records with seq > afterSeq, in seq order.
// If retention dropped the records right after afterSeq, the first one
// returned is later than afterSeq+1: callers that need afterSeq+1 check.
func (l *Log) ReadRange(ctx context.Context, afterSeq int64, limit int) ([]event.Record, error) {
	return l.readRange(ctx, nil, afterSeq, -1, limit)
}

// AppendRange is ReadRange appending the records to dst: a reader that
// knows how many records it expects (a reconstruction reading a page of
// the log it knows to be there) sizes dst for them, where ReadRange,
// which cannot know, grows its slice as the rows come. On error it
// returns dst as it was given.
func (l *Log) AppendRange(ctx context.Context, dst []event.Record, afterSeq int64, limit int) ([]event.Record, error) {
	out, err := l.readRange(ctx, dst, afterSeq, -1, limit)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// readRange appends to dst (nil: a slice of its own) the records after
// afterSeq, up to throughSeq (-1: no bound) and limit records.
func (l *Log) readRange(ctx context.Context, dst []event.Record, afterSeq, throughSeq int64, limit int) ([]event.Record, error) {
	if limit <= 0 {
		return dst, nil
	}
	q := "SELECT seq, recorded_at, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
	args := []any{afterSeq, limit}
	if throughSeq >= 0 {
		q = "SELECT seq, recorded_at, body FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
		args = []any{afterSeq, throughSeq, limit}
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read events after seq %d: %w", afterSeq, err)
	}
	defer rows.Close()
	out := dst
	if out == nil {
		out = make([]event.Record, 0, min(limit, 1024))
	}
	for rows.Next() {
		var r event.Record
		// The body is decoded before the next row, and the event holds
		// copies of its strings: no copy of the row's bytes is needed.
		var body sql.RawBytes
		if err := rows.Scan(&r.Seq, &r.RecordedAt, &body); err != nil {
			return nil, fmt.Errorf("read events after seq %d: %w", afterSeq, err)
		}
		r.RecordedAt = r.RecordedAt.UTC()
		if r.Event, err = event.DecodeStored(body); err != nil {
			return nil, fmt.Errorf("read event seq %d: %w: %w", r.Seq, ErrCorrupt, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events after seq %d: %w", afterSeq, err)
	}
	return out, nil
}

// scanPage is the rows of one statement of Scan: short statements keep
// no transaction open for the length of a long scan, so they neither hold
// back purge nor block DropBefore's ALTER TABLE.
const scanPage = 1000

// Scan yields the records with afterSeq < seq <= throughSeq in seq order,
// reading the log page by page; pass math.MaxInt64 as throughSeq for no
// upper bound (the scan then ends at the head it reaches). It checks that
// seqs are dense and stops with an error wrapping ErrCorrupt if they are
// not. A first record later than afterSeq+1 is not an error (retention may
// have dropped the ones before); callers that need afterSeq+1 check it.
func (l *Log) Scan(ctx context.Context, afterSeq, throughSeq int64) iter.Seq2[event.Record, error] {
	return func(yield func(event.Record, error) bool) {
		next := afterSeq
		started := false
		for next < throughSeq {
			page, err := l.readRange(ctx, nil, next, throughSeq, scanPage)
			if err != nil {
				yield(event.Record{}, err)
				return
			}
			for _, r := range page {
				if started && r.Seq != next+1 {
					yield(event.Record{}, fmt.Errorf("scan: %w: seq %d follows %d", ErrCorrupt, r.Seq, next))
					return
				}
				started = true
				next = r.Seq
				if !yield(r, nil) {
					return
				}
			}
			if len(page) < scanPage {
				return
			}
		}
	}
}

// Oldest returns the oldest seq still stored and its recorded_at: the log
// rebuilds no state before that time (replay, --at). With no event stored
// it is the log head's (0 and the zero time for a log never written):
// retention dropped every event, and what is rebuildable starts after it.
func (l *Log) Oldest(ctx context.Context) (int64, time.Time, error) {
	var seq int64
	var at time.Time
	err := l.db.QueryRowContext(ctx, "SELECT seq, recorded_at FROM events ORDER BY seq LIMIT 1").Scan(&seq, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return l.Head(ctx)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read oldest stored event: %w", err)
	}
	return seq, at.UTC(), nil
}
