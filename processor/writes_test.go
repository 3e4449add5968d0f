package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/snapshot"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// seqMachine is a machine whose state is the seq it has applied; it
// refuses a record that does not continue it.
type seqMachine struct{ seq int64 }

func (m *seqMachine) Apply(r event.Record) error {
	if r.Seq != m.seq+1 {
		return fmt.Errorf("seq %d after %d", r.Seq, m.seq)
	}
	m.seq = r.Seq
	return nil
}
func (m *seqMachine) Dump(w io.Writer) error { _, err := fmt.Fprint(w, m.seq); return err }

// SubscriptionState is what fakeProduce's subscription changes put in
// force up to the machine's seq.
func (m *seqMachine) SubscriptionState() []subscription.Entry {
	var out []subscription.Entry
	for s := int64(5); s <= m.seq; s += 5 {
		out = append(out, subscription.Entry{ID: fmt.Sprint("s", s), Seq: s})
	}
	return out
}

// HistoryState is what fakeProduce's items leave active at seq: the
// alarms raised at even seqs and the links started at multiples of 3
// (none ends).
func (m *seqMachine) HistoryState(seq int64, recordedAt time.Time) history.State {
	st := history.State{Seq: seq, RecordedAt: recordedAt}
	for s := int64(1); s <= m.seq; s++ {
		if s%2 == 0 {
			st.Alarms = append(st.Alarms, history.Alarm{Key: fmt.Sprint("k", s)})
		}
		if s%3 == 0 {
			st.Links = append(st.Links, history.LinkKey{From: "x", To: fmt.Sprint(s)})
		}
	}
	return st
}

// fakeProduce derives, from the seq alone, what a record gives: even seqs
// raise an alarm (one row for subscriber "a", and one for "b" every 4th),
// multiples of 3 change a link, multiples of 5 change a subscription.
func fakeProduce(m Machine, r event.Record) (Output, error) {
	if err := m.Apply(r); err != nil {
		return Output{}, err
	}
	var out Output
	if r.Seq%2 == 0 {
		out.Rows = append(out.Rows, outbox.Row{SubscriptionID: "a", Seq: r.Seq, WebhookID: fmt.Sprint("a", r.Seq)})
		out.Items = append(out.Items, history.Item{Kind: history.Raised, Seq: r.Seq, Alarm: history.Alarm{Key: fmt.Sprint("k", r.Seq)}})
	}
	if r.Seq%4 == 0 {
		out.Rows = append(out.Rows, outbox.Row{SubscriptionID: "b", Seq: r.Seq, WebhookID: fmt.Sprint("b", r.Seq)})
	}
	if r.Seq%3 == 0 {
		out.Items = append(out.Items, history.Item{Kind: history.LinkStarted, Seq: r.Seq, From: "x", To: fmt.Sprint(r.Seq)})
	}
	if r.Seq%5 == 0 {
		out.Sub = &subscription.Update{ID: fmt.Sprint("s", r.Seq), Seq: r.Seq}
	}
	return out, nil
}

// expected is what a single leader writes over seqs 1..through.
func expected(through int64) (rows []outbox.Row, subs []subscription.Update, items []history.Item) {
	m := &seqMachine{}
	for s := int64(1); s <= through; s++ {
		out, _ := fakeProduce(m, rec(s))
		rows = append(rows, out.Rows...)
		if out.Sub != nil {
			subs = append(subs, *out.Sub)
		}
		items = append(items, out.Items...)
	}
	return rows, subs, items
}

// fakeTables are the outbox and history tables, with their heads and a
// fence per table, as Write and CheckFence keep them; every row inserted
// is recorded in order, so a duplicate would show.
type fakeTables struct {
	mu                   sync.Mutex
	outFence, histFence  int64
	outHead, histHead    int64
	rows                 []outbox.Row
	subs                 []subscription.Update
	items                []history.Item
	reconciles           []history.State
	resyncs              []outbox.Resync
	outWrites, histWrite int
	fail                 error
	histFailOnce         error    // fails the next history write only
	deadlines            []string // "outbox|history <deadline>" of each write
}

func (t *fakeTables) noteDeadline(ctx context.Context, table string) {
	d, ok := ctx.Deadline()
	if !ok {
		t.deadlines = append(t.deadlines, table+" none")
		return
	}
	t.deadlines = append(t.deadlines, table+" "+d.Format(time.RFC3339Nano))
}

