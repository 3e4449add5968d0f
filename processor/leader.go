package processor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/snapshot"
)

// OutboxStore is the notifier outbox in the database (notifier/outbox).
type OutboxStore interface {
	Head(ctx context.Context) (int64, error)
	// Write stores b fenced at term; an error wraps store.ErrFenced when
	// a newer term holds the fence.
	Write(ctx context.Context, term int64, b outbox.Batch) (int, error)
}

// HistoryStore is the alarm history in the database (history).
type HistoryStore interface {
	Head(ctx context.Context) (int64, error)
	Write(ctx context.Context, term int64, b history.Batch) (history.Result, error)
	Prune(ctx context.Context, term int64, before time.Time) (history.Pruned, error)
}

type dbOutbox struct{ db *sql.DB }

func (o dbOutbox) Head(ctx context.Context) (int64, error) { return outbox.Head(ctx, o.db) }
func (o dbOutbox) Write(ctx context.Context, term int64, b outbox.Batch) (int, error) {
	return outbox.Write(ctx, o.db, term, b)
}

type dbHistory struct{ db *sql.DB }

func (h dbHistory) Head(ctx context.Context) (int64, error) {
	n, err := history.Head(ctx, h.db)
	return n, unavailable(err)
}
func (h dbHistory) Write(ctx context.Context, term int64, b history.Batch) (history.Result, error) {
	return history.Write(ctx, h.db, term, b)
}

// unavailable marks a database failure that may pass with
// api.ErrUnavailable, for the API to answer 503 with Retry-After.
func unavailable(err error) error {
	if store.Transient(err) {
		return fmt.Errorf("%w: %w", api.ErrUnavailable, err)
	}
	return err
}

// The api.HistoryReader side, for GET /v1/history/... .

func (h dbHistory) AlarmHistory(ctx context.Context, q history.Query) (history.Page, error) {
	p, err := history.List(ctx, h.db, q)
	return p, unavailable(err)
}

func (h dbHistory) AlarmStats(ctx context.Context, q history.StatsQuery) ([]history.Bucket, error) {
	bs, err := history.Stats(ctx, h.db, q)
	return bs, unavailable(err)
}

func (h dbHistory) AlarmLinks(ctx context.Context, q history.LinksQuery) (history.LinksPage, error) {
	p, err := history.Links(ctx, h.db, q)
	return p, unavailable(err)
}

func (h dbHistory) Coverage(ctx context.Context, from, to time.Time) (history.Coverage, error) {
	c, err := history.CoverageOf(ctx, h.db, from, to)
	return c, unavailable(err)
}

func (h dbHistory) Prune(ctx context.Context, term int64, before time.Time) (history.Pruned, error) {
	return history.Prune(ctx, h.db, term, before)
}

// lead runs the leader's duties while this node leads: claim the fence at
// its term, then, concurrently, write the outbox and history rows of what
// it applied (filling any gap first, see flush) and snapshots when the
// policy says so. It returns when ctx ends (leadership lost); after a
// write refused by the fence it writes nothing more until then, and hands
// leadership over (fencedLeader).
func (n *node) lead(ctx context.Context, term uint64) {
	log := n.log.With("term", term)
	n.leading.Store(true)
	defer n.leading.Store(false)
	defer n.setLeaderErr(nil) // the writes' error is the leadership's
	var claimed atomic.Bool
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		n.handOverWhileUnable(ctx, log, &claimed)
	}()
	defer func() { <-watched }() // every return below follows ctx's end
	for attempt := 0; ; attempt++ {
		err := n.parts.Fence.Claim(ctx, int64(term))
		if err == nil {
			claimed.Store(true)
			break
		}
		if errors.Is(err, store.ErrFenced) {
			n.fencedWrite(log, "claim", err)
			n.fencedLeader(ctx, log, term)
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("claim fence", "err", err)
		n.backoff(ctx, attempt)
	}
	log.Info("leader duties started")
	dctx, deposed := context.WithCancel(ctx)
	defer deposed()
	var wg sync.WaitGroup
	var fenced atomic.Bool
	if n.parts.Outbox != nil || n.parts.History != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n.writeLoop(dctx, log, term) {
				fenced.Store(true)
				deposed()
			}
		}()
	}
	if n.parts.Snapshots != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n.snapshotLoop(dctx, log, term) {
				fenced.Store(true)
				deposed()
			}
		}()
	}
	wg.Wait()
	if fenced.Load() && ctx.Err() == nil {
		// Raft still says leader, but the fence holds a newer term: as
		// after a refused claim, hand leadership over until raft's term
		// passes it, rather than lead on writing nothing.
		n.fencedLeader(ctx, log, term)
	}
	<-ctx.Done()
	log.Info("leader duties stopped")
}

