package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/prometheus/client_golang/prometheus"
)

// Machine is the deterministic state machine every node keeps
// (evaluator.Engine; snapshot.Machine has the same methods).
type Machine interface {
	Apply(event.Record) error
	Dump(io.Writer) error
}

// changeCounter is a Machine that counts the graph changes it applied
// (evaluator.Engine, snapshot.Node): the work the snapshot policy's
// every_changes trigger measures.
type changeCounter interface {
	ChangesApplied() int64
}

// EventLog is the event log in MariaDB (internal/store.Log).
type EventLog interface {
	// ReadRange returns up to limit records with seq > afterSeq, in order.
	ReadRange(ctx context.Context, afterSeq int64, limit int) ([]event.Record, error)
	// Head returns the last seq of the log (0 if empty).
	Head(ctx context.Context) (int64, time.Time, error)
}

// applySlice is the most records applied under one hold of the write lock.
const applySlice = 256

// monoStart anchors the follower's monotonic timestamps: the wall clock
// may step (NTP at boot, a resumed VM), time.Since on it does not.
var monoStart = time.Now()

// headAge is how long ago the head was last learned; false if not since
// the last load.
func (f *follower) headAge() (time.Duration, bool) {
	seen := f.headSeen.Load()
	if seen == 0 {
		return 0, false
	}
	return time.Since(monoStart) - time.Duration(seen), true
}

// turn marks the follow loop going round.
func (f *follower) turn() { f.turned.Store(int64(time.Since(monoStart)) | 1) }

// stuck reports whether the follow loop has not gone round for longer
// than limit. A node loading its state (a reconstruction may take
// minutes) is not stuck.
func (f *follower) stuck(limit time.Duration) bool {
	t := f.turned.Load()
	return t != 0 && time.Since(monoStart)-time.Duration(t) > limit
}

// errLogGap means the database returned records that do not continue the
// applied seq: the log is broken or truncated under us.
var errLogGap = errors.New("event log does not continue the applied seq")

// errPastRetention (an errLogGap) means the log now starts after the
// applied seq: retention dropped records this node has not applied (it was
// cut off from the database for longer than the retention). Only a reload
// from a snapshot can go on.
var errPastRetention = fmt.Errorf("%w: the records after it are past retention", errLogGap)

// follower applies the log, in seq order and exactly once, to the node's
// machine. Only its owner goroutine calls apply/handle/catchUp; readers
// (the API, snapshots) take mu for reading.
type follower struct {
	log      EventLog
	pageSize int
	logger   *slog.Logger

	mu        sync.RWMutex // guards m, applied, appliedAt
	m         Machine
	applied   int64
	appliedAt time.Time

	// produce, when set, applies a record and derives its Output into
	// pend; otherwise records are applied with Machine.Apply.
	produce Producer
	pend    *pending

	loaded     atomic.Bool
	appliedSeq atomic.Int64 // mirror of applied for lock-free status
	changes    atomic.Int64 // the machine's ChangesApplied, mirrored likewise
	head       atomic.Int64
	// headSeen is when the head was last learned (a poll or a batch), as
	// the monotonic time since monoStart (0: not since the last load):
	// readiness trusts only a recent one.
	headSeen atomic.Int64
	// turned is when the follow loop last went round (or a catch-up read
	// a page), likewise (0: not since the last load began): the
	// watchdog's sign that the node is not stuck.
	turned atomic.Int64

	outOfOrder, dupSkipped, gapsRepaired, applyErrors atomic.Int64

	mApplied, mHead                          prometheus.Gauge
	mOutOfOrder, mDup, mGaps, mApplyErr, mRe prometheus.Counter
	mChanges                                 prometheus.GaugeFunc
}

