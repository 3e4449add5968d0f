package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config.
const (
	DefaultChunkSize = 4 << 20
	DefaultFenceName = "leader"
	// MaxChunkSize bounds a chunk well under MariaDB's largest packet.
	MaxChunkSize = 256 << 20
)

// ErrBusy is returned by Take while another snapshot is being written.
var ErrBusy = errors.New("a snapshot is already being written")

// Config configures a Writer.
type Config struct {
	// Policy says when a snapshot is due.
	Policy Policy `yaml:"policy"`
	// ChunkSize is the largest chunk written in one row; it is further
	// capped to a quarter of max_allowed_packet (client-side
	// interpolation may escape a BLOB to twice its size), read at each
	// write on the connection that writes it, so that a limit the server
	// lowered meanwhile holds too.
	ChunkSize int `yaml:"chunk_size"`
	// Compression is the zstd level: fastest, default, better or best.
	Compression string `yaml:"compression"`
	// FenceName is the fencing row checked with the leader's raft term.
	FenceName string `yaml:"fence_name"`
	// Encoding is the family of payload encodings snapshots are written
	// in: "bin" (NodeBin, EngineBin) or "gob" (NodeGob, EngineGob), which
	// releases before the bin encodings also read. Every release reads
	// both; gob is for a cluster about to be rolled back to such a release.
	Encoding string `yaml:"encoding"`
}

// NodeEncoding is the payload encoding of the node snapshots c writes.
func (c Config) NodeEncoding() string {
	if c.Encoding == "gob" {
		return NodeGob
	}
	return NodeBin
}

// EngineEncoding is the payload encoding of the engine-only snapshots c
// writes.
func (c Config) EngineEncoding() string {
	if c.Encoding == "gob" {
		return EngineGob
	}
	return EngineBin
}

// WithDefaults fills the unset fields.
func (c Config) WithDefaults() Config {
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.Compression == "" {
		c.Compression = "default"
	}
	if c.FenceName == "" {
		c.FenceName = DefaultFenceName
	}
	if c.Encoding == "" {
		c.Encoding = "bin"
	}
	return c
}

// Validate joins every problem of the config, each named by its YAML path.
func (c Config) Validate() error {
	var errs []error
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	}
	if c.ChunkSize < 1 || c.ChunkSize > MaxChunkSize {
		errs = append(errs, fmt.Errorf("chunk_size: %d is outside 1..%d", c.ChunkSize, MaxChunkSize))
	}
	if _, ok := levels[c.Compression]; !ok {
		errs = append(errs, fmt.Errorf("compression: %q is not one of fastest, default, better, best", c.Compression))
	}
	if c.FenceName == "" {
		errs = append(errs, errors.New("fence_name: empty"))
	}
	if c.Encoding != "bin" && c.Encoding != "gob" {
		errs = append(errs, fmt.Errorf("encoding: %q is not one of bin, gob", c.Encoding))
	}
	return errors.Join(errs...)
}

var levels = map[string]zstd.EncoderLevel{
	"fastest": zstd.SpeedFastest,
	"default": zstd.SpeedDefault,
	"better":  zstd.SpeedBetterCompression,
	"best":    zstd.SpeedBestCompression,
}

// WriterDeps are what a Writer uses.
type WriterDeps struct {
	DB         *sql.DB
	Fence      Fencer
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
	Now        func() time.Time      // nil: time.Now
}

// Writer takes snapshots for the leader. Due may be called from the apply
// loop; Take from one leader-duty goroutine at a time (a concurrent Take
// returns ErrBusy).
type Writer struct {
	cfg   Config
	store *Store
	fence Fencer
	log   *slog.Logger
	now   func() time.Time
	m     writerMetrics

	busy atomic.Bool

	mu     sync.Mutex // guards policy
	policy Policy
	enc    *encoder // used by the single Take in flight
	// cappedAt is the max_allowed_packet under which the chunk size was
	// last reported capped (0: not capped); used by the single Take in
	// flight.
	cappedAt int64
}

// writerMetrics are the writes of this process. The seq and sizes of the
// newest snapshot (causeway_snapshot_last_seq, _size_bytes,
// _raw_size_bytes) are the processor's: every processor reads them from
// the database, where only the leader writes.
type writerMetrics struct {
	pause, catchUp prometheus.Histogram
	encode, write  prometheus.Histogram
	written        prometheus.Counter
	failures       *prometheus.CounterVec
}

