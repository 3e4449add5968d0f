package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func entry(t testing.TB, id string) store.Entry {
	t.Helper()
	ev := event.Event{V: event.Version, EventID: id, Source: "test", Kind: event.KindTick,
		ObservedAt: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)}
	b, err := event.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return store.Entry{Event: ev, Body: b}
}

func entries(t testing.TB, ids ...string) []store.Entry {
	out := make([]store.Entry, len(ids))
	for i, id := range ids {
		out[i] = entry(t, id)
	}
	return out
}

// clock is a settable now func.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestAppendSequencesAndDedups(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	t0 := time.Date(2026, 11, 22, 5, 0, 0, 123456789, time.UTC)
	clk := &clock{t: t0}
	log := store.NewLog(db, clk.now)

	if seq, at, err := log.Head(ctx); err != nil || seq != 0 || !at.IsZero() {
		t.Fatalf("Head of empty log = %d, %v, %v; want 0, zero, nil", seq, at, err)
	}
	got, err := log.Append(ctx, entries(t, "a", "b", "a", "c"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Batch.PrevSeq != 0 || got.Batch.LastSeq() != 3 || !cmp.Equal(got.Duplicates, []int{2}) {
		t.Fatalf("first append: prev %d last %d dups %v; want 0, 3, [2]", got.Batch.PrevSeq, got.Batch.LastSeq(), got.Duplicates)
	}
	wantAt := t0.Truncate(time.Microsecond)
	for i, r := range got.Batch.Records {
		if r.Seq != int64(i+1) || !r.RecordedAt.Equal(wantAt) {
			t.Errorf("record %d: seq %d at %v; want %d at %v", i, r.Seq, r.RecordedAt, i+1, wantAt)
		}
	}

	// The clock goes back: recorded_at must not.
	clk.set(t0.Add(-time.Hour))
	got, err = log.Append(ctx, entries(t, "b", "d", "c", "e"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Batch.PrevSeq != 3 || got.Batch.LastSeq() != 5 || !cmp.Equal(got.Duplicates, []int{0, 2}) {
		t.Fatalf("second append: prev %d last %d dups %v; want 3, 5, [0 2]", got.Batch.PrevSeq, got.Batch.LastSeq(), got.Duplicates)
	}
	if at := got.Batch.Records[0].RecordedAt; !at.Equal(wantAt) {
		t.Errorf("recorded_at after clock went back = %v; want %v", at, wantAt)
	}
	if got.ClockBehind != time.Hour {
		t.Errorf("ClockBehind = %v; want 1h", got.ClockBehind)
	}

	// All duplicates: nothing stored, head unchanged.
	got, err = log.Append(ctx, entries(t, "a", "e"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Batch.Records) != 0 || got.Batch.PrevSeq != 5 || len(got.Duplicates) != 2 {
		t.Fatalf("all-duplicate append = %+v", got)
	}

	t1 := t0.Add(time.Hour)
	clk.set(t1)
	if _, err := log.Append(ctx, entries(t, "f")); err != nil {
		t.Fatal(err)
	}
	seq, at, err := log.Head(ctx)
	if err != nil || seq != 6 || !at.Equal(t1.Truncate(time.Microsecond)) {
		t.Fatalf("Head = %d, %v, %v; want 6, %v", seq, at, err, t1)
	}

	recs, err := log.ReadRange(ctx, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, fmt.Sprintf("%d:%s", r.Seq, r.Event.EventID))
	}
	if want := []string{"3:c", "4:d", "5:e"}; !cmp.Equal(ids, want) {
		t.Errorf("ReadRange(2, 3) = %v; want %v", ids, want)
	}
	if recs[0].Event.Kind != event.KindTick || recs[0].Event.Source != "test" {
		t.Errorf("decoded event = %+v", recs[0].Event)
	}
	// AppendRange reads the same records after what dst holds, in its array
	// while it has room.
	dst := append(make([]event.Record, 0, 8), event.Record{Seq: -1})
	app, err := log.AppendRange(ctx, dst, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if &app[0] != &dst[0] || app[0].Seq != -1 || !cmp.Equal(app[1:], recs) {
		t.Errorf("AppendRange(2, 3) = %+v; want [{Seq: -1}] then %+v, in dst's array", app, recs)
	}

	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{t0.Add(-time.Second), 0},
		{wantAt, 5},
		{t0.Add(time.Minute), 5},
		{t1, 6},
		{t1.Add(time.Hour), 6},
	} {
		got, err := log.SeqAt(ctx, tc.t)
		if err != nil || got != tc.want {
			t.Errorf("SeqAt(%v) = %d, %v; want %d", tc.t, got, err, tc.want)
		}
	}
}

// TestAppendKeepsGivenRecordedAt checks entries that bring their own
// recorded_at (a log fed by a replay): stored and read back as given, in
// the past included, but never below the previous record's, whether that
// one brought its own time or took the clock's.
func TestAppendKeepsGivenRecordedAt(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	now := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	log := store.NewLog(db, func() time.Time { return now })
	past := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	es := entries(t, "a", "b", "c", "d", "e")
	es[0].RecordedAt = past
	es[1].RecordedAt = past.Add(time.Second)
	es[2].RecordedAt = past.Add(-time.Hour) // before b's: raised to it
	// es[3] takes the clock's
	es[4].RecordedAt = past // before d's: raised to it
	got, err := log.Append(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{past, past.Add(time.Second), past.Add(time.Second), now, now}
	recs, err := log.ReadRange(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got.Batch.Records {
		if !r.RecordedAt.Equal(want[i]) || !recs[i].RecordedAt.Equal(want[i]) {
			t.Errorf("record %d: returned %v, stored %v; want %v", r.Seq, r.RecordedAt, recs[i].RecordedAt, want[i])
		}
	}
	if seq, at, err := log.Head(ctx); err != nil || seq != 5 || !at.Equal(now) {
		t.Fatalf("Head = %d, %v, %v; want 5, %v", seq, at, err, now)
	}
	if seq, err := log.SeqAt(ctx, past.Add(time.Second)); err != nil || seq != 3 {
		t.Fatalf("SeqAt(past+1s) = %d, %v; want 3", seq, err)
	}
}

// TestAppendTakesTheDatabaseClock: a log without a clock of its own gives
// records the database server's time (here a session's, set ahead), not
// the writer's, so every persister shares one clock.
func TestAppendTakesTheDatabaseClock(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	db.SetMaxOpenConns(1) // the session whose clock is set is the log's
	ahead := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	if _, err := db.ExecContext(ctx, "SET timestamp = ?", ahead.Unix()); err != nil {
		t.Fatal(err)
	}
	log := store.NewLog(db, nil)
	got, err := log.Append(ctx, entries(t, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if at := got.Batch.Records[0].RecordedAt; !at.Equal(ahead) {
		t.Fatalf("recorded_at %v; want the database clock's %v", at, ahead)
	}
}

func TestScanIsDenseAndBounded(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	log := store.NewLog(db, nil)
	const n = 2500 // more than one page
	for start := 0; start < n; start += 500 {
		var es []store.Entry
		for i := start; i < start+500; i++ {
			es = append(es, entry(t, fmt.Sprintf("ev-%05d", i)))
		}
		if _, err := log.Append(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ after, through, wantFirst, wantLast int64 }{
		{0, math.MaxInt64, 1, n},
		{10, 2001, 11, 2001},
		{n, math.MaxInt64, 0, 0},
	} {
		var first, last, count int64
		for r, err := range log.Scan(ctx, tc.after, tc.through) {
			if err != nil {
				t.Fatal(err)
			}
			if count == 0 {
				first = r.Seq
			} else if r.Seq != last+1 {
				t.Fatalf("Scan yielded seq %d after %d", r.Seq, last)
			}
			last = r.Seq
			count++
		}
		if first != tc.wantFirst || last != tc.wantLast {
			t.Errorf("Scan(%d, %d) = %d..%d; want %d..%d", tc.after, tc.through, first, last, tc.wantFirst, tc.wantLast)
		}
	}
	// Stopping early must not hang or error.
	count := 0
	for _, err := range log.Scan(ctx, 0, math.MaxInt64) {
		if err != nil {
			t.Fatal(err)
		}
		if count++; count == 5 {
			break
		}
	}
}

func TestPartitionsAndRetention(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	day0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: day0.Add(10 * time.Hour)}
	log := store.NewLog(db, clk.now)

	// Rows written before any day partition exists land in pmax and are
	// moved into the first day partition by maintenance.
	if _, err := log.Append(ctx, entries(t, "d0-a", "d0-b")); err != nil {
		t.Fatal(err)
	}
	created, err := log.MaintainPartitions(ctx, clk.now(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p20261120", "p20261121", "p20261122"}; !cmp.Equal(created, want) {
		t.Fatalf("MaintainPartitions created %v; want %v", created, want)
	}
	if created, err := log.MaintainPartitions(ctx, clk.now(), 2); err != nil || len(created) != 0 {
		t.Fatalf("second MaintainPartitions = %v, %v; want nothing to do", created, err)
	}
	clk.set(day0.AddDate(0, 0, 1).Add(time.Hour))
	if _, err := log.Append(ctx, entries(t, "d1-a")); err != nil {
		t.Fatal(err)
	}
	created, err = log.MaintainPartitions(ctx, clk.now(), 2)
	if err != nil || !cmp.Equal(created, []string{"p20261123"}) {
		t.Fatalf("MaintainPartitions next day = %v, %v; want [p20261123]", created, err)
	}
	clk.set(day0.AddDate(0, 0, 2).Add(time.Hour))
	if _, err := log.Append(ctx, entries(t, "d2-a")); err != nil {
		t.Fatal(err)
	}

	// Dropping before the middle of day 1 drops day 0 only.
	dropped, err := log.DropBefore(ctx, day0.AddDate(0, 0, 1).Add(12*time.Hour))
	if err != nil || !cmp.Equal(dropped, []string{"p20261120"}) {
		t.Fatalf("DropBefore = %v, %v; want [p20261120]", dropped, err)
	}
	if first, err := log.First(ctx); err != nil || first != 3 {
		t.Fatalf("First after drop = %d, %v; want 3", first, err)
	}
	d1 := day0.AddDate(0, 0, 1).Add(time.Hour)
	if seq, at, err := log.Oldest(ctx); err != nil || seq != 3 || !at.Equal(d1) {
		t.Fatalf("Oldest after drop = %d, %s, %v; want 3, %s", seq, at, err, d1)
	}
	if _, err := log.SeqAt(ctx, day0.Add(11*time.Hour)); !errors.Is(err, store.ErrTruncated) {
		t.Errorf("SeqAt in the dropped day: err = %v; want ErrTruncated", err)
	}
	if seq, err := log.SeqAt(ctx, day0.AddDate(0, 0, 1).Add(2*time.Hour)); err != nil || seq != 3 {
		t.Errorf("SeqAt in day 1 = %d, %v; want 3", seq, err)
	}
	// The head survives retention, and seq continues.
	if _, err := log.DropBefore(ctx, day0.AddDate(0, 0, 10)); err != nil {
		t.Fatal(err)
	}
	if seq, _, err := log.Head(ctx); err != nil || seq != 4 {
		t.Fatalf("Head after dropping all = %d, %v; want 4", seq, err)
	}
	// With no event left, the oldest rebuildable state is after the head.
	if seq, at, err := log.Oldest(ctx); err != nil || seq != 4 || !at.Equal(day0.AddDate(0, 0, 2).Add(time.Hour)) {
		t.Fatalf("Oldest after dropping all = %d, %s, %v; want 4 and the head's time", seq, at, err)
	}
	got, err := log.Append(ctx, entries(t, "later"))
	if err != nil || got.Batch.FirstSeq() != 5 {
		t.Fatalf("Append after dropping all: first seq %d, %v; want 5", got.Batch.FirstSeq(), err)
	}
	parts, err := log.Partitions(ctx)
	if err != nil || len(parts) != 0 {
		t.Fatalf("Partitions after dropping all = %v, %v; want none (pmax is not listed)", parts, err)
	}
}

func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewEmptyDB(t)
	dbs := []*sql.DB{openDB(t, dsn), openDB(t, dsn), openDB(t, dsn)}
	ms, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	results := make([][]int, len(dbs))
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { results[i], errs[i] = store.Migrate(ctx, db) })
	}
	wg.Wait()
	total := 0
	for i := range dbs {
		if errs[i] != nil {
			t.Fatalf("migrate %d: %v", i, errs[i])
		}
		total += len(results[i])
	}
	if total != len(ms) {
		t.Errorf("concurrent migrations applied %d versions in all; want each of %d once (%v)", total, len(ms), results)
	}
	if again, err := store.Migrate(ctx, dbs[0]); err != nil || len(again) != 0 {
		t.Errorf("Migrate again = %v, %v; want nothing", again, err)
	}
	var n int
	if err := dbs[0].QueryRowContext(ctx, "SELECT COUNT(*) FROM log_counter").Scan(&n); err != nil || n != 1 {
		t.Errorf("log_counter rows = %d, %v; want 1", n, err)
	}
	// An applied migration edited afterwards is refused.
	if _, err := dbs[0].ExecContext(ctx, "UPDATE schema_migrations SET checksum = REPEAT('0', 64) WHERE version = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx, dbs[0]); !errors.Is(err, store.ErrMigrationChanged) {
		t.Errorf("Migrate with a changed migration: err = %v; want ErrMigrationChanged", err)
	}
}

// TestMigrateRefusesANewerSchema: a database that a newer release
// migrated further than this binary knows is refused, naming the
// migrations it lacks, rather than reported up to date: components of
// this release would write on it in the shape it had before them (alarm
// keys before migration 9, say). Nothing is applied.
func TestMigrateRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewEmptyDB(t))
	if _, err := store.MigrateThrough(ctx, db, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (9999, '9999_from_a_newer_release.sql', REPEAT('0', 64), UTC_TIMESTAMP(6))"); err != nil {
		t.Fatal(err)
	}
	applied, err := store.Migrate(ctx, db)
	if !errors.Is(err, store.ErrSchemaAhead) || !strings.Contains(err.Error(), "9999_from_a_newer_release.sql") || len(applied) != 0 {
		t.Fatalf("Migrate of a database a newer release migrated: %v, %v; want ErrSchemaAhead naming 9999_from_a_newer_release.sql, nothing applied", applied, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != 6 {
		t.Errorf("%d migrations recorded (%v); want the 5 applied and the newer one", n, err)
	}
}

func TestCheckFence(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	fence := func(name string, term int64) error {
		tx, err := store.Begin(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CheckFence(ctx, tx, name, term); err != nil {
			tx.Rollback(ctx)
			return err
		}
		return tx.Commit(ctx)
	}
	for _, tc := range []struct {
		term   int64
		fenced bool
	}{{3, false}, {3, false}, {5, false}, {4, true}, {1, true}, {5, false}, {6, false}} {
		err := fence("snapshot", tc.term)
		if got := errors.Is(err, store.ErrFenced); got != tc.fenced || (err != nil && !got) {
			t.Errorf("CheckFence(term %d) = %v; want fenced=%v", tc.term, err, tc.fenced)
		}
	}
	if err := fence("outbox", 1); err != nil {
		t.Errorf("another fence is independent: %v", err)
	}
	var term int64
	if err := db.QueryRowContext(ctx, "SELECT term FROM fencing WHERE name = 'snapshot'").Scan(&term); err != nil || term != 6 {
		t.Errorf("stored term = %d, %v; want 6", term, err)
	}

	// A newer leader's write in flight makes an older leader wait on the
	// row, then fail, even though the older one started first.
	tx, err := store.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CheckFence(ctx, tx, "snapshot", 8); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fence("snapshot", 7) }()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, store.ErrFenced) {
		t.Errorf("older leader after newer committed: %v; want ErrFenced", err)
	}
}

// TestConcurrentAppendsCommitInSeqOrder runs writers on separate
// connections while a reader tails seq > last: the reader must see every
// seq, in order, none skipped.
func TestConcurrentAppendsCommitInSeqOrder(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	const writers, batches, perBatch = 3, 40, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		log := store.NewLog(openDB(t, dsn), nil)
		wg.Go(func() {
			for b := range batches {
				var es []store.Entry
				for i := range perBatch {
					// Every writer also writes the ids of writer 0: dedup
					// must hold across concurrent writers.
					es = append(es, entry(t, fmt.Sprintf("w%d-b%d-%d", w%2, b, i)))
				}
				if _, err := log.Append(ctx, es); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	reader := store.NewLog(openDB(t, dsn), nil)
	const want = 2 * batches * perBatch
	var last int64
	deadline := time.Now().Add(60 * time.Second)
	for last < want {
		if time.Now().After(deadline) {
			t.Fatalf("reader reached seq %d of %d before the deadline", last, want)
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		recs, err := reader.ReadRange(ctx, last, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Seq != last+1 {
				t.Fatalf("reader saw seq %d after %d; want %d (a later seq visible before an earlier one, or a seq repeated)", r.Seq, last, last+1)
			}
			last = r.Seq
		}
	}
	<-writersDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if seq, _, err := reader.Head(ctx); err != nil || seq != want {
		t.Fatalf("Head = %d, %v; want %d", seq, err, want)
	}
}

// vanishingConn is a connection to the server whose host vanishes (a
// crash, a partition) once armed and once the writer sends its dedup
// lookup, after taking the counter row: that statement and every later
// byte never leave, and closing it sends nothing to the server either,
// which keeps its end open.
type vanishingConn struct {
	net.Conn
	armed    *atomic.Bool
	vanished chan struct{} // closed when the host vanished
	once     *sync.Once
	gone     atomic.Bool
}

func (c *vanishingConn) Write(b []byte) (int, error) {
	if c.gone.Load() || c.armed.Load() && bytes.Contains(b, []byte("FROM events WHERE event_id IN")) {
		c.gone.Store(true)
		c.once.Do(func() { close(c.vanished) })
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

func (c *vanishingConn) Close() error {
	if c.gone.Load() {
		return nil // no FIN reaches the server; the test's cleanup closes the socket
	}
	return c.Conn.Close()
}

// TestVanishedWriterReleasesTheCounter: a persister whose host vanishes in
// the middle of an Append (after it locked the counter row) leaves its
// transaction open on the server, which sees an idle client; until the
// server drops that connection no other writer can append, and a hot
// standby taking over the queue stalls with the log. The server must drop
// it after the Append's idle timeout, not after wait_timeout (8 hours) or
// TCP keepalive (2 hours).
func TestVanishedWriterReleasesTheCounter(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var armed atomic.Bool
	vanished := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var socks []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range socks {
			c.Close()
		}
	})
	netName := fmt.Sprintf("vanishing-%p", &armed)
	mysql.RegisterDialContext(netName, func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		socks = append(socks, c)
		mu.Unlock()
		return &vanishingConn{Conn: c, armed: &armed, vanished: vanished, once: &once}, nil
	})
	cfg.Net = netName
	crashed := store.NewLog(openDB(t, cfg.FormatDSN()), nil)
	defer store.SetTxIdleTimeout(store.SetTxIdleTimeout(time.Second))
	armed.Store(true)
	go func() { _, _ = crashed.Append(ctx, entries(t, "lost")) }()
	<-vanished

	standby := store.NewLog(openDB(t, dsn), nil)
	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got, err := standby.Append(actx, entries(t, "next"))
	if err != nil {
		t.Fatalf("Append while a vanished writer's transaction held the counter: %v", err)
	}
	if got.Batch.PrevSeq != 0 || got.Batch.LastSeq() != 1 {
		t.Errorf("Append after the vanished writer = seq %d..%d; want 1..1 (its batch rolled back)", got.Batch.FirstSeq(), got.Batch.LastSeq())
	}
}

// TestAppendUnansweredEndsWithItsContext: over a database that stops
// answering right after Append's COMMIT (or, for a call whose events are
// all stored already, its ROLLBACK) reached it, Append returns once its
// context ends, not when the kernel's TCP timeout would end the
// connection. The COMMIT took effect although Append could not know it:
// calling Append again with the same events, as the persister does, stores
// nothing twice.
func TestAppendUnansweredEndsWithItsContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stored  []string // appended before, with traffic passing
		trigger string
	}{
		{"commit", nil, "COMMIT"},
		{"rollback", []string{"a", "b"}, "ROLLBACK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.NewDB(t)
			proxied, proxy := storetest.NewProxy(t, dsn)
			log := store.NewLog(openDB(t, proxied), nil)
			if len(tc.stored) > 0 {
				if _, err := log.Append(ctx, entries(t, tc.stored...)); err != nil {
					t.Fatal(err)
				}
			}
			tripped := proxy.HoleAfter([]byte(tc.trigger))
			actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := log.Append(actx, entries(t, "a", "b"))
				done <- err
			}()
			select {
			case err := <-done:
				if tc.trigger == "COMMIT" && !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Append whose COMMIT went unanswered = %v; want a deadline error", err)
				}
				if tc.trigger == "ROLLBACK" && err != nil {
					t.Fatalf("Append of stored events whose ROLLBACK went unanswered = %v; want nil (nothing was to be written)", err)
				}
			case <-time.After(time.Minute):
				t.Fatalf("Append still waits for the answer to its %s a minute past its deadline", tc.trigger)
			}
			select {
			case <-tripped:
			default:
				t.Fatalf("Append sent no %s", tc.trigger)
			}
			proxy.Pass()

			direct := store.NewLog(openDB(t, dsn), nil)
			waitHead := func(want int64) {
				t.Helper()
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					seq, _, err := direct.Head(ctx)
					if err == nil && seq == want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("head = %d, %v; want %d", seq, err, want)
					}
				}
			}
			waitHead(2)
			got, err := log.Append(ctx, entries(t, "a", "b"))
			if err != nil {
				t.Fatalf("Append again: %v", err)
			}
			if len(got.Batch.Records) != 0 || got.Batch.PrevSeq != 2 || !cmp.Equal(got.Duplicates, []int{0, 1}) {
				t.Errorf("Append again = %d records after seq %d, duplicates %v; want none after 2, [0 1]", len(got.Batch.Records), got.Batch.PrevSeq, got.Duplicates)
			}
			if _, err := log.Append(ctx, entries(t, "c")); err != nil {
				t.Fatalf("Append after the hole: %v", err)
			}
			waitHead(3)
		})
	}
}