func newFollower(log EventLog, pageSize int, logger *slog.Logger) *follower {
	f := &follower{
		log: log, pageSize: pageSize, logger: logger,
		mApplied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_processor_applied_seq", Help: "Last seq applied to this node's graph.",
		}),
		mHead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_processor_log_head_seq", Help: "Last seq of the event log seen in the database.",
		}),
		mOutOfOrder: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_processor_out_of_order_applications_total",
			Help: "Records refused because their seq was not applied_seq+1 (must stay 0).",
		}),
		mDup: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_processor_duplicate_records_skipped_total", Help: "Records received again and skipped.",
		}),
		mGaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_processor_gap_repairs_total", Help: "Gaps, reconnects and restarts repaired from the database.",
		}),
		mApplyErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_processor_apply_refused_total", Help: "Records the state machine refused (a no-op on every node).",
		}),
		mRe: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_processor_records_applied_total", Help: "Records applied to this node's graph.",
		}),
	}
	f.mChanges = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "causeway_processor_graph_changes_applied",
		Help: "Graph changes (the records' own and the evaluator's) applied since the graph was loaded: the work the snapshot policy's every_changes counts; starts again at 0 when a snapshot is loaded.",
	}, func() float64 { return float64(f.changes.Load()) })
	return f
}

func (f *follower) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.mApplied, f.mHead, f.mOutOfOrder, f.mDup, f.mGaps, f.mApplyErr, f.mRe, f.mChanges}
}

// machineChanges is m's change counter, 0 if it keeps none.
func machineChanges(m Machine) int64 {
	if c, ok := m.(changeCounter); ok {
		return c.ChangesApplied()
	}
	return 0
}

// load installs the machine reconstructed at seq, recorded at at (a cold
// start).
func (f *follower) load(m Machine, seq int64, at time.Time) {
	var base loadBase
	if f.pend != nil {
		base = baseOf(m, seq, at) // m is not shared yet: read it outside the lock
	}
	f.mu.Lock()
	f.m, f.applied, f.appliedAt = m, seq, at
	if f.pend != nil {
		f.pend.reset(seq, base)
	}
	changes := machineChanges(m)
	f.mu.Unlock()
	f.appliedSeq.Store(seq)
	f.changes.Store(changes)
	f.mApplied.Set(float64(seq))
	f.headSeen.Store(0) // the head is learned again after a load
	f.loaded.Store(true)
}

// apply applies one record; mu is held. The seq check is the last guard of
// "no seq skipped or applied twice": a record that does not continue the
// applied seq is refused and counted.
func (f *follower) apply(rec event.Record) error {
	if rec.Seq != f.applied+1 {
		f.outOfOrder.Add(1)
		f.mOutOfOrder.Inc()
		return fmt.Errorf("apply seq %d after %d: %w", rec.Seq, f.applied, errLogGap)
	}
	var err error
	if f.produce != nil && f.pend != nil {
		var out Output
		out, err = f.produce(f.m, rec)
		f.pend.add(rec.Seq, out)
	} else {
		err = f.m.Apply(rec)
	}
	if err != nil {
		// A refusal is deterministic (same on every node and in replay):
		// the record is consumed, the state is what Apply left.
		f.applyErrors.Add(1)
		f.mApplyErr.Inc()
		f.logger.Warn("record refused by the state machine", "seq", rec.Seq, "event_id", rec.Event.EventID, "kind", rec.Event.Kind, "err", err)
	}
	f.applied, f.appliedAt = rec.Seq, rec.RecordedAt
	f.mRe.Inc()
	return nil
}

// applyRecords applies the records that continue the applied seq, skips
// the ones already applied, and reports a gap (true) at the first record
// beyond applied+1.
func (f *follower) applyRecords(recs []event.Record) (gap bool, err error) {
	if len(recs) == 0 {
		return false, nil
	}
	f.mu.Lock()
	defer func() {
		seq, changes := f.applied, machineChanges(f.m)
		f.mu.Unlock()
		f.appliedSeq.Store(seq)
		f.changes.Store(changes)
		f.mApplied.Set(float64(seq))
	}()
	for _, r := range recs {
		switch {
		case r.Seq <= f.applied:
			f.dupSkipped.Add(1)
			f.mDup.Inc()
			continue
		case r.Seq > f.applied+1:
			return true, nil
		}
		if err := f.apply(r); err != nil {
			return false, err
		}
	}
	return false, nil
}

