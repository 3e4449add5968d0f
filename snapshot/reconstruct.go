package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/prometheus/client_golang/prometheus"
)

// EventReader reads the event log; internal/store implements it.
type EventReader interface {
	// ReadRange returns up to limit records with seq > afterSeq, in seq
	// order; an empty result means the log ends at afterSeq.
	ReadRange(ctx context.Context, afterSeq int64, limit int) ([]event.Record, error)
	// SeqAt returns the highest seq recorded at or before t (0 if none).
	SeqAt(ctx context.Context, t time.Time) (int64, error)
	// Head returns the last seq the log assigned (0 if none), whether
	// retention kept its record or not.
	Head(ctx context.Context) (int64, time.Time, error)
}

// rangeAppender is an EventReader that appends a range to a given slice
// (internal/store's Log is one): a reconstruction knows how many records
// a page of the log holds before the log ends, and sizes the page for
// them instead of letting it grow row by row.
type rangeAppender interface {
	AppendRange(ctx context.Context, dst []event.Record, afterSeq int64, limit int) ([]event.Record, error)
}

// Errors of Reconstruct.
var (
	// ErrBeyondLog: the target seq is past the end of the log.
	ErrBeyondLog = errors.New("target is beyond the end of the log")
	// ErrGap: the log misses records that the replay needs (retention
	// removed them, or the log is broken).
	ErrGap = errors.New("gap in the event log")
)

type targetKind int

const (
	kindLatest targetKind = iota
	kindSeq
	kindTime
)

// Target is the point of the log to reconstruct: AtSeq, AtTime or Latest.
type Target struct {
	kind targetKind
	seq  int64
	at   time.Time
}

// AtSeq targets the state after applying events[1..seq].
func AtSeq(seq int64) Target { return Target{kind: kindSeq, seq: seq} }

// AtTime targets the state after every event recorded at or before t
// (recorded_at never decreases along seq, so that is a log prefix).
func AtTime(t time.Time) Target { return Target{kind: kindTime, at: t} }

// Latest targets the end of the log: a node starting cold uses it, then
// follows the sequenced stream from the returned seq.
func Latest() Target { return Target{kind: kindLatest} }

func (t Target) String() string {
	switch t.kind {
	case kindSeq:
		return fmt.Sprintf("seq %d", t.seq)
	case kindTime:
		return "time " + t.at.UTC().Format(time.RFC3339Nano)
	}
	return "latest"
}

// progressKey is the key of WithProgress's step in a context.
type progressKey struct{}

// WithProgress returns a copy of ctx carrying step, which a
// reconstruction (Reconstruct, Advance, ReconstructEarliest) and a
// Store.Load and Factory.Restore under it call at each step of progress:
// a query answered, a chunk of a snapshot read, so many entities of it
// decoded (the bin encodings; gob and JSON once decoded), its machine
// restored, a page of events read or applied. A
// step comes within one round trip to the database, or one page's
// reading or applying, of the last: a caller can tell a long reconstruction that
// progresses from one that hangs (liveness.Progress). step must be quick
// and safe for concurrent use.
func WithProgress(ctx context.Context, step func()) context.Context {
	return context.WithValue(ctx, progressKey{}, step)
}

// Step calls the step ctx carries (WithProgress), if any: a
// reconstruction, or a stand-in for one, reports progress.
func Step(ctx context.Context) {
	if step, ok := ctx.Value(progressKey{}).(func()); ok {
		step()
	}
}

// stepOf is the step ctx carries (WithProgress), or nil: for a loop that
// reports progress every so many items, and checks for nil alone when
// nothing listens.
func stepOf(ctx context.Context) func() {
	step, _ := ctx.Value(progressKey{}).(func())
	return step
}

// ReconstructConfig configures a Reconstructor.
type ReconstructConfig struct {
	// PageSize is the number of events read per query (default
	// DefaultReconstructPageSize).
	PageSize int `yaml:"page_size"`
}

// DefaultReconstructPageSize is ReconstructConfig.PageSize's default.
const DefaultReconstructPageSize = 5000

