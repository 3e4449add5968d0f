// Package processor is a Causeway processor node: it follows the one
// ordered log into its own state machine (a warm standby), takes part in
// the raft election, runs the leader's fenced duties while it leads, and
// serves the live HTTP API from its state.
//
// The state machine is a snapshot.Node: the evaluator engine and the
// webhook subscription registry, both pure functions of the log prefix.
// For every record every node runs ProduceNode — engine.ApplyResult, the
// registry, emit.Notices (which records who was told of which alarm: node
// state too), emit.Build and history.Detect, the call contracts of
// notifier/emit and history — and keeps the outbox rows and alarm-history
// items it derived as pending.
//
// Invariants kept here (DESIGN.md):
//
//   - 3: every node applies the log in seq order, each seq exactly once.
//     Sequenced batches from the bus are applied when they continue the
//     applied seq; a duplicate is skipped; a gap, a reconnect or a restart
//     is repaired from the events table; the log head is also polled, so a
//     lost doorbell cannot stall a node. A record whose seq is not
//     applied_seq+1 is never applied (and counted if ever offered).
//   - 4: only the leader writes snapshots, outbox rows and alarm history,
//     each with the raft term at which it became leader, checked against
//     the fencing row in the same transaction: a deposed leader's late
//     write fails with store.ErrFenced, is counted in
//     causeway_processor_fenced_writes_total, and the node writes nothing
//     more until it leads again. As soon as it wins, the leader claims
//     every fencing row its writes check (the snapshots', the history's
//     and the outbox's), evicting a deposed leader stopped mid-write on
//     any of them. The rows only move forward: a node starts its raft
//     term at the highest term they hold (election.Deps.TermFloor), so a
//     cluster whose raft state was wiped elects its first leader above
//     them instead of being refused by them. Standbys keep following, so a failover costs an election, not
//     a rebuild; and a leader that cannot do its duties (not claimed, not
//     loaded, its reads or writes failing) for a while hands leadership
//     to a ready processor: raft, whose voters are alike to it, elects a
//     node still loading, or keeps one cut off from the database, as
//     readily. Snapshots are taken from a shadow machine that follows
//     the log from the database (snapshot.Writer.TakeFromLog), so the live
//     machine's lock is never held for a capture.
//   - 5 (the leader's half): the outbox never misses a transition and never
//     holds one twice. The leader writes its pending rows after the stored
//     outbox and history heads; a standby prunes its pending below those
//     heads. A node whose pending starts after a head — it started cold
//     from a snapshot past what the old leader wrote, or dropped its
//     pending at max_pending — regenerates the missing seqs on a separate
//     machine (newest snapshot at or before the head, then the log) and
//     writes them in the same transaction as its pending rows. Rows carry
//     log-derived keys and the writes skip seqs at or below the heads.
//     When the start of such a gap is past retention it cannot be
//     regenerated: the leader says so (unrecoverable_gaps) and salvages
//     the seqs after the oldest snapshot the retained log follows (the
//     base), writing with them what stands for the lost ones: the
//     subscriptions in force, whole, for the outbox (outbox.Resync), and
//     for the history what was active at the base, which the history is
//     reconciled with (history.Batch.Reconcile): rows whose start or end
//     fell in the lost seqs are written at the base, marked approximate.
package processor

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/liveness"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/election"
	"github.com/causeway/causeway/snapshot"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are the processor's collaborators.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Gatherer serves /metrics (usually the registry behind Registerer).
	Gatherer prometheus.Gatherer
	Now      func() time.Time
}

// Processor is one processor node.
type Processor struct {
	cfg       Config
	deps      Deps
	log       *slog.Logger
	node      atomic.Pointer[node] // while Run runs
	bound     chan struct{}        // closed by Run once the ports are had (Bound)
	boundOnce sync.Once
}

// Bound is closed once Run has bound the API's port, checked that raft's
// is free and serves the API: what READY=1 tells systemd. Run fails
// before it, with an error naming the address, when a port is taken.
// Bound is closed once.
func (p *Processor) Bound() <-chan struct{} { return p.bound }

// StallLimit is how long the follow loop of a loaded node may go without
// turning before Alive says the node is stuck (at least; see Alive).
const StallLimit = time.Minute

// LoadStallLimit is how long a load of the state may go without progress
// before Alive says the node is stuck (at least; see Alive).
const LoadStallLimit = liveness.MinLimit

// Alive reports whether the node is not stuck: its follow loop went round
// within the stall limit, or it is loading its state and the load made
// progress within the load's. The loop turns every poll_interval, or
// after each backoff (up to retry_max) while failing, so its limit is the
// longest of StallLimit, ten poll intervals and two retry_max. A load,
// however long (a big snapshot, a long replay), progresses at each query
// the database answers, each snapshot chunk read and each page of events
// read or applied (snapshot.WithProgress), so its limit is the longest of
// LoadStallLimit and the loop's: one stalled past it hangs (a query on a
// frozen database, which no timeout ends). Backing off between failed
// loads (the database down) is no stall. systemd's watchdog restarts a
// node that is not alive.
func (p *Processor) Alive() bool {
	n := p.node.Load()
	if n == nil {
		return true
	}
	limit := max(StallLimit, 10*p.cfg.PollInterval, 2*p.cfg.RetryMax)
	loadLimit := max(LoadStallLimit, limit)
	if n.loadLimit > 0 {
		loadLimit = n.loadLimit
	}
	return !n.f.stuck(limit) && !n.loading.Stalled(loadLimit)
}