// TestPingTellsAnsweringFromHung: Ping answers while the database does,
// and ends with its context, with an error, while the database hangs (a
// black hole: connections accepted, nothing answered), whether a pooled
// connection is idle or a new one is needed; it answers again once the
// database does. The persister tells a slow commit from a hung database
// by it.
func TestPingTellsAnsweringFromHung(t *testing.T) {
	ctx := context.Background()
	proxied, proxy := storetest.NewProxy(t, storetest.NewDB(t))
	log := store.NewLog(openDB(t, proxied), nil)
	if err := log.Ping(ctx); err != nil {
		t.Fatalf("Ping = %v; want nil", err)
	}
	proxy.Hole()
	for i := range 2 { // first on the idle pooled connection, then on a new one
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		start := time.Now()
		err := log.Ping(pctx)
		cancel()
		if err == nil {
			t.Fatalf("Ping %d into the hang = nil; want an error", i+1)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("Ping %d into the hang took %v; want it to end with its context (300ms)", i+1, took)
		}
	}
	proxy.Pass()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := log.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the hang = %v; want nil", err)
		}
	}
}

// TestWritableTellsRefusedWrites: Writable answers nil while the log
// takes writes, and changes nothing; it fails while the database refuses
// them (a trigger failing every update of the counter row, while pings
// still answer), and ends with its context, with an error, while another
// session holds the counter row locked. The persister resumes consuming
// after a pause only once the log takes writes.
func TestWritableTellsRefusedWrites(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	log := store.NewLog(db, nil)
	if _, err := log.Append(ctx, entries(t, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := log.Writable(ctx); err != nil {
		t.Fatalf("Writable = %v; want nil", err)
	}
	if seq, _, err := log.Head(ctx); err != nil || seq != 2 {
		t.Fatalf("Head after Writable = %d, %v; want 2, nil", seq, err)
	}

	if _, err := db.ExecContext(ctx,
		"CREATE TRIGGER refuse_writes BEFORE UPDATE ON log_counter FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'writes refused'"); err != nil {
		t.Fatal(err)
	}
	if err := log.Ping(ctx); err != nil {
		t.Fatalf("Ping while writes are refused = %v; want nil", err)
	}
	if err := log.Writable(ctx); err == nil || !strings.Contains(err.Error(), "writes refused") {
		t.Fatalf("Writable while writes are refused = %v; want the trigger's error", err)
	}
	if _, err := db.ExecContext(ctx, "DROP TRIGGER refuse_writes"); err != nil {
		t.Fatal(err)
	}

	tx, err := store.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT last_seq FROM log_counter WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	err = log.Writable(wctx)
	cancel()
	if err == nil {
		t.Fatal("Writable while the counter row is locked = nil; want an error")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Writable while the counter row is locked took %v; want it to end with its context (300ms)", took)
	}
	tx.Rollback(ctx)
	if err := log.Writable(ctx); err != nil {
		t.Fatalf("Writable once the lock is released = %v; want nil", err)
	}
	if _, err := log.Append(ctx, entries(t, "c")); err != nil {
		t.Fatalf("Append after Writable: %v", err)
	}
}

// TestClaimFenceUnansweredEndsWithItsContext: over a database that stops
// answering right after a claim's COMMIT reached it, ClaimFence returns
// once its context ends (a leadership lost, a processor stopping), not
// when the kernel's TCP timeout would end the connection. The COMMIT took
// effect although the claim could not know it; claiming again at the same
// term, as a leader does after a failed claim, succeeds.
func TestClaimFenceUnansweredEndsWithItsContext(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	proxied, proxy := storetest.NewProxy(t, dsn)
	db := openDB(t, proxied)
	if _, err := store.ClaimFence(ctx, db, "leader", 2, 0); err != nil {
		t.Fatal(err)
	}
	tripped := proxy.HoleAfter([]byte("COMMIT"))
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := store.ClaimFence(cctx, db, "leader", 3, 0)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("claim whose COMMIT went unanswered = %v; want a deadline error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("claim still waits for the answer to its COMMIT a minute past its deadline")
	}
	select {
	case <-tripped:
	default:
		t.Fatal("claim sent no COMMIT")
	}
	proxy.Pass()

	if _, err := store.ClaimFence(ctx, db, "leader", 3, 0); err != nil {
		t.Fatalf("claim again at the same term: %v", err)
	}
	if got, err := store.StoredFence(ctx, openDB(t, dsn), "leader"); err != nil || got != 3 {
		t.Errorf("stored fence = %d, %v; want 3", got, err)
	}
}

// TestTxClosesItsStatements: a statement prepared in a store.Tx is closed
// on the server when the transaction ends, committed or rolled back, as a
// sql.Tx's is; it is not left for the caller to close later, on a
// connection back in the pool.
func TestTxClosesItsStatements(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprintf("commit=%t", commit), func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, storetest.NewDB(t))
			db.SetMaxOpenConns(1) // the transaction's connection is the one read after it
			closed := func() int {
				t.Helper()
				var name string
				var n int
				if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Com_stmt_close'").Scan(&name, &n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			before := closed()
			tx, err := store.Begin(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			stmt, err := tx.PrepareContext(ctx, "INSERT INTO fencing (name, term) VALUES (?, ?)")
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if _, err := stmt.ExecContext(ctx, fmt.Sprint("f", i), i); err != nil {
					t.Fatal(err)
				}
			}
			if commit {
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				tx.Rollback(ctx)
			}
			if got := closed() - before; got != 1 {
				t.Errorf("statements closed by the transaction's end: %d; want 1", got)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM fencing").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 3, false: 0}[commit]; n != want {
				t.Errorf("%d rows after the transaction; want %d", n, want)
			}
			if err := stmt.Close(); err != nil {
				t.Errorf("closing the statement again: %v", err)
			}
		})
	}
}