type fakeOutboxStore struct{ t *fakeTables }

func (o fakeOutboxStore) Head(context.Context) (int64, error) {
	o.t.mu.Lock()
	defer o.t.mu.Unlock()
	return o.t.outHead, nil
}

func (o fakeOutboxStore) Write(ctx context.Context, term int64, b outbox.Batch) (int, error) {
	t := o.t
	t.mu.Lock()
	defer t.mu.Unlock()
	t.noteDeadline(ctx, "outbox")
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if t.fail != nil {
		return 0, t.fail
	}
	if term < t.outFence {
		return 0, fmt.Errorf("outbox: %w", store.ErrFenced)
	}
	t.outFence = term
	t.outWrites++
	if b.Resync != nil && b.Resync.Seq > t.outHead {
		t.resyncs = append(t.resyncs, *b.Resync)
	}
	n := 0
	for _, r := range b.Rows {
		if r.Seq > t.outHead {
			t.rows = append(t.rows, r)
			n++
		}
	}
	for _, s := range b.Subscriptions {
		if s.Seq > t.outHead {
			t.subs = append(t.subs, s)
		}
	}
	t.outHead = max(t.outHead, b.Seq)
	return n, nil
}

type fakeHistoryStore struct{ t *fakeTables }

func (h fakeHistoryStore) Head(context.Context) (int64, error) {
	h.t.mu.Lock()
	defer h.t.mu.Unlock()
	return h.t.histHead, nil
}

func (h fakeHistoryStore) Write(ctx context.Context, term int64, b history.Batch) (history.Result, error) {
	t := h.t
	t.mu.Lock()
	defer t.mu.Unlock()
	t.noteDeadline(ctx, "history")
	if err := ctx.Err(); err != nil {
		return history.Result{}, err
	}
	if t.fail != nil {
		return history.Result{}, t.fail
	}
	if err := t.histFailOnce; err != nil {
		t.histFailOnce = nil
		return history.Result{}, err
	}
	if term < t.histFence {
		return history.Result{}, fmt.Errorf("history: %w", store.ErrFenced)
	}
	t.histFence = term
	t.histWrite++
	after := t.histHead
	if r := b.Reconcile; r != nil && r.Seq > t.histHead {
		t.reconciles = append(t.reconciles, *r)
		after = r.Seq
	}
	n := 0
	for _, it := range b.Items {
		if it.Seq > after {
			t.items = append(t.items, it)
			n++
		}
	}
	t.histHead = max(t.histHead, b.Seq)
	return history.Result{Written: n, Head: t.histHead}, nil
}

func (h fakeHistoryStore) Prune(_ context.Context, term int64, _ time.Time) (history.Pruned, error) {
	h.t.mu.Lock()
	defer h.t.mu.Unlock()
	if term < h.t.histFence {
		return history.Pruned{}, fmt.Errorf("history prune: %w", store.ErrFenced)
	}
	return history.Pruned{}, nil
}

// prefill stores what a single leader wrote through outHead and histHead.
func (t *fakeTables) prefill(outHead, histHead int64) {
	rows, subs, _ := expected(outHead)
	_, _, items := expected(histHead)
	t.rows, t.subs, t.items, t.outHead, t.histHead = rows, subs, items, outHead, histHead
}