// ReconstructDeps are what a Reconstructor uses.
type ReconstructDeps struct {
	DB         *sql.DB
	Events     EventReader
	Factory    Factory
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// Reconstructor rebuilds the state at a point of the log into a fresh
// machine. It never touches a live machine; it is safe for concurrent use.
type Reconstructor struct {
	pageSize int
	store    *Store
	events   EventReader
	factory  Factory
	log      *slog.Logger

	duration    prometheus.Histogram
	skipped     *prometheus.CounterVec
	staleUsed   prometheus.Counter
	replayed    prometheus.Counter
	applyErrors prometheus.Counter
}

// NewReconstructor checks its inputs and returns a Reconstructor.
func NewReconstructor(cfg ReconstructConfig, deps ReconstructDeps) (*Reconstructor, error) {
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultReconstructPageSize
	}
	if cfg.PageSize < 1 {
		return nil, fmt.Errorf("page_size: %d is not positive", cfg.PageSize)
	}
	if deps.DB == nil || deps.Events == nil || deps.Factory == nil {
		return nil, errors.New("reconstructor: DB, Events and Factory are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	log := deps.Logger.With("component", "snapshot")
	r := &Reconstructor{
		pageSize: cfg.PageSize,
		store:    NewStore(deps.DB, log),
		events:   deps.Events,
		factory:  deps.Factory,
		log:      log,
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "causeway_snapshot_reconstruct_seconds",
			Help:    "Time to reconstruct a state: load a snapshot and replay the events after it.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_snapshot_skipped_total",
			Help: "Snapshots skipped by reconstruction, by reason (corrupt, version, encoding, restore).",
		}, []string{"reason"}),
		staleUsed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_snapshot_stale_semantics_used_total",
			Help: "Reconstructions that started from a snapshot computed under another build's semantics (evaluator.Semantics).",
		}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_snapshot_replayed_events_total",
			Help: "Events replayed on top of snapshots by reconstruction.",
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_snapshot_replay_refused_total",
			Help: "Replayed events the machine refused (logged and passed over, as live processing does).",
		}),
	}
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{r.duration, r.skipped, r.staleUsed, r.replayed, r.applyErrors} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register reconstruction metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Reconstruction is a rebuilt state.
type Reconstruction struct {
	Machine Machine
	// Seq is the last seq applied: the machine equals apply(events[1..Seq]).
	Seq int64
	// RecordedAt is the recorded_at of seq Seq (zero for seq 0).
	RecordedAt time.Time
	// SnapshotSeq is the seq of the snapshot it started from (0: a full
	// replay from an empty machine).
	SnapshotSeq int64
	// Replayed counts the events applied after the snapshot.
	Replayed int64
	// Skipped counts the snapshots that were unusable and passed over.
	Skipped int
	// ApplyErrors counts the replayed records the machine refused.
	ApplyErrors int64
	// StaleSemantics says the machine was restored from a snapshot computed
	// under another build's semantics (SemanticsAware): the state may
	// differ from what this build's replay of the whole log would give, on
	// what the semantics changed.
	StaleSemantics bool
}

// Reconstruct rebuilds the state at target: the newest usable snapshot at
// or before it, then the events after it. Unusable snapshots (corrupt,
// unknown version or encoding, failing to restore) are skipped with a
// warning; without any, the replay starts from an empty machine.
func (r *Reconstructor) Reconstruct(ctx context.Context, target Target) (Reconstruction, error) {
	start := time.Now()
	limit, err := r.resolve(ctx, target)
	if err != nil {
		return Reconstruction{}, err
	}
	cands, err := r.store.List(ctx, limit)
	if err != nil {
		return Reconstruction{}, fmt.Errorf("reconstruct at %s: %w", target, err)
	}
	Step(ctx)
	// The events after the newest snapshot are read while it is decoded
	// and restored: on two cores the read costs little more than nothing.
	var from int64
	if len(cands) > 0 {
		from = cands[0].Seq
	}
	rd := r.read(ctx, from, limit, prefetchPages)
	defer func() { rd.stop() }() // the reader in use at return, maybe the second
	res, err := r.base(ctx, cands)
	if err != nil {
		return Reconstruction{}, fmt.Errorf("reconstruct at %s: %w", target, err)
	}
	if res.Seq != from {
		// That snapshot was unusable: read from the one used.
		rd.stop()
		rd = r.read(ctx, res.Seq, limit, prefetchPages)
	}
	if err := r.apply(ctx, &res, limit, rd); err != nil {
		return Reconstruction{}, fmt.Errorf("reconstruct at %s: %w", target, err)
	}
	if target.kind != kindLatest && res.Seq < limit {
		// A time target resolves to a seq the log assigned (SeqAt), so
		// falling short of it is as for a seq: the state asked for is
		// not the one reached, and an earlier one is no answer.
		return Reconstruction{}, fmt.Errorf("reconstruct at %s: %w", target, r.short(ctx, res.Seq))
	}
	if target.kind == kindLatest && res.Replayed == 0 {
		// Nothing followed the base: the log may end there, or retention
		// deleted every event after it (the snapshot at the head it kept
		// unusable), which no record met shows.
		if err := r.short(ctx, res.Seq); !errors.Is(err, ErrBeyondLog) {
			return Reconstruction{}, fmt.Errorf("reconstruct at %s: %w", target, err)
		}
	}
	d := time.Since(start)
	r.duration.Observe(d.Seconds())
	r.log.Debug("state reconstructed", "target", target.String(), "seq", res.Seq, "snapshot_seq", res.SnapshotSeq,
		"replayed", res.Replayed, "refused", res.ApplyErrors, "skipped", res.Skipped, "duration", d)
	return res, nil
}

