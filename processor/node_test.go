package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/election"
	"github.com/causeway/causeway/snapshot"
	"github.com/prometheus/client_golang/prometheus"
)

type fakeStream struct{ ch chan bus.Update }

func (s *fakeStream) Run(ctx context.Context) error {
	<-ctx.Done()
	close(s.ch)
	return nil
}
func (s *fakeStream) Updates() <-chan bus.Update { return s.ch }

type fakeRecon struct {
	mu    sync.Mutex
	fails int
	seq   int64
	m     *recMachine
	stale bool // the snapshot was of other semantics
}

func (r *fakeRecon) Reconstruct(context.Context, snapshot.Target) (snapshot.Reconstruction, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails > 0 {
		r.fails--
		return snapshot.Reconstruction{}, errors.New("db down")
	}
	return snapshot.Reconstruction{Machine: r.m, Seq: r.seq, StaleSemantics: r.stale}, nil
}

func (r *fakeRecon) ReconstructEarliest(context.Context, int64) (snapshot.Reconstruction, error) {
	return snapshot.Reconstruction{}, errors.New("not used")
}

func (r *fakeRecon) Advance(context.Context, *snapshot.Reconstruction, snapshot.Target) error {
	return errors.New("not used")
}

type fakeElector struct {
	leader    string
	stepDowns atomic.Int64
}

func (e *fakeElector) StepDown() error { e.stepDowns.Add(1); return nil }

func (e *fakeElector) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (e *fakeElector) Leader() (string, string)      { return e.leader, "addr" }
func (e *fakeElector) State() string                 { return "Follower" }
func (e *fakeElector) Term() uint64                  { return 2 }
func (e *fakeElector) LeaderTerm() uint64            { return 0 }
func (e *fakeElector) Servers() ([]election.Server, error) {
	return nil, nil
}
func (e *fakeElector) Join(string, string, time.Duration) error { return election.ErrNotLeader }
func (e *fakeElector) Remove(string, time.Duration) error       { return election.ErrNotLeader }

// followingNode is a node that follows log and stream, loaded by recon,
// polling every poll; the returned stop ends its follow and checks it.
func followingNode(t *testing.T, log *fakeLog, stream *fakeStream, recon *fakeRecon, elect *fakeElector, poll time.Duration) (*node, func()) {
	t.Helper()
	n := &node{
		cfg: Config{PollInterval: poll, ReadyLag: new(int64(0)), RetryMin: time.Millisecond, RetryMax: time.Millisecond},
		log: slog.New(slog.DiscardHandler), now: time.Now,
		parts:   Parts{Log: log, Stream: stream, Reconstructor: recon},
		f:       newFollower(log, 10, slog.New(slog.DiscardHandler)),
		elect:   elect,
		mFenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "f"}),
		mSnaps:  prometheus.NewCounter(prometheus.CounterOpts{Name: "s"}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.follow(ctx) }()
	return n, func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestNodeBehindRetentionReloads: a node cut off from the database for
// longer than the retention finds the log starting past its applied seq;
// it loads the state again (newest snapshot + replay) and follows from
// there, instead of retrying the same gap for ever.
func TestNodeBehindRetentionReloads(t *testing.T) {
	log := &fakeLog{head: 4}
	recon := &fakeRecon{seq: 2, m: &recMachine{}}
	stream := &fakeStream{ch: make(chan bus.Update)}
	n, stop := followingNode(t, log, stream, recon, &fakeElector{leader: "p1"}, time.Hour)
	waitFor(t, "catch-up to 4", func() bool { return n.f.appliedSeq.Load() == 4 })

	// Meanwhile the log went on to 20 and retention dropped seqs 1..11; the
	// newest snapshot is at 15.
	again := &recMachine{}
	recon.mu.Lock()
	recon.seq, recon.m = 15, again
	recon.mu.Unlock()
	log.mu.Lock()
	log.head, log.first = 20, 12
	log.mu.Unlock()
	stream.ch <- bus.Update{Gap: true}
	waitFor(t, "seq 20", func() bool { return n.f.appliedSeq.Load() == 20 })
	stop()
	if fmt.Sprint(again.seqs) != "[16 17 18 19 20]" {
		t.Errorf("the reloaded machine applied %v; want 16..20 after the snapshot at 15", again.seqs)
	}
}

// TestNodeReadyNeedsARecentHead: with the database (and the bus) silent,
// the head the node knows goes stale, and so does its readiness: a lag
// computed from it would look small.
func TestNodeReadyNeedsARecentHead(t *testing.T) {
	log := &fakeLog{head: 4}
	stream := &fakeStream{ch: make(chan bus.Update)}
	n, stop := followingNode(t, log, stream, &fakeRecon{seq: 2, m: &recMachine{}}, &fakeElector{leader: "p1"}, 20*time.Millisecond)
	ctx := context.Background()
	waitFor(t, "ready at 4", func() bool { st := n.Status(ctx); return st.Ready && st.AppliedSeq == 4 })
	log.mu.Lock()
	log.fail = errors.New("database unreachable")
	log.mu.Unlock()
	waitFor(t, "not ready", func() bool { return !n.Status(ctx).Ready })
	log.mu.Lock()
	log.fail = nil
	log.mu.Unlock()
	waitFor(t, "ready again", func() bool { return n.Status(ctx).Ready })
	stop()
}

