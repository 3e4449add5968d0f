package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
)

// recMachine records the seqs applied to it; each record counts as two
// graph changes (ChangesApplied).
type recMachine struct {
	seqs   []int64
	refuse map[int64]bool
}

func (m *recMachine) ChangesApplied() int64 { return 2 * int64(len(m.seqs)) }

func (m *recMachine) Apply(r event.Record) error {
	m.seqs = append(m.seqs, r.Seq)
	if m.refuse[r.Seq] {
		return errors.New("refused")
	}
	return nil
}
func (m *recMachine) Dump(w io.Writer) error { _, err := fmt.Fprint(w, m.seqs); return err }

// fakeLog is an in-memory event log of seqs 1..head.
type fakeLog struct {
	mu    sync.Mutex
	head  int64
	first int64 // retention dropped the seqs below it (0: none)
	reads int
	fail  error
}

func rec(seq int64) event.Record {
	return event.Record{Seq: seq, RecordedAt: time.Unix(seq, 0).UTC(), Event: event.Event{EventID: fmt.Sprint("e", seq)}}
}

func (l *fakeLog) ReadRange(_ context.Context, after int64, limit int) ([]event.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	if l.fail != nil {
		return nil, l.fail
	}
	var out []event.Record
	for s := max(after+1, l.first); s <= l.head && len(out) < limit; s++ {
		out = append(out, rec(s))
	}
	return out, nil
}

func (l *fakeLog) Head(context.Context) (int64, time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return 0, time.Time{}, l.fail
	}
	return l.head, time.Unix(l.head, 0), nil
}

func batch(prev int64, n int) event.Batch {
	b := event.Batch{PrevSeq: prev}
	for i := range n {
		b.Records = append(b.Records, rec(prev+1+int64(i)))
	}
	return b
}

func newTestFollower(head int64, loadedAt int64) (*follower, *recMachine, *fakeLog) {
	l := &fakeLog{head: head}
	f := newFollower(l, 3, slog.New(slog.DiscardHandler))
	m := &recMachine{}
	f.load(m, loadedAt, time.Time{})
	return f, m, l
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestFollowerBatches(t *testing.T) {
	tests := []struct {
		name     string
		loadedAt int64
		head     int64
		batches  []event.Batch
		want     []int64
		dups     int64
		gaps     int64
		reads    int
	}{
		{name: "in order", loadedAt: 0, head: 6, batches: []event.Batch{batch(0, 3), batch(3, 3)}, want: seqRange(1, 6)},
		{name: "duplicate batch", head: 3, batches: []event.Batch{batch(0, 3), batch(0, 3)}, want: seqRange(1, 3), dups: 3},
		{name: "overlap", head: 5, batches: []event.Batch{batch(0, 3), batch(1, 4)}, want: seqRange(1, 5), dups: 2},
		{name: "gap repaired from the log", head: 9, batches: []event.Batch{batch(0, 2), batch(6, 3)}, want: seqRange(1, 9), gaps: 1, reads: 2},
		{name: "after a snapshot load", loadedAt: 10, head: 12, batches: []event.Batch{batch(8, 2), batch(10, 2)}, want: seqRange(11, 12), dups: 2},
		{name: "gap right after load", loadedAt: 4, head: 8, batches: []event.Batch{batch(6, 2)}, want: seqRange(5, 8), gaps: 1, reads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, m, l := newTestFollower(tt.head, tt.loadedAt)
			for _, b := range tt.batches {
				if err := f.handleBatch(context.Background(), b); err != nil {
					t.Fatalf("handleBatch(prev %d): %v", b.PrevSeq, err)
				}
			}
			if diff := cmp.Diff(m.seqs, tt.want); diff != "" {
				t.Errorf("applied seqs (-got +want):\n%s", diff)
			}
			if got := f.appliedSeq.Load(); got != tt.want[len(tt.want)-1] {
				t.Errorf("applied_seq = %d", got)
			}
			if got := f.dupSkipped.Load(); got != tt.dups {
				t.Errorf("duplicates skipped = %d, want %d", got, tt.dups)
			}
			if got := f.gapsRepaired.Load(); got != tt.gaps {
				t.Errorf("gaps repaired = %d, want %d", got, tt.gaps)
			}
			if l.reads != tt.reads {
				t.Errorf("log reads = %d, want %d", l.reads, tt.reads)
			}
			if f.outOfOrder.Load() != 0 {
				t.Errorf("out of order = %d", f.outOfOrder.Load())
			}
		})
	}
}

func TestFollowerPollCatchesUp(t *testing.T) {
	// A lost doorbell: nothing arrives on the stream, the poll applies the
	// log in pages of 3.
	f, m, l := newTestFollower(8, 0)
	if err := f.poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.seqs, seqRange(1, 8)); diff != "" {
		t.Errorf("applied:\n%s", diff)
	}
	if l.reads != 3 || f.head.Load() != 8 {
		t.Errorf("reads %d head %d", l.reads, f.head.Load())
	}
	// Nothing new: no read.
	if err := f.poll(context.Background()); err != nil || l.reads != 3 {
		t.Errorf("idle poll: %v, reads %d", err, l.reads)
	}
}