// ReconstructEarliest restores the oldest state at or before atMost that
// can still be brought forward along the log: seq 0 (the empty machine)
// when the log holds seq 1 (or nothing at all), else the oldest usable
// snapshot at or after the seq before the log's first, without replaying
// anything. Advance then brings it forward. It fails with ErrGap when no
// such state exists.
func (r *Reconstructor) ReconstructEarliest(ctx context.Context, atMost int64) (Reconstruction, error) {
	first, err := r.events.ReadRange(ctx, 0, 1)
	if err != nil {
		return Reconstruction{}, fmt.Errorf("reconstruct the earliest state: %w", err)
	}
	// The oldest stored seq; with none stored, the one after the head:
	// retention may have deleted every event, up to the snapshot it kept
	// at the head, after a quiet spell longer than it.
	var firstSeq int64
	if len(first) > 0 {
		firstSeq = first[0].Seq
	} else {
		head, _, err := r.events.Head(ctx)
		if err != nil {
			return Reconstruction{}, fmt.Errorf("reconstruct the earliest state: %w", err)
		}
		firstSeq = head + 1
	}
	if firstSeq == 1 {
		mach, err := r.factory.New()
		if err != nil {
			return Reconstruction{}, fmt.Errorf("new machine: %w", err)
		}
		return Reconstruction{Machine: mach}, nil
	}
	cands, err := r.store.List(ctx, atMost)
	if err != nil {
		return Reconstruction{}, fmt.Errorf("reconstruct the earliest state: %w", err)
	}
	// Oldest first, among those the retained log follows.
	var usable []Meta
	for i := len(cands) - 1; i >= 0; i-- {
		if cands[i].Seq >= firstSeq-1 {
			usable = append(usable, cands[i])
		}
	}
	var skipped int
	for _, m := range usable {
		mach, err := r.restore(ctx, m)
		if err == nil {
			res := Reconstruction{Machine: mach, Seq: m.Seq, SnapshotSeq: m.Seq, RecordedAt: m.RecordedAt, Skipped: skipped}
			if sa, ok := mach.(SemanticsAware); ok && sa.StaleSemantics() && m.Seq > 0 {
				// Said as Reconstruct says it (base).
				r.staleUsed.Inc()
				res.StaleSemantics = true
				r.log.Warn("snapshot computed by a build with other semantics: the earliest state may differ from this build's "+
					"replay of the log on what the semantics changed", "snapshot_id", m.ID, "seq", m.Seq)
			}
			return res, nil
		}
		reason := skipReason(err)
		if reason == "" {
			return Reconstruction{}, fmt.Errorf("reconstruct the earliest state: %w", err)
		}
		r.skipped.WithLabelValues(reason).Inc()
		skipped++
		r.log.Warn("snapshot skipped, trying a newer one", "snapshot_id", m.ID, "seq", m.Seq, "reason", reason, "err", err)
	}
	return Reconstruction{}, fmt.Errorf("reconstruct the earliest state: %w (the log starts at seq %d, and no usable snapshot at or after seq %d is at or before %d)",
		ErrGap, firstSeq, firstSeq-1, atMost)
}