// snapshotLoop writes snapshots when due. The shadow, if the node makes
// one, lives as long as the leadership. It reports whether the fence
// refused a write.
func (n *node) snapshotLoop(ctx context.Context, log *slog.Logger, term uint64) (fenced bool) {
	for attempt := 0; ; attempt++ {
		err := n.parts.Snapshots.Resume(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("resume snapshot policy", "err", err)
		n.backoff(ctx, attempt)
	}
	var shadow *snapshot.Shadow
	if n.parts.NewShadow != nil {
		shadow = n.parts.NewShadow()
	}
	tick := time.NewTicker(n.cfg.SnapshotCheck)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if !n.f.loaded.Load() || !n.parts.Snapshots.Due(n.f.appliedSeq.Load(), n.f.changes.Load()) {
			continue
		}
		fenced, failed := n.snapshot(ctx, log, term, shadow)
		if fenced {
			return true
		}
		if !failed {
			failures = 0
			continue
		}
		// A failed snapshot stays due: try again after a backoff, as
		// the other leader writes do, not at the next check. Each try
		// captures the whole state (a pause of the live machine, or a
		// shadow catch-up) and encodes it, and logs.
		n.backoff(ctx, failures)
		failures++
	}
}

// snapshot takes one snapshot: of the shadow when there is one (the live
// machine's lock is not taken), else of a capture of the live machine
// under its read lock. Bringing the shadow to the applied seq follows
// leadership (a node that stops leading, or stops, abandons it); the write
// itself runs detached from it (bounded by snapshot.WriteLimit): a write
// in flight when leadership is lost is not cut short but decided by the
// fence, which is what refuses a deposed leader. It reports whether the
// fence refused it, and whether it failed otherwise (to be tried again
// after a backoff).
func (n *node) snapshot(ctx context.Context, log *slog.Logger, term uint64, shadow *snapshot.Shadow) (fenced, failed bool) {
	var res snapshot.Result
	var err error
	if shadow != nil {
		res, err = n.parts.Snapshots.TakeFromLog(ctx, int64(term), shadow, n.f.appliedSeq.Load())
	} else {
		res, err = n.parts.Snapshots.Take(ctx, int64(term), func() (snapshot.Capture, error) {
			n.f.mu.RLock()
			defer n.f.mu.RUnlock()
			return n.parts.Capture(n.f.m, n.f.applied, n.f.appliedAt)
		})
	}
	switch {
	case err == nil:
		n.noteSnapshot(res.Meta, n.now())
		n.snapsWritten.Add(1)
		n.mSnaps.Inc()
		return false, false
	case errors.Is(err, store.ErrFenced):
		n.fencedWrite(log, "snapshot", err)
		return true, false
	case errors.Is(err, snapshot.ErrBusy):
		return false, false
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		log.Debug("snapshot abandoned: leadership ended while the shadow caught up", "err", err)
		return false, false
	case n.deposed(ctx, term):
		n.fencedWrite(log, "snapshot", err)
		return true, false
	default:
		log.Warn("write snapshot", "err", err)
		return false, true
	}
}

// deposed reports whether the fence holds a term above term: a write that
// failed for another reason — its connection killed by a newer leader's
// claim while this process was stopped — was refused by the fence all the
// same, and nothing more may be written.
//
// The read is bounded by deposedCheckLimit, not DefaultLeaderWriteLimit:
// it may follow a write that used up that limit, on a stop whose whole
// budget is systemd's TimeoutStopSec.
func (n *node) deposed(ctx context.Context, term uint64) bool {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deposedCheckLimit)
	defer cancel()
	stored, err := n.parts.Fence.Stored(rctx)
	return err == nil && stored > int64(term)
}