// retentionLog is a log of four days from day0 (2026-11-20), an event a
// day at 01:00 (seqs 1 to 4, a day partition each), and snap, which
// stores a snapshot's row at seq, recorded at at.
func retentionLog(t *testing.T) (db *sql.DB, log *store.Log, day0 time.Time, snap func(seq int64, at time.Time)) {
	t.Helper()
	ctx := context.Background()
	db = openDB(t, storetest.NewDB(t))
	day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: day0.Add(time.Hour)}
	log = store.NewLog(db, clk.now)
	if _, err := log.MaintainPartitions(ctx, clk.now(), 5); err != nil {
		t.Fatal(err)
	}
	for d := range 4 {
		clk.set(day0.AddDate(0, 0, d).Add(time.Hour))
		if _, err := log.Append(ctx, entries(t, fmt.Sprint("day", d))); err != nil {
			t.Fatal(err)
		}
	}
	snap = func(seq int64, at time.Time) {
		t.Helper()
		if _, err := db.ExecContext(ctx, `INSERT INTO snapshots (seq, recorded_at, term, format_version, encoding, size, raw_size, chunks, checksum, created_at)
VALUES (?, ?, 1, 1, 'test', 0, 0, 0, REPEAT('x', 32), ?)`, seq, at, at); err != nil {
			t.Fatal(err)
		}
	}
	return db, log, day0, snap
}