// New validates cfg and allocates. It opens and starts nothing.
func New(cfg Config, deps Deps) (*Processor, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("processor config: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		reg := prometheus.NewRegistry()
		deps.Registerer, deps.Gatherer = reg, reg
	}
	if deps.Gatherer == nil {
		deps.Gatherer = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Processor{cfg: cfg, deps: deps, bound: make(chan struct{}), log: deps.Logger.With("component", "processor", "node_id", cfg.NodeID)}, nil
}

// Run binds the API's port and checks that raft's is free (a port that
// cannot be had fails Run before Bound is closed), serves the API (its
// /readyz 503 until the state is loaded) and closes Bound; then it waits
// for the database (store.Await: a node started while it is down waits,
// warning at each failed attempt, rather than fail; a stop meanwhile
// returns nil at once), opens the broker, starts raft, loads the state
// (newest snapshot + replay), follows the log and serves the API until
// ctx ends. Then the API stops taking work (its probes and
// /metrics go on answering, /readyz says stopping), the node stops
// following, leaves leadership gracefully, shuts raft down and removes
// its presence; then the API's listener closes, the bus and the database
// are closed, and Run returns nil.
func (p *Processor) Run(ctx context.Context) error {
	db, err := store.OpenLazily(p.cfg.DatabaseDSN, store.WithLogger(p.log))
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	log := store.NewLog(db, p.deps.Now)
	factory := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer(), Encoding: p.cfg.Snapshot.NodeEncoding()}

	// bus labels its metrics with the component's role (subscriber,
	// publisher) itself.
	busDeps := bus.Deps{Logger: p.deps.Logger, Registerer: p.deps.Registerer, Now: p.deps.Now}
	sub, err := bus.NewSubscriber(bus.SubscriberConfig{Conn: p.cfg.busConn()}, busDeps)
	if err != nil {
		return fmt.Errorf("sequenced subscriber: %w", err)
	}
	pub, err := bus.NewPublisher(bus.PublisherConfig{Conn: p.cfg.busConn(), SpoolPath: filepath.Join(p.cfg.DataDir, "api-spool.db")},
		busDeps)
	if err != nil {
		return fmt.Errorf("api publisher: %w", err)
	}
	defer func() {
		if err := pub.Close(); err != nil {
			p.log.Warn("close api publisher spool", "err", err)
		}
	}()
	writer, err := snapshot.NewWriter(p.cfg.Snapshot, snapshot.WriterDeps{
		DB: db, Fence: snapshot.FenceFunc(store.CheckFence), Logger: p.deps.Logger, Registerer: p.deps.Registerer, Now: p.deps.Now,
	})
	if err != nil {
		return err
	}
	recon, err := snapshot.NewReconstructor(p.cfg.Reconstruct, snapshot.ReconstructDeps{
		DB: db, Events: log, Factory: factory, Logger: p.deps.Logger, Registerer: p.deps.Registerer,
	})
	if err != nil {
		return err
	}
	// The shadow has its own reconstructor: its metrics are not
	// registered (the reconstructions it counts are the writer's).
	shadowRecon, err := snapshot.NewReconstructor(p.cfg.Reconstruct, snapshot.ReconstructDeps{
		DB: db, Events: log, Factory: factory, Logger: p.deps.Logger,
	})
	if err != nil {
		return err
	}
	parts := Parts{
		Log: log, Stream: sub, Publisher: pub, Snapshots: writer, Reconstructor: recon,
		Fence:   newLeaderFence(db, p.cfg.Snapshot.FenceName, p.cfg.FenceEvictAfter, p.deps.Logger),
		Capture: CaptureIn(p.cfg.Snapshot), Inspect: InspectEngine,
		Produce: ProduceNode, Outbox: dbOutbox{db: db}, History: dbHistory{db: db},
		SnapshotIndex: snapshot.NewStore(db, p.deps.Logger),
	}
	if !p.cfg.SnapshotCaptureLive {
		parts.NewShadow = func() *snapshot.Shadow { return snapshot.NewShadow(shadowRecon, factory) }
	}
	parts.Presence = func(ctx context.Context, state func() store.NodeState) error {
		return store.Announce(ctx, db, p.cfg.NodeID, state, p.log)
	}
	parts.Successor = presentSuccessor(db, p.cfg.NodeID, p.log)
	parts.Present = func(ctx context.Context) ([]store.Presence, error) { return store.Present(ctx, db) }
	parts.Await = func(ctx context.Context) error { return store.Await(ctx, db, p.log) }
	runners := []func(context.Context) error{pub.Run}
	return p.run(ctx, parts, runners)
}