// fencedStepDownAfter is how long a leader whose claim the fence refused
// waits for raft to depose it before it hands leadership over itself.
var fencedStepDownAfter = 3 * time.Second

// fencedLeader idles a leader whose claim the fence refused until it stops
// leading: the fencing rows hold a newer term than its own. Either raft is
// about to depose it (another node led at that term), or raft's state was
// reset and terms started again below the stored one while the nodes
// could not read the rows as they started (election.Deps.TermFloor, which
// starts raft's term at them) — then no leader could ever write again. So
// after fencedStepDownAfter it hands leadership over, and again after each
// wait: every election raises the term, until one passes the stored term
// (a single voter's never does: restarting the processors once the
// database answers does it at once). Status reports it meanwhile.
func (n *node) fencedLeader(ctx context.Context, log *slog.Logger, term uint64) {
	stored, err := detached(ctx, time.Now().Add(n.roundLimit()), n.parts.Fence.Stored)
	if err != nil || stored <= int64(term) {
		stored = int64(term) + 1 // at least that, since the claim was refused
	}
	n.fencedClaim.Store(stored)
	defer n.fencedClaim.Store(0)
	log.Error("leader duties refused by the fence: it holds a newer term than this leader's; "+
		"leadership will be handed over until the raft term passes it (restarting the processors starts their raft terms at the stored one)",
		"stored_term", stored)
	t := time.NewTicker(fencedStepDownAfter)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := n.elect.StepDown(); err != nil {
			log.Warn("hand leadership over", "err", err)
		} else {
			log.Info("leadership handed over so that the term rises past the fence", "stored_term", stored)
		}
	}
}

// unableHandOverAfter is how long a leader may be unable to do its duties
// before it hands leadership over (handOverWhileUnable).
var unableHandOverAfter = 30 * time.Second

// handOverWhileUnable hands leadership over, until ctx ends, whenever this
// leader has been unable to do its duties for unableHandOverAfter: its
// fencing rows not claimed, its state not loaded, its reads of the log or
// its writes failing. Raft's voters are alike to it, so it elects a node still
// loading its graph as readily as a ready one, and it keeps a leader cut
// off from the database (its host's route, its grants) as long as raft
// reaches it: leading on, such a node would stall every notification and
// snapshot while ready standbys wait. It hands over when a processor's
// presence row says ready (the hand-over goes to it), or when it cannot
// read the rows (cut off itself: the others may not be; with the
// database down for all, leadership then moves on each period, which
// costs an election and nothing else, no one being able to write).
// Without a ready processor it stays: no other would do better.
func (n *node) handOverWhileUnable(ctx context.Context, log *slog.Logger, claimed *atomic.Bool) {
	if n.parts.Present == nil {
		return
	}
	t := time.NewTicker(max(unableHandOverAfter/10, time.Millisecond))
	defer t.Stop()
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		why := n.unable(claimed.Load())
		// A fenced leader hands over by itself, and so does one that
		// stops (Node.Run's hand-over, to a ready node too).
		if why == "" || n.fencedClaim.Load() != 0 || n.stopping.Load() {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(since) < unableHandOverAfter {
			continue
		}
		to, err := n.readySuccessor(ctx)
		if err == nil && to == "" {
			continue
		}
		log.Warn("leader duties cannot run: handing leadership over", "reason", why, "for", time.Since(since).Round(time.Millisecond),
			"to", to, "presence_err", err)
		if err := n.elect.StepDown(); err != nil {
			log.Warn("hand leadership over", "err", err)
		}
		since = time.Time{}
	}
}

// unable says why this leader cannot do its duties now ("": it can).
func (n *node) unable(claimed bool) string {
	switch {
	case !claimed:
		return "the fencing rows are not claimed"
	case !n.f.loaded.Load():
		return "the state is not loaded"
	}
	// A leader merely behind the log still does its duties, and a
	// standby would be as behind under the same load: lag is no reason.
	n.errMu.Lock()
	werr, ferr := n.leaderErr, n.lastErr
	n.errMu.Unlock()
	switch {
	case werr != "":
		return "leader writes fail: " + werr
	case ferr != "":
		return "reading the log fails: " + ferr
	}
	return ""
}