func (t *fakeTables) check(tb testing.TB, through int64) {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	rows, subs, items := expected(through)
	if diff := cmp.Diff(t.rows, rows); diff != "" {
		tb.Errorf("outbox rows (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(t.subs, subs); diff != "" {
		tb.Errorf("subscriptions (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(t.items, items); diff != "" {
		tb.Errorf("history items (-got +want):\n%s", diff)
	}
	if t.outHead != through || t.histHead != through {
		tb.Errorf("heads: outbox %d, history %d, want %d", t.outHead, t.histHead, through)
	}
	if len(t.reconciles) != 0 {
		tb.Errorf("history reconciled with %+v; want nothing lost, nothing reconciled", t.reconciles)
	}
}

// seqRecon reconstructs seqMachines from fakeLog: the "snapshot" is the
// machine at the target, like a snapshot at or before it plus a replay.
type seqRecon struct {
	log   *fakeLog
	mu    sync.Mutex
	calls []string
	// retained is the first seq still in the log: reconstructing before
	// it meets a gap.
	retained int64
	// snapshots are the seqs of the snapshots, ascending; without any, a
	// reconstruction starts from a "snapshot" at its target.
	snapshots []int64
	// failEarliest fails that many ReconstructEarliest calls, as a
	// database failure would.
	failEarliest int
	// delay is how long each Reconstruct takes.
	delay time.Duration
}

func targetSeq(t snapshot.Target) (int64, error) {
	var s int64
	_, err := fmt.Sscanf(t.String(), "seq %d", &s)
	return s, err
}

func (r *seqRecon) Reconstruct(_ context.Context, t snapshot.Target) (snapshot.Reconstruction, error) {
	time.Sleep(r.delay)
	s, err := targetSeq(t)
	if err != nil {
		return snapshot.Reconstruction{}, err
	}
	r.mu.Lock()
	r.calls = append(r.calls, "reconstruct "+t.String())
	r.mu.Unlock()
	from := s
	if len(r.snapshots) > 0 {
		from = 0
		for _, sn := range r.snapshots {
			if sn <= s {
				from = sn
			}
		}
	}
	if from < r.retained-1 {
		return snapshot.Reconstruction{}, fmt.Errorf("replay from %d: %w", from, snapshot.ErrGap)
	}
	return snapshot.Reconstruction{Machine: &seqMachine{seq: s}, Seq: s, SnapshotSeq: from}, nil
}

// ReconstructEarliest starts at the oldest snapshot the retained log
// follows (without snapshots: at the seq before the first retained one).
func (r *seqRecon) ReconstructEarliest(_ context.Context, atMost int64) (snapshot.Reconstruction, error) {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf("earliest up to %d", atMost))
	fail := r.failEarliest > 0
	r.failEarliest--
	r.mu.Unlock()
	if fail {
		return snapshot.Reconstruction{}, errors.New("invalid connection")
	}
	from := max(r.retained-1, 0)
	if len(r.snapshots) > 0 && from > 0 {
		from = -1
		for _, sn := range r.snapshots {
			if sn >= r.retained-1 && sn <= atMost {
				from = sn
				break
			}
		}
	}
	if from < 0 || from > atMost {
		return snapshot.Reconstruction{}, fmt.Errorf("earliest: %w", snapshot.ErrGap)
	}
	res := snapshot.Reconstruction{Machine: &seqMachine{seq: from}, Seq: from, SnapshotSeq: from}
	if from > 0 {
		res.RecordedAt = rec(from).RecordedAt
	}
	return res, nil
}

func (r *seqRecon) Advance(ctx context.Context, res *snapshot.Reconstruction, t snapshot.Target) error {
	s, err := targetSeq(t)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.calls = append(r.calls, "advance to "+t.String())
	r.mu.Unlock()
	recs, err := r.log.ReadRange(ctx, res.Seq, int(s-res.Seq))
	if err != nil {
		return err
	}
	for _, x := range recs {
		if err := res.Machine.Apply(x); err != nil {
			return err
		}
		res.Seq = x.Seq
	}
	if res.Seq != s {
		return fmt.Errorf("advance ended at %d, not %d", res.Seq, s)
	}
	return nil
}

// writesNode is a node that applies fakeLog's records with fakeProduce,
// loaded at seq loadAt, and writes to tables.
func writesNode(t *testing.T, head, loadAt int64, tables *fakeTables, fence *fakeFence, maxPending int) (*node, *seqRecon) {
	t.Helper()
	l := &fakeLog{head: head}
	f := newFollower(l, 3, slog.New(slog.DiscardHandler))
	f.produce = fakeProduce
	f.pend = newPending(maxPending)
	var at time.Time
	if loadAt > 0 {
		at = rec(loadAt).RecordedAt
	}
	f.load(&seqMachine{seq: loadAt}, loadAt, at)
	recon := &seqRecon{log: l}
	n := &node{
		cfg: Config{SnapshotCheck: time.Millisecond, FlushInterval: time.Millisecond, HistoryPruneInterval: time.Hour,
			RetryMin: time.Millisecond, RetryMax: time.Millisecond},
		log: slog.New(slog.DiscardHandler), now: time.Now, f: f,
		parts: Parts{
			Fence: fence, Produce: fakeProduce, Reconstructor: recon,
			Outbox: fakeOutboxStore{tables}, History: fakeHistoryStore{tables},
		},
		elect:       &fakeElector{},
		mFenced:     prometheus.NewCounter(prometheus.CounterOpts{Name: "f"}),
		mSnaps:      prometheus.NewCounter(prometheus.CounterOpts{Name: "s"}),
		mRegen:      prometheus.NewCounter(prometheus.CounterOpts{Name: "r"}),
		mOutboxRows: prometheus.NewCounter(prometheus.CounterOpts{Name: "o"}),
		mHistItems:  prometheus.NewCounter(prometheus.CounterOpts{Name: "h"}),
	}
	return n, recon
}

// leadUntil runs n's duties at term until cond holds, then ends the
// leadership.
func leadUntil(t *testing.T, n *node, term uint64, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.lead(ctx, term) }()
	waitFor(t, what, cond)
	cancel()
	<-done
}

