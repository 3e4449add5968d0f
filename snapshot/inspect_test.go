package snapshot

import (
	"context"
	"database/sql"
	"encoding/gob"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier/subscription"
)

// firstLog is a RetentionLog whose first seq can be made to look later.
type firstLog struct {
	*store.Log
	first int64 // 0: the log's own
}

func (l firstLog) First(ctx context.Context) (int64, error) {
	if l.first != 0 {
		return l.first, nil
	}
	return l.Log.First(ctx)
}

// TestPruneStale writes snapshots as an older build (its semantics in the
// payload, none in the row), as a build that records them in the row, and
// as this build (engine and node encodings), plus corrupt ones; it checks
// what the rows and Inspect say, that PruneStale refuses without the whole
// log and waits for retention's lock, and that it deletes the stale ones
// and only those, after which a reconstruction is current.
func TestPruneStale(t *testing.T) {
	ctx := context.Background()
	norm, err := graph.NewNormalizer(nil)
	if err != nil {
		t.Fatal(err)
	}
	td := newTestDB(t)
	recs := td.appendEvents(t, randomLog(rand.New(rand.NewPCG(7, 7)), 500), 50, time.Second)
	live := evaluator.New(evaluator.Config{}, norm)
	w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}}, WriterDeps{DB: td.db, Fence: FenceFunc(store.CheckFence)})
	if err != nil {
		t.Fatal(err)
	}
	applied := int64(0)
	advance := func(seq int64) {
		for ; applied < seq; applied++ {
			_ = live.Apply(recs[applied])
		}
	}
	write := func(capture func() (Capture, error)) Meta {
		t.Helper()
		res, err := w.Take(ctx, 1, capture)
		if err != nil {
			t.Fatal(err)
		}
		return res.Meta
	}
	// stale writes the live state at seq as an older build did, its
	// semantics recorded in the row when inRow.
	old := evaluator.Semantics - 1
	stale := func(seq int64, inRow bool) Meta {
		t.Helper()
		advance(seq)
		return write(func() (Capture, error) {
			s := live.State()
			s.Semantics = old
			c := Capture{Seq: seq, Encoding: EngineGob, Encode: func(w io.Writer) error { return gob.NewEncoder(w).Encode(&s) }}
			if inRow {
				c.Semantics = sql.Null[int]{V: old, Valid: true}
			}
			if seq > 0 {
				c.RecordedAt = recs[seq-1].RecordedAt
			}
			return c, nil
		})
	}
	corrupt := func(m Meta) {
		t.Helper()
		if _, err := td.db.ExecContext(ctx, "UPDATE snapshot_chunks SET data = REVERSE(data) WHERE snapshot_id = ?", m.ID); err != nil {
			t.Fatal(err)
		}
	}
	stale(0, false)   // the empty state: never stale
	stale(100, false) // an older build's, before the column
	stale(200, true)  // an older build's, in the row
	advance(250)      // this build's, as processors write them
	node := write(func() (Capture, error) {
		return CaptureNode(&Node{Engine: live, Subscriptions: subscription.NewRegistry()}, 250, recs[249].RecordedAt, NodeBin)
	})
	advance(300) // this build's, engine only (historical queries)
	eng := write(func() (Capture, error) { return CaptureEngine(live, 300, recs[299].RecordedAt, EngineBin) })
	corrupt(stale(400, true))  // stale, and corrupt: deleted all the same
	corrupt(stale(450, false)) // corrupt, its semantics unknown: left in place
	for _, m := range []Meta{node, eng} {
		if !m.Semantics.Valid || m.Semantics.V != evaluator.Semantics || m.Stale() {
			t.Fatalf("row of %s at seq %d: semantics %+v, stale %v; want %d, current", m.Encoding, m.Seq, m.Semantics, m.Stale(), evaluator.Semantics)
		}
	}

	rc, err := NewReconstructor(ReconstructConfig{}, ReconstructDeps{DB: td.db, Events: td.log, Factory: EngineFactory{Normalizer: norm}})
	if err != nil {
		t.Fatal(err)
	}
	list := func() []Meta {
		t.Helper()
		ms, err := NewStore(td.db, nil).List(ctx, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	seqs := func(ms []Meta) []int64 {
		var out []int64
		for _, m := range ms {
			out = append(out, m.Seq)
		}
		return out
	}
	bySeq := map[int64]Meta{}
	for _, m := range list() {
		bySeq[m.Seq] = m
	}
	for seq, want := range map[int64]struct{ valid, stale bool }{0: {false, false}, 100: {false, false}, 200: {true, true},
		250: {true, false}, 300: {true, false}, 400: {true, true}, 450: {false, false}} {
		m := bySeq[seq]
		if m.Semantics.Valid != want.valid || m.Stale() != want.stale {
			t.Errorf("row of seq %d: semantics %+v, stale %v; want recorded %v, stale %v", seq, m.Semantics, m.Stale(), want.valid, want.stale)
		}
	}
	in, err := rc.Inspect(ctx, bySeq[100])
	if err != nil || in.Problem != "" || !in.Semantics.Valid || in.Semantics.V != old || !in.Stale() {
		t.Fatalf("Inspect(seq 100) = problem %q, semantics %+v, stale %v, %v; want usable, semantics %d, stale", in.Problem, in.Semantics, in.Stale(), err, old)
	}
	if in, err := rc.Inspect(ctx, bySeq[450]); err != nil || in.Problem != "corrupt" || in.Semantics.Valid {
		t.Fatalf("Inspect(corrupt) = problem %q, semantics %+v, %v; want corrupt, unknown", in.Problem, in.Semantics, err)
	}

	for _, first := range []int64{2, -1} { // -1: an empty log reads as 0
		l := firstLog{Log: td.log, first: first}
		if first < 0 {
			l.first = 0
			l.Log = nil
		}
		for _, dry := range []bool{true, false} {
			if _, err := rc.PruneStale(ctx, emptyOr(l), dry, nil); !errors.Is(err, ErrLogNotWhole) {
				t.Fatalf("PruneStale with the log's first seq %d (dry run %v): %v; want ErrLogNotWhole", first, dry, err)
			}
		}
	}
	// Retention holds its lock: PruneStale waits for it.
	lease, err := td.log.LockRetention(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	if _, err := rc.PruneStale(short, td.log, false, nil); err == nil {
		t.Fatal("PruneStale ran while retention held its lock")
	}
	cancel()
	lease.Release()

	res, err := rc.PruneStale(ctx, td.log, true, nil)
	if err != nil || res.Deleted != 0 || len(res.Unusable) != 1 || res.Unusable[0].Seq != 450 || !slices.Equal(seqs(res.Stale), []int64{400, 200, 100}) {
		t.Fatalf("dry run: stale %v, %d unusable, deleted %d, %v; want 400, 200, 100, the one at 450 unusable, nothing deleted",
			seqs(res.Stale), len(res.Unusable), res.Deleted, err)
	}
	if n := len(list()); n != len(bySeq) {
		t.Fatalf("the dry run deleted snapshots: %d left of %d", n, len(bySeq))
	}
	// A check under the lock that refuses stops it before any deletion.
	refused := errors.New("a processor started")
	if _, err := rc.PruneStale(ctx, td.log, false, func(context.Context) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("PruneStale with a refusing check: %v", err)
	}
	if n := len(list()); n != len(bySeq) {
		t.Fatalf("a refused prune deleted snapshots: %d left of %d", n, len(bySeq))
	}
	if res, err = rc.PruneStale(ctx, td.log, false, nil); err != nil || res.Deleted != 3 {
		t.Fatalf("PruneStale: deleted %d, %v; want 3", res.Deleted, err)
	}
	if left := seqs(list()); !slices.Equal(left, []int64{450, 300, 250, 0}) {
		t.Fatalf("left %v; want 450, 300, 250 and 0", left)
	}
	var n int
	if err := td.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM snapshot_chunks WHERE snapshot_id NOT IN (SELECT id FROM snapshots)").Scan(&n); err != nil || n != 0 {
		t.Fatalf("chunks of deleted snapshots left: %d, %v", n, err)
	}
	// Below the current snapshots the state is now replayed from the start.
	got, err := rc.Reconstruct(ctx, AtSeq(240))
	if err != nil || got.StaleSemantics || got.SnapshotSeq != 0 || got.Replayed != 240 {
		t.Fatalf("Reconstruct(240) after the prune: %+v, %v; want a current full replay", got, err)
	}
	if again, err := rc.PruneStale(ctx, td.log, false, nil); err != nil || len(again.Stale) != 0 {
		t.Fatalf("second PruneStale: %d stale, %v; want none", len(again.Stale), err)
	}
}

// emptyOr returns l, or an empty log's view when l has no log.
func emptyOr(l firstLog) RetentionLog {
	if l.Log == nil {
		return emptyLog{}
	}
	return l
}

// emptyLog is a RetentionLog of a log that holds no event.
type emptyLog struct{}

func (emptyLog) First(context.Context) (int64, error) { return 0, nil }
func (emptyLog) LockRetention(context.Context, time.Duration) (store.RetentionLease, error) {
	return heldLease{}, nil
}

// heldLease is a retention lock that is always held.
type heldLease struct{}

func (heldLease) Held(context.Context) error { return nil }
func (heldLease) Release()                   {}

// snapshotsEveryHundred writes n records of the random log of seed with a
// snapshot in encoding at every hundredth seq, and returns the engine that
// applied them all, the snapshots by seq, and a reconstructor.
func snapshotsEveryHundred(t *testing.T, seed uint64, n int, encoding string) (*testDB, *evaluator.Engine, map[int64]Meta, *Reconstructor) {
	t.Helper()
	ctx := context.Background()
	norm, err := graph.NewNormalizer(nil)
	if err != nil {
		t.Fatal(err)
	}
	td := newTestDB(t)
	recs := td.appendEvents(t, randomLog(rand.New(rand.NewPCG(seed, seed)), n), 50, time.Second)
	live := evaluator.New(evaluator.Config{}, norm)
	w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}}, WriterDeps{DB: td.db, Fence: FenceFunc(store.CheckFence)})
	if err != nil {
		t.Fatal(err)
	}
	metas := map[int64]Meta{}
	for i, r := range recs {
		_ = live.Apply(r)
		if seq := int64(i + 1); seq%100 == 0 {
			res, err := w.Take(ctx, 1, func() (Capture, error) { return CaptureEngine(live, seq, r.RecordedAt, encoding) })
			if err != nil {
				t.Fatal(err)
			}
			metas[seq] = res.Meta
		}
	}
	rc, err := NewReconstructor(ReconstructConfig{}, ReconstructDeps{DB: td.db, Events: td.log, Factory: EngineFactory{Normalizer: norm}})
	if err != nil {
		t.Fatal(err)
	}
	return td, live, metas, rc
}