// Advance applies the events after res.Seq up to target to res.Machine,
// bringing an earlier reconstruction forward instead of starting again. A
// target before res.Seq is an error; on error res reflects the records
// applied so far.
func (r *Reconstructor) Advance(ctx context.Context, res *Reconstruction, target Target) error {
	limit, err := r.resolve(ctx, target)
	if err != nil {
		return err
	}
	if limit < res.Seq {
		return fmt.Errorf("advance to %s: the state is already at seq %d", target, res.Seq)
	}
	if err := r.replay(ctx, res, limit); err != nil {
		return fmt.Errorf("advance to %s: %w", target, err)
	}
	if target.kind != kindLatest && res.Seq < limit {
		return fmt.Errorf("advance to %s: %w", target, r.short(ctx, res.Seq))
	}
	return nil
}

// short says why a replay to a seq target stopped at seq: the log holds
// nothing after it (ErrBeyondLog), or retention dropped every record the
// replay needed, so that none of them was met to show the gap, while the
// log goes on after them (ErrGap).
func (r *Reconstructor) short(ctx context.Context, seq int64) error {
	next, err := r.events.ReadRange(ctx, seq, 1)
	if err != nil {
		return fmt.Errorf("the log ends at seq %d, or misses the records after it: %w", seq, err)
	}
	if len(next) > 0 && next[0].Seq > seq+1 {
		return fmt.Errorf("%w: seq %d follows %d (the records between are past retention)", ErrGap, next[0].Seq, seq)
	}
	if len(next) == 0 {
		// Nothing stored after seq: the log may end there, or retention
		// dropped every record after it (up to the head it assigned).
		head, _, err := r.events.Head(ctx)
		if err != nil {
			return fmt.Errorf("the log ends at seq %d, or misses the records after it: %w", seq, err)
		}
		if head > seq {
			// Read again: a record appended since the first read is no gap.
			if next, err = r.events.ReadRange(ctx, seq, 1); err != nil {
				return fmt.Errorf("the log ends at seq %d, or misses the records after it: %w", seq, err)
			}
			if len(next) == 0 || next[0].Seq > seq+1 {
				return fmt.Errorf("%w: the records after seq %d, up to the head %d, are past retention", ErrGap, seq, head)
			}
		}
	}
	return fmt.Errorf("%w (log ends at seq %d)", ErrBeyondLog, seq)
}

// resolve turns a target into the highest seq to apply.
func (r *Reconstructor) resolve(ctx context.Context, t Target) (int64, error) {
	switch t.kind {
	case kindSeq:
		if t.seq < 0 {
			return 0, fmt.Errorf("reconstruct at %s: negative seq", t)
		}
		return t.seq, nil
	case kindTime:
		seq, err := r.events.SeqAt(ctx, t.at)
		if err != nil {
			return 0, fmt.Errorf("reconstruct at %s: find its seq: %w", t, err)
		}
		return seq, nil
	}
	return math.MaxInt64, nil
}

// base returns the machine of the newest usable snapshot of cands (newest
// first), or an empty one.
func (r *Reconstructor) base(ctx context.Context, cands []Meta) (Reconstruction, error) {
	var res Reconstruction
	for _, m := range cands {
		mach, err := r.restore(ctx, m)
		if err == nil {
			if sa, ok := mach.(SemanticsAware); ok && sa.StaleSemantics() {
				if m.Seq == 0 {
					// The empty state is the same under any semantics.
					break
				}
				// Used all the same, so that what a node holds does not
				// depend on when it started or on what retention had
				// dropped by then: a full replay where the log still
				// allows it would make nodes differ (see doc.go).
				r.staleUsed.Inc()
				res.StaleSemantics = true
				r.log.Warn("snapshot computed by a build with other semantics: the state may differ from this build's replay "+
					"of the log on what the semantics changed", "snapshot_id", m.ID, "seq", m.Seq)
			}
			res.Machine, res.Seq, res.SnapshotSeq, res.RecordedAt = mach, m.Seq, m.Seq, m.RecordedAt
			return res, nil
		}
		reason := skipReason(err)
		if reason == "" {
			return Reconstruction{}, err
		}
		r.skipped.WithLabelValues(reason).Inc()
		res.Skipped++
		r.log.Warn("snapshot skipped, trying an older one", "snapshot_id", m.ID, "seq", m.Seq, "reason", reason, "err", err)
	}
	if len(cands) > 0 && res.Skipped > 0 {
		r.log.Warn("no usable snapshot, replaying the log from the start", "skipped", res.Skipped)
	}
	mach, err := r.factory.New()
	if err != nil {
		return Reconstruction{}, fmt.Errorf("new machine: %w", err)
	}
	res.Machine = mach
	return res, nil
}