// Parts are the node's I/O collaborators, as consumer-side interfaces so
// that the core can be tested with fakes.
type Parts struct {
	Log    EventLog
	Stream Stream
	// Publisher sends the API's events to the bus.
	Publisher     Publisher
	Snapshots     Snapshotter
	Reconstructor Reconstructor
	// Fence claims the fencing row at a new leader's term.
	Fence Fencer
	// Capture copies the machine's state for a snapshot (under the read
	// lock); Inspect gives the API a read view of it.
	Capture func(m Machine, seq int64, recordedAt time.Time) (snapshot.Capture, error)
	Inspect func(m Machine) (api.View, error)
	// Election replaces the raft node built from the config (tests).
	Election Elector
	// Produce applies a record and derives the leader's writes of it
	// (ProduceNode); nil: records are only applied, nothing is written.
	Produce Producer
	// Outbox and History are where the leader writes them (nil: not
	// written).
	Outbox  OutboxStore
	History HistoryStore
	// NewShadow makes the machine the leader snapshots instead of the
	// live one (snapshot.NewShadow); nil: snapshots capture the live
	// machine under its read lock.
	NewShadow func() *snapshot.Shadow
	// SnapshotIndex reports the newest snapshot in the database, for the
	// status of every node (nil: only this node's own writes are shown).
	SnapshotIndex SnapshotIndex
	// Presence says the node runs, and its state, (store.Announce)
	// until its context ends: it runs as long as raft does, past the API
	// and the leader loop, so that nothing writes once the row is gone
	// (nil: not said).
	Presence func(ctx context.Context, state func() store.NodeState) error
	// Successor names the node a leader that hands leadership over
	// should give it to, none of exclude (election.Deps.Successor); nil:
	// the first voter in configuration order.
	Successor func(ctx context.Context, exclude []string) string
	// Present reads the presence rows of the processors (store.Present):
	// a leader that cannot do its duties hands leadership over when one
	// of them is ready, or when it cannot read them (nil: it never does).
	Present func(ctx context.Context) ([]store.Presence, error)
	// Await waits until the database answers (store.Await), once the
	// ports are bound and the API serves (nil: nothing to wait for).
	Await func(ctx context.Context) error
}

// presentSuccessor is election.Deps.Successor over the presence rows in
// db: the successor of self among the processors present, those in
// exclude left out; "" when the rows cannot be read.
func presentSuccessor(db *sql.DB, self string, log *slog.Logger) func(ctx context.Context, exclude []string) string {
	return func(ctx context.Context, exclude []string) string {
		ps, err := store.Present(ctx, db)
		if err != nil {
			log.Warn("hand-over: no successor chosen", "err", err)
			return ""
		}
		return successor(ps, self, exclude)
	}
}