func (t *fakeTables) heads() (int64, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.outHead, t.histHead
}

func TestLeaderWritesOutboxAndHistory(t *testing.T) {
	tables := &fakeTables{}
	n, recon := writesNode(t, 20, 0, tables, &fakeFence{}, 0)
	if err := n.f.catchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	leadUntil(t, n, 1, "heads at 20", func() bool { o, h := tables.heads(); return o == 20 && h == 20 })
	tables.check(t, 20)
	if len(recon.calls) != 0 || n.regenRows.Load() != 0 {
		t.Errorf("a leader that applied the whole log regenerated: %v", recon.calls)
	}
	if r, i := n.f.pend.size(); r != 0 || i != 0 {
		t.Errorf("pending after the write: %d rows, %d items", r, i)
	}
}

// TestLeaderWritesShareTheRoundLimit checks that the outbox and history
// writes of one round end at one deadline: a stop while the database hangs
// waits for the round's limit once, not for each write's in turn (two 30 s
// writes in a row outlasted systemd's 45 s TimeoutStopSec).
func TestLeaderWritesShareTheRoundLimit(t *testing.T) {
	tables := &fakeTables{}
	n, _ := writesNode(t, 20, 0, tables, &fakeFence{}, 0)
	n.writeLimit = time.Hour
	if err := n.f.catchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	leadUntil(t, n, 1, "heads at 20", func() bool { o, h := tables.heads(); return o == 20 && h == 20 })
	tables.mu.Lock()
	defer tables.mu.Unlock()
	if len(tables.deadlines) < 2 || tables.deadlines[0][:7] != "outbox " || tables.deadlines[1][:8] != "history " {
		t.Fatalf("writes %q; want an outbox write, then a history write", tables.deadlines)
	}
	out, hist := strings.TrimPrefix(tables.deadlines[0], "outbox "), strings.TrimPrefix(tables.deadlines[1], "history ")
	if out != hist {
		t.Errorf("one round's outbox write ends at %s, its history write at %s; want one deadline", out, hist)
	}
	if d, err := time.Parse(time.RFC3339Nano, out); err != nil || d.Before(start.Add(time.Hour)) || d.After(time.Now().Add(time.Hour)) {
		t.Errorf("round deadline %s (%v); want the write limit (1h) after the round started", out, err)
	}
}

func TestStandbyPrunesAndTakesOverWithoutGapOrDuplicate(t *testing.T) {
	tables := &fakeTables{}
	tables.prefill(12, 9) // the old leader wrote this much
	n, recon := writesNode(t, 20, 0, tables, &fakeFence{}, 0)
	ctx := context.Background()
	if err := n.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	n.prunePending(ctx)
	ob, outFrom, hb, histFrom := n.f.pend.take()
	if outFrom != 12 || histFrom != 9 || ob.Rows[0].Seq != 14 || hb.Items[0].Seq != 10 {
		t.Fatalf("pruned pending: outbox from %d (first row %d), history from %d (first item %d)", outFrom, ob.Rows[0].Seq, histFrom, hb.Items[0].Seq)
	}
	leadUntil(t, n, 2, "heads at 20", func() bool { o, h := tables.heads(); return o == 20 && h == 20 })
	tables.check(t, 20)
	if len(recon.calls) != 0 {
		t.Errorf("a warm standby regenerated: %v", recon.calls)
	}
}