func TestNodeFollowsAndReportsReady(t *testing.T) {
	log := &fakeLog{head: 4}
	m := &recMachine{}
	stream := &fakeStream{ch: make(chan bus.Update)}
	elect := &fakeElector{}
	n, stop := followingNode(t, log, stream, &fakeRecon{fails: 2, seq: 2, m: m, stale: true}, elect, time.Hour)
	ctx := context.Background()

	// Loaded at seq 2 after two failed attempts, then caught up to the
	// database head (4) before reading the stream.
	waitFor(t, "catch-up to 4", func() bool { return n.f.appliedSeq.Load() == 4 })
	if st := n.Status(ctx); st.Ready || st.Leader != "" {
		t.Errorf("ready without a leader: %+v", st)
	}
	elect.leader = "p2"
	if st := n.Status(ctx); !st.Ready || st.AppliedSeq != 4 || st.LogHead != 4 || !st.StaleSemantics {
		t.Errorf("status = %+v; want ready at 4, loaded from a stale snapshot", st)
	}
	// A batch continuing the log, then a doorbell lost (gap signal) while
	// the database moved on.
	stream.ch <- bus.Update{Batch: batch(4, 2)}
	log.mu.Lock()
	log.head = 9
	log.mu.Unlock()
	stream.ch <- bus.Update{Gap: true}
	// The next batch (or the catch-up the gap asked for) brings it to 9.
	stream.ch <- bus.Update{Batch: batch(9, 1)}
	waitFor(t, "seq 10", func() bool { return n.f.appliedSeq.Load() == 10 })
	if st := n.Status(ctx); !st.Ready || st.GapsRepaired != 1 {
		t.Errorf("status at the head = %+v", st)
	}
	n.f.setHead(15) // a batch announced seq 15 that is not applied yet
	if st := n.Status(ctx); st.Ready || st.Lag != 5 {
		t.Errorf("ready while 5 behind the head: %+v", st)
	}
	stop()
	want := seqRange(3, 10)
	if len(m.seqs) != len(want) {
		t.Fatalf("applied %v, want %v", m.seqs, want)
	}
	for i := range want {
		if m.seqs[i] != want[i] {
			t.Fatalf("applied %v, want %v", m.seqs, want)
		}
	}
	if n.f.outOfOrder.Load() != 0 {
		t.Fatalf("out of order %d", n.f.outOfOrder.Load())
	}
}

// TestHistoricalQueriesAreBounded: with as many historical queries running
// as the node allows, one more is refused with api.ErrBusy (503) instead
// of rebuilding another graph; once one ends, the next one runs.
func TestHistoricalQueriesAreBounded(t *testing.T) {
	n := &node{
		cfg: Config{ReadyLag: new(int64(0))}, log: slog.New(slog.DiscardHandler),
		parts: Parts{Reconstructor: &fakeRecon{seq: 3, m: &recMachine{}},
			Inspect: func(Machine) (api.View, error) { return nil, nil }},
		historical: make(chan struct{}, 1),
	}
	n.historical <- struct{}{} // one running
	if _, err := n.Reconstruct(context.Background(), 3, time.Time{}); !errors.Is(err, api.ErrBusy) {
		t.Fatalf("query over the bound = %v; want api.ErrBusy", err)
	}
	<-n.historical
	p, err := n.Reconstruct(context.Background(), 3, time.Time{})
	if err != nil || p.Seq != 3 {
		t.Fatalf("query within the bound = %d, %v", p.Seq, err)
	}
	if len(n.historical) != 1 {
		t.Error("the query gave its slot back before its Release")
	}
	p.Release()
	p.Release() // once
	if len(n.historical) != 0 {
		t.Error("the query did not give its slot back")
	}
}

// countingRecon is a fakeRecon that counts its reconstructions.
type countingRecon struct {
	fakeRecon
	calls atomic.Int64
}

func (r *countingRecon) Reconstruct(ctx context.Context, t snapshot.Target) (snapshot.Reconstruction, error) {
	r.calls.Add(1)
	return r.fakeRecon.Reconstruct(ctx, t)
}

// TestHistoricalSeqBeyondTheLog: a historical query at a seq past the
// log's end is refused (api.ErrNotFound, snapshot.ErrBeyondLog: 404)
// without a reconstruction; the reconstructor found it out only once it
// had restored the newest snapshot and replayed the log after it, the
// whole graph rebuilt (seconds of CPU at 100k entities) for every such
// ?seq= a reader sent. A seq in the log is reconstructed.
func TestHistoricalSeqBeyondTheLog(t *testing.T) {
	recon := &countingRecon{fakeRecon: fakeRecon{seq: 10, m: &recMachine{}}}
	n := &node{
		cfg: Config{ReadyLag: new(int64(0))}, log: slog.New(slog.DiscardHandler),
		parts: Parts{Log: &fakeLog{head: 10}, Reconstructor: recon,
			Inspect: func(Machine) (api.View, error) { return nil, nil }},
		historical: make(chan struct{}, 1),
	}
	if _, err := n.Reconstruct(context.Background(), 11, time.Time{}); !errors.Is(err, api.ErrNotFound) || !errors.Is(err, snapshot.ErrBeyondLog) {
		t.Errorf("seq 11 of a log ending at 10 = %v; want api.ErrNotFound and snapshot.ErrBeyondLog", err)
	}
	if c := recon.calls.Load(); c != 0 {
		t.Errorf("seq 11 of a log ending at 10: %d reconstructions; want none", c)
	}
	if p, err := n.Reconstruct(context.Background(), 10, time.Time{}); err != nil || p.Seq != 10 || recon.calls.Load() != 1 {
		t.Errorf("seq 10 = %d, %v, %d reconstructions; want seq 10 from one", p.Seq, err, recon.calls.Load())
	} else {
		p.Release()
	}
	if len(n.historical) != 0 {
		t.Error("the query did not give its slot back")
	}
}