// readySuccessor is the processor a hand-over would go to, by the
// presence rows: "" when none is ready.
func (n *node) readySuccessor(ctx context.Context) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, deposedCheckLimit)
	defer cancel()
	ps, err := n.parts.Present(rctx)
	if err != nil {
		return "", err
	}
	return successor(ps, n.cfg.NodeID, nil), nil
}

// writeLoop flushes the pending outbox rows and history items every
// FlushInterval, and prunes the history at the retention boundary every
// HistoryPruneInterval. It reports whether the fence refused a write.
func (n *node) writeLoop(ctx context.Context, log *slog.Logger, term uint64) (fenced bool) {
	tick := time.NewTicker(n.cfg.FlushInterval)
	defer tick.Stop()
	var lastPrune time.Time
	w := &leaderWrites{outHead: -1, histHead: -1}
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if !n.f.loaded.Load() {
			continue
		}
		// One limit for the round's writes together, so that a stop
		// in the middle of a round waits at most the limit (and then
		// deposed's read) for a hanging database, within TimeoutStopSec.
		// It starts at the round's first write, after any regeneration
		// of a gap (which may take longer than the limit).
		w.until = time.Time{}
		err := n.flush(ctx, log, term, w)
		if err == nil && n.parts.History != nil && n.now().Sub(lastPrune) >= n.cfg.HistoryPruneInterval {
			var p history.Pruned
			p, err = detached(ctx, w.deadline(n.roundLimit()), func(wctx context.Context) (history.Pruned, error) {
				return n.parts.History.Prune(wctx, int64(term), n.cfg.History.Boundary(n.now()))
			})
			if err == nil {
				lastPrune = n.now()
				if p.Occurrences+p.Links+p.SeverityChanges+p.LostRanges > 0 {
					log.Info("history pruned", "occurrences", p.Occurrences, "links", p.Links, "severity_changes", p.SeverityChanges, "lost_ranges", p.LostRanges)
				}
			}
		}
		switch {
		case err == nil:
			if failures > 0 {
				n.setLeaderErr(nil)
			}
			failures = 0
		case errors.Is(err, store.ErrFenced):
			n.fencedWrite(log, "outbox/history", err)
			return true
		case n.deposed(ctx, term):
			n.fencedWrite(log, "outbox/history", err)
			return true
		case ctx.Err() != nil:
			return false
		default:
			// Pending is kept and written with the next flush: the
			// writes are idempotent. The heads are read again, since a
			// commit may have happened before the error.
			w.outHead, w.histHead = -1, -1
			n.setLeaderErr(err)
			log.Warn("leader write", "attempt", failures, "err", err)
			n.backoff(ctx, failures)
			failures++
		}
	}
}

// deposedCheckLimit bounds deposed's read of the fence.
const deposedCheckLimit = 5 * time.Second

// roundLimit is how long one round of leader writes may take.
func (n *node) roundLimit() time.Duration {
	if n.writeLimit > 0 {
		return n.writeLimit
	}
	return DefaultLeaderWriteLimit
}

// detached runs a write on a context detached from leadership (the fence
// decides a late write), ending at until.
func detached[T any](ctx context.Context, until time.Time, write func(context.Context) (T, error)) (T, error) {
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), until)
	defer cancel()
	return write(wctx)
}

// leaderWrites is what the write loop knows of the database between
// flushes: the heads it last saw or raised (-1: unknown, read them), and
// when the writes of the current round must end (zero: no write yet).
type leaderWrites struct {
	outHead, histHead int64
	until             time.Time
}

// deadline is the end of the current round's writes: limit after its
// first write began.
func (w *leaderWrites) deadline(limit time.Duration) time.Time {
	if w.until.IsZero() {
		w.until = time.Now().Add(limit)
	}
	return w.until
}