func TestColdStartLeaderRegeneratesTheGap(t *testing.T) {
	tables := &fakeTables{}
	tables.prefill(3, 6) // the old leader wrote this much and died
	// This node started from a snapshot at seq 14 > both heads, then
	// followed the log to 20: it has no pending rows for 1..14.
	n, recon := writesNode(t, 20, 14, tables, &fakeFence{}, 0)
	if err := n.f.catchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	leadUntil(t, n, 3, "heads at 20", func() bool { o, h := tables.heads(); return o == 20 && h == 20 })
	tables.check(t, 20)
	want := []string{"reconstruct seq 3", "advance to seq 14"}
	if diff := cmp.Diff(recon.calls, want); diff != "" {
		t.Errorf("regeneration (-got +want):\n%s", diff)
	}
	// Rows of seqs 4..14: even seqs 4..14 for "a", and 4, 8, 12 for "b".
	if got := n.regenRows.Load(); got != 9 {
		t.Errorf("regenerated %d rows, want 9", got)
	}
	if tables.outWrites != 1 {
		t.Errorf("the gap and the pending rows took %d outbox writes, want one transaction", tables.outWrites)
	}
}

// TestRegenerationLongerThanTheWriteLimit: the round's write limit starts
// at its first write, so a gap regeneration that takes longer than the
// limit does not leave the writes an expired deadline (they would fail,
// and the next round regenerate and fail again, for as long as the node
// leads).
func TestRegenerationLongerThanTheWriteLimit(t *testing.T) {
	tables := &fakeTables{}
	tables.prefill(3, 6)
	n, recon := writesNode(t, 20, 14, tables, &fakeFence{}, 0)
	n.writeLimit, recon.delay = 50*time.Millisecond, 100*time.Millisecond
	if err := n.f.catchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	leadUntil(t, n, 3, "heads at 20", func() bool { o, h := tables.heads(); return o == 20 && h == 20 })
	tables.check(t, 20)
}

func TestDroppedPendingIsRegenerated(t *testing.T) {
	tables := &fakeTables{}
	// A standby whose leader wrote nothing for long: its pending is
	// bounded (4 entries), so it dropped all but the latest.
	n, recon := writesNode(t, 30, 0, tables, &fakeFence{}, 4)
	if err := n.f.catchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	_, outFrom, _, _ := n.f.pend.take()
	if outFrom == 0 {
		t.Fatal("pending was not bounded")
	}
	leadUntil(t, n, 1, "heads at 30", func() bool { o, h := tables.heads(); return o == 30 && h == 30 })
	tables.check(t, 30)
	if len(recon.calls) == 0 || recon.calls[0] != "reconstruct seq 0" {
		t.Errorf("regeneration calls %v", recon.calls)
	}
}

func TestDeposedLeaderStopsWriting(t *testing.T) {
	tables := &fakeTables{}
	fence := &fakeFence{}
	n, _ := writesNode(t, 10, 0, tables, fence, 0)
	ctx := context.Background()
	if err := n.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); n.lead(lctx, 4) }()
	waitFor(t, "the first writes", func() bool { o, h := tables.heads(); return o == 10 && h == 10 })

	// A new leader at term 5 writes; the old one (term 4) applies more
	// and its next write is refused by the fence.
	tables.mu.Lock()
	tables.outFence, tables.histFence = 5, 5
	tables.mu.Unlock()
	n.f.log.(*fakeLog).mu.Lock()
	n.f.log.(*fakeLog).head = 14
	n.f.log.(*fakeLog).mu.Unlock()
	if err := n.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fenced write", func() bool { return n.fenced.Load() == 1 })
	cancel()
	<-done
	if o, h := tables.heads(); o != 10 || h != 10 {
		t.Errorf("a deposed leader wrote: heads %d, %d", o, h)
	}
	if st := n.Status(ctx); st.FencedWrites != 1 {
		t.Errorf("status fenced_writes = %d", st.FencedWrites)
	}
	// Its pending stays: should it lead again, it has what it needs.
	if _, outFrom, _, _ := n.f.pend.take(); outFrom != 10 {
		t.Errorf("pending outbox from %d after the fenced write, want 10", outFrom)
	}
}

func TestLeaderRetriesAFailedWrite(t *testing.T) {
	tables := &fakeTables{fail: fmt.Errorf("connection reset")}
	n, _ := writesNode(t, 8, 0, tables, &fakeFence{}, 0)
	if err := n.f.catchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.lead(ctx, 1) }()
	waitFor(t, "a failed write", func() bool { n.errMu.Lock(); defer n.errMu.Unlock(); return n.leaderErr != "" })
	tables.mu.Lock()
	tables.fail = nil
	tables.mu.Unlock()
	waitFor(t, "heads at 8", func() bool { o, h := tables.heads(); return o == 8 && h == 8 })
	// Once the writes go through again, the status no longer shows the
	// failure.
	waitFor(t, "the status error cleared", func() bool { return n.Status(ctx).Error == "" })
	cancel()
	<-done
	tables.check(t, 8)
}