// successor is the node that should lead after self: of the others whose
// presence says ready, and that are not in exclude (a transfer to them
// failed), the one that has applied most (the lowest id among equals); ""
// when none is ready.
func successor(ps []store.Presence, self string, exclude []string) string {
	best := -1
	for i, p := range ps {
		if p.NodeID == self || !p.Ready || slices.Contains(exclude, p.NodeID) {
			continue
		}
		if best < 0 || p.AppliedSeq > ps[best].AppliedSeq || (p.AppliedSeq == ps[best].AppliedSeq && p.NodeID < ps[best].NodeID) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return ps[best].NodeID
}

// SnapshotIndex finds the newest snapshot (snapshot.Store).
type SnapshotIndex interface {
	Newest(ctx context.Context) (snapshot.Meta, bool, error)
}

// Stream is the sequenced batch stream (bus.Subscriber).
type Stream interface {
	Run(ctx context.Context) error
	Updates() <-chan bus.Update
}

// Publisher publishes events to the bus (bus.Publisher).
type Publisher interface {
	Publish(ctx context.Context, evs ...event.Event) error
}

// Snapshotter writes snapshots (snapshot.Writer).
type Snapshotter interface {
	Resume(ctx context.Context) error
	Due(appliedSeq, changes int64) bool
	Take(ctx context.Context, term int64, capture func() (snapshot.Capture, error)) (snapshot.Result, error)
	TakeFromLog(ctx context.Context, term int64, sh *snapshot.Shadow, seq int64) (snapshot.Result, error)
}

// Reconstructor rebuilds a state at a point of the log
// (snapshot.Reconstructor).
type Reconstructor interface {
	Reconstruct(ctx context.Context, target snapshot.Target) (snapshot.Reconstruction, error)
	// ReconstructEarliest restores the oldest state at or before atMost
	// that the snapshots and the retained log can still give.
	ReconstructEarliest(ctx context.Context, atMost int64) (snapshot.Reconstruction, error)
	// Advance brings an earlier reconstruction forward to target.
	Advance(ctx context.Context, res *snapshot.Reconstruction, target snapshot.Target) error
}

// Fencer claims the fencing rows at a term (store.ClaimFence); it fails
// wrapping store.ErrFenced for a stale term. Stored reads the highest term
// the rows hold, so a leader whose write failed for another reason (its
// connection killed by a newer leader's claim) learns it was deposed.
type Fencer interface {
	Claim(ctx context.Context, term int64) error
	Stored(ctx context.Context) (int64, error)
}

// Elector is the raft node (election.Node).
type Elector interface {
	Run(ctx context.Context) error
	Leader() (id, addr string)
	State() string
	Term() uint64
	LeaderTerm() uint64
	Servers() ([]election.Server, error)
	Join(id, addr string, timeout time.Duration) error
	Remove(id string, timeout time.Duration) error
	StepDown() error
}

// dbFence is the leader's fence over every fencing row its writes check:
// the snapshots' (configurable), the history's and the outbox's. A claim
// raises them all to the new term, so from the moment a leader starts its
// duties a deposed leader's late write fails whatever it writes, and a
// deposed leader stopped in the middle of any of those writes is evicted
// rather than left holding a row the new leader will need.
type dbFence struct {
	db         *sql.DB
	names      []string
	evictAfter time.Duration
	log        *slog.Logger
}

// newLeaderFence returns the fence over snapshotFence, history.FenceName
// and outbox.FenceName (each once, in that order).
func newLeaderFence(db *sql.DB, snapshotFence string, evictAfter time.Duration, log *slog.Logger) dbFence {
	f := dbFence{db: db, evictAfter: evictAfter, log: log}
	for _, name := range []string{snapshotFence, history.FenceName, outbox.FenceName} {
		if !slices.Contains(f.names, name) {
			f.names = append(f.names, name)
		}
	}
	return f
}

// Claim claims each row in turn; a row where a newer term is stored fails
// the claim with store.ErrFenced (the rows claimed before it keep the
// term, which is harmless: the term is this node's, and higher than any
// deposed leader's).
func (f dbFence) Claim(ctx context.Context, term int64) error {
	for _, name := range f.names {
		evicted, err := store.ClaimFence(ctx, f.db, name, term, f.evictAfter)
		if len(evicted) > 0 && f.log != nil {
			f.log.Warn("killed the database connections holding the fence (a deposed leader mid-write)",
				"fence", name, "term", term, "connections", evicted)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Stored is the highest term stored on any of the rows.
func (f dbFence) Stored(ctx context.Context) (int64, error) {
	var top int64
	for _, name := range f.names {
		t, err := store.StoredFence(ctx, f.db, name)
		if err != nil {
			return 0, err
		}
		top = max(top, t)
	}
	return top, nil
}

// node is the running core.
type node struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	parts Parts
	f     *follower
	elect Elector
	// loading tracks each attempt to load the state, for Alive, which
	// says stuck one without progress for loadLimit (0: see Alive).
	loading   liveness.Progress
	loadLimit time.Duration
	// writeLimit bounds each round of leader writes (0:
	// DefaultLeaderWriteLimit).
	writeLimit time.Duration

	leading atomic.Bool
	// stopping is set when the node's stop begins: its presence row says
	// not ready from then on, so a leader handing over passes it by.
	stopping                          atomic.Bool
	regenRows, regenItems, outboxRows atomic.Int64
	unrecoverable                     atomic.Int64 // gaps past retention
	mRegen, mOutboxRows, mHistItems   prometheus.Counter

	lastSnapSeq          atomic.Int64
	lastSnapAt           atomic.Int64 // unix nanos
	lastSnapSize         atomic.Int64 // stored (compressed)
	lastSnapRawSize      atomic.Int64
	snapMu               sync.Mutex // serialises noteSnapshot
	snapsWritten, fenced atomic.Int64
	fencedClaim          atomic.Int64  // the stored term while a leader's claim is refused, else 0
	staleSemantics       atomic.Bool   // the state was loaded from a snapshot of a build with other semantics
	historical           chan struct{} // a slot per historical query running
	errMu                sync.Mutex
	lastErr              string // the follow loop's (setErr)
	leaderErr            string // the leader writes' (setLeaderErr)

	mFenced, mSnaps prometheus.Counter
}

func (p *Processor) newNode(parts Parts) (*node, error) {
	n := &node{cfg: p.cfg, log: p.log, now: p.deps.Now, loading: liveness.Progress{Now: p.deps.Now}, parts: parts, historical: make(chan struct{}, p.cfg.MaxHistoricalQueries)}
	n.f = newFollower(parts.Log, p.cfg.PageSize, p.log)
	n.f.produce = parts.Produce
	n.f.pend = newPending(p.cfg.MaxPending)
	n.mRegen = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "causeway_processor_outbox_rows_regenerated_total",
		Help: "Outbox rows a new leader regenerated on a separate machine to fill the gap below its pending rows.",
	})
	n.mOutboxRows = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "causeway_processor_outbox_rows_written_total", Help: "Outbox rows inserted by this node as leader.",
	})
	n.mHistItems = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "causeway_processor_history_items_written_total", Help: "Alarm history items written by this node as leader.",
	})
	pend := n.f.pend
	pendingGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "causeway_processor_pending_rows", Help: "Outbox rows and history items derived here and not known to be written.",
	}, func() float64 { r, i := pend.size(); return float64(r + i) })
	// Named causeway_processor_outbox_gaps_unrecoverable, a gauge,
	// before: it only grows (README, Upgrades).
	lostCounter := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "causeway_processor_outbox_gaps_unrecoverable_total",
		Help: "Outbox and history gaps below a new leader's pending rows that could not be regenerated whole because their first events are past retention, one per table (must not grow).",
	}, func() float64 { return float64(n.unrecoverable.Load()) })
	// Named causeway_processor_pending_drops, a gauge, before: it only
	// grows (README, Upgrades).
	droppedCounter := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "causeway_processor_pending_drops_total", Help: "Times the pending rows hit max_pending and were dropped (a new leader regenerates them).",
	}, func() float64 { pend.mu.Lock(); defer pend.mu.Unlock(); return float64(pend.dropped) })
	// Every node, not only the leader's writer: on a standby, or on a
	// deposed leader, "the last snapshot this node wrote" stays still
	// while the log grows, which is what the README says to alert on.
	snapSeqGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "causeway_snapshot_last_seq",
		Help: "Seq of the newest snapshot stored: written by this node as leader, or read from the database every poll_interval on every processor.",
	}, func() float64 { return float64(n.lastSnapSeq.Load()) })
	// Its sizes likewise: they were the writer's, of the last snapshot
	// this node wrote (0 on a standby).
	snapSizeGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "causeway_snapshot_size_bytes",
		Help: "Stored size (compressed) of the newest snapshot stored, as causeway_snapshot_last_seq.",
	}, func() float64 { return float64(n.lastSnapSize.Load()) })
	snapRawSizeGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "causeway_snapshot_raw_size_bytes",
		Help: "Uncompressed payload size of the newest snapshot stored, as causeway_snapshot_last_seq.",
	}, func() float64 { return float64(n.lastSnapRawSize.Load()) })
	n.mFenced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "causeway_processor_fenced_writes_total",
		Help: "Leader writes refused by the fence: this node wrote with a stale raft term.",
	})
	n.mSnaps = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "causeway_processor_snapshots_written_total", Help: "Snapshots written by this node as leader.",
	})
	for _, c := range append(n.f.collectors(), n.mFenced, n.mSnaps, n.mRegen, n.mOutboxRows, n.mHistItems, pendingGauge, droppedCounter, lostCounter, snapSeqGauge, snapSizeGauge, snapRawSizeGauge) {
		if err := p.deps.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("register processor metrics: %w", err)
		}
	}
	n.elect = parts.Election
	if n.elect == nil {
		deps := election.Deps{Logger: p.deps.Logger, Registerer: p.deps.Registerer, OnLead: n.lead, Successor: parts.Successor}
		if parts.Fence != nil {
			deps.TermFloor = func(ctx context.Context) (uint64, error) {
				t, err := parts.Fence.Stored(ctx)
				return uint64(max(t, 0)), err
			}
		}
		e, err := election.New(p.cfg.Raft, deps)
		if err != nil {
			return nil, err
		}
		n.elect = e
	}
	return n, nil
}