// NewWriter validates cfg (after defaults) and returns a Writer. It does not
// touch the database.
func NewWriter(cfg Config, deps WriterDeps) (*Writer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot config: %w", err)
	}
	if deps.DB == nil || deps.Fence == nil {
		return nil, errors.New("snapshot writer: DB and Fence are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	enc, err := newEncoder(levels[cfg.Compression])
	if err != nil {
		return nil, err
	}
	w := &Writer{
		cfg:    cfg,
		store:  NewStore(deps.DB, deps.Logger),
		fence:  deps.Fence,
		log:    deps.Logger.With("component", "snapshot"),
		now:    deps.Now,
		policy: cfg.Policy,
		enc:    enc,
	}
	w.m = newWriterMetrics()
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{w.m.pause, w.m.catchUp, w.m.encode, w.m.write, w.m.written, w.m.failures} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register snapshot metrics: %w", err)
			}
		}
	}
	return w, nil
}

func newWriterMetrics() writerMetrics {
	fast := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	slow := []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	return writerMetrics{
		pause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causeway_snapshot_pause_seconds", Buckets: fast,
			Help: "Time event processing is held while a snapshot captures the state.",
		}),
		catchUp: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causeway_snapshot_catch_up_seconds", Buckets: slow,
			Help: "Time the shadow machine took to replay the log up to a snapshot's seq (TakeFromLog).",
		}),
		encode: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causeway_snapshot_encode_seconds", Buckets: slow,
			Help: "Time to encode and compress a snapshot (outside the processing lock).",
		}),
		write: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causeway_snapshot_write_seconds", Buckets: slow,
			Help: "Time to write a snapshot's rows in its fenced transaction.",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_snapshot_written_total", Help: "Snapshots written.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_snapshot_failures_total", Help: "Snapshots not written, by the stage that failed.",
		}, []string{"stage"}),
	}
}

// Resume makes the policy count from the newest snapshot in the database
// (Policy.Resumed); a new leader calls it before its first Due.
func (w *Writer) Resume(ctx context.Context) error {
	m, ok, err := w.store.Newest(ctx)
	if err != nil {
		return fmt.Errorf("resume snapshot policy: %w", err)
	}
	if ok {
		w.mu.Lock()
		w.policy.Resumed(m.Seq, m.CreatedAt)
		w.mu.Unlock()
	}
	return nil
}

// Due reports whether a snapshot should be taken now that appliedSeq is
// applied and the applying machine has made changes graph changes in all
// (see Policy.Due). It is false while a snapshot is being written. Cheap;
// no I/O.
func (w *Writer) Due(appliedSeq, changes int64) bool {
	if w.busy.Load() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.policy.Due(appliedSeq, changes, w.now())
}

// Result describes a snapshot written by Take.
type Result struct {
	Meta Meta
	// Pause is how long capture ran: the time event processing was held
	// (Take only).
	Pause time.Duration
	// CatchUp is the time the shadow took to reach the seq (TakeFromLog
	// only); processing was not held meanwhile.
	CatchUp time.Duration
	// Encode is the time to encode and compress, Write the time of the
	// database transaction.
	Encode, Write time.Duration
}

// Take captures the state and writes a snapshot of it under the raft term.
//
// capture runs first, synchronously: it should take the processor's lock,
// copy the state out (a deep copy, or a persistent structure's root) and
// release the lock; its duration is the pause reported in
// causeway_snapshot_pause_seconds. Encoding, compression and the write
// happen afterwards, outside the lock. The write runs the fence check in the
// same transaction, so a deposed leader's snapshot is refused (the error
// wraps the fence's). Once the state is captured, the write no longer
// follows ctx: a write in flight when leadership ends is decided by the
// fence, not cut short; it is bounded by WriteLimit.
func (w *Writer) Take(ctx context.Context, term int64, capture func() (Capture, error)) (Result, error) {
	if !w.busy.CompareAndSwap(false, true) {
		return Result{}, ErrBusy
	}
	defer w.busy.Store(false)

	var res Result
	start := time.Now()
	c, err := capture()
	res.Pause = time.Since(start)
	w.m.pause.Observe(res.Pause.Seconds())
	if err != nil {
		w.m.failures.WithLabelValues("capture").Inc()
		return res, fmt.Errorf("capture state: %w", err)
	}
	return w.detachedWrite(ctx, term, c, res)
}