// TestLeaderWriteErrorOutlivesAFollowRecovery: the status keeps showing a
// leader write that still fails when the follow loop recovers from a
// failure of its own: each clears only its own error.
func TestLeaderWriteErrorOutlivesAFollowRecovery(t *testing.T) {
	tables := &fakeTables{fail: fmt.Errorf("connection reset")}
	n, _ := writesNode(t, 8, 0, tables, &fakeFence{}, 0)
	if err := n.f.catchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	n.elect = &fakeElector{leader: "t"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.lead(ctx, 1) }()
	waitFor(t, "a failed write", func() bool { return strings.Contains(n.Status(ctx).Error, "connection reset") })
	// The follow loop fails once and recovers (as follow does).
	n.setErr(errors.New("poll log head: i/o timeout"))
	n.setErr(nil)
	if st := n.Status(ctx); !strings.Contains(st.Error, "connection reset") {
		t.Errorf("status error %q while the leader's writes still fail", st.Error)
	}
	cancel()
	<-done
}

func TestPendingPrune(t *testing.T) {
	p := newPending(0)
	p.reset(5, loadBase{})
	m := &seqMachine{seq: 5}
	for s := int64(6); s <= 12; s++ {
		out, err := fakeProduce(m, rec(s))
		if err != nil {
			t.Fatal(err)
		}
		p.add(s, out)
	}
	p.pruneOutbox(3) // an old head: nothing to drop, from stays
	p.pruneHistory(9)
	ob, outFrom, hb, histFrom := p.take()
	if outFrom != 5 || len(ob.Rows) != 6 || histFrom != 9 || hb.Items[0].Seq != 10 {
		t.Fatalf("outbox from %d with %d rows; history from %d, first item %+v", outFrom, len(ob.Rows), histFrom, hb.Items[0])
	}
	p.pruneOutbox(40) // the leader is ahead of this node: from stops at the applied seq
	if _, outFrom, _, _ := p.take(); outFrom != 12 {
		t.Fatalf("outbox from %d past the applied seq 12", outFrom)
	}
}