// run wires the core and runs every part until ctx ends or one fails.
func (p *Processor) run(ctx context.Context, parts Parts, extra []func(context.Context) error) error {
	n, err := p.newNode(parts)
	if err != nil {
		return err
	}
	p.node.Store(n)
	defer p.node.Store(nil)
	// The history endpoints read what the leader writes, where it writes it.
	hist, _ := parts.History.(api.HistoryReader)
	srv, err := api.New(p.cfg.API, n, api.Deps{Logger: p.deps.Logger, Registerer: p.deps.Registerer, Gatherer: p.deps.Gatherer, Now: p.deps.Now, NodeID: p.cfg.NodeID, History: hist, Alive: p.Alive})
	if err != nil {
		return err
	}
	// A port that cannot be had fails the node before anything starts,
	// and before Bound (READY=1): the API's is held from here on; raft's
	// is only checked, held from raft's start (after the database
	// answers), so that it never accepts a connection it does not answer.
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	if c, ok := n.elect.(bindChecker); ok {
		if err := c.CheckBind(); err != nil {
			_ = ln.Close()
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	start := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	// The API's listener runs on its own context, past everything else, so
	// that /metrics, /healthz and /readyz (503 "stopping") answer while the
	// node drains: the follower and the parts ending, raft leaving
	// leadership and shutting down, the presence row going. Its failure
	// stops the node.
	apiCtx, stopAPI := context.WithCancel(context.Background())
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		if err := srv.Serve(apiCtx, ln); err != nil {
			errc <- fmt.Errorf("api: %w", err)
			cancel()
		}
	}()
	closeAPI := func() {
		stopAPI()
		<-apiDone
	}
	p.boundOnce.Do(func() { close(p.bound) })
	if parts.Await != nil {
		if err := parts.Await(ctx); err != nil {
			closeAPI()
			select {
			case aerr := <-errc: // the API failed, ending the wait
				return aerr
			default:
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("open database: %w", err)
		}
	}
	// The raft node runs on its own context so that it can leave
	// leadership after the API has stopped serving: once the stop begins
	// the API takes no more work (reads, writes, membership changes: 503
	// "stopping"), and the requests in flight end (within the API's
	// shutdown grace) before raft stops, as the parts do. So whatever a
	// request did as or through the leader (a join, a remove, a publish)
	// was done while this node still led; only the probes and the metrics,
	// which need no leader, are answered after.
	raftCtx, stopRaft := context.WithCancel(context.Background())
	raftDone := make(chan error, 1)
	go func() { raftDone <- n.elect.Run(raftCtx) }()
	presenceDone := make(chan struct{})
	if parts.Presence != nil {
		// Ended after raft has (stopRaft), so the row goes last.
		go func() {
			defer close(presenceDone)
			_ = parts.Presence(raftCtx, n.presence)
		}()
	} else {
		close(presenceDone)
	}

	start("api", func(ctx context.Context) error {
		<-ctx.Done()
		n.stopping.Store(true)
		srv.Drain()
		return nil
	})
	start("follow", n.follow)
	// The extra parts (the API's publisher) run on their own context,
	// past the API's drain: a write the API answers is in the spool, and
	// the requests finished during the stop publish there too; the
	// publisher sends them (drainParts) before it stops, beside raft's
	// stop.
	partsCtx, stopParts := context.WithCancel(context.Background())
	var partsWG sync.WaitGroup
	for i, fn := range extra {
		partsWG.Add(1)
		go func() {
			defer partsWG.Done()
			if err := fn(partsCtx); err != nil {
				errc <- fmt.Errorf("part %d: %w", i, err)
				cancel()
			}
		}()
	}
	partsDone := make(chan struct{})
	drainParts := func() {
		defer close(partsDone)
		if d, ok := parts.Publisher.(drainer); ok {
			dctx, dcancel := context.WithTimeout(context.Background(), publishDrainLimit)
			defer dcancel()
			if err := d.Drain(dctx); err != nil {
				p.log.Warn("stopping before every event the API accepted reached the broker: the rest is sent at the next start", "err", err)
			}
		}
		stopParts()
		partsWG.Wait()
	}
	p.log.Info("processor started", "api", p.cfg.API.Listen, "raft", p.cfg.Raft.BindAddr)
	select {
	case <-ctx.Done():
	case err := <-raftDone:
		cancel()
		wg.Wait()
		drainParts()
		stopRaft()
		<-presenceDone
		closeAPI()
		if err != nil {
			return fmt.Errorf("raft: %w", err)
		}
		return errors.New("raft stopped unexpectedly")
	}
	wg.Wait()
	go drainParts()
	rerr := func() error {
		stopRaft()
		return <-raftDone
	}()
	<-presenceDone
	<-partsDone
	closeAPI()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if rerr != nil {
		errs = append(errs, fmt.Errorf("raft: %w", rerr))
	}
	p.log.Info("processor stopped")
	return errors.Join(errs...)
}

// bindChecker is an Elector that can check, before it runs, that the
// address it will listen on is free (election.Node.CheckBind).
type bindChecker interface {
	CheckBind() error
}

// drainer is a Publisher that can wait until what it holds has reached
// the broker (bus.Publisher.Drain).
type drainer interface {
	Drain(ctx context.Context) error
}

// publishDrainLimit bounds the wait, on a stop, for the API's publisher
// to send what the API accepted; it runs beside raft's stop, which may
// take longer (Config.StopBound).
const publishDrainLimit = 10 * time.Second

// backoff sleeps for the attempt's backoff or until ctx ends.
func (n *node) backoff(ctx context.Context, attempt int) {
	d := n.cfg.RetryMin << min(attempt, 16)
	if d > n.cfg.RetryMax || d <= 0 {
		d = n.cfg.RetryMax
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// setErr sets the follow loop's error for the status (nil: cleared).
func (n *node) setErr(err error) {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	n.lastErr = errText(err)
}

// setLeaderErr sets the leader writes' error for the status (nil:
// cleared), apart from the follow loop's, so that each clears only its
// own.
func (n *node) setLeaderErr(err error) {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	n.leaderErr = errText(err)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// follow loads the state (newest snapshot + replay) and then follows the
// sequenced stream and the database until ctx ends.
func (n *node) follow(ctx context.Context) error {
	if !n.load(ctx) {
		return nil
	}

	streamCtx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan error, 1)
	go func() { streamDone <- n.parts.Stream.Run(streamCtx) }()
	defer func() {
		stopStream()
		// Drain until the stream closes its channel, so it never blocks.
		for range n.parts.Stream.Updates() {
		}
		if err := <-streamDone; err != nil {
			n.log.Warn("sequenced stream", "err", err)
		}
	}()

	poll := time.NewTicker(n.cfg.PollInterval)
	defer poll.Stop()
	failures := 0
	// needCatchUp is set by a Gap signal or a failure; it is retried with
	// backoff by the poll ticker and by the next batch.
	needCatchUp := true
	updates := n.parts.Stream.Updates()
	for {
		n.f.turn()
		var err error
		if needCatchUp {
			err = n.f.poll(ctx)
			needCatchUp = err != nil
		}
		if err == nil {
			select {
			case <-ctx.Done():
				return nil
			case u, ok := <-updates:
				if !ok {
					updates = nil
					continue
				}
				if u.Gap {
					n.f.gapsRepaired.Add(1)
					n.f.mGaps.Inc()
					needCatchUp = true
					continue
				}
				err = n.f.handleBatch(ctx, u.Batch)
			case <-poll.C:
				err = n.f.poll(ctx)
				n.refreshSnapshotMeta(ctx)
				if !n.leading.Load() {
					n.prunePending(ctx)
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errPastRetention) {
			n.log.Error("the log no longer holds the records after the applied seq (retention dropped them): loading the state again",
				"applied_seq", n.f.appliedSeq.Load(), "err", err)
			n.setErr(err)
			if !n.load(ctx) {
				return nil
			}
			needCatchUp, failures = true, 0
			continue
		}
		if err != nil {
			needCatchUp = true
			n.setErr(err)
			n.log.Warn("follow log", "applied_seq", n.f.appliedSeq.Load(), "attempt", failures, "err", err)
			n.backoff(ctx, failures)
			failures++
			continue
		}
		if failures > 0 {
			n.setErr(nil)
		}
		failures = 0
	}
}

// load loads the state (newest snapshot + replay), retrying with backoff;
// false if ctx ended first.
func (n *node) load(ctx context.Context) bool {
	n.f.turned.Store(0) // loading is not being stuck
	for attempt := 0; ; attempt++ {
		end := n.loading.Begin()
		res, err := n.parts.Reconstructor.Reconstruct(snapshot.WithProgress(ctx, n.loading.Step), snapshot.Latest())
		end()
		if err == nil {
			n.f.load(res.Machine, res.Seq, res.RecordedAt)
			n.f.applyErrors.Add(res.ApplyErrors)
			n.staleSemantics.Store(res.StaleSemantics)
			n.log.Info("state loaded", "seq", res.Seq, "snapshot_seq", res.SnapshotSeq, "replayed", res.Replayed)
			n.setErr(nil)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		n.setErr(err)
		n.log.Warn("load state", "attempt", attempt, "err", err)
		n.backoff(ctx, attempt)
	}
}

// noteSnapshot records the newest snapshot known (written here at at, or
// seen in the database).
func (n *node) noteSnapshot(m snapshot.Meta, at time.Time) {
	n.snapMu.Lock()
	defer n.snapMu.Unlock()
	if m.Seq > n.lastSnapSeq.Load() {
		n.lastSnapSeq.Store(m.Seq)
		n.lastSnapAt.Store(at.UnixNano())
		n.lastSnapSize.Store(m.Size)
		n.lastSnapRawSize.Store(m.RawSize)
	}
}

// refreshSnapshotMeta reads the newest snapshot's row, for the status.
func (n *node) refreshSnapshotMeta(ctx context.Context) {
	if n.parts.SnapshotIndex == nil {
		return
	}
	m, ok, err := n.parts.SnapshotIndex.Newest(ctx)
	if err != nil {
		n.log.Debug("read newest snapshot", "err", err)
		return
	}
	if ok {
		n.noteSnapshot(m, m.CreatedAt)
	}
}

func (n *node) fencedWrite(log *slog.Logger, what string, err error) {
	n.fenced.Add(1)
	n.mFenced.Inc()
	log.Warn("leader write fenced", "write", what, "err", err)
}

// The api.Backend implementation.

func (n *node) View(fn func(v api.View, seq int64) error) error {
	if !n.f.loaded.Load() {
		return errors.New("state not loaded yet")
	}
	n.f.mu.RLock()
	defer n.f.mu.RUnlock()
	v, err := n.parts.Inspect(n.f.m)
	if err != nil {
		return err
	}
	return fn(v, n.f.applied)
}

// presence is what the node's presence row says of it: not ready once
// its stop has begun.
func (n *node) presence() store.NodeState {
	st := n.Status(context.Background())
	return store.NodeState{Ready: st.Ready && !n.stopping.Load(), AppliedSeq: st.AppliedSeq}
}

func (n *node) Status(ctx context.Context) api.Status {
	id, addr := n.elect.Leader()
	applied, head := n.f.appliedSeq.Load(), n.f.head.Load()
	lag := max(head-applied, 0)
	st := api.Status{
		NodeID: n.cfg.NodeID, Role: n.elect.State(), Leader: id, LeaderAddr: addr,
		Term: n.elect.Term(), LeaderTerm: n.elect.LeaderTerm(),
		AppliedSeq: applied, LogHead: head, Lag: lag, Loaded: n.f.loaded.Load(),
		OutOfOrder: n.f.outOfOrder.Load(), DuplicatesSkipped: n.f.dupSkipped.Load(),
		GapsRepaired: n.f.gapsRepaired.Load(), ApplyErrors: n.f.applyErrors.Load(),
		LastSnapshotSeq: n.lastSnapSeq.Load(), SnapshotsWritten: n.snapsWritten.Load(), FencedWrites: n.fenced.Load(),
	}
	st.OutboxRowsWritten, st.RowsRegenerated, st.ItemsRegenerated = n.outboxRows.Load(), n.regenRows.Load(), n.regenItems.Load()
	st.UnrecoverableGaps = n.unrecoverable.Load()
	st.StaleSemantics = n.staleSemantics.Load()
	if n.f.pend != nil {
		st.PendingRows, st.PendingItems = n.f.pend.size()
	}
	if at := n.lastSnapAt.Load(); at != 0 {
		st.LastSnapshotAt = time.Unix(0, at).UTC()
	}
	// Ready: loaded, a leader known, and caught up with a head learned
	// lately (with the database and the bus both unreachable, the head
	// would go stale and the lag would look small).
	age, seen := n.f.headAge()
	fresh := seen && age <= 3*n.cfg.PollInterval
	st.Ready = st.Loaded && id != "" && lag <= n.cfg.readyLag() && fresh
	n.errMu.Lock()
	switch {
	case n.lastErr != "" && n.leaderErr != "":
		st.Error = n.lastErr + "; leader write: " + n.leaderErr
	case n.leaderErr != "":
		st.Error = "leader write: " + n.leaderErr
	default:
		st.Error = n.lastErr
	}
	n.errMu.Unlock()
	if stored := n.fencedClaim.Load(); stored != 0 {
		st.Error = fmt.Sprintf("leader duties refused: the fencing rows hold term %d, above this leader's term %d "+
			"(raft's state was reset?); leadership is handed over until the raft term passes it; restarting the processors "+
			"starts their raft terms at the stored one (a node does so when it reads the fencing rows as it starts)", stored, st.Term)
	}
	return st
}

// dumpCapturer is a Machine whose canonical dump can be written from a
// copy of its state (snapshot.Node, evaluator.Engine): CaptureDump copies
// the state, under the lock that serialises Apply, and returns what
// writes the dump from the copy, outside it.
type dumpCapturer interface {
	CaptureDump() func(io.Writer) error
}

// Dump captures the canonical dump of the live machine. The follower's
// lock is held for the copy of the state (the deep copy a live snapshot
// capture makes: BenchmarkDumpLockHold); the dump, most of the work, is
// written from the copy outside it, concurrently with Apply, as it is
// rendered (the API writes it to the response so, rather than render it
// whole in memory first: BenchmarkDumpRequest). A machine that cannot be
// copied so is dumped in memory under the lock: its write must not hold
// the lock while a client takes the answer.
func (n *node) Dump() (func(io.Writer) error, int64, error) {
	if !n.f.loaded.Load() {
		return nil, 0, errors.New("state not loaded yet")
	}
	n.f.mu.RLock()
	defer n.f.mu.RUnlock()
	seq := n.f.applied
	if dc, ok := n.f.m.(dumpCapturer); ok {
		return dc.CaptureDump(), seq, nil
	}
	var buf bytes.Buffer
	if err := n.f.m.Dump(&buf); err != nil {
		return nil, 0, fmt.Errorf("dump state: %w", err)
	}
	return func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	}, seq, nil
}

// Reconstruct rebuilds the state at seq or at on a separate machine, in
// one of the node's historical slots (processor.max_historical_queries),
// which the answer's Release gives back: the slot covers the graph's use
// by the caller, not only its reconstruction.
func (n *node) Reconstruct(ctx context.Context, seq int64, at time.Time) (api.Past, error) {
	release := func() {}
	if n.historical != nil {
		select {
		case n.historical <- struct{}{}:
			var once sync.Once
			release = func() { once.Do(func() { <-n.historical }) }
		default:
			return api.Past{}, fmt.Errorf("%w: %d historical queries are running (processor.max_historical_queries); retry later",
				api.ErrBusy, cap(n.historical))
		}
	}
	p, err := n.reconstruct(ctx, seq, at)
	if err != nil {
		release()
		return api.Past{}, err
	}
	p.Release = release
	return p, nil
}

func (n *node) reconstruct(ctx context.Context, seq int64, at time.Time) (api.Past, error) {
	target := snapshot.AtSeq(seq)
	if seq <= 0 {
		target = snapshot.AtTime(at)
	} else if err := n.inLog(ctx, seq); err != nil {
		return api.Past{}, err
	}
	res, err := n.parts.Reconstructor.Reconstruct(ctx, target)
	if errors.Is(err, store.ErrTruncated) || errors.Is(err, snapshot.ErrGap) {
		return api.Past{}, n.pastRetention(ctx, err)
	}
	if errors.Is(err, snapshot.ErrBeyondLog) {
		return api.Past{}, fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	if err != nil {
		return api.Past{}, unavailable(err)
	}
	v, err := n.parts.Inspect(res.Machine)
	if err != nil {
		return api.Past{}, err
	}
	return api.Past{Graph: v, Seq: res.Seq, RecordedAt: res.RecordedAt, StaleSemantics: res.StaleSemantics}, nil
}

// pastRetention is the api.PastRetention of err, a reconstruction that
// met the part of the log retention dropped: with the oldest stored event
// and the earliest moment that can be rebuilt, when the log and the
// snapshot index can tell them (store.Log and snapshot.Store can). Failing
// to read them leaves them out: the answer is past retention all the same.
func (n *node) pastRetention(ctx context.Context, err error) error {
	pr := &api.PastRetention{Err: err}
	log, ok := n.parts.Log.(interface {
		Oldest(ctx context.Context) (int64, time.Time, error)
	})
	if !ok {
		return pr
	}
	seq, at, oerr := log.Oldest(ctx)
	if oerr != nil || seq == 0 {
		return pr
	}
	pr.OldestSeq, pr.OldestAt = seq, at
	snaps, ok := n.parts.SnapshotIndex.(interface {
		List(ctx context.Context, maxSeq int64) ([]snapshot.Meta, error)
	})
	if !ok {
		return pr
	}
	metas, lerr := snaps.List(ctx, math.MaxInt64)
	if lerr != nil {
		return pr
	}
	for _, m := range metas { // newest first: the last that the log follows is the oldest
		if m.Seq >= seq-1 {
			pr.Earliest = m.RecordedAt
		}
	}
	return pr
}

// inLog refuses a seq past the end of the log (api.ErrNotFound,
// snapshot.ErrBeyondLog) before a reconstruction finds it out, which it
// does only once it has rebuilt the whole graph of the newest snapshot and
// replayed the log after it. A seq up to the head the node knows is in the
// log; one past it is checked against the database's.
func (n *node) inLog(ctx context.Context, seq int64) error {
	if (n.f != nil && seq <= n.f.head.Load()) || n.parts.Log == nil {
		return nil
	}
	head, _, err := n.parts.Log.Head(ctx)
	if err != nil {
		return unavailable(fmt.Errorf("read the log's head: %w", err))
	}
	if seq > head {
		return fmt.Errorf("%w: %w (log ends at seq %d)", api.ErrNotFound, snapshot.ErrBeyondLog, head)
	}
	return nil
}

func (n *node) Publish(ctx context.Context, evs ...event.Event) error {
	return n.parts.Publisher.Publish(ctx, evs...)
}

func (n *node) Cluster() ([]api.Member, error) {
	servers, err := n.elect.Servers()
	if err != nil {
		return nil, err
	}
	out := make([]api.Member, len(servers))
	for i, s := range servers {
		out[i] = api.Member{ID: s.ID, Address: s.Address, Suffrage: s.Suffrage, Leader: s.Leader}
	}
	return out, nil
}

func membershipErr(err error) error {
	switch {
	case errors.Is(err, election.ErrNotLeader):
		return fmt.Errorf("%w: %w", api.ErrNotLeader, err)
	case errors.Is(err, election.ErrNoQuorum), errors.Is(err, election.ErrOtherServer):
		return fmt.Errorf("%w: %w", api.ErrRefused, err)
	case errors.Is(err, election.ErrUnknownServer):
		return fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	return err
}

func (n *node) Join(id, addr string) error {
	return membershipErr(n.elect.Join(id, addr, 10*time.Second))
}

func (n *node) Remove(id string) error {
	return membershipErr(n.elect.Remove(id, 10*time.Second))
}

var _ api.HistoryReader = dbHistory{}