func TestRetainKeepsWhatSnapshotsNeed(t *testing.T) {
	ctx := context.Background()
	db, log, day0, snap := retentionLog(t)
	// No snapshot: nothing may go, whatever the retention says.
	dropped, bound, err := log.Retain(ctx, day0.AddDate(0, 0, 10), true)
	if err != nil || len(dropped) != 0 || !bound.IsZero() {
		t.Fatalf("Retain without snapshots = %v, %v, %v; want nothing dropped", dropped, bound, err)
	}
	// The oldest snapshot (seq 2, day 1) bounds retention below t.
	snap(2, day0.AddDate(0, 0, 1).Add(time.Hour))
	snap(3, day0.AddDate(0, 0, 2).Add(time.Hour))
	dropped, bound, err = log.Retain(ctx, day0.AddDate(0, 0, 10), true)
	if err != nil || !cmp.Equal(dropped, []string{"p20261120"}) || !bound.Equal(day0.AddDate(0, 0, 1).Add(time.Hour)) {
		t.Fatalf("Retain = %v, %v, %v; want [p20261120] bounded by the oldest snapshot", dropped, bound, err)
	}
	// A retention boundary before the oldest snapshot bounds it instead.
	if _, err := db.ExecContext(ctx, "DELETE FROM snapshots WHERE seq = 2"); err != nil {
		t.Fatal(err)
	}
	dropped, _, err = log.Retain(ctx, day0.AddDate(0, 0, 1).Add(30*time.Minute), true)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("Retain before a partition's end = %v, %v; want nothing", dropped, err)
	}
	dropped, _, err = log.Retain(ctx, day0.AddDate(0, 0, 2), true)
	if err != nil || !cmp.Equal(dropped, []string{"p20261121"}) {
		t.Fatalf("Retain = %v, %v; want [p20261121]", dropped, err)
	}
	if first, err := log.First(ctx); err != nil || first != 3 {
		t.Errorf("First = %d, %v; want 3 (the oldest snapshot's seq is 3)", first, err)
	}
}