// errRestore marks a verified payload that the factory failed to restore.
var errRestore = errors.New("restore failed")

func skipReason(err error) string {
	switch {
	case errors.Is(err, ErrUnknownVersion):
		return "version"
	case errors.Is(err, ErrUnknownEncoding):
		return "encoding"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	case errors.Is(err, errRestore):
		return "restore"
	}
	return ""
}

func (r *Reconstructor) restore(ctx context.Context, m Meta) (Machine, error) {
	h, body, err := r.store.Load(ctx, m)
	if err != nil {
		return nil, err
	}
	pr, err := openPayload(h, body)
	if err != nil {
		return nil, err
	}
	mach, err := r.factory.Restore(ctx, h.Encoding, pr)
	// Whatever the factory read, the payload must be whole and exact.
	if ferr := pr.finish(); ferr != nil {
		return nil, ferr
	}
	if err != nil {
		if errors.Is(err, ErrUnknownEncoding) || errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", errRestore, err)
	}
	return mach, nil
}

type page struct {
	recs []event.Record
	err  error
}

// prefetchPages is how many pages a reconstruction reads ahead while the
// snapshot is restored.
const prefetchPages = 16

// reader reads the records of (after, limit] page by page in a goroutine,
// up to ahead pages before they are taken.
type reader struct {
	pages  chan page
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (r *Reconstructor) read(ctx context.Context, after, limit int64, ahead int) *reader {
	ctx, cancel := context.WithCancel(ctx)
	rd := &reader{pages: make(chan page, ahead), cancel: cancel}
	rd.wg.Add(1)
	ra, _ := r.events.(rangeAppender)
	go func() {
		defer rd.wg.Done()
		defer close(rd.pages)
		for after < limit {
			n := r.pageSize
			if rest := limit - after; rest < int64(n) {
				n = int(rest)
			}
			var recs []event.Record
			var err error
			if ra != nil {
				recs, err = ra.AppendRange(ctx, make([]event.Record, 0, n), after, n)
			} else {
				recs, err = r.events.ReadRange(ctx, after, n)
			}
			if err == nil {
				Step(ctx)
			}
			select {
			case rd.pages <- page{recs: recs, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(recs) == 0 {
				return
			}
			after = recs[len(recs)-1].Seq
		}
	}()
	return rd
}

// stop ends the reading and waits for it; calling it again does nothing.
func (rd *reader) stop() {
	rd.cancel()
	rd.wg.Wait()
}

// replay applies the records after res.Seq up to limit (or the end of the
// log). The next page is read while the current one is applied.
func (r *Reconstructor) replay(ctx context.Context, res *Reconstruction, limit int64) error {
	if res.Seq >= limit {
		return nil
	}
	rd := r.read(ctx, res.Seq, limit, 1)
	defer rd.stop()
	return r.apply(ctx, res, limit, rd)
}

// apply applies the pages of rd, which reads from res.Seq, up to limit.
func (r *Reconstructor) apply(ctx context.Context, res *Reconstruction, limit int64, rd *reader) error {
	if res.Seq >= limit {
		return nil
	}
	for p := range rd.pages {
		if p.err != nil {
			return fmt.Errorf("read events after seq %d: %w", res.Seq, p.err)
		}
		if len(p.recs) == 0 {
			return nil
		}
		for _, rec := range p.recs {
			if rec.Seq > limit {
				return nil
			}
			if rec.Seq != res.Seq+1 {
				return fmt.Errorf("%w: seq %d follows %d", ErrGap, rec.Seq, res.Seq)
			}
			if err := res.Machine.Apply(rec); err != nil {
				// A refused record leaves the machine in a state that is
				// still a function of the log (the Machine contract); the
				// live processor logs it and goes on, so replay does too.
				res.ApplyErrors++
				r.applyErrors.Inc()
				r.log.Debug("replayed record refused", "seq", rec.Seq, "err", err)
			}
			res.Seq, res.RecordedAt = rec.Seq, rec.RecordedAt
			res.Replayed++
			r.replayed.Inc()
		}
		Step(ctx)
	}
	return ctx.Err()
}
