package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/snapshot"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type fakeFence struct {
	mu     sync.Mutex
	stored int64
}

func (f *fakeFence) Claim(_ context.Context, term int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if term < f.stored {
		return fmt.Errorf("claim: %w", store.ErrFenced)
	}
	f.stored = term
	return nil
}

func (f *fakeFence) Stored(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stored, nil
}

// fakeSnaps writes a snapshot whenever applied moved, checking the fence
// like the real writer does in its transaction.
type fakeSnaps struct {
	fence   *fakeFence
	mu      sync.Mutex
	last    int64
	taken   []int64 // terms of successful writes
	changes int64   // the counter last shown to Due
}

func (s *fakeSnaps) Resume(context.Context) error { return nil }
func (s *fakeSnaps) Due(applied, changes int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes = changes
	return applied > s.last
}
func (s *fakeSnaps) Take(ctx context.Context, term int64, capture func() (snapshot.Capture, error)) (snapshot.Result, error) {
	c, err := capture()
	if err != nil {
		return snapshot.Result{}, err
	}
	if err := s.fence.Claim(ctx, term); err != nil {
		return snapshot.Result{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = c.Seq
	s.taken = append(s.taken, term)
	return snapshot.Result{Meta: snapshot.Meta{Seq: c.Seq}}, nil
}

func (s *fakeSnaps) TakeFromLog(ctx context.Context, term int64, _ *snapshot.Shadow, seq int64) (snapshot.Result, error) {
	return s.Take(ctx, term, func() (snapshot.Capture, error) { return snapshot.Capture{Seq: seq}, nil })
}

func testNode(t *testing.T, fence *fakeFence, snaps *fakeSnaps) *node {
	t.Helper()
	f, _, _ := newTestFollower(5, 5)
	return &node{
		cfg: Config{SnapshotCheck: time.Millisecond, RetryMin: time.Millisecond, RetryMax: time.Millisecond},
		log: slog.New(slog.DiscardHandler), now: time.Now, f: f,
		parts: Parts{Fence: fence, Snapshots: snaps, Capture: func(m Machine, seq int64, at time.Time) (snapshot.Capture, error) {
			return snapshot.Capture{Seq: seq}, nil
		}},
		elect:   &fakeElector{},
		mFenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "f"}),
		mSnaps:  prometheus.NewCounter(prometheus.CounterOpts{Name: "s"}),
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// leadUntilSnapshot runs n as the leader of term until it wrote a snapshot.
func leadUntilSnapshot(t *testing.T, n *node, term uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.lead(ctx, term) }()
	waitFor(t, "a snapshot", func() bool { return n.snapsWritten.Load() == 1 })
	cancel()
	<-done
}

func TestLeaderWritesSnapshotAtItsTerm(t *testing.T) {
	fence := &fakeFence{}
	snaps := &fakeSnaps{fence: fence}
	n := testNode(t, fence, snaps)
	leadUntilSnapshot(t, n, 7)
	if n.lastSnapSeq.Load() != 5 || snaps.taken[0] != 7 || fence.stored != 7 {
		t.Fatalf("snapshot seq %d, terms %v, fence %d", n.lastSnapSeq.Load(), snaps.taken, fence.stored)
	}
	if n.fenced.Load() != 0 {
		t.Fatalf("fenced = %d", n.fenced.Load())
	}
}

// TestLeaderShowsChangesToPolicy checks that the leader asks the policy
// with the machine's change counter as well as its applied seq.
func TestLeaderShowsChangesToPolicy(t *testing.T) {
	fence := &fakeFence{}
	snaps := &fakeSnaps{fence: fence}
	n := testNode(t, fence, snaps)
	if _, err := n.f.applyRecords(batch(5, 3).Records); err != nil {
		t.Fatal(err)
	}
	leadUntilSnapshot(t, n, 7)
	snaps.mu.Lock()
	defer snaps.mu.Unlock()
	if snaps.changes != 6 {
		t.Fatalf("policy shown %d changes; the machine applied 3 records of 2", snaps.changes)
	}
}

func TestDeposedLeaderWriteIsFenced(t *testing.T) {
	defer func(d time.Duration) { fencedStepDownAfter = d }(fencedStepDownAfter)
	fencedStepDownAfter = 5 * time.Millisecond
	fence := &fakeFence{}
	snaps := &fakeSnaps{fence: fence}
	old := testNode(t, fence, snaps)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	// The old leader (term 3) has claimed the fence and waits for its
	// next snapshot; meanwhile a new leader claims term 4.
	snaps.last = 100 // nothing due yet
	go func() { defer close(done); old.lead(ctx, 3) }()
	waitFor(t, "the old leader's claim", func() bool { fence.mu.Lock(); defer fence.mu.Unlock(); return fence.stored == 3 })
	if err := fence.Claim(ctx, 4); err != nil {
		t.Fatal(err)
	}
	snaps.mu.Lock()
	snaps.last = 0 // a snapshot is due: the old leader's write is late
	snaps.mu.Unlock()
	waitFor(t, "the fenced write", func() bool { return old.fenced.Load() == 1 })
	var m dto.Metric
	if err := old.mFenced.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("causeway_processor_fenced_writes_total = %v", got)
	}
	if len(snaps.taken) != 0 || old.snapsWritten.Load() != 0 {
		t.Errorf("a fenced snapshot was counted as written: %v", snaps.taken)
	}
	// After a fenced write the duties stop writing until leadership ends;
	// while raft still says leader, it hands leadership over.
	waitFor(t, "a hand-over", func() bool { return old.elect.(*fakeElector).stepDowns.Load() >= 1 })
	cancel()
	<-done
}