// TestRetainKeepsAWholeLogWithoutASnapshotBeforeTheBoundary: while the
// log still starts at seq 1 and every snapshot is newer than the retention
// boundary (the first ones were taken lately, or `snapshots prune-stale`
// deleted the older ones), the moments between the boundary and the
// oldest snapshot are reconstructed by a replay from seq 1: nothing may
// go. Once a snapshot lies at or before the boundary, it bounds retention.
func TestRetainKeepsAWholeLogWithoutASnapshotBeforeTheBoundary(t *testing.T) {
	ctx := context.Background()
	db, log, day0, snap := retentionLog(t)
	snap(4, day0.AddDate(0, 0, 3).Add(time.Hour))
	boundary := day0.AddDate(0, 0, 2)
	dropped, _, err := log.Retain(ctx, boundary, true)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("Retain = %v, %v; want nothing dropped (the state at the boundary is seq 2, which only a replay from seq 1 reaches)", dropped, err)
	}
	if seq, err := log.SeqAt(ctx, boundary); err != nil || seq != 2 {
		t.Fatalf("SeqAt(boundary) = %d, %v; want 2", seq, err)
	}
	if first, err := log.First(ctx); err != nil || first != 1 {
		t.Fatalf("First = %d, %v; want 1", first, err)
	}
	snap(2, day0.AddDate(0, 0, 1).Add(time.Hour))
	// A snapshot at or before the boundary that the processors cannot
	// restore (corrupt, another build's encoding: not anchored) is no
	// base either.
	if dropped, _, err := log.Retain(ctx, boundary, false); err != nil || len(dropped) != 0 {
		t.Fatalf("Retain not anchored = %v, %v; want nothing dropped", dropped, err)
	}
	dropped, bound, err := log.Retain(ctx, boundary, true)
	if err != nil || !cmp.Equal(dropped, []string{"p20261120"}) || !bound.Equal(day0.AddDate(0, 0, 1).Add(time.Hour)) {
		t.Fatalf("Retain = %v, %v, %v; want [p20261120] bounded by the snapshot at seq 2", dropped, bound, err)
	}
	// Once the log lost its start, the moments before the oldest usable
	// snapshot are past reconstruction whatever is kept: an unanchored
	// retention goes up to the oldest snapshot stored, which may still be
	// restorable by others.
	if _, err := db.ExecContext(ctx, "DELETE FROM snapshots WHERE seq = 2"); err != nil {
		t.Fatal(err)
	}
	snap(3, day0.AddDate(0, 0, 2).Add(time.Hour))
	dropped, bound, err = log.Retain(ctx, day0.AddDate(0, 0, 5), false)
	if err != nil || !cmp.Equal(dropped, []string{"p20261121"}) || !bound.Equal(day0.AddDate(0, 0, 2).Add(time.Hour)) {
		t.Fatalf("Retain not anchored, the start lost = %v, %v, %v; want [p20261121] bounded by the oldest snapshot", dropped, bound, err)
	}
}