// TestReconstructEarliest: with the whole log, the earliest state is the
// empty machine; once retention dropped the start, it is the oldest usable
// snapshot the retained log follows, and none is ErrGap.
func TestReconstructEarliest(t *testing.T) {
	ctx := context.Background()
	td, live, metas, rc := snapshotsEveryHundred(t, 9, 400, EngineGob)
	if res, err := rc.ReconstructEarliest(ctx, 350); err != nil || res.Seq != 0 {
		t.Fatalf("earliest with the whole log: seq %d, %v; want 0", res.Seq, err)
	}
	if _, err := td.db.ExecContext(ctx, "DELETE FROM events WHERE seq <= 150"); err != nil {
		t.Fatal(err)
	}
	if _, err := td.db.ExecContext(ctx, "UPDATE snapshot_chunks SET data = REVERSE(data) WHERE snapshot_id = ?", metas[200].ID); err != nil {
		t.Fatal(err)
	}
	res, err := rc.ReconstructEarliest(ctx, 350)
	if err != nil || res.Seq != 300 || res.SnapshotSeq != 300 {
		t.Fatalf("earliest with the log from 151 and the snapshot at 200 corrupt: seq %d, %v; want 300", res.Seq, err)
	}
	if err := rc.Advance(ctx, &res, Latest()); err != nil {
		t.Fatal(err)
	}
	if dumpSum(t, res.Machine) != dumpSum(t, live) {
		t.Fatal("the earliest state brought to the end differs from the live engine")
	}
	if _, err := rc.ReconstructEarliest(ctx, 250); !errors.Is(err, ErrGap) {
		t.Fatalf("earliest up to 250: %v; want ErrGap (100 is before the log, 200 corrupt)", err)
	}
}