// The loadBase pending keeps is the one at its marks: set by a load,
// given only for the table whose mark is still there, and let go once a
// prune moves the mark or a drop past the bound does.
func TestPendingBase(t *testing.T) {
	m := &seqMachine{seq: 5}
	p := newPending(4)
	p.reset(5, baseOf(m, 5, rec(5).RecordedAt))
	if b := p.baseAt(historyTable, 5); b.State == nil || b.State.Seq != 5 || b.Resync != nil {
		t.Fatalf("history base at 5 after the load: %+v", b)
	}
	if b := p.baseAt(outboxTable, 5); b.Resync == nil || b.Resync.Seq != 5 || b.State != nil {
		t.Fatalf("outbox base at 5 after the load: %+v", b)
	}
	if b := p.baseAt(historyTable, 4); b.State != nil {
		t.Fatalf("a base at 5 given for a mark at 4: %+v", b)
	}
	p.pruneHistory(7) // past the applied seq: the mark stops at 5
	if b := p.baseAt(historyTable, 5); b.State == nil {
		t.Fatal("a prune that left the history mark at 5 dropped its base")
	}
	out, err := fakeProduce(m, rec(6))
	if err != nil {
		t.Fatal(err)
	}
	p.add(6, out)
	p.pruneHistory(6)
	if b := p.baseAt(historyTable, 5); b.State != nil {
		t.Fatalf("the history base at 5 given after its mark moved to 6: %+v", b)
	}
	if b := p.baseAt(outboxTable, 5); b.Resync == nil {
		t.Fatal("the outbox base at 5 dropped by a prune of the history")
	}
	p.pruneOutbox(6)
	if b := p.baseAt(outboxTable, 5); b.Resync != nil {
		t.Fatalf("the outbox base at 5 given after its mark moved to 6: %+v", b)
	}
	// A new load sets it again.
	p.reset(6, baseOf(m, 6, rec(6).RecordedAt))
	// Seqs 7..10 give 3 rows and 4 items, past the bound of 4 at 10: the
	// rows and items are dropped and the marks go to 10, without a base.
	for s := int64(7); s <= 10; s++ {
		out, err := fakeProduce(m, rec(s))
		if err != nil {
			t.Fatal(err)
		}
		p.add(s, out)
	}
	if _, outFrom, _, histFrom := p.take(); outFrom != 10 || histFrom != 10 {
		t.Fatalf("marks at %d and %d, want 10", outFrom, histFrom)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.base.State != nil || p.base.Resync != nil {
		t.Fatalf("the load's base at 6 kept after the drop at 10: %+v", p.base)
	}
}

// pastRetention runs, until both heads reach 20, a leader loaded at seq
// 14 of a log that ends at 20 and holds seqs 10 on, over tables a former
// leader wrote through outHead and histHead; snapshots are the seqs of the
// snapshots (none: any seq can be a base), failEarliest fails that many
// salvages as the database would.
func pastRetention(t *testing.T, tables *fakeTables, outHead, histHead int64, snapshots []int64, failEarliest int) *node {
	t.Helper()
	tables.prefill(outHead, histHead)
	n, recon := writesNode(t, 20, 14, tables, &fakeFence{}, 0)
	recon.retained, recon.snapshots, recon.failEarliest = 10, snapshots, failEarliest
	if err := n.f.catchUp(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	leadUntil(t, n, 1, "heads at 20", func() bool { o, h := tables.heads(); return o == 20 && h == 20 })
	return n
}

// kept returns the xs whose seq keep keeps.
func kept[T any](xs []T, seq func(T) int64, keep func(int64) bool) []T {
	var out []T
	for _, x := range xs {
		if keep(seq(x)) {
			out = append(out, x)
		}
	}
	return out
}

func rowSeq(r outbox.Row) int64          { return r.Seq }
func itemSeq(it history.Item) int64      { return it.Seq }
func subSeq(u subscription.Update) int64 { return u.Seq }
func unrecoverable(t *testing.T, n *node, want int64, why string) {
	t.Helper()
	if got := n.unrecoverable.Load(); got != want {
		t.Errorf("unrecoverable gaps = %d, want %d (%s)", got, want, why)
	}
}

// snapshotsAround are snapshots before, at the edge of, and inside the
// retained log (which holds seqs 10 on).
var snapshotsAround = []int64{4, 9, 11, 16}

// A gap whose events are past retention cannot be regenerated whole: the
// leader says so (metric) and writes what the log still gives instead of
// blocking forever.
func TestGapPastRetentionIsLoudNotBlocking(t *testing.T) {
	tables := &fakeTables{}
	n := pastRetention(t, tables, 2, 2, nil, 0)
	unrecoverable(t, n, 2, "the outbox's and the history's")
	// Lost: what seqs 3..9 gave; the log still holds 10 on, so the rest
	// of the gap is rebuilt.
	rows, _, _ := expected(20)
	want := kept(rows, rowSeq, func(s int64) bool { return s <= 2 || s > 9 })
	if diff := cmp.Diff(tables.rows, want); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
	reconciledAt(t, tables, 9)
}

// reconciledAt checks that the history was reconciled once, with what was
// active at the salvage base, before the items after it.
func reconciledAt(t *testing.T, tables *fakeTables, base int64) {
	t.Helper()
	tables.mu.Lock()
	defer tables.mu.Unlock()
	want := []history.State{(&seqMachine{seq: base}).HistoryState(base, rec(base).RecordedAt)}
	if diff := cmp.Diff(tables.reconciles, want); diff != "" {
		t.Errorf("history reconciled with (-got +want):\n%s", diff)
	}
}

// A gap whose start is past retention, with snapshots inside the retained
// log: what follows the oldest snapshot the retained log follows is
// rebuilt, and the subscriptions in force at the gap's end are written
// whole, since the changes to them in the lost part cannot be.
func TestGapPastRetentionSalvagesWhatRemains(t *testing.T) {
	tables := &fakeTables{}
	n := pastRetention(t, tables, 2, 2, snapshotsAround, 0)
	unrecoverable(t, n, 2, "the outbox's and the history's")
	// What was active at 9, the base, stands for the items of 3..9.
	reconciledAt(t, tables, 9)
	// Lost: what seqs 3..9 gave. Rebuilt: 10..14, after the snapshot at
	// 9 (the log holds 10 on). Then the node's own, 15..20. 3..14 stand
	// in the resync.
	salvaged(t, tables, func(seq int64) bool { return seq <= 2 || seq > 9 }, 14)
}

// salvaged checks the rows and history items written, those of the seqs
// keep keeps, and that the subscription changes through resyncAt stand in
// one resync of what was in force there (fakeProduce's s5 and s10).
func salvaged(t *testing.T, tables *fakeTables, keep func(int64) bool, resyncAt int64) {
	t.Helper()
	allRows, allSubs, allItems := expected(20)
	tables.mu.Lock()
	defer tables.mu.Unlock()
	if diff := cmp.Diff(tables.rows, kept(allRows, rowSeq, keep)); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(tables.items, kept(allItems, itemSeq, keep)); diff != "" {
		t.Errorf("history items (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(tables.subs, kept(allSubs, subSeq, func(s int64) bool { return s <= 2 || s > resyncAt })); diff != "" {
		t.Errorf("subscription changes (-got +want):\n%s", diff)
	}
	want := []outbox.Resync{{Seq: resyncAt, Subscriptions: []subscription.Entry{{ID: "s5", Seq: 5}, {ID: "s10", Seq: 10}}}}
	if diff := cmp.Diff(tables.resyncs, want); diff != "" {
		t.Errorf("resyncs (-got +want):\n%s", diff)
	}
}

// An old history head past retention does not make the outbox, whose own
// gap the log still covers, lose rows or rewrite its subscriptions.
func TestGapsAreFilledApart(t *testing.T) {
	tables := &fakeTables{}
	n := pastRetention(t, tables, 12, 2, snapshotsAround, 0)
	unrecoverable(t, n, 1, "the history's")
	reconciledAt(t, tables, 9)
	allRows, allSubs, allItems := expected(20)
	tables.mu.Lock()
	defer tables.mu.Unlock()
	if diff := cmp.Diff(tables.rows, allRows); diff != "" {
		t.Errorf("outbox rows (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(tables.subs, allSubs); diff != "" {
		t.Errorf("subscription changes (-got +want):\n%s", diff)
	}
	if len(tables.resyncs) != 0 {
		t.Errorf("resyncs %+v; want none (the outbox gap was whole)", tables.resyncs)
	}
	if diff := cmp.Diff(tables.items, kept(allItems, itemSeq, func(s int64) bool { return s <= 2 || s > 9 })); diff != "" {
		t.Errorf("history items (-got +want):\n%s", diff)
	}
}

// A gap past retention with no usable snapshot in the retained log (the
// only one is older): what the node's machine showed when it loaded, at
// 14, stands for the lost records: the history is reconciled with it and
// the subscriptions in force then are written whole, instead of the head
// jumping over the gap with stale rows left open.
func TestGapPastRetentionWithoutSnapshotUsesTheLoadedState(t *testing.T) {
	tables := &fakeTables{}
	n := pastRetention(t, tables, 2, 2, []int64{4}, 0)
	unrecoverable(t, n, 2, "the outbox's and the history's")
	reconciledAt(t, tables, 14)
	salvaged(t, tables, func(seq int64) bool { return seq <= 2 || seq > 14 }, 14)
}

// A salvage that fails for another reason than retention (the database)
// is retried, not taken as a loss: the rows the log still gives are
// written.
func TestSalvageFailureIsRetried(t *testing.T) {
	tables := &fakeTables{}
	pastRetention(t, tables, 2, 2, snapshotsAround, 1)
	allRows, _, _ := expected(20)
	tables.mu.Lock()
	defer tables.mu.Unlock()
	if diff := cmp.Diff(tables.rows, kept(allRows, rowSeq, func(s int64) bool { return s <= 2 || s > 9 })); diff != "" {
		t.Errorf("rows (-got +want):\n%s", diff)
	}
}

// The loss is counted for the table whose write succeeded, even when the
// other table's write fails and is retried without a gap.
func TestLossCountedPerTable(t *testing.T) {
	tables := &fakeTables{histFailOnce: errors.New("connection reset")}
	n := pastRetention(t, tables, 2, 2, snapshotsAround, 0)
	unrecoverable(t, n, 2, "the outbox's, counted before the history write failed, and the history's")
	if got, want := n.regenItems.Load(), int64(len(tables.items)-2); got > want {
		t.Errorf("regenerated items counted %d; more than the %d written", got, want)
	}
}