// TestTrimThroughDeletesUpToTheAnchor: Retain leaves the events of the
// anchor's day that come before it; TrimThrough deletes them, statement by
// statement, and the moments from the anchor's recorded_at to the oldest
// stored event still resolve, to the anchor's seq. It refuses while an
// older snapshot is stored (that one needs the events), and once the
// retention lock is lost.
func TestTrimThroughDeletesUpToTheAnchor(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	day0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: day0.Add(time.Hour)}
	log := store.NewLog(db, clk.now)
	if _, err := log.MaintainPartitions(ctx, clk.now(), 3); err != nil {
		t.Fatal(err)
	}
	// Seq 1 on day 0, seqs 2..7 on day 1 (an hour apart), seq 8 on day 2.
	for i, at := range []time.Time{
		day0.Add(time.Hour),
		day0.AddDate(0, 0, 1).Add(1 * time.Hour), day0.AddDate(0, 0, 1).Add(2 * time.Hour), day0.AddDate(0, 0, 1).Add(3 * time.Hour),
		day0.AddDate(0, 0, 1).Add(4 * time.Hour), day0.AddDate(0, 0, 1).Add(5 * time.Hour), day0.AddDate(0, 0, 1).Add(6 * time.Hour),
		day0.AddDate(0, 0, 2).Add(time.Hour),
	} {
		clk.set(at)
		if _, err := log.Append(ctx, entries(t, fmt.Sprint("e", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	snap := func(seq int64, at time.Time) {
		t.Helper()
		if _, err := db.ExecContext(ctx, `INSERT INTO snapshots (seq, recorded_at, term, format_version, encoding, size, raw_size, chunks, checksum, created_at)
VALUES (?, ?, 1, 1, 'test', 0, 0, 0, REPEAT('x', 32), ?)`, seq, at, at); err != nil {
			t.Fatal(err)
		}
	}
	anchorAt := day0.AddDate(0, 0, 1).Add(5 * time.Hour)
	snap(1, day0.Add(time.Hour))
	snap(6, anchorAt)
	lease, err := log.LockRetention(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if n, err := log.TrimThrough(ctx, 6, lease); err == nil || n != 0 {
		t.Fatalf("TrimThrough(6) with a snapshot at seq 1 stored = %d, %v; want it refused", n, err)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM snapshots WHERE seq = 1"); err != nil {
		t.Fatal(err)
	}
	cut := day0.AddDate(0, 0, 1).Add(12 * time.Hour)
	dropped, _, err := log.Retain(ctx, cut, true)
	if err != nil || !cmp.Equal(dropped, []string{"p20261120"}) {
		t.Fatalf("Retain = %v, %v; want [p20261120]", dropped, err)
	}
	if first, err := log.First(ctx); err != nil || first != 2 {
		t.Fatalf("First after Retain = %d, %v; want 2 (the anchor's day is kept whole)", first, err)
	}
	defer store.SetTrimChunk(store.SetTrimChunk(2))
	if n, err := log.TrimThrough(ctx, 6, lease); err != nil || n != 5 {
		t.Fatalf("TrimThrough(6) = %d, %v; want 5 rows deleted", n, err)
	}
	if first, err := log.First(ctx); err != nil || first != 7 {
		t.Fatalf("First after TrimThrough = %d, %v; want 7, right after the anchor", first, err)
	}
	if seq, err := log.SeqAt(ctx, anchorAt.Add(30*time.Minute)); err != nil || seq != 6 {
		t.Errorf("SeqAt between the anchor and the oldest stored event = %d, %v; want the anchor's seq 6", seq, err)
	}
	if seq, err := log.SeqAt(ctx, anchorAt.Add(-time.Minute)); !errors.Is(err, store.ErrTruncated) {
		t.Errorf("SeqAt before the anchor = %d, %v; want ErrTruncated", seq, err)
	}
	if seq, err := log.SeqAt(ctx, day0.AddDate(0, 0, 2).Add(2*time.Hour)); err != nil || seq != 8 {
		t.Errorf("SeqAt on day 2 = %d, %v; want 8", seq, err)
	}
	if n, err := log.TrimThrough(ctx, 6, lease); err != nil || n != 0 {
		t.Fatalf("TrimThrough(6) again = %d, %v; want nothing to do", n, err)
	}
	lease.Release()
	if n, err := log.TrimThrough(ctx, 6, lease); !errors.Is(err, store.ErrLockLost) || n != 0 {
		t.Fatalf("TrimThrough without the lock = %d, %v; want ErrLockLost", n, err)
	}
}

// TestPartitionMaintenanceUnderLoad changes partitions while a writer
// appends: no append may fail and the log stays dense.
func TestPartitionMaintenanceUnderLoad(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	db := openDB(t, dsn)
	day0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: day0.Add(time.Hour)}
	writer := store.NewLog(openDB(t, dsn), clk.now)
	maint := store.NewLog(db, nil)

	stop := make(chan struct{})
	done := make(chan error, 1)
	var appended atomic.Int64
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			res, err := writer.Append(ctx, entries(t, fmt.Sprint("m", i, "-a"), fmt.Sprint("m", i, "-b")))
			if err != nil {
				done <- err
				return
			}
			appended.Store(res.Batch.LastSeq())
		}
	}()
	for d := range 6 {
		// Each round starts while appends are flowing.
		before := appended.Load()
		deadline := time.Now().Add(30 * time.Second)
		for appended.Load() < before+4 {
			if time.Now().After(deadline) {
				t.Fatal("the writer made no progress")
			}
			time.Sleep(time.Millisecond)
		}
		now := day0.AddDate(0, 0, d).Add(time.Hour)
		clk.set(now)
		if _, err := maint.MaintainPartitions(ctx, now, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := maint.DropBefore(ctx, now.AddDate(0, 0, -3)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("append during partition maintenance: %v", err)
	}
	first, err := maint.First(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n, last int64
	for r, err := range maint.Scan(ctx, first-1, math.MaxInt64) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		last = r.Seq
	}
	if last != appended.Load() || n != last-first+1 {
		t.Errorf("after maintenance: seq %d..%d with %d rows; want dense up to %d", first, last, n, appended.Load())
	}
}

// TestAlterGivesUpBehindLongTransaction: a transaction holding the events
// table open makes partition maintenance fail after its short lock wait
// instead of queueing the log's writers behind it indefinitely.
func TestAlterGivesUpBehindLongTransaction(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	log := store.NewLog(db, nil)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = log.MaintainPartitions(ctx, time.Now(), 1)
	if err == nil {
		t.Fatal("MaintainPartitions succeeded while a transaction held the table")
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("MaintainPartitions gave up after %v; want within its short lock wait", took)
	}
	_ = tx.Rollback()
	if _, err := log.MaintainPartitions(ctx, time.Now(), 1); err != nil {
		t.Errorf("MaintainPartitions after the transaction ended: %v", err)
	}
	if _, err := log.Append(ctx, entries(t, "after")); err != nil {
		t.Errorf("Append after: %v", err)
	}
}

// TestClaimFenceEvictsAStoppedHolder: a deposed leader stopped in the
// middle of a fenced write keeps the fence row locked; the new leader's
// claim kills its connection after evictAfter instead of waiting for the
// lock timeout, and the old leader's write fails when it goes on.
func TestClaimFenceEvictsAStoppedHolder(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	if _, err := store.ClaimFence(ctx, db, "leader", 4, time.Second); err != nil {
		t.Fatal(err)
	}
	tx, err := store.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CheckFence(ctx, tx, "leader", 4); err != nil {
		t.Fatal(err)
	}
	var oldID int64
	if err := tx.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&oldID); err != nil {
		t.Fatal(err)
	}
	// The old leader "stops" here, holding the row.
	start := time.Now()
	evicted, err := store.ClaimFence(ctx, db, "leader", 5, 200*time.Millisecond)
	if err != nil {
		t.Fatalf("claim at term 5: %v", err)
	}
	if len(evicted) != 1 || evicted[0] != oldID {
		t.Errorf("evicted %v; want the holder's connection %d", evicted, oldID)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("claim took %s: it waited for the lock timeout instead of evicting", took)
	}
	// The old leader resumes: its write is gone with its connection.
	if _, err := tx.ExecContext(ctx, "UPDATE fencing SET term = 4 WHERE name = 'leader'"); err == nil {
		if err := tx.Commit(ctx); err == nil {
			t.Fatal("the evicted leader's transaction committed")
		}
	}
	tx.Rollback(ctx)
	if got, err := store.StoredFence(ctx, db, "leader"); err != nil || got != 5 {
		t.Errorf("stored fence = %d, %v; want 5", got, err)
	}
	if got, err := store.StoredFence(ctx, db, "nothing"); err != nil || got != 0 {
		t.Errorf("stored fence of a name never claimed = %d, %v; want 0", got, err)
	}
	// A stale claim is refused, and a claim that needs no eviction evicts nothing.
	if _, err := store.ClaimFence(ctx, db, "leader", 3, 200*time.Millisecond); !errors.Is(err, store.ErrFenced) {
		t.Errorf("claim at term 3 = %v; want ErrFenced", err)
	}
	if evicted, err := store.ClaimFence(ctx, db, "leader", 6, 200*time.Millisecond); err != nil || len(evicted) != 0 {
		t.Errorf("claim at term 6 = %v, %v; want no eviction", evicted, err)
	}
}

// TestStaleClaimDoesNotEvictTheLeader: a deposed leader's claim (one
// frozen while it waited for the fence row, whose eviction timer has run
// out when it resumes) that waits behind the current leader's fenced
// write must not kill that write's connection: the stored term, above
// the claim's, says the claim is the stale one. It fails with ErrFenced
// at once instead, and the leader's write commits.
func TestStaleClaimDoesNotEvictTheLeader(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	if _, err := store.ClaimFence(ctx, db, "leader", 5, time.Second); err != nil {
		t.Fatal(err)
	}
	tx, err := store.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := store.CheckFence(ctx, tx, "leader", 5); err != nil {
		t.Fatal(err)
	}
	// The leader at term 5 is in the middle of its write.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	evicted, err := store.ClaimFence(cctx, db, "leader", 4, 200*time.Millisecond)
	if !errors.Is(err, store.ErrFenced) {
		t.Errorf("claim at term 4 behind the write of term 5 = %v; want ErrFenced", err)
	}
	if len(evicted) != 0 {
		t.Errorf("the stale claim evicted %v", evicted)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE fencing SET term = 5 WHERE name = 'leader'"); err != nil {
		t.Fatalf("the leader's write after the stale claim: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("the leader's write after the stale claim: commit: %v", err)
	}
	if got, err := store.StoredFence(ctx, db, "leader"); err != nil || got != 5 {
		t.Errorf("stored fence = %d, %v; want 5", got, err)
	}
}

// TestMigrationMovesAlarmKeys writes history rows as a release before 0009
// keyed them (type and id joined with "/" as they are), then migrates: the
// rows of types with "/" or "%" move to the keys graph.Vertex.Key gives
// now, with their severity changes and causal links; the others stay.
func TestMigrationMovesAlarmKeys(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewEmptyDB(t))
	if _, err := store.MigrateThrough(ctx, db, 8); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []struct{ id, typ, aid, rkey, rtype, rid string }{
		{"o1", "k8s/pod", "x", "RESOURCE/k8s/node/n1", "k8s/node", "n1"},
		{"o2", "k8s", "pod/x", "RESOURCE/nova.host/h1", "nova.host", "h1"},
		{"o3", "50%", "y", "", "", ""},
		{"o4", "vitrage", "z", "RESOURCE/a%b/r", "a%b", "r"},
	} {
		if _, err := db.ExecContext(ctx, `INSERT INTO alarm_history (id, alarm_key, vitrage_id, alarm_type, alarm_id, name,
 resource_key, resource_type, resource_id, resource_name, deduced, raised_severity, severity, severity_seq, raised_seq, raised_at, term)
 VALUES (?, ?, 1, ?, ?, 'n', ?, ?, ?, '', false, 'WARNING', 'WARNING', 1, 1, ?, 1)`,
			r.id, "ALARM/"+r.typ+"/"+r.aid, r.typ, r.aid, r.rkey, r.rtype, r.rid, at); err != nil {
			t.Fatal(err)
		}
	}
	// s2's key was both o1's and o2's: whose it is cannot be told.
	if _, err := db.ExecContext(ctx, `INSERT INTO alarm_severity_changes (id, alarm_key, seq, recorded_at, prev_severity, severity, term)
 VALUES ('s1', 'ALARM/50%/y', 2, ?, 'WARNING', 'CRITICAL', 1), ('s2', 'ALARM/k8s/pod/x', 2, ?, 'WARNING', 'CRITICAL', 1)`, at, at); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO alarm_causal_links (id, from_key, to_key, start_seq, start_at, term)
 VALUES ('l1', 'ALARM/50%/y', 'ALARM/vitrage/z', 2, ?, 1)`, at); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	rows, err := db.QueryContext(ctx, "SELECT id, alarm_key, resource_key FROM alarm_history")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, key, rkey string
		if err := rows.Scan(&id, &key, &rkey); err != nil {
			t.Fatal(err)
		}
		got[id] = key + " on " + rkey
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var s1, s2, from, to string
	if err := db.QueryRowContext(ctx, "SELECT alarm_key FROM alarm_severity_changes WHERE id = 's1'").Scan(&s1); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT alarm_key FROM alarm_severity_changes WHERE id = 's2'").Scan(&s2); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT from_key, to_key FROM alarm_causal_links").Scan(&from, &to); err != nil {
		t.Fatal(err)
	}
	got["s1"], got["s2"], got["l1"] = s1, s2, from+" -> "+to
	want := map[string]string{
		"o1": "ALARM/k8s%2Fpod/x on RESOURCE/k8s%2Fnode/n1",
		"o2": "ALARM/k8s/pod/x on RESOURCE/nova.host/h1",
		"o3": "ALARM/50%25/y on ",
		"o4": "ALARM/vitrage/z on RESOURCE/a%25b/r",
		"s1": "ALARM/50%25/y",
		"s2": "ALARM/k8s/pod/x",
		"l1": "ALARM/50%25/y -> ALARM/vitrage/z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history keys after the migration (-want +got):\n%s", diff)
	}
}

// TestSeqAtBetweenMicroseconds: recorded_at is a whole microsecond, and a
// time between two (one from the clock, a relative --at) takes in the
// records at or before it only, whatever the server does with a finer
// time than its column: here it rounds (sql_mode TIME_ROUND_FRACTIONAL),
// which took in the record of the microsecond after it.
func TestSeqAtBetweenMicroseconds(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDBRoundingTimes(t))
	x := time.Date(2026, 11, 22, 5, 0, 0, 1000, time.UTC)
	clk := &clock{t: x}
	log := store.NewLog(db, clk.now)
	for i, at := range []time.Time{x, x.Add(time.Microsecond), x.Add(time.Second)} {
		clk.set(at)
		if _, err := log.Append(ctx, entries(t, fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{x.Add(-100 * time.Nanosecond), 0},
		{x, 1},
		{x.Add(900 * time.Nanosecond), 1},
		{x.Add(time.Microsecond), 2},
		{x.Add(time.Microsecond + 999*time.Nanosecond), 2},
	} {
		if got, err := log.SeqAt(ctx, tc.t); err != nil || got != tc.want {
			t.Errorf("SeqAt(%s) = %d, %v; want %d", tc.t.Format(time.RFC3339Nano), got, err, tc.want)
		}
	}
}

// TestVanishedTxReleasesItsLocks: any Tx, not only Append's, whose client
// vanishes (here: the network to the server drops everything) while it
// holds a row lock (a fence row; a notifier's cursor row is the same) is
// rolled back by the server after the idle bound, so the next holder,
// such as a new leader or the notifier instance taking a lease over, is
// not stalled until wait_timeout (8 hours) or TCP keepalive (2).
func TestVanishedTxReleasesItsLocks(t *testing.T) {
	defer store.SetTxIdleTimeout(store.SetTxIdleTimeout(time.Second))
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	proxied, proxy := storetest.NewProxy(t, dsn)
	gone := openDB(t, proxied)
	tx, err := store.Begin(ctx, gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CheckFence(ctx, tx, "snapshots", 1); err != nil {
		t.Fatal(err)
	}
	proxy.Hole()
	defer proxy.Pass()
	next := openDB(t, dsn)
	nctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tx2, err := store.Begin(nctx, next)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback(nctx)
	if err := store.CheckFence(nctx, tx2, "snapshots", 2); err != nil {
		t.Fatalf("the next holder of the row, while a vanished client's transaction held it: %v", err)
	}
	if err := tx2.Commit(nctx); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	tx.Rollback(cctx) // the vanished client's connection is discarded
}
