package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
)

// rig is a database with a kv machine following the log, a writer and a
// reconstructor.
type rig struct {
	*testDB
	recs []event.Record
	w    *Writer
	r    *Reconstructor
	reg  *prometheus.Registry
	logs *strings.Builder
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	td := newTestDB(t)
	reg := prometheus.NewRegistry()
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&syncWriter{b: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Policy.EveryEvents == 0 && cfg.Policy.EveryInterval == 0 {
		cfg.Policy.EveryEvents = 100
	}
	w, err := NewWriter(cfg, WriterDeps{DB: td.db, Fence: FenceFunc(store.CheckFence), Logger: logger, Registerer: reg,
		Now: func() time.Time { return td.clock }})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReconstructor(ReconstructConfig{PageSize: 37}, ReconstructDeps{DB: td.db, Events: td.log, Factory: kvFactory{}, Logger: logger, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{testDB: td, w: w, r: r, reg: reg, logs: &logs}
}

type syncWriter struct{ b *strings.Builder }

func (s *syncWriter) Write(p []byte) (int, error) { return s.b.Write(p) }

// snapshotAt writes a snapshot of the kv state after recs[:seq].
func (g *rig) snapshotAt(t *testing.T, term int64, seq int64) Result {
	t.Helper()
	return g.snapshotWith(t, g.w, term, seq)
}

// snapshotWith writes, with w, a snapshot of the kv state after recs[:seq].
func (g *rig) snapshotWith(t *testing.T, w *Writer, term int64, seq int64) Result {
	t.Helper()
	m := newKV()
	for _, r := range g.recs[:seq] {
		_ = m.Apply(r)
	}
	res, err := w.Take(context.Background(), term, func() (Capture, error) {
		c := m.capture(seq)
		if seq > 0 {
			c.RecordedAt = g.recs[seq-1].RecordedAt
		}
		return c, nil
	})
	if err != nil {
		t.Fatalf("snapshot at %d: %v", seq, err)
	}
	return res
}

func (g *rig) check(t *testing.T, target Target, wantSeq, wantSnap int64) Reconstruction {
	t.Helper()
	res, err := g.r.Reconstruct(context.Background(), target)
	if err != nil {
		t.Fatalf("reconstruct %s: %v", target, err)
	}
	if res.Seq != wantSeq || res.SnapshotSeq != wantSnap {
		t.Errorf("reconstruct %s: seq %d from snapshot %d; want %d from %d", target, res.Seq, res.SnapshotSeq, wantSeq, wantSnap)
	}
	if got, want := dump(res.Machine), kvReplay(g.recs, wantSeq); got != want {
		t.Errorf("reconstruct %s: dump differs from a full replay\ngot:\n%.300s\nwant:\n%.300s", target, got, want)
	}
	return res
}

func TestWriteAndReconstruct(t *testing.T) {
	g := newRig(t, Config{ChunkSize: 64})
	// Every 10th event is refused by the machine: replay must go on, as live processing does.
	g.recs = g.appendEvents(t, tickEvents(1, 500, func(i int) string {
		if i%10 == 0 {
			return "refuse"
		}
		return "test"
	}), 50, time.Second)

	s1 := g.snapshotAt(t, 1, 120)
	if s1.Meta.Chunks < 2 {
		t.Fatalf("snapshot of %d bytes in %d chunks of 64; want several", s1.Meta.Size, s1.Meta.Chunks)
	}
	g.snapshotAt(t, 1, 300)

	g.check(t, AtSeq(0), 0, 0)
	g.check(t, AtSeq(119), 119, 0)
	g.check(t, AtSeq(120), 120, 120)
	g.check(t, AtSeq(121), 121, 120)
	g.check(t, AtSeq(299), 299, 120)
	g.check(t, AtSeq(300), 300, 300)
	res := g.check(t, AtSeq(500), 500, 300)
	if res.Replayed != 200 || res.ApplyErrors != 20 {
		t.Errorf("replayed %d with %d refused; want 200 with 20", res.Replayed, res.ApplyErrors)
	}
	g.check(t, Latest(), 500, 300)

	// Time targets: batch k (seq 50k+1..50k+50) was recorded at clock0+k s.
	t0 := g.recs[0].RecordedAt
	g.check(t, AtTime(t0.Add(-time.Second)), 0, 0)
	g.check(t, AtTime(t0), 50, 0)
	g.check(t, AtTime(t0.Add(2*time.Second+time.Millisecond)), 150, 120)
	g.check(t, AtTime(t0.Add(time.Hour)), 500, 300)

	if _, err := g.r.Reconstruct(context.Background(), AtSeq(501)); !errors.Is(err, ErrBeyondLog) {
		t.Errorf("beyond the log: err %v; want ErrBeyondLog", err)
	}
	if got := metricValue(t, g.w.m.written); got != 2 {
		t.Errorf("written_total %v; want 2", got)
	}
	if n := metricValue(t, g.w.m.pause); n != 2 {
		t.Errorf("pause histogram counts %v captures; want 2", n)
	}
}

func TestTakeIsFenced(t *testing.T) {
	g := newRig(t, Config{})
	g.recs = g.appendEvents(t, tickEvents(1, 20, nil), 20, time.Second)
	g.snapshotAt(t, 5, 10)
	// A deposed leader (term 4) is refused, and writes nothing.
	_, err := g.w.Take(context.Background(), 4, func() (Capture, error) { return newKV().capture(20), nil })
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("take at an old term: err %v; want store.ErrFenced", err)
	}
	ms, err := NewStore(g.db, nil).List(context.Background(), 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Seq != 10 || ms[0].Term != 5 {
		t.Errorf("snapshots after a fenced write: %+v; want only seq 10 at term 5", ms)
	}
	var chunks int
	if err := g.db.QueryRow("SELECT COUNT(*) FROM snapshot_chunks WHERE snapshot_id <> ?", ms[0].ID).Scan(&chunks); err != nil {
		t.Fatal(err)
	}
	if chunks != 0 {
		t.Errorf("%d orphan chunks after a fenced write", chunks)
	}
	if got := metricValue(t, g.w.m.failures.WithLabelValues("write")); got != 1 {
		t.Errorf("failures{stage=write} %v; want 1", got)
	}
}

func TestCorruptSnapshotsFallBack(t *testing.T) {
	g := newRig(t, Config{ChunkSize: 100})
	g.recs = g.appendEvents(t, tickEvents(1, 300, nil), 100, time.Second)
	s100 := g.snapshotAt(t, 1, 100)
	s200 := g.snapshotAt(t, 1, 200)
	s250 := g.snapshotAt(t, 1, 250)
	ctx := context.Background()

	// 250: a flipped byte in its last chunk.
	if _, err := g.db.ExecContext(ctx, "UPDATE snapshot_chunks SET data = CONCAT(LEFT(data, LENGTH(data)-1), 'X') WHERE snapshot_id = ? AND idx = ?",
		s250.Meta.ID, s250.Meta.Chunks-1); err != nil {
		t.Fatal(err)
	}
	// 200: a chunk missing.
	if _, err := g.db.ExecContext(ctx, "DELETE FROM snapshot_chunks WHERE snapshot_id = ? AND idx = 0", s200.Meta.ID); err != nil {
		t.Fatal(err)
	}
	res := g.check(t, AtSeq(260), 260, 100)
	if res.Skipped != 2 {
		t.Errorf("skipped %d; want 2", res.Skipped)
	}
	if got := metricValue(t, g.r.skipped.WithLabelValues("corrupt")); got != 2 {
		t.Errorf("skipped{reason=corrupt} %v; want 2", got)
	}
	if !strings.Contains(g.logs.String(), "snapshot skipped") {
		t.Error("no warning logged for the skipped snapshots")
	}

	// 100: written by a newer release (unknown format version).
	if _, err := g.db.ExecContext(ctx, "UPDATE snapshot_chunks SET data = INSERT(data, 9, 2, UNHEX('0063')) WHERE snapshot_id = ? AND idx = 0", s100.Meta.ID); err != nil {
		t.Fatal(err)
	}
	res = g.check(t, AtSeq(300), 300, 0)
	if res.Skipped != 3 {
		t.Errorf("skipped %d; want 3", res.Skipped)
	}
	if got := metricValue(t, g.r.skipped.WithLabelValues("version")); got != 1 {
		t.Errorf("skipped{reason=version} %v; want 1", got)
	}
}

type otherFactory struct{ kvFactory }

func (otherFactory) Restore(_ context.Context, encoding string, r io.Reader) (Machine, error) {
	return nil, fmt.Errorf("%w: %q", ErrUnknownEncoding, encoding)
}

func TestUnknownEncodingFallsBack(t *testing.T) {
	g := newRig(t, Config{})
	g.recs = g.appendEvents(t, tickEvents(1, 50, nil), 50, time.Second)
	g.snapshotAt(t, 1, 30)
	r, err := NewReconstructor(ReconstructConfig{}, ReconstructDeps{DB: g.db, Events: g.log, Factory: otherFactory{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Reconstruct(context.Background(), Latest())
	if err != nil {
		t.Fatal(err)
	}
	if res.Seq != 50 || res.SnapshotSeq != 0 || res.Skipped != 1 {
		t.Errorf("got seq %d from %d, %d skipped; want 50 from 0, 1 skipped", res.Seq, res.SnapshotSeq, res.Skipped)
	}
	if got, want := dump(res.Machine), kvReplay(g.recs, 50); got != want {
		t.Error("dump differs from a full replay")
	}
}

func TestPrune(t *testing.T) {
	g := newRig(t, Config{})
	// Ten batches of 10, one a minute: batch k recorded at t0 + k min.
	g.recs = g.appendEvents(t, tickEvents(1, 100, nil), 10, time.Minute)
	t0 := g.recs[0].RecordedAt
	for _, seq := range []int64{10, 20, 30, 50, 70} {
		g.snapshotAt(t, 1, seq)
	}
	st := NewStore(g.db, nil)
	ctx := context.Background()
	seqs := func() []int64 {
		ms, err := st.List(ctx, 1<<62)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, m := range ms {
			out = append(out, m.Seq)
		}
		return out
	}

	// Nothing at or before the boundary: nothing deleted.
	res, err := st.Prune(ctx, t0.Add(-time.Minute))
	if err != nil || res.Deleted != 0 || res.AnchorSeq != 0 {
		t.Fatalf("prune before everything: %+v, %v", res, err)
	}
	// A store that requires encodings the snapshots are not in (another
	// build's readers) finds no anchor among them, and deletes nothing.
	res, err = NewStore(g.db, nil).RequireEncodings("another-build").Prune(ctx, t0.Add(4*time.Minute-time.Second))
	if err != nil || res.Deleted != 0 || res.AnchorSeq != 0 {
		t.Fatalf("prune with no snapshot in the required encodings: %+v, %v; want no anchor, none deleted", res, err)
	}
	// Boundary inside batch 4 (seq 41..50, at t0+4m): the anchor is 30
	// (recorded t0+2m); 10 and 20 go.
	res, err = st.Prune(ctx, t0.Add(4*time.Minute-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if res.AnchorSeq != 30 || res.Deleted != 2 || !res.AnchorRecordedAt.Equal(g.recs[29].RecordedAt) {
		t.Errorf("prune: %+v; want anchor 30 recorded at %s, 2 deleted", res, g.recs[29].RecordedAt)
	}
	if got := fmt.Sprint(seqs()); got != "[70 50 30]" {
		t.Errorf("left %s; want [70 50 30]", got)
	}
	// Every moment from the boundary on is still reconstructible.
	g.check(t, AtTime(t0.Add(4*time.Minute-time.Second)), 40, 30)

	// A corrupt newest candidate is not an anchor: the older one stays.
	ms, _ := st.List(ctx, 50)
	if _, err := g.db.ExecContext(ctx, "UPDATE snapshot_chunks SET data = REVERSE(data) WHERE snapshot_id = ?", ms[0].ID); err != nil {
		t.Fatal(err)
	}
	res, err = st.Prune(ctx, t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.AnchorSeq != 30 || res.Deleted != 0 {
		t.Errorf("prune with a corrupt newest: %+v; want anchor 30, none deleted", res)
	}
	if got := fmt.Sprint(seqs()); got != "[70 50 30]" {
		t.Errorf("left %s; want [70 50 30]", got)
	}
}

// resumedWriter is a second writer of the rig's database with policy p,
// resumed from the snapshots stored there (a new leader's).
func (g *rig) resumedWriter(t *testing.T, p Policy) *Writer {
	t.Helper()
	w, err := NewWriter(Config{Policy: p}, WriterDeps{DB: g.db, Fence: FenceFunc(store.CheckFence), Now: func() time.Time { return g.clock }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestResumeAndDue(t *testing.T) {
	g := newRig(t, Config{Policy: Policy{EveryEvents: 100, EveryInterval: time.Hour}})
	g.recs = g.appendEvents(t, tickEvents(1, 20, nil), 20, time.Second)
	g.snapshotAt(t, 1, 10)

	w2 := g.resumedWriter(t, Policy{EveryEvents: 100, EveryInterval: time.Hour})
	if w2.Due(10, 0) || w2.Due(109, 0) {
		t.Error("due before 100 events after the stored snapshot")
	}
	if !w2.Due(110, 0) {
		t.Error("not due 100 events after the stored snapshot")
	}
	g.clock = g.clock.Add(time.Hour)
	if !w2.Due(11, 0) {
		t.Error("not due an hour after the stored snapshot")
	}
}

// TestWriterChangesTrigger runs the every_changes trigger through a real
// Writer: counted from the counter shown just before a snapshot it wrote,
// and, after Resume from a stored snapshot, from the first Due.
func TestWriterChangesTrigger(t *testing.T) {
	pol := Policy{EveryEvents: 1_000_000, EveryChanges: 500}
	g := newRig(t, Config{Policy: pol})
	g.recs = g.appendEvents(t, tickEvents(1, 30, nil), 30, time.Second)
	if g.w.Due(10, 7000) {
		t.Error("due at the first Due: the changes before it are unknown")
	}
	if !g.w.Due(10, 7500) {
		t.Fatal("not due 500 changes after the first Due")
	}
	g.snapshotAt(t, 1, 10)
	if g.w.Due(20, 7999) {
		t.Error("due 499 changes after the snapshot")
	}
	if !g.w.Due(20, 8000) {
		t.Error("not due 500 changes after the snapshot")
	}

	w2 := g.resumedWriter(t, pol)
	if w2.Due(25, 100_000) || w2.Due(26, 100_499) {
		t.Error("resumed writer due within 500 changes of its first Due")
	}
	if !w2.Due(27, 100_500) {
		t.Error("resumed writer not due 500 changes after its first Due")
	}
}

// TestWriterChangesTriggerLeadingAgain: a leader that lost leadership and
// leads again resumes from the snapshot another leader wrote meanwhile.
// The change counter at that snapshot is unknown to it: counting starts at
// its first Due after the Resume, not at the counter it last saw while it
// led before, which would make a snapshot due at once, right after the
// other leader's.
func TestWriterChangesTriggerLeadingAgain(t *testing.T) {
	pol := Policy{EveryEvents: 1_000_000, EveryChanges: 500}
	g := newRig(t, Config{Policy: pol})
	g.recs = g.appendEvents(t, tickEvents(1, 30, nil), 30, time.Second)
	// First leadership of g.w: it counts and writes a snapshot at 10.
	g.w.Due(10, 7000)
	if !g.w.Due(10, 7500) {
		t.Fatal("not due 500 changes after the first Due")
	}
	g.snapshotAt(t, 1, 10)

	// Another leader writes a snapshot at 25 while g.w follows.
	g.snapshotWith(t, g.resumedWriter(t, pol), 2, 25)

	// g.w leads again: its machine's counter went on meanwhile.
	if err := g.w.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g.w.Due(26, 100_000) || g.w.Due(27, 100_499) {
		t.Error("due within 500 changes of the first Due after leading again: counted from the counter of its previous leadership")
	}
	if !g.w.Due(28, 100_500) {
		t.Error("not due 500 changes after the first Due after leading again")
	}
}

// metricValue reads a counter, a gauge or a histogram's sample count.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	case pb.Histogram != nil:
		return float64(pb.Histogram.GetSampleCount())
	}
	t.Fatalf("metric %v of an unexpected type", m.Desc())
	return 0
}

func TestTakeFromLogShadow(t *testing.T) {
	g := newRig(t, Config{})
	g.recs = g.appendEvents(t, tickEvents(1, 400, nil), 40, time.Second)
	ctx := context.Background()
	sh := NewShadow(g.r, kvFactory{})

	// The first use reconstructs (no snapshot yet: from seq 0) ...
	res, err := g.w.TakeFromLog(ctx, 1, sh, 100)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pause != 0 || res.Meta.Seq != 100 || !res.Meta.RecordedAt.Equal(g.recs[99].RecordedAt) {
		t.Errorf("first shadow snapshot: %+v", res)
	}
	// ... later ones advance along the log ...
	if _, err := g.w.TakeFromLog(ctx, 1, sh, 250); err != nil {
		t.Fatal(err)
	}
	if sh.Seq() != 250 {
		t.Errorf("shadow at %d; want 250", sh.Seq())
	}
	g.check(t, AtSeq(260), 260, 250)
	// ... and going back reconstructs again, from the snapshot at 100.
	if _, err := g.w.TakeFromLog(ctx, 1, sh, 120); err != nil {
		t.Fatal(err)
	}
	g.check(t, AtSeq(120), 120, 120)
	// Past the log's end is an error, and nothing is written.
	if _, err := g.w.TakeFromLog(ctx, 1, sh, 401); !errors.Is(err, ErrBeyondLog) {
		t.Errorf("shadow beyond the log: err %v; want ErrBeyondLog", err)
	}
	if got := metricValue(t, g.w.m.written); got != 3 {
		t.Errorf("written_total %v; want 3", got)
	}
	if got := metricValue(t, g.w.m.pause); got != 0 {
		t.Errorf("pause observed %v times by shadow snapshots; want 0", got)
	}
	// A deposed leader's shadow snapshot is fenced like any other.
	if _, err := g.w.TakeFromLog(ctx, 2, sh, 300); err != nil {
		t.Fatal(err)
	}
	if _, err := g.w.TakeFromLog(ctx, 1, sh, 310); !errors.Is(err, store.ErrFenced) {
		t.Errorf("shadow snapshot at an old term: err %v; want ErrFenced", err)
	}
}

func TestTakeBusy(t *testing.T) {
	g := newRig(t, Config{})
	g.recs = g.appendEvents(t, tickEvents(1, 10, nil), 10, time.Second)
	inside := make(chan struct{})
	release := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := g.w.Take(context.Background(), 1, func() (Capture, error) {
			close(inside)
			<-release
			return newKV().capture(10), nil
		})
		errc <- err
	}()
	<-inside
	if g.w.Due(1000, 0) {
		t.Error("Due while a snapshot is being taken")
	}
	if _, err := g.w.Take(context.Background(), 1, func() (Capture, error) { return newKV().capture(10), nil }); !errors.Is(err, ErrBusy) {
		t.Errorf("concurrent Take: err %v; want ErrBusy", err)
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestWriteOutlivesCancelButCatchUpDoesNot: leadership (ctx) ending after
// the state is captured does not cut the write short — the fence decides
// it — while a shadow catch-up follows ctx, so a stopping leader does not
// wait for a whole reconstruction.
func TestWriteOutlivesCancelButCatchUpDoesNot(t *testing.T) {
	g := newRig(t, Config{})
	g.recs = g.appendEvents(t, tickEvents(1, 200, nil), 40, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := g.w.Take(ctx, 1, func() (Capture, error) {
		m := newKV()
		for _, r := range g.recs[:50] {
			_ = m.Apply(r)
		}
		cancel() // leadership ends right after the capture
		return m.capture(50), nil
	})
	if err != nil || res.Meta.Seq != 50 {
		t.Fatalf("take with leadership lost after the capture: %+v, %v; want the snapshot written", res.Meta, err)
	}
	sh := NewShadow(g.r, kvFactory{})
	if _, err := g.w.TakeFromLog(ctx, 1, sh, 150); !errors.Is(err, context.Canceled) {
		t.Errorf("shadow catch-up after leadership ended: %v; want context.Canceled", err)
	}
	ms, err := NewStore(g.db, nil).List(context.Background(), 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Seq != 50 {
		t.Errorf("snapshots %+v; want only seq 50", ms)
	}
}

// TestReconstructAtTimeAfterEveryEventPastRetention: once retention has
// dropped every stored event (the log's head, kept by its counter, is
// after the newest snapshot), the state at a time after the head is that
// of the head, which nothing can rebuild: the reconstruction says so
// (ErrGap), as it does for the head's seq, instead of answering with the
// snapshot's older state as if it were the one asked for.
func TestReconstructAtTimeAfterEveryEventPastRetention(t *testing.T) {
	g := newRig(t, Config{})
	g.recs = g.appendEvents(t, tickEvents(1, 100, nil), 10, time.Second)
	g.snapshotAt(t, 1, 40)
	if _, err := g.db.Exec("DELETE FROM events"); err != nil {
		t.Fatal(err)
	}
	last := g.recs[len(g.recs)-1]
	for _, target := range []Target{AtSeq(last.Seq), AtTime(last.RecordedAt), AtTime(last.RecordedAt.Add(time.Hour))} {
		res, err := g.r.Reconstruct(context.Background(), target)
		if !errors.Is(err, ErrGap) {
			t.Errorf("reconstruct %s: seq %d, err %v; want ErrGap", target, res.Seq, err)
		}
	}
	// The snapshot's own seq is still rebuilt.
	g.check(t, AtSeq(40), 40, 40)
}