// flush writes what is pending. The pending outbox rows cover (outFrom,
// applied], the history items (histFrom, applied]; the stored heads say
// what is already written. When a head is below its from mark — a node
// started cold from a snapshot after what the old leader wrote, or one
// that dropped its pending — the rows of (head, from] are regenerated on a
// separate machine and written in the same transaction, before the
// pending ones: never a gap. Rows at or below a head are skipped by the
// write and carry log-derived keys: never a duplicate.
func (n *node) flush(ctx context.Context, log *slog.Logger, term uint64, w *leaderWrites) error {
	ob, outFrom, hb, histFrom := n.f.pend.take()
	if n.parts.Outbox != nil && w.outHead < 0 {
		h, err := n.parts.Outbox.Head(ctx)
		if err != nil {
			return err
		}
		w.outHead = h
	}
	if n.parts.History != nil && w.histHead < 0 {
		h, err := n.parts.History.Head(ctx)
		if err != nil {
			return err
		}
		w.histHead = h
	}
	outGap := n.parts.Outbox != nil && w.outHead < outFrom
	histGap := n.parts.History != nil && w.histHead < histFrom
	// What the gaps' filling gave, counted once each write succeeded (a
	// failed write is retried, and its gap met again).
	var regenRows, regenItems int
	var outLost, histLost bool
	if outGap || histGap {
		start := n.now()
		// One regeneration covers both gaps; should it meet retention,
		// each gap is filled on its own, so that one past retention does
		// not cost the other the rows the log can still give it.
		var out, hist gapFill
		if outGap && histGap {
			lo, hi := min(w.outHead, w.histHead), max(outFrom, histFrom)
			regen, err := n.regenerate(ctx, lo, hi)
			switch {
			case err == nil:
				out.regen, hist.regen = regen, regen
			case !errors.Is(err, snapshot.ErrGap) && !errors.Is(err, store.ErrTruncated):
				return fmt.Errorf("regenerate rows of seqs %d..%d: %w", lo+1, hi, err)
			}
		}
		if outGap && out.regen == nil {
			if out = n.fill(ctx, log, outboxTable, w.outHead, outFrom); out.err != nil {
				return out.err
			}
		}
		if histGap && hist.regen == nil {
			if hist = n.fill(ctx, log, historyTable, w.histHead, histFrom); hist.err != nil {
				return hist.err
			}
		}
		if outGap {
			rows := keepRows(out.regen.rows, w.outHead, outFrom)
			subs := keepSubs(out.regen.subs, w.outHead, outFrom)
			if out.resync != nil {
				// The whole set at outFrom stands for the changes up to it.
				subs, ob.Resync = nil, out.resync
			}
			ob.Rows = append(rows, ob.Rows...)
			ob.Subscriptions = append(subs, ob.Subscriptions...)
			regenRows, outLost = len(rows), out.lost
		}
		if histGap {
			b := history.Batch{Items: hist.regen.items}
			b.Prune(w.histHead)
			var items []history.Item
			for _, it := range b.Items {
				if it.Seq <= histFrom {
					items = append(items, it)
				}
			}
			hb.Items = append(items, hb.Items...)
			// The state at the salvage base stands for the items of the
			// lost records: the history is made to agree with it first.
			hb.Reconcile = hist.reconcile
			regenItems, histLost = len(items), hist.lost
		}
		log.Info("leader filled the gap before its pending rows", "outbox_head", w.outHead, "outbox_from", outFrom,
			"history_head", w.histHead, "history_from", histFrom, "duration", n.now().Sub(start))
	}
	if n.parts.Outbox != nil && ob.Seq > w.outHead {
		k, err := detached(ctx, w.deadline(n.roundLimit()), func(wctx context.Context) (int, error) { return n.parts.Outbox.Write(wctx, int64(term), ob) })
		if err != nil {
			return err
		}
		w.outHead = ob.Seq
		n.f.pend.pruneOutbox(ob.Seq)
		n.outboxRows.Add(int64(k))
		n.mOutboxRows.Add(float64(k))
		n.regenRows.Add(int64(regenRows))
		n.mRegen.Add(float64(regenRows))
		if outLost {
			n.unrecoverable.Add(1)
		}
	}
	if n.parts.History != nil && hb.Seq > w.histHead {
		lostAfter := w.histHead
		r, err := detached(ctx, w.deadline(n.roundLimit()), func(wctx context.Context) (history.Result, error) {
			return n.parts.History.Write(wctx, int64(term), hb)
		})
		if err != nil {
			return err
		}
		w.histHead = hb.Seq
		n.f.pend.pruneHistory(hb.Seq)
		n.mHistItems.Add(float64(r.Written))
		n.regenItems.Add(int64(regenItems))
		if histLost {
			n.unrecoverable.Add(1)
		}
		switch rc := r.Reconciled; {
		case rc.Changed():
			log.Warn("history reconciled with the state at the salvage base: what began or ended in the lost records is "+
				"written at the base, marked approximate", "base", hb.Reconcile.Seq, "lost_after", lostAfter,
				"occurrences_closed", rc.Closed, "occurrences_opened", rc.Opened, "severities_set", rc.Severities,
				"links_ended", rc.LinksEnded, "links_started", rc.LinksStarted)
		case rc.Applied:
			log.Info("history already agreed with the state at the salvage base", "base", hb.Reconcile.Seq, "lost_after", lostAfter)
		}
	}
	return nil
}