// handleBatch applies a sequenced batch: a duplicate is skipped, a batch
// that does not start at applied+1 is a gap repaired from the database
// (the persister publishes a batch after its commit, so the database holds
// it), and the batch's new records are applied.
func (f *follower) handleBatch(ctx context.Context, b event.Batch) error {
	f.setHead(b.LastSeq())
	applied := f.appliedSeq.Load()
	if b.LastSeq() <= applied {
		f.dupSkipped.Add(int64(len(b.Records)))
		f.mDup.Add(float64(len(b.Records)))
		return nil
	}
	if b.PrevSeq > applied {
		f.gapsRepaired.Add(1)
		f.mGaps.Inc()
		f.logger.Debug("gap in sequenced stream", "applied_seq", applied, "prev_seq", b.PrevSeq)
		if err := f.catchUp(ctx, b.PrevSeq); err != nil {
			return err
		}
	}
	gap, err := f.applyRecords(b.Records)
	if err != nil {
		return err
	}
	if gap {
		// The batch itself skips seqs (cannot happen with a sound
		// persister): read them from the database.
		return f.catchUp(ctx, b.LastSeq())
	}
	return nil
}

// catchUp applies the log from the database up to through (or to its end
// if through <= 0).
func (f *follower) catchUp(ctx context.Context, through int64) error {
	for {
		applied := f.appliedSeq.Load()
		if through > 0 && applied >= through {
			return nil
		}
		f.turn()
		recs, err := f.log.ReadRange(ctx, applied, f.pageSize)
		if err != nil {
			return fmt.Errorf("read log after seq %d: %w", applied, err)
		}
		if len(recs) == 0 {
			if through > 0 {
				return fmt.Errorf("log ends at seq %d, before %d: %w", applied, through, errLogGap)
			}
			return nil
		}
		if recs[0].Seq != applied+1 {
			// The first record the log holds after the applied seq is
			// later than the next one: retention dropped those between.
			return fmt.Errorf("read log after seq %d: got seq %d: %w", applied, recs[0].Seq, errPastRetention)
		}
		if through > 0 && recs[len(recs)-1].Seq > through {
			n := 0
			for n < len(recs) && recs[n].Seq <= through {
				n++
			}
			recs = recs[:n]
		}
		// Apply in slices, so that readers (the API, a snapshot's capture)
		// wait at most one slice for the lock during a long catch-up.
		for len(recs) > 0 {
			n := min(len(recs), applySlice)
			gap, err := f.applyRecords(recs[:n])
			if err != nil {
				return err
			}
			if gap {
				return fmt.Errorf("read log after seq %d: got seq %d: %w", applied, recs[0].Seq, errLogGap)
			}
			recs = recs[n:]
		}
		f.setHead(f.appliedSeq.Load())
	}
}

// poll reads the log head and catches up to it: the safety net for a lost
// doorbell.
func (f *follower) poll(ctx context.Context) error {
	head, _, err := f.log.Head(ctx)
	if err != nil {
		return fmt.Errorf("poll log head: %w", err)
	}
	f.setHead(head)
	if head > f.appliedSeq.Load() {
		return f.catchUp(ctx, head)
	}
	return nil
}

// setHead raises the known log head (it never goes back).
func (f *follower) setHead(seq int64) {
	f.headSeen.Store(int64(time.Since(monoStart)) | 1)
	for {
		cur := f.head.Load()
		if seq <= cur {
			return
		}
		if f.head.CompareAndSwap(cur, seq) {
			f.mHead.Set(float64(seq))
			return
		}
	}
}