// WriteLimit bounds a snapshot write (encode, compress, the fenced insert)
// once its state is captured; it runs detached from the caller's context,
// and counts in a processor's stop (processor.Config.StopBound), which
// the processor unit's TimeoutStopSec exceeds, so that a stopping leader
// ends its write before systemd kills it.
const WriteLimit = 30 * time.Second

func (w *Writer) detachedWrite(ctx context.Context, term int64, c Capture, res Result) (Result, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), WriteLimit)
	defer cancel()
	return w.write(wctx, term, c, res)
}

// TakeFromLog writes a snapshot of the state at seq without touching the
// live machine: the shadow, a second machine that follows the log from the
// database, is brought to seq and captured. Event processing is not paused
// at all (nothing is observed in causeway_snapshot_pause_seconds); the cost
// is the shadow's memory and the CPU to replay the events since the last
// snapshot, reported as Result.CatchUp. The result equals a capture of the
// live machine at seq because the state is a pure function of the log
// prefix (invariant 3). seq must already be in the log. The catch-up
// follows ctx (a leader that stops leading, or stops, abandons it); the
// write, as Take's, does not.
func (w *Writer) TakeFromLog(ctx context.Context, term int64, sh *Shadow, seq int64) (Result, error) {
	if !w.busy.CompareAndSwap(false, true) {
		return Result{}, ErrBusy
	}
	defer w.busy.Store(false)

	var res Result
	start := time.Now()
	c, err := sh.capture(ctx, seq)
	res.CatchUp = time.Since(start)
	if err != nil {
		w.m.failures.WithLabelValues("capture").Inc()
		return res, fmt.Errorf("capture shadow state: %w", err)
	}
	w.m.catchUp.Observe(res.CatchUp.Seconds())
	return w.detachedWrite(ctx, term, c, res)
}

// write encodes, compresses and writes a captured state.
func (w *Writer) write(ctx context.Context, term int64, c Capture, res Result) (Result, error) {
	if c.Encode == nil || c.Seq < 0 {
		w.m.failures.WithLabelValues("capture").Inc()
		return res, fmt.Errorf("capture state: seq %d, Encode set %t: need seq >= 0 and an Encode", c.Seq, c.Encode != nil)
	}
	start := time.Now()
	blob, h, err := w.enc.encode(c.Seq, c.RecordedAt, c.Encoding, c.Encode)
	res.Encode = time.Since(start)
	if err != nil {
		w.m.failures.WithLabelValues("encode").Inc()
		return res, fmt.Errorf("snapshot seq %d: %w", c.Seq, err)
	}
	w.m.encode.Observe(res.Encode.Seconds())

	start = time.Now()
	res.Meta, err = w.store.insert(ctx, w.fence, w.cfg.FenceName, term, h, c.Semantics, blob, w.chunkSize, w.now())
	res.Write = time.Since(start)
	if err != nil {
		w.m.failures.WithLabelValues("write").Inc()
		return res, err
	}
	w.m.write.Observe(res.Write.Seconds())
	w.m.written.Inc()

	w.mu.Lock()
	w.policy.Taken(c.Seq, w.now())
	w.mu.Unlock()
	w.log.Info("snapshot written", "seq", c.Seq, "term", term, "bytes", res.Meta.Size, "raw_bytes", res.Meta.RawSize,
		"chunks", res.Meta.Chunks, "pause", res.Pause, "catch_up", res.CatchUp, "encode", res.Encode, "write", res.Write)
	return res, nil
}

// chunkSize caps the configured chunk size to a quarter of limit, the
// max_allowed_packet of the connection that writes the chunks (read on it
// at each write: the server's may change while the writer lives). A cap is
// logged when it starts or its limit changes.
func (w *Writer) chunkSize(limit int64) int {
	size := w.cfg.ChunkSize
	quarter := int(max(limit/4, 1))
	if size <= quarter {
		w.cappedAt = 0
		return size
	}
	if w.cappedAt != limit {
		w.log.Warn("snapshot chunk size capped below max_allowed_packet", "chunk_size", size, "max_allowed_packet", limit, "capped_to", quarter)
		w.cappedAt = limit
	}
	return quarter
}