// prunePending drops, on a standby, what the leader has written (by the
// stored heads), so that pending holds only what a failover would need.
func (n *node) prunePending(ctx context.Context) {
	if n.parts.Outbox != nil {
		if h, err := n.parts.Outbox.Head(ctx); err == nil {
			n.f.pend.pruneOutbox(h)
		} else {
			n.log.Debug("read outbox head", "err", err)
		}
	}
	if n.parts.History != nil {
		if h, err := n.parts.History.Head(ctx); err == nil {
			n.f.pend.pruneHistory(h)
		} else {
			n.log.Debug("read history head", "err", err)
		}
	}
}

func keepRows(rows []outbox.Row, after, through int64) []outbox.Row {
	var out []outbox.Row
	for _, r := range rows {
		if r.Seq > after && r.Seq <= through {
			out = append(out, r)
		}
	}
	return out
}

func keepSubs(subs []subscription.Update, after, through int64) []subscription.Update {
	var out []subscription.Update
	for _, s := range subs {
		if s.Seq > after && s.Seq <= through {
			out = append(out, s)
		}
	}
	return out
}

// subscriptionStater is a machine that holds the webhook subscriptions
// (snapshot.Node).
type subscriptionStater interface {
	SubscriptionState() []subscription.Entry
}

// historyStater is a machine that says what is active in it
// (history.ActiveAt); a *snapshot.Node's graph is read directly.
type historyStater interface {
	HistoryState(seq int64, recordedAt time.Time) history.State
}

// historyState returns the state of m, which has applied the log through
// seq (recorded at recordedAt), or false when m cannot say it.
func historyState(m Machine, seq int64, recordedAt time.Time) (history.State, bool) {
	switch m := m.(type) {
	case *snapshot.Node:
		return history.ActiveAt(seq, recordedAt, m.Engine.Graph()), true
	case historyStater:
		return m.HistoryState(seq, recordedAt), true
	}
	return history.State{}, false
}

// gapTable names the table a gap is in.
type gapTable string

const (
	outboxTable  gapTable = "outbox"
	historyTable gapTable = "history"
)

// gapFill is what fill found for one gap.
type gapFill struct {
	regen     *pending
	resync    *outbox.Resync // the subscriptions in force, whole (salvaged outbox gaps)
	reconcile *history.State // what was active at the salvage base, whole (salvaged history gaps)
	lost      bool           // some of the gap is past retention
	err       error          // a failure to retry
}