// snapshotted is a database holding a log and a snapshot of it.
type snapshotted struct {
	td   *testDB
	rc   *Reconstructor
	norm *graph.Normalizer
	live *evaluator.Engine // the engine that applied the whole log
}

// logWithSnapshot writes n records of the random log of seed, with a gob
// snapshot at seq at.
func logWithSnapshot(t *testing.T, seed uint64, n int, at int64) snapshotted {
	t.Helper()
	ctx := context.Background()
	norm, err := graph.NewNormalizer(nil)
	if err != nil {
		t.Fatal(err)
	}
	td := newTestDB(t)
	recs := td.appendEvents(t, randomLog(rand.New(rand.NewPCG(seed, seed+1)), n), 50, time.Second)
	live := evaluator.New(evaluator.Config{}, norm)
	w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}}, WriterDeps{DB: td.db, Fence: FenceFunc(store.CheckFence)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		_ = live.Apply(r)
		if r.Seq == at {
			if _, err := w.Take(ctx, 1, func() (Capture, error) { return CaptureEngine(live, r.Seq, r.RecordedAt, EngineGob) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	rc, err := NewReconstructor(ReconstructConfig{}, ReconstructDeps{DB: td.db, Events: td.log, Factory: EngineFactory{Normalizer: norm}})
	if err != nil {
		t.Fatal(err)
	}
	return snapshotted{td: td, rc: rc, norm: norm, live: live}
}

// TestReplayOverADroppedRangeIsAGap: a reconstruction whose whole replay
// lies in what retention dropped meets no record to show the gap; it must
// still fail with ErrGap (the log goes on after it), not ErrBeyondLog, so
// that a leader whose history head is past retention salvages instead of
// retrying for ever, and a shadow starts again from a snapshot.
func TestReplayOverADroppedRangeIsAGap(t *testing.T) {
	ctx := context.Background()
	w := logWithSnapshot(t, 5, 200, 100)
	td, rc := w.td, w.rc
	early, err := rc.Reconstruct(ctx, AtSeq(100))
	if err != nil {
		t.Fatal(err)
	}
	end, err := rc.Reconstruct(ctx, AtSeq(200))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := td.db.ExecContext(ctx, "DELETE FROM events WHERE seq <= 150"); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{50, 120, 150} {
		if _, err := rc.Reconstruct(ctx, AtSeq(seq)); !errors.Is(err, ErrGap) {
			t.Errorf("reconstruct at %d, the log from 151: %v; want ErrGap", seq, err)
		}
	}
	if err := rc.Advance(ctx, &early, AtSeq(140)); !errors.Is(err, ErrGap) {
		t.Errorf("advance from 100 to 140, the log from 151: %v; want ErrGap", err)
	}
	if err := rc.Advance(ctx, &end, AtSeq(201)); !errors.Is(err, ErrBeyondLog) {
		t.Errorf("advance from 200 to 201, the log to 200: %v; want ErrBeyondLog", err)
	}
	// Every record past retention: the log assigned up to 200, so a seq
	// up to it is a gap, not past the end.
	if _, err := td.db.ExecContext(ctx, "DELETE FROM events"); err != nil {
		t.Fatal(err)
	}
	if err := rc.Advance(ctx, &early, AtSeq(140)); !errors.Is(err, ErrGap) {
		t.Errorf("advance from 100 to 140, no record stored: %v; want ErrGap", err)
	}
	if err := rc.Advance(ctx, &end, AtSeq(201)); !errors.Is(err, ErrBeyondLog) {
		t.Errorf("advance from 200 to 201, no record stored, the head at 200: %v; want ErrBeyondLog", err)
	}
}

// TestShadowRestartsPastRetention: a shadow the log no longer follows
// (retention dropped the events after it) starts again from a snapshot,
// instead of failing every later snapshot with ErrGap.
func TestShadowRestartsPastRetention(t *testing.T) {
	ctx := context.Background()
	w := logWithSnapshot(t, 3, 200, 150)
	td, rc, live := w.td, w.rc, w.live
	sh := NewShadow(rc, EngineFactory{Normalizer: w.norm})
	if _, err := sh.capture(ctx, 20); err != nil || sh.Seq() != 20 {
		t.Fatalf("shadow at 20: seq %d, %v", sh.Seq(), err)
	}
	if _, err := td.db.ExecContext(ctx, "DELETE FROM events WHERE seq <= 120"); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.capture(ctx, 200); err != nil || sh.Seq() != 200 {
		t.Fatalf("shadow past retention, to 200: seq %d, %v; want it started again from the snapshot at 150", sh.Seq(), err)
	}
	if dumpSum(t, sh.cur.Machine) != dumpSum(t, live) {
		t.Fatal("the restarted shadow differs from the live engine")
	}
}

// TestReconstructWhenRetentionEmptiedTheLog: with no event for longer than
// retention, retention keeps the snapshot at the head and deletes every
// event up to it, so the log stores none. The earliest state is that
// snapshot (it was the empty machine at seq 0, which no retained record
// follows); and a latest state that can only start from an older snapshot
// (the one at the head corrupt) is a gap, not that older state.
func TestReconstructWhenRetentionEmptiedTheLog(t *testing.T) {
	ctx := context.Background()
	td, live, metas, rc := snapshotsEveryHundred(t, 4, 200, EngineBin)
	if _, err := td.db.ExecContext(ctx, "DELETE FROM events"); err != nil {
		t.Fatal(err)
	}
	res, err := rc.ReconstructEarliest(ctx, 200)
	if err != nil || res.Seq != 200 {
		t.Fatalf("earliest with every event past retention: seq %d, %v; want the snapshot at the head, 200", res.Seq, err)
	}
	if dumpSum(t, res.Machine) != dumpSum(t, live) {
		t.Fatal("the earliest state differs from the live engine at the head")
	}
	if res, err := rc.Reconstruct(ctx, Latest()); err != nil || res.Seq != 200 {
		t.Fatalf("latest: seq %d, %v; want 200", res.Seq, err)
	}
	if _, err := td.db.ExecContext(ctx, "UPDATE snapshot_chunks SET data = REVERSE(data) WHERE snapshot_id = ?", metas[200].ID); err != nil {
		t.Fatal(err)
	}
	if res, err := rc.Reconstruct(ctx, Latest()); !errors.Is(err, ErrGap) {
		t.Fatalf("latest with the head's snapshot corrupt: seq %d, %v; want ErrGap (the events after 100 are gone)", res.Seq, err)
	}
	if _, err := rc.ReconstructEarliest(ctx, 200); !errors.Is(err, ErrGap) {
		t.Fatalf("earliest with the head's snapshot corrupt: %v; want ErrGap", err)
	}
}