func TestStaleLeaderClaimIsFenced(t *testing.T) {
	fence := &fakeFence{stored: 9}
	snaps := &fakeSnaps{fence: fence}
	n := testNode(t, fence, snaps)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.lead(ctx, 8) }()
	waitFor(t, "the fenced claim", func() bool { return n.fenced.Load() == 1 })
	cancel()
	<-done
	if len(snaps.taken) != 0 {
		t.Fatalf("stale leader wrote snapshots: %v", snaps.taken)
	}
}

// TestFencedLeaderHandsLeadershipOver: a leader whose claim the fence
// refuses (after a reset of raft's state the stored term is above every
// raft term) says so in its status and hands leadership over, again and
// again, so that elections raise the term past the stored one; once it no
// longer leads, the status is clear again.
func TestFencedLeaderHandsLeadershipOver(t *testing.T) {
	defer func(d time.Duration) { fencedStepDownAfter = d }(fencedStepDownAfter)
	fencedStepDownAfter = 5 * time.Millisecond
	fence := &fakeFence{stored: 37}
	n := testNode(t, fence, &fakeSnaps{fence: fence})
	elect := n.elect.(*fakeElector)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.lead(ctx, 2) }()
	waitFor(t, "two hand-overs", func() bool { return elect.stepDowns.Load() >= 2 })
	if st := n.Status(ctx); !strings.Contains(st.Error, "term 37") {
		t.Errorf("status error %q; want the stored term named", st.Error)
	}
	cancel()
	<-done
	if st := n.Status(ctx); st.Error != "" {
		t.Errorf("status error after leading ended: %q", st.Error)
	}
	// A claim that goes through hands nothing over.
	n2 := testNode(t, fence, &fakeSnaps{fence: fence})
	leadUntilSnapshot(t, n2, 38)
	if got := n2.elect.(*fakeElector).stepDowns.Load(); got != 0 {
		t.Errorf("%d hand-overs by a leader whose claim succeeded", got)
	}
}

func TestSuccessorIsReadyAndMostApplied(t *testing.T) {
	p := func(id string, ready bool, applied int64) store.Presence {
		return store.Presence{NodeID: id, NodeState: store.NodeState{Ready: ready, AppliedSeq: applied}}
	}
	for _, tc := range []struct {
		name    string
		ps      []store.Presence
		exclude []string
		want    string
	}{
		{"none ready", []store.Presence{p("a", false, 9), p("self", true, 9)}, nil, ""},
		{"the ready one, though behind", []store.Presence{p("a", false, 9), p("b", true, 5), p("self", true, 9)}, nil, "b"},
		{"most applied", []store.Presence{p("a", true, 5), p("b", true, 8), p("c", true, 7)}, nil, "b"},
		{"lowest id among equals", []store.Presence{p("c", true, 8), p("b", true, 8), p("self", true, 9)}, nil, "b"},
		{"never itself", []store.Presence{p("self", true, 9)}, nil, ""},
		{"the next ready one, the best excluded", []store.Presence{p("a", false, 9), p("b", true, 8), p("c", true, 7)}, []string{"b"}, "c"},
		{"none, every ready one excluded", []store.Presence{p("a", false, 9), p("b", true, 8), p("c", true, 7)}, []string{"c", "b"}, ""},
	} {
		if got := successor(tc.ps, "self", tc.exclude); got != tc.want {
			t.Errorf("%s: successor = %q; want %q", tc.name, got, tc.want)
		}
	}
}

// failingSnaps is a writer whose every write fails (the database refuses
// it), counting the attempts.
type failingSnaps struct {
	fakeSnaps
	attempts atomic.Int64
}

func (s *failingSnaps) Take(_ context.Context, _ int64, capture func() (snapshot.Capture, error)) (snapshot.Result, error) {
	s.attempts.Add(1)
	if _, err := capture(); err != nil {
		return snapshot.Result{}, err
	}
	return snapshot.Result{}, errors.New("insert snapshot row: Packet too large")
}

func (s *failingSnaps) TakeFromLog(ctx context.Context, term int64, _ *snapshot.Shadow, seq int64) (snapshot.Result, error) {
	return s.Take(ctx, term, func() (snapshot.Capture, error) { return snapshot.Capture{Seq: seq}, nil })
}

// TestFailingSnapshotBacksOff: a snapshot write that keeps failing is
// tried again after a backoff (retry_min, doubling up to retry_max), as
// every other leader write is, not at every snapshot_check: each attempt
// captures the state (under the live machine's lock, or by a shadow
// catch-up) and encodes it whole, and logs a warning.
func TestFailingSnapshotBacksOff(t *testing.T) {
	fence := &fakeFence{}
	snaps := &failingSnaps{fakeSnaps: fakeSnaps{fence: fence}}
	n := testNode(t, fence, &snaps.fakeSnaps)
	n.parts.Snapshots = snaps
	n.cfg.RetryMin, n.cfg.RetryMax = 40*time.Millisecond, 80*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.lead(ctx, 1) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	// At most one attempt every 20 ms (half of retry_min, the jitter's
	// floor); without a backoff, one every millisecond.
	if got := snaps.attempts.Load(); got < 2 || got > 16 {
		t.Errorf("%d snapshot attempts in 300ms with snapshot_check 1ms and retry_min 40ms; want a few, backed off", got)
	}
}