// fill regenerates the Output of the seqs (head, from] on a separate
// machine. When their first events are past retention (no leader wrote for
// longer than the retention), it says so loudly and salvages what the log
// still has (salvage), rather than block every notification for ever.
func (n *node) fill(ctx context.Context, log *slog.Logger, table gapTable, head, from int64) gapFill {
	what := string(table)
	regen, err := n.regenerate(ctx, head, from)
	switch {
	case err == nil:
		return gapFill{regen: regen}
	case !errors.Is(err, snapshot.ErrGap) && !errors.Is(err, store.ErrTruncated):
		return gapFill{err: fmt.Errorf("regenerate %s rows of seqs %d..%d: %w", what, head+1, from, err)}
	}
	f, base, err := n.salvage(ctx, table, head, from)
	f.lost = true
	switch {
	case ctx.Err() != nil || (err != nil && !errors.Is(err, snapshot.ErrGap) && !errors.Is(err, store.ErrTruncated)):
		// Not a verdict on the log (a database failure, the end of the
		// leadership): the gap is met again at the next flush.
		return gapFill{err: fmt.Errorf("salvage %s rows of seqs %d..%d: %w", what, head+1, from, errors.Join(err, ctx.Err()))}
	case err != nil:
		// No snapshot the retained log follows is usable either. What this
		// node's machine showed when it was loaded at from, if it was,
		// still stands for the records up to it.
		b := n.f.pend.baseAt(table, from)
		log.Error(what+" rows lost: their events are past retention, and no snapshot the log still follows is usable",
			"head", head, "from", from, "err", err,
			"subscriptions_rewritten", b.Resync != nil, "history_reconciled", b.State != nil)
		return gapFill{regen: newPending(1), lost: true, resync: b.Resync, reconcile: b.State}
	}
	log.Error(what+" rows lost: their events are past retention; those after the oldest snapshot the log still "+
		"follows are rebuilt", "head", head, "lost_through", base, "rebuilt_through", from,
		"subscriptions_rewritten", f.resync != nil, "history_reconciled", f.reconcile != nil)
	return f
}

// salvage is what a leader can still write of a gap of table after head
// whose start is past retention: the Output of the seqs after the oldest
// snapshot whose events the log still holds (the base), through through,
// and what stands for the changes up to it, which cannot all be rebuilt:
// for the outbox, the subscriptions in force after through, whole; for the
// history, what was active at the base, whole (when the base is after
// head). It returns the base: the Output up to it is lost.
func (n *node) salvage(ctx context.Context, table gapTable, head, through int64) (gapFill, int64, error) {
	if n.parts.Produce == nil || n.parts.Reconstructor == nil {
		return gapFill{}, 0, errors.New("no producer or reconstructor to regenerate with")
	}
	res, err := n.parts.Reconstructor.ReconstructEarliest(ctx, through)
	if err != nil {
		return gapFill{}, 0, err
	}
	base := res.Seq
	inner := res.Machine
	var f gapFill
	if table == historyTable && base > head {
		// Read before the machine moves on from the base.
		if s, ok := historyState(inner, base, res.RecordedAt); ok {
			f.reconcile = &s
		}
	}
	f.regen = newPending(math.MaxInt)
	f.regen.reset(base, loadBase{})
	res.Machine = &collector{m: inner, produce: n.parts.Produce, out: f.regen}
	if err := n.parts.Reconstructor.Advance(ctx, &res, snapshot.AtSeq(through)); err != nil {
		// Retention moving on meanwhile is no verdict either (%v: not
		// ErrGap): the next try starts from a later snapshot.
		return gapFill{}, 0, fmt.Errorf("advance from seq %d: %v", base, err)
	}
	if s, ok := inner.(subscriptionStater); ok && table == outboxTable {
		f.resync = &outbox.Resync{Seq: through, Subscriptions: s.SubscriptionState()}
	}
	return f, base, nil
}

// regenerate rebuilds, on a separate machine (newest snapshot at or
// before from, then the log), the Output of the seqs (from, through].
func (n *node) regenerate(ctx context.Context, from, through int64) (*pending, error) {
	if n.parts.Produce == nil || n.parts.Reconstructor == nil {
		return nil, errors.New("no producer or reconstructor to regenerate with")
	}
	res, err := n.parts.Reconstructor.Reconstruct(ctx, snapshot.AtSeq(from))
	if err != nil {
		return nil, err
	}
	out := newPending(math.MaxInt)
	out.reset(from, loadBase{})
	res.Machine = &collector{m: res.Machine, produce: n.parts.Produce, out: out}
	if err := n.parts.Reconstructor.Advance(ctx, &res, snapshot.AtSeq(through)); err != nil {
		return nil, err
	}
	return out, nil
}