func TestFollowerLogFailureKeepsPlace(t *testing.T) {
	f, m, l := newTestFollower(6, 0)
	l.fail = errors.New("db down")
	if err := f.handleBatch(context.Background(), batch(3, 3)); err == nil {
		t.Fatal("gap with the database down: no error")
	}
	if len(m.seqs) != 0 || f.appliedSeq.Load() != 0 {
		t.Fatalf("applied %v while the gap could not be repaired", m.seqs)
	}
	l.fail = nil
	if err := f.handleBatch(context.Background(), batch(3, 3)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.seqs, seqRange(1, 6)); diff != "" {
		t.Errorf("applied:\n%s", diff)
	}
}

func TestFollowerTruncatedLog(t *testing.T) {
	// The batch says seq 9 exists but the database ends at 5: an error,
	// never a skipped seq.
	f, m, _ := newTestFollower(5, 0)
	err := f.handleBatch(context.Background(), batch(8, 1))
	if !errors.Is(err, errLogGap) {
		t.Fatalf("err = %v, want errLogGap", err)
	}
	if slices.Contains(m.seqs, 9) {
		t.Fatalf("applied seq 9 across a gap: %v", m.seqs)
	}
}

func TestFollowerApplyGuard(t *testing.T) {
	f, m, _ := newTestFollower(0, 0)
	f.mu.Lock()
	err1 := f.apply(rec(2)) // skips seq 1
	err2 := f.apply(rec(1))
	err3 := f.apply(rec(1)) // twice
	f.mu.Unlock()
	if err1 == nil || err2 != nil || err3 == nil {
		t.Fatalf("apply errors = %v, %v, %v", err1, err2, err3)
	}
	if f.outOfOrder.Load() != 2 || !slices.Equal(m.seqs, []int64{1}) {
		t.Fatalf("out of order %d, applied %v", f.outOfOrder.Load(), m.seqs)
	}
}

func TestFollowerRefusedRecordAdvances(t *testing.T) {
	f, m, _ := newTestFollower(3, 0)
	m.refuse = map[int64]bool{2: true}
	if err := f.handleBatch(context.Background(), batch(0, 3)); err != nil {
		t.Fatal(err)
	}
	if f.appliedSeq.Load() != 3 || f.applyErrors.Load() != 1 {
		t.Fatalf("applied %d, apply errors %d", f.appliedSeq.Load(), f.applyErrors.Load())
	}
}

// TestFollowerMirrorsChanges checks that the machine's change counter (the
// snapshot policy's every_changes) is mirrored after each batch and after
// a load.
func TestFollowerMirrorsChanges(t *testing.T) {
	f, m, _ := newTestFollower(6, 0)
	if _, err := f.applyRecords(batch(0, 4).Records); err != nil {
		t.Fatal(err)
	}
	if got := f.changes.Load(); got != 8 || got != m.ChangesApplied() {
		t.Fatalf("changes %d after 4 records; machine says %d", got, m.ChangesApplied())
	}
	var pm dto.Metric
	if err := f.mChanges.Write(&pm); err != nil || pm.GetGauge().GetValue() != 8 {
		t.Fatalf("causeway_processor_graph_changes_applied = %v (%v); want 8", pm.GetGauge().GetValue(), err)
	}
	f.load(&recMachine{seqs: []int64{1}}, 1, time.Time{})
	if got := f.changes.Load(); got != 2 {
		t.Fatalf("changes %d after loading a machine that counted 2", got)
	}
}

// TestCatchUpThroughBelowRetention: catching up to a seq below the first
// one the log still holds (a batch's prev_seq, with retention past the
// applied seq) reports the log past retention, instead of trimming every
// page to nothing and reading it again for ever.
func TestCatchUpThroughBelowRetention(t *testing.T) {
	f, _, l := newTestFollower(20, 4)
	l.first = 12
	done := make(chan error, 1)
	go func() { done <- f.catchUp(context.Background(), 10) }()
	select {
	case err := <-done:
		if !errors.Is(err, errPastRetention) {
			t.Fatalf("catchUp = %v, want errPastRetention", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("catchUp spins on an empty trimmed page")
	}
}

// TestFollowerStuck: a follower is stuck once its loop has not turned for
// longer than the limit; one that is loading (never turned since) is not.
func TestFollowerStuck(t *testing.T) {
	f := newFollower(&fakeLog{}, 3, slog.New(slog.DiscardHandler))
	if f.stuck(time.Nanosecond) {
		t.Error("a follower whose loop never turned (loading) is stuck")
	}
	f.turn()
	if f.stuck(time.Hour) {
		t.Error("a follower that just turned is stuck")
	}
	f.turned.Store(int64(time.Since(monoStart)-2*time.Minute) | 1)
	if !f.stuck(time.Minute) {
		t.Error("a follower that last turned 2 minutes ago is not stuck with a 1 minute limit")
	}
	p := &Processor{}
	if !p.Alive() {
		t.Error("a processor not running yet is not alive")
	}
}
