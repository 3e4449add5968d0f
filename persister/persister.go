package persister

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/liveness"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/snapshot"
)

// Message is one delivery of an encoded event.
type Message interface {
	// Body is the encoded event.
	Body() []byte
	// Ack acknowledges the message; with multiple, also every earlier
	// unacked message of the same broker channel.
	Ack(multiple bool) error
	// Stale reports that the broker has the message back (its channel
	// closed, by a lost connection or by Queue.Pause): it will be
	// delivered again, and its Ack fails with ErrStale.
	Stale() bool
}

// channeled is a Message that says which broker channel it came on
// (bus.Delivery.Channel); a Message that does not is taken to share one
// channel with every other.
type channeled interface {
	Channel() any
}

func channelOf(m Message) any {
	if c, ok := m.(channeled); ok {
		return c.Channel()
	}
	return nil
}

// openedChannel is a Message that says when its broker channel was
// opened, or a time before (bus.Delivery.ChannelOpened): the broker
// delivered it later. A reconnect opens a channel without Run or Resume
// (Persister.consumingSince), which is all a Message that does not tell
// is dated by.
type openedChannel interface {
	ChannelOpened() time.Time
}

// channelOpened is the latest time known before m's channel was opened:
// its own (openedChannel), or the last (re)start of the consumption,
// since.
func channelOpened(m Message, since time.Time) time.Time {
	if o, ok := m.(openedChannel); ok {
		if at := o.ChannelOpened(); at.After(since) {
			return at
		}
	}
	return since
}

// timedMessage is a Message that may carry the recorded_at of a replayed
// record (bus.Delivery.RecordedAt); only read with Config.KeepRecordedAt.
type timedMessage interface {
	RecordedAt() (at time.Time, ok bool, err error)
}

// publishedMessage is a Message that says when its producer spooled it
// (bus.Delivery.PublishedAt, the AMQP timestamp, in whole seconds; zero
// when unknown).
type publishedMessage interface {
	PublishedAt() time.Time
}

// Queue is the persist queue as the persister consumes it (see BusQueue).
type Queue interface {
	// Run consumes until ctx ends; Messages is closed when it returns.
	Run(ctx context.Context) error
	// Messages is the stream of deliveries, in broker order, of one broker
	// channel at a time: once a message of a new channel (after a
	// reconnect) is handed out, the acks of the earlier channels' messages
	// fail with ErrStale.
	Messages() <-chan Message
	// DeadLetter moves m to the dead-letter queue with reason and acks it.
	// If the move fails while m's channel is live, it must still settle m
	// (BusQueue rejects it to the queue's dead-letter exchange): a later
	// batch's multiple ack would otherwise cover a message neither stored
	// nor dead-lettered.
	DeadLetter(ctx context.Context, m Message, reason string) error
	// Pause stops the consumption: every message handed out and not
	// acked goes back to the queue, in order (each is Stale once Pause
	// returns), and nothing more is delivered until Resume. It fails
	// only when ctx ends first.
	Pause(ctx context.Context) error
	// Resume consumes again after Pause, on a new broker channel.
	Resume()
}

// Sequencer publishes committed batches on the sequenced fanout
// (bus.BatchPublisher).
type Sequencer interface {
	Run(ctx context.Context) error
	PublishSequenced(ctx context.Context, b event.Batch) error
}

// Log is the event log (store.Log).
type Log interface {
	Append(ctx context.Context, entries []store.Entry) (store.Appended, error)
	MaintainPartitions(ctx context.Context, now time.Time, lookahead int) ([]string, error)
	Retain(ctx context.Context, t time.Time, anchored bool) ([]string, time.Time, error)
	// TrimThrough deletes the events up to the retention anchor's seq
	// that Retain's whole partitions left, checking lease between chunks.
	TrimThrough(ctx context.Context, seq int64, lease store.RetentionLease) (int64, error)
	LockRetention(ctx context.Context, wait time.Duration) (store.RetentionLease, error)
	// Now is the log's clock, which dates its records (the database
	// server's): maintenance goes by it.
	Now(ctx context.Context) (time.Time, error)
	// Ping checks that the database answers (one round trip).
	Ping(ctx context.Context) error
	// Writable checks that the log takes an append now (a write in a
	// transaction rolled back): a paused persister resumes once it does.
	Writable(ctx context.Context) error
}

// Snapshots prunes the graph snapshots retention no longer needs
// (snapshot.Store.Prune): every one older than the newest usable snapshot
// recorded at or before keepAfter.
type Snapshots interface {
	Prune(ctx context.Context, keepAfter time.Time) (snapshot.PruneResult, error)
}

// ErrStale is what a Queue's Ack or DeadLetter wraps when its broker
// channel has closed: the broker redelivers the message, so the persister
// moves on (the redelivery is then a duplicate or dead-lettered again).
var ErrStale = errors.New("stale delivery")

// Deps are the persister's collaborators.
type Deps struct {
	Queue     Queue
	Log       Log
	Sequencer Sequencer
	// Snapshots, when set, is pruned at the retention boundary before the
	// event partitions are: event retention never drops an event a stored
	// snapshot needs, so without pruning it stops at the oldest snapshot.
	Snapshots Snapshots
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// Registerer defaults to no registration.
	Registerer prometheus.Registerer
}

// Dead-letter reasons: the values of the reason label, and the prefix of
// the reason header (which adds the detail).
const (
	ReasonMalformed = "malformed" // not a decodable envelope
	ReasonInvalid   = "invalid"   // decodes but breaks a rule of the envelope
	ReasonTooLarge  = "too_large" // over event.MaxEventBytes or MaxDepth
	ReasonRejected  = "rejected"  // the database refused the event itself
)

// publishQueue bounds the committed batches waiting for their sequenced
// publish; past it a batch is not published (followers repair the gap).
const publishQueue = 256

// Persister moves events from the persist queue into the event log. See
// the package doc.
type Persister struct {
	cfg   Config
	queue Queue
	log   Log
	seqr  Sequencer
	snaps Snapshots
	lg    *slog.Logger
	m     metrics

	pubCh chan event.Batch
	// appending holds the Append in flight, and the pings and write
	// checks of the database: Alive's measure, against the stall limit
	// of bound.
	appending liveness.Ops
	// bound is the bound of the next attempt to append a batch (a
	// time.Duration): AppendTimeout, or longer after attempts that timed
	// out while the database answered, and kept across batches until
	// fast commits lower it (see commit). Written by the one committer
	// between attempts, read by Alive and pause.
	bound atomic.Int64
	// opened is when the consumption last (re)started: Run, or the
	// Resume after a pause; no channel delivering now was opened before
	// (see deliveries). Written by Run and the committer, read by
	// collect.
	opened atomic.Pointer[time.Time]
	// holed holds the channels (channelOf) on which a dead-letter failed
	// while the channel may still be open: that message stays unacked
	// until the channel closes, and a multiple ack of a later message of
	// the channel would ack it too, neither stored nor dead-lettered. On
	// such a channel every ack is single; a new channel (after a
	// reconnect) starts clean, and once collect reads from it the earlier
	// channels, closed, are forgotten (forgetHoles).
	holed sync.Map
}

// Alive reports whether the persister is not stuck: no attempt to append
// a batch (nor check of the database) has been in flight for longer than
// the stall limit of the attempt's bound, liveness.Limit(bound): two
// minutes with the default append_timeout of 30 s, four times the bound
// past that. The bound is AppendTimeout, or up to maxAppendBound after
// attempts that a slow database needed longer for (until commits are
// fast again: see commit), so an attempt
// legitimately waiting on a slow commit is alive, and only one that
// outlived its own bound several times over trips it (a hang the
// database driver's cancellation did not end). Waiting for messages,
// backing off between attempts, or being paused (hold limit) is not being
// stuck: a database outage or hang does not make systemd restart the
// persister.
func (p *Persister) Alive() bool {
	return !p.appending.Stuck(liveness.Limit(time.Duration(p.bound.Load())))
}

type metrics struct {
	committed    prometheus.Counter
	duplicates   prometheus.Counter
	deadLettered *prometheus.CounterVec
	batchSize    prometheus.Histogram
	commitSecs   prometheus.Histogram
	lag          prometheus.Histogram
	intakeDelay  prometheus.Histogram
	retries      prometheus.Counter
	paused       prometheus.Gauge
	appendBound  prometheus.Gauge
	pauses       prometheus.Counter
	unpublished  prometheus.Counter
	snapsPruned  prometheus.Counter
	trimmed      prometheus.Counter
	clockBehind  prometheus.Counter
}

// New validates cfg (after defaults) and deps. It starts nothing.
func New(cfg Config, deps Deps) (*Persister, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("persister config: %w", err)
	}
	if deps.Queue == nil || deps.Log == nil || deps.Sequencer == nil {
		return nil, errors.New("persister: Queue, Log and Sequencer are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	m := metrics{
		committed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_persister_events_committed_total",
			Help: "Events committed to the log.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_persister_duplicates_total",
			Help: "Deliveries dropped because their event_id was already in the log.",
		}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_persister_dead_lettered_total",
			Help: "Deliveries sent to the dead-letter queue, by reason.",
		}, []string{"reason"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "causeway_persister_batch_size",
			Help:    "Deliveries per committed batch (duplicates included).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "causeway_persister_commit_seconds",
			Help:    "Duration of one successful append transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "causeway_persister_lag_seconds",
			Help:    "recorded_at minus the event's observed_at: how far the log trails its sources.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}),
		intakeDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causeway_persister_intake_delay_seconds",
			Help: "recorded_at minus the time the producer (listener, driver) spooled the event, from the message's AMQP timestamp (whole seconds, so up to 1s more): " +
				"how long accepted events waited in spools and queues. Unlike lag_seconds, not the sources' own dating.",
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 12 * 3600},
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_persister_commit_retries_total",
			Help: "Failed append transactions that were retried (database unavailable).",
		}),
		appendBound: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_persister_append_bound_seconds",
			Help: "Bound of the next attempt to append a batch: append_timeout, or longer as learned from commits that needed it (slow database), coming down as commits get fast again.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_persister_paused",
			Help: "1 while the persister has handed its held batch back to the queue (hold_limit) and consumes nothing until the database takes writes.",
		}),
		pauses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_persister_pauses_total",
			Help: "Batches held past hold_limit without a commit, handed back to the queue (each costs its messages one redelivery).",
		}),
		unpublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_persister_sequenced_unpublished_total",
			Help: "Committed batches not published on the sequenced stream (followers read them from the database).",
		}),
		snapsPruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_persister_snapshots_pruned_total",
			Help: "Graph snapshots deleted by retention (older than the newest usable one at or before the retention boundary).",
		}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_persister_events_trimmed_total",
			Help: "Events deleted row by row by retention: those of the retention anchor's day partition up to the anchor's seq (the partitions dropped whole are not counted).",
		}),
		clockBehind: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_persister_clock_behind_commits_total",
			Help: "Commits whose records took the log's last recorded_at because the log's clock (the database server's) was behind it (recorded_at never decreases along seq).",
		}),
	}
	for _, r := range []string{ReasonMalformed, ReasonInvalid, ReasonTooLarge, ReasonRejected} {
		m.deadLettered.WithLabelValues(r) // export zeros
	}
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{m.committed, m.duplicates, m.deadLettered, m.batchSize, m.commitSecs, m.lag, m.intakeDelay, m.retries, m.appendBound, m.paused, m.pauses, m.unpublished, m.snapsPruned, m.trimmed, m.clockBehind} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("persister: register metrics: %w", err)
			}
		}
	}
	p := &Persister{
		cfg: cfg, queue: deps.Queue, log: deps.Log, seqr: deps.Sequencer, snaps: deps.Snapshots,
		lg: deps.Logger.With("component", "persister"), m: m,
		pubCh: make(chan event.Batch, publishQueue),
	}
	p.setBound(cfg.AppendTimeout)
	return p, nil
}

// Run persists until ctx ends, then stops taking deliveries, commits and
// acks the batch in flight within ShutdownGrace, closes its consumer and
// returns nil. It returns an error only if the queue fails for good.
// Call it once.
func (p *Persister) Run(ctx context.Context) error {
	// work outlives ctx by the grace period: the batch in flight must
	// still be committed and acked on the broker channel it came from.
	p.startConsuming()
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.ShutdownGrace, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stopGrace()

	queueCtx, stopQueue := context.WithCancel(work)
	defer stopQueue()
	queueErr := make(chan error, 1)
	go func() { queueErr <- p.queue.Run(queueCtx) }()

	pubCtx, stopPub := context.WithCancel(work)
	defer stopPub()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.seqr.Run(pubCtx); err != nil {
			p.lg.Error("sequenced publisher stopped", "err", err)
		}
	})
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); p.publishLoop(pubCtx) }()
	wg.Go(func() { p.maintain(ctx) })

	err := p.consume(ctx, work)

	stopQueue() // unacked prefetched deliveries go back to the queue
	if qerr := <-queueErr; qerr != nil && err == nil {
		err = fmt.Errorf("persister queue: %w", qerr)
	}
	close(p.pubCh) // publishLoop drains what was committed, within the grace
	<-pubDone
	stopPub()
	wg.Wait()
	return err
}

// consume reads, batches and commits until ctx ends or the queue closes.
// work bounds the commit and ack of the last batch. Collecting (and
// decoding) overlaps the commit of the previous batch; one committer keeps
// commits, and so acks, in delivery order.
func (p *Persister) consume(ctx, work context.Context) error {
	batches := make(chan batch) // unbuffered: a batch grows while the committer is busy
	streamClosed := make(chan bool, 1)
	go func() {
		defer close(batches)
		streamClosed <- p.collect(ctx, work, p.queue.Messages(), batches)
	}()
	for b := range batches {
		p.commit(ctx, work, b)
	}
	if <-streamClosed {
		return errors.New("persister: delivery stream closed")
	}
	return nil
}

// batch is what one transaction commits: the valid entries and every
// message read for them (the last one is acked with multiple, unless its
// channel is in Persister.holed), and since when each may have been held
// (deliveries).
type batch struct {
	entries []store.Entry
	msgs    []Message   // msgs[i] carries entries[i]
	since   []time.Time // the broker delivered msgs[i] at since[i] or later (deliveries)
}

// heldSince is the earliest time the broker may have delivered one of b's
// messages: b is held since then.
func (b batch) heldSince() time.Time {
	return slices.MinFunc(b.since, time.Time.Compare)
}

// live returns b without the messages the broker has back (Stale): they
// will be delivered again. After a pause they must not be committed: a
// batch handed back before them is delivered again after them, and the
// log would have them out of the order of publication.
func (b batch) live() batch {
	if !slices.ContainsFunc(b.msgs, Message.Stale) {
		return b
	}
	var out batch
	for i, m := range b.msgs {
		if !m.Stale() {
			out.entries = append(out.entries, b.entries[i])
			out.msgs = append(out.msgs, m)
			out.since = append(out.since, b.since[i])
		}
	}
	return out
}

// collect reads messages into batches and hands each to out once it is
// due — BatchWait after its first message — or full (BatchSize). While
// the committer is busy a due batch keeps growing up to BatchSize, so
// batches adapt to the commit rate. Invalid events are dead-lettered as
// they come and are not part of a batch. When ctx ends, the batch in hand
// is handed over (bounded by work) and collect returns false; it returns
// true if the stream closed first.
//
// Each message is dated with the earliest time the broker may have
// delivered it (deliveries), which its hold is counted from: not when it
// is read, since a message delivered while collect reads nothing (its
// batch full while the committer is busy, or a dead-letter in flight)
// waits unread in the client's prefetch buffer meanwhile, and ages at the
// broker all the same.
func (p *Persister) collect(ctx, work context.Context, msgs <-chan Message, out chan<- batch) bool {
	var b batch
	var cur any // the channel of the last message read
	d := deliveries{prefetch: p.cfg.Prefetch}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	due := false
	flush := func() {
		if len(b.msgs) > 0 {
			select {
			case out <- b:
			case <-work.Done():
			}
		}
	}
	for {
		var send chan<- batch
		if len(b.msgs) > 0 && (due || len(b.entries) >= p.cfg.BatchSize) {
			send = out
		}
		in := msgs
		if len(b.entries) >= p.cfg.BatchSize {
			in = nil
		}
		// A due batch goes first to a committer that waits for it; then
		// a message already waiting is read without waiting, and only a
		// stream found empty lets the deliveries' bound move up (idle).
		var (
			m       Message
			ok, got bool
		)
		if send != nil {
			select {
			case send <- b:
				b, due = batch{}, false
				timer.Stop()
				continue
			default:
			}
		}
		if in != nil {
			select {
			case m, ok = <-in:
				got = true
			default:
			}
		}
		if !got {
			waitFrom := time.Now()
			select {
			case <-ctx.Done():
				flush()
				return false
			case send <- b:
				b, due = batch{}, false
				timer.Stop()
			case <-timer.C:
				due = true
			case m, ok = <-in:
				got = true
			}
			if in != nil {
				// collect waited on a stream found empty, ready to take
				// what came at once (see deliveries.waited).
				d.waited(waitFrom, time.Now())
			}
			if !got {
				continue
			}
		}
		if !ok {
			flush()
			return ctx.Err() == nil
		}
		if ch := channelOf(m); ch != cur {
			cur = ch
			p.forgetHoles(ch)
		}
		since := d.read(channelOf(m), channelOpened(m, p.consumingSince()))
		// A replay's re-published record (its recorded_at kept) is
		// read as the stored event it is: a log written before a rule
		// of input was added goes in as it was.
		var at time.Time
		if tm, ok := m.(timedMessage); ok && p.cfg.KeepRecordedAt {
			t, ok, err := tm.RecordedAt()
			if err != nil {
				p.deadLetter(work, m, fmt.Errorf("%w: %w", errBadRecordedAt, err))
				continue
			}
			if ok && t.UTC().Year() > 9999 {
				// Past DATETIME's year 9999 (a time zone ahead of
				// UTC can carry 9999-12-31 into it): the driver refuses
				// the statement before sending it, on every try.
				p.deadLetter(work, m, fmt.Errorf("%w: %s is past year 9999 in UTC", errBadRecordedAt, t.Format(time.RFC3339Nano)))
				continue
			}
			if ok {
				at = t
			}
		}
		decode := event.Decode
		if !at.IsZero() {
			decode = event.DecodeStored
		}
		ev, err := decode(m.Body())
		if err != nil {
			p.deadLetter(work, m, err)
			continue
		}
		body, err := storedBody(m.Body(), ev)
		if err != nil {
			p.deadLetter(work, m, err)
			continue
		}
		entry := store.Entry{Event: ev, Body: body, RecordedAt: at}
		if len(b.msgs) == 0 {
			timer.Reset(p.cfg.BatchWait)
		}
		b.entries = append(b.entries, entry)
		b.msgs = append(b.msgs, m)
		b.since = append(b.since, since)
	}
}

// deliveries bounds from below when the broker delivered each message
// collect reads: the time its hold is counted from. The client takes a
// delivery off the socket at once, into its buffer, so the broker's clock
// (consumer_timeout) runs while the message waits there unread; when it
// was read says nothing. Three facts bound it instead:
//
//   - While collect waits on a stream found empty, it takes each message
//     as soon as the client hands it on. A stream found empty alone says
//     nothing: a delivery passes between the client's goroutines (the
//     AMQP library's buffer, bus.Consumer, BusQueue) before it is on the
//     stream, and meanwhile the stream is empty although the next
//     delivery waits, delivered maybe minutes ago. A wait of idleSettle,
//     far longer than such a hand-off, does tell (waited): a message read
//     after one was delivered at idle or later, idle being its end less
//     idleSettle. (The margin of hold_limit under consumer_timeout covers
//     the network.) While collect reads nothing — its batch full and the
//     committer busy with the previous one, which may take ten minutes
//     (maxAppendBound), or a dead-letter in flight — idle stays where it
//     was, and the messages read after are dated from it.
//   - The broker delivers on a channel only while fewer than Prefetch of
//     its deliveries are unsettled, and only a message collect read can
//     be settled: the k-th delivery of a channel came after collect read
//     its (k-Prefetch)-th. This keeps the bound close while collect
//     drains a backlog without ever finding the stream empty (the queue
//     full behind a database that commits).
//   - A delivery that is not stale came on a channel opened after the
//     consumption last (re)started (Persister.consumingSince): Queue.Pause
//     closes the channel, and none opens before Resume. A stale one is
//     never committed (batch.live). After a reconnect the channel opened
//     later still, and a bus delivery says when (channelOpened): the
//     persister may have read nothing from before the reconnect until
//     the new channel's deliveries (its batch full, a slow commit), and
//     dated from the start they would look held for as long as it has
//     run.
//
// The bound is the latest of the three.
type deliveries struct {
	prefetch int
	idle     time.Time
	// ch is the channel of the last message read, opened when it was
	// opened (channelOpened), n how many of ch's messages were read, and
	// readAt[(k-1)%prefetch] when the k-th was read (the last prefetch
	// of them), as offsets from base.
	ch     any
	opened time.Time
	n      int
	base   time.Time
	readAt []time.Duration
}

// idleSettle is how long collect must wait on an empty stream before it
// takes it for drained (deliveries): far longer than a delivery takes to
// pass between the client's goroutines, short enough that a steady
// stream leaves some such waits, or the prefetch bound close (a stream
// of messages coming closer together than this reads Prefetch of them in
// Prefetch times idleSettle at most: 20 s with the default prefetch).
const idleSettle = 10 * time.Millisecond

// waited notes that collect waited on the stream, ready to take a
// message at once, from start to end, when a message came (or it
// stopped waiting for something else). A message on its way through the
// client at some time t of the wait was on the stream by t+idleSettle,
// and taken then: so if the wait lasted idleSettle, none was on its way
// at end-idleSettle, and every message read from now on was delivered
// later.
func (d *deliveries) waited(start, end time.Time) {
	if end.Sub(start) < idleSettle {
		return
	}
	if at := end.Add(-idleSettle); at.After(d.idle) {
		d.idle = at
	}
}

// read counts a message read now from broker channel ch (channelOf),
// opened at opened or later (channelOpened), and returns the earliest
// time the broker may have delivered it.
func (d *deliveries) read(ch any, opened time.Time) time.Time {
	now := time.Now()
	since := d.idle
	if opened.After(since) {
		since = opened
	}
	if ch == nil {
		// A Message that does not tell its channel: a new one (after a
		// reconnect) cannot be told from the old, nor its deliveries
		// counted.
		return since
	}
	if ch != d.ch || !opened.Equal(d.opened) {
		d.ch, d.opened, d.n = ch, opened, 0
	}
	if d.readAt == nil {
		d.base, d.readAt = now, make([]time.Duration, d.prefetch)
	}
	d.n++
	i := (d.n - 1) % d.prefetch
	if d.n > d.prefetch {
		// The slot holds the read of the (n-prefetch)-th.
		if at := d.base.Add(d.readAt[i]); at.After(since) {
			since = at
		}
	}
	d.readAt[i] = now.Sub(d.base)
	return since
}

// deadLetter sends m to the DLQ with the reason of err. It never blocks
// the stream: on failure the message stays unacked for the broker to
// redeliver (the bus adapter falls back to a reject, which dead-letters
// it without the reason header). When m may still be unacked on a live
// channel, every later ack on that channel is single (holed).
func (p *Persister) deadLetter(ctx context.Context, m Message, cause error) {
	reason := reasonOf(cause)
	if err := p.queue.DeadLetter(ctx, m, reason+": "+cause.Error()); err != nil {
		if errors.Is(err, ErrStale) {
			p.lg.Error("dead-letter failed; the broker will redeliver", "reason", reason, "cause", cause, "err", err)
			return
		}
		if _, was := p.holed.LoadOrStore(channelOf(m), true); !was {
			p.lg.Warn("acks on this channel go one by one: a message whose dead-letter failed may be unacked on it")
		}
		p.lg.Error("dead-letter failed; the broker will redeliver once the channel closes", "reason", reason, "cause", cause, "err", err)
		return
	}
	p.m.deadLettered.WithLabelValues(reason).Inc()
	p.lg.Warn("dead-lettered an event", "reason", reason, "err", cause)
}

// forgetHoles forgets the holed channels but ch, the channel of the
// message just read: the earlier channels are closed (see Queue.Messages),
// so no ack of theirs reaches the broker, which redelivers their unacked
// messages, holes included. Kept, they would pile up, one for each
// reconnect that met a failed dead-letter, each holding on to its closed
// connection.
func (p *Persister) forgetHoles(ch any) {
	p.holed.Range(func(k, _ any) bool {
		if k != ch {
			p.holed.Delete(k)
		}
		return true
	})
}

// errBadRecordedAt is a replayed event whose recorded_at header does not
// parse (only looked at with keep_recorded_at): dead-lettered as invalid.
var errBadRecordedAt = errors.New("bad recorded_at header")

func reasonOf(err error) string {
	switch {
	case errors.Is(err, errBadRecordedAt):
		return ReasonInvalid
	case errors.Is(err, event.ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, event.ErrInvalid):
		return ReasonInvalid
	case errors.Is(err, event.ErrMalformed):
		return ReasonMalformed
	}
	return ReasonRejected
}

// maxAppendBound is the longest bound an attempt to append a batch gets
// (see commit): a commit slower than that is taken for a hang.
const maxAppendBound = 10 * time.Minute

// commit appends b, retrying with backoff while the database fails, then
// acks b's messages and queues the sequenced publish. Nothing is acked
// before the commit. Each attempt is bounded: a database that stopped
// answering fails it (the driver closes the connection), and the batch is
// retried here, its messages unacked on their channel, rather than after
// a watchdog restart and the broker's redelivery. An attempt that timed
// out may have committed (its COMMIT reached the server, the answer did
// not come back): the retry then finds the events stored and acks them as
// duplicates. If work (the grace) ends first, nothing is acked and the
// broker redelivers the batch. The messages the broker has back already
// are left out (batch.live).
//
// The bound starts at AppendTimeout. An attempt that timed out while the
// database answered pings meanwhile (attemptAppend) met a database that
// is slow, not down, and a commit slower than the bound would time out
// for ever, so the next attempt's bound is doubled, up to maxAppendBound.
// The bound learned so outlives the commit: a database slow all the time
// would otherwise cost every batch the same timed-out attempts, retries
// and rolled-back transactions again. It comes down only as commits show
// it can (lowerBound): halved, down to AppendTimeout, by each commit that
// took at most a quarter of it. A hang does not wait for a grown bound:
// the pings of an attempt come every half AppendTimeout, and one left
// unanswered that long ends the attempt, so a database that stops
// answering is noticed within AppendTimeout whatever the bound; the bound
// is AppendTimeout again after that, as after any attempt that timed out
// without the database answering, and a database that hangs is retried
// every AppendTimeout, and so noticed that soon once it answers again.
//
// Once b has been held for HoldLimit (from the earliest time the broker
// may have delivered one of its messages: batch.heldSince), after a
// failed attempt, b is handed back (pause); and no attempt holds b past
// HoldLimit plus the bound (a first attempt that comes late is cut short,
// or not made): the broker would otherwise
// close the channel of a consumer holding a delivery past its
// consumer_timeout, redelivering b once each time, for as long as the
// database is down.
func (p *Persister) commit(ctx, work context.Context, b batch) {
	b = b.live()
	if len(b.entries) == 0 {
		return
	}
	backoff := p.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		learned := time.Duration(p.bound.Load())
		// hold_limit is kept under the broker's consumer_timeout by one
		// attempt's bound, and b is handed back only between attempts:
		// no attempt may hold b past HoldLimit plus the bound. A retry
		// starts by HoldLimit (its wait is cut to it below), but a first
		// attempt may start later, its messages having waited in the
		// client's buffer behind commits that took the learned bound:
		// its bound is cut to what is left, and with nothing left b is
		// handed back without one.
		bound := learned
		if left := p.cfg.HoldLimit + learned - time.Since(b.heldSince()); attempt == 1 && left < bound {
			if left <= 0 {
				held := time.Since(b.heldSince())
				p.lg.Warn("batch held past hold_limit and one append bound before its first attempt (it waited behind slow commits)",
					"events", len(b.entries), "held", held, "hold_limit", p.cfg.HoldLimit, "append_bound", learned)
				p.pause(ctx, work, len(b.entries), held)
				return
			}
			bound = left
		}
		start := time.Now()
		res, timedOut, answered, hung, err := p.attemptAppend(work, b.entries, bound)
		if err == nil {
			took := time.Since(start)
			p.lowerBound(learned, took)
			p.committed(b, res, took)
			return
		}
		if work.Err() != nil {
			p.lg.Warn("batch not committed before shutdown; the broker will redeliver it", "events", len(b.entries), "err", err)
			return
		}
		if rejected(err) {
			p.commitEach(ctx, work, b, err)
			return
		}
		p.m.retries.Inc()
		next, msg := learned, "append failed"
		switch {
		case timedOut && !hung && bound < learned:
			// Cut short by the hold, the attempt did not have the
			// bound learned: it tells nothing of it, answered or not
			// (too short, it may have had no ping); only a ping left
			// unanswered tells of a hang.
			msg = "append timed out, its bound cut short by hold_limit"
		case timedOut && answered:
			next, msg = min(2*bound, maxAppendBound), "append timed out while the database answered (slow, not down): the next attempt gets a longer bound"
		case timedOut:
			next, msg = p.cfg.AppendTimeout, "append timed out (database not answering)"
		}
		p.setBound(next)
		attrs := []any{"events", len(b.entries), "attempt", attempt, "append_bound", bound, "next_append_bound", next,
			"append_timeout", p.cfg.AppendTimeout, "err", err}
		held := time.Since(b.heldSince())
		if held >= p.cfg.HoldLimit {
			p.lg.Warn(msg, append(attrs, "held", held, "hold_limit", p.cfg.HoldLimit)...)
			p.pause(ctx, work, len(b.entries), held)
			return
		}
		wait := min(backoff/2+rand.N(backoff/2+1), p.cfg.HoldLimit-held)
		p.lg.Warn(msg, append(attrs, "retry_in", wait)...)
		t := time.NewTimer(wait)
		select {
		case <-work.Done():
			t.Stop()
			p.lg.Warn("batch not committed before shutdown; the broker will redeliver it", "events", len(b.entries))
			return
		case <-t.C:
		}
		backoff = min(2*backoff, p.cfg.RetryMax)
	}
}

// lowerBound sets the bound after a commit that took took under bound:
// half of it, but not under AppendTimeout, when the commit took at most a
// quarter of it (so that the halved bound is still twice what the commit
// needed); else bound, as learned.
func (p *Persister) lowerBound(bound, took time.Duration) {
	if bound <= p.cfg.AppendTimeout || took > bound/4 {
		return
	}
	next := max(bound/2, p.cfg.AppendTimeout)
	p.setBound(next)
	p.lg.Info("commits take well under the append bound: lowered", "append_bound", bound, "next_append_bound", next, "took", took,
		"append_timeout", p.cfg.AppendTimeout)
}

// setBound sets the bound of the next attempts to append.
func (p *Persister) setBound(d time.Duration) {
	p.bound.Store(int64(d))
	p.m.appendBound.Set(d.Seconds())
}

// pause hands the batch held past HoldLimit back to the queue, with every
// other message read and not acked (Queue.Pause: they are Stale then, and
// the committer leaves them out), stops consuming, and checks with the
// retry backoff that the log takes writes (Log.Writable, each check
// bounded as the next attempt to append is), until it does; then it
// consumes again. The broker delivers the messages again in their order,
// before any later one, so a database outage of any length costs each
// held message one redelivery, and the log keeps the order of
// publication (the stored ones come back as duplicates). A ping would
// not do: a database that answers but refuses writes (read-only, a
// Galera node out of the primary component) would have the batch back at
// once, and handed back again a hold limit later, a redelivery each
// time. While paused the persister is alive (no operation in flight
// beyond a bounded check), and not able to do its job:
// causeway_persister_paused is 1. When ctx ends (shutdown) it returns at
// once: nothing is held.
func (p *Persister) pause(ctx, work context.Context, events int, held time.Duration) {
	if err := p.queue.Pause(work); err != nil {
		p.lg.Error("could not hand the held batch back to the queue before shutdown; the broker will redeliver it", "events", events, "err", err)
		return
	}
	p.m.pauses.Inc()
	p.m.paused.Set(1)
	since := time.Now()
	p.lg.Warn("batch held past hold_limit without a commit: handed back to the queue with every unacked message; consuming stopped until the database takes writes",
		"events", events, "held", held, "hold_limit", p.cfg.HoldLimit)
	backoff := p.cfg.RetryMin
	for {
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := p.writable(ctx); err == nil {
			break
		} else if ctx.Err() == nil {
			p.lg.Debug("database still not taking writes; consuming stays paused", "err", err)
		}
		backoff = min(2*backoff, p.cfg.RetryMax)
	}
	p.startConsuming()
	p.queue.Resume()
	p.m.paused.Set(0)
	p.lg.Info("database takes writes again; consuming resumed", "paused_for", time.Since(since))
}

// startConsuming notes that the consumption (re)starts now, before the
// queue opens a channel (see deliveries).
func (p *Persister) startConsuming() {
	now := time.Now()
	p.opened.Store(&now)
}

// consumingSince is when the consumption last (re)started.
func (p *Persister) consumingSince() time.Time {
	if t := p.opened.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// writable checks that the log takes writes (Log.Writable), within the
// bound of the next attempt to append; it counts as an operation in
// flight for Alive.
func (p *Persister) writable(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, time.Duration(p.bound.Load()))
	defer cancel()
	end := p.appending.Begin()
	defer end()
	return p.log.Writable(wctx)
}

// attemptAppend makes one attempt to append entries, bounded by bound.
// Meanwhile it pings the database (watch), so that an attempt the bound
// ends says whether the database answered during it (answered): a commit
// that is slow (waiting for a lock, a busy disk) rather than a database
// that does not answer; and an attempt whose database stops answering
// ends within AppendTimeout, whatever its bound. timedOut reports that
// the bound, or a ping left unanswered (hung), not ctx, ended the attempt. Both
// the Append and the pings count as operations in flight for Alive.
func (p *Persister) attemptAppend(ctx context.Context, entries []store.Entry, bound time.Duration) (res store.Appended, timedOut, answered, hung bool, err error) {
	hctx, hang := context.WithCancelCause(ctx)
	defer hang(nil)
	actx, cancel := context.WithTimeout(hctx, bound)
	defer cancel()
	appended := make(chan struct{})
	watched := make(chan bool, 1)
	go func() { watched <- p.watch(actx, appended, hang) }()
	end := p.appending.Begin()
	res, err = p.log.Append(actx, entries)
	end()
	timedOut = err != nil && actx.Err() != nil && ctx.Err() == nil
	close(appended)
	cancel() // ends a ping still in flight
	answered = <-watched
	hung = timedOut && errors.Is(context.Cause(hctx), errNoAnswer)
	return res, timedOut, answered, hung, err
}

// errNoAnswer is the cause that ends an attempt to append when a ping of
// the database went unanswered for half AppendTimeout.
var errNoAnswer = errors.New("the database answered no ping for half append_timeout")

// watch pings the database every half AppendTimeout while an attempt to
// append runs (until appended is closed, or actx ends), each ping bounded
// by half AppendTimeout. A ping that gets no answer in that time ends the
// attempt (hang, with errNoAnswer): so whatever the attempt's bound, a
// database that stops answering is noticed within AppendTimeout. (The
// last ping ends with the attempt's own deadline, which ends the attempt
// anyway; an attempt bounded by AppendTimeout pings once, halfway; none
// starts with less than a quarter of AppendTimeout left.) It returns
// whether the database answered: a ping did, and no later one went
// unanswered or failed. A ping that fails at once (a refused connection)
// is no answer, but no sign of a hang either: it ends nothing, and an
// attempt the bound ends after it gets no longer bound.
func (p *Persister) watch(actx context.Context, appended <-chan struct{}, hang context.CancelCauseFunc) bool {
	half := p.cfg.AppendTimeout / 2
	deadline, _ := actx.Deadline()
	t := time.NewTicker(half)
	defer t.Stop()
	answered := false
	for {
		select {
		case <-appended:
			return answered
		case <-actx.Done():
			return answered
		case <-t.C:
		}
		remaining := time.Until(deadline)
		if remaining < half/2 || actx.Err() != nil {
			// The deadline ends the attempt now: the pings so far tell.
			return answered
		}
		cut := remaining <= half
		pctx, cancel := context.WithTimeout(actx, half)
		end := p.appending.Begin()
		err := p.log.Ping(pctx)
		end()
		cancel()
		switch {
		case err == nil:
			answered = true
		case !cut && actx.Err() == nil && errors.Is(pctx.Err(), context.DeadlineExceeded):
			hang(errNoAnswer)
			return false
		default:
			// The last ping, unanswered when the bound ended the
			// attempt, or one that failed at once (a refused
			// connection: no sign of a hang, but no answer): the
			// latest news is no answer.
			answered = false
		}
	}
}

// commitEach handles a batch the database refused for its content: each
// event is committed alone, and the ones refused alone are dead-lettered,
// so one bad event never blocks the queue.
func (p *Persister) commitEach(ctx, work context.Context, b batch, cause error) {
	if len(b.entries) == 1 {
		p.deadLetter(work, b.msgs[0], cause)
		return
	}
	p.lg.Warn("database refused a batch; committing its events one by one", "events", len(b.entries), "err", cause)
	for i := range b.entries {
		p.commit(ctx, work, batch{entries: b.entries[i : i+1], msgs: b.msgs[i : i+1], since: b.since[i : i+1]})
		if work.Err() != nil {
			return
		}
	}
}

// rejected reports whether err is the database refusing the data itself:
// the same rows fail the same way on every try, whatever the database's
// state, so retrying cannot succeed and the batch is split until the
// refused event is alone and dead-lettered (commitEach). It goes by the
// MariaDB error number (refusedErrors), and by the driver's own refusal
// of a statement over max_allowed_packet.
//
// Everything else is retried, with the backoff and hold_limit: an error
// of the database's availability (store.Transient), and one of its state
// that a single event does not cause and an operator fixes (read-only
// 1290, a full disk 1021 or table 1114, a missing table or column 1146 or
// 1054, a column without a default 1364, no partition for a value 1526, a
// denied grant 1142, a duplicate key 1062 on the (seq, recorded_at)
// primary key, which only a counter row behind its events makes, or an
// error a trigger signals), and every number not listed. Taken for a
// refusal, such an error would dead-letter every event that came while it
// lasted; retried, it costs a held batch and the pause of hold_limit.
func rejected(err error) bool {
	if errors.Is(err, mysql.ErrPktTooLarge) {
		return true
	}
	if me, ok := errors.AsType[*mysql.MySQLError](err); ok {
		_, refused := refusedErrors[me.Number]
		return refused
	}
	return false
}

// storedBody is what the log stores of an event decoded from body: body
// itself, but for a subscription, whose spec (raw JSON, kept as its
// bytes by the registry, node state and outbox rows) is stored as the
// sequenced batch on the bus carries it, re-encoded and so compacted:
// stored as sent ({ "url" : ... }), a follower that read it from the
// database and one that read it from the bus held different bytes for
// one log. Every other field decodes alike from the body and from its
// re-encoding (event.FuzzDecodeBusEqualsLog).
func storedBody(body []byte, ev event.Event) ([]byte, error) {
	if ev.Subscription == nil {
		return body, nil
	}
	b, err := event.EncodeStored(ev)
	if err != nil {
		return nil, fmt.Errorf("re-encode subscription event: %w", err)
	}
	return b, nil
}

// refusedErrors are the MariaDB errors a value of the rows an Append
// writes, or compares, causes: errors of SQLSTATE class 22 (data
// exception) and of class 23 (integrity constraint) but a duplicate key,
// the conversion and collation errors of class HY000, and the limits of
// one row's size and of one packet. Each is raised
// for one value whatever else the database holds, and again on every try
// (the server's sql_mode is STRICT_TRANS_TABLES, so the truncations are
// errors). The migrated schema and the decoder's limits (ids of at most
// 255 bytes of valid UTF-8, sessions in utf8mb4, a known kind) keep most
// of them from happening; a schema altered by hand (a narrower column, a
// latin1 one, a CHECK constraint) or a server setting (max_allowed_packet,
// innodb_strict_mode) brings them back, for some events only.
var refusedErrors = map[uint16]string{
	1048: "column cannot be null (ER_BAD_NULL_ERROR, 23000)",
	1118: "row size too large (ER_TOO_BIG_ROWSIZE, 42000)",
	1153: "packet larger than max_allowed_packet (ER_NET_PACKET_TOO_LARGE, 08S01)",
	1263: "NULL supplied to a NOT NULL column (ER_WARN_NULL_TO_NOTNULL, 22004)",
	1264: "out of range value (ER_WARN_DATA_OUT_OF_RANGE, 22003)",
	1265: "data truncated (WARN_DATA_TRUNCATED, 01000)",
	1267: "illegal mix of collations of two values (ER_CANT_AGGREGATE_2COLLATIONS, HY000)",
	1270: "illegal mix of collations of three values (ER_CANT_AGGREGATE_3COLLATIONS, HY000)",
	1271: "illegal mix of collations, as of an IN list (ER_CANT_AGGREGATE_NCOLLATIONS, HY000)",
	1292: "incorrect value, a datetime (ER_TRUNCATED_WRONG_VALUE, 22007)",
	1300: "invalid character string (ER_INVALID_CHARACTER_STRING, HY000)",
	1366: "incorrect string value (ER_TRUNCATED_WRONG_VALUE_FOR_FIELD, 22007)",
	1367: "illegal value found during parsing (ER_ILLEGAL_VALUE_FOR_TYPE, 22007)",
	1406: "data too long for column (ER_DATA_TOO_LONG, 22001)",
	1525: "incorrect value (ER_WRONG_VALUE, HY000)",
	1690: "value out of range (ER_DATA_OUT_OF_RANGE, 22003)",
	4025: "CHECK constraint failed (ER_CONSTRAINT_FAILED, 23000)",
}

func (p *Persister) committed(b batch, res store.Appended, took time.Duration) {
	p.m.commitSecs.Observe(took.Seconds())
	p.m.batchSize.Observe(float64(len(b.msgs)))
	p.m.committed.Add(float64(len(res.Batch.Records)))
	p.m.duplicates.Add(float64(len(res.Duplicates)))
	if res.ClockBehind > time.Second && len(res.Batch.Records) > 0 {
		// recorded_at is the database server's clock: behind the log's
		// last one, it stepped back (or a persister of an earlier
		// release, which used its own clock, ran ahead).
		p.m.clockBehind.Inc()
		p.lg.Warn("the database server's clock is behind the log's last recorded_at; the records took that time",
			"behind", res.ClockBehind, "first_seq", res.Batch.FirstSeq())
	}
	for _, r := range res.Batch.Records {
		p.m.lag.Observe(r.RecordedAt.Sub(r.Event.ObservedAt).Seconds())
	}
	p.observeIntake(b, res)
	if len(res.Batch.Records) > 0 {
		p.lg.Debug("committed a batch", "first_seq", res.Batch.FirstSeq(), "last_seq", res.Batch.LastSeq(), "duplicates", len(res.Duplicates))
	}
	p.ack(b)
	if len(res.Batch.Records) == 0 {
		return
	}
	select {
	case p.pubCh <- res.Batch:
	default:
		p.m.unpublished.Inc()
		p.lg.Warn("sequenced publish queue full; followers will read the batch from the database", "first_seq", res.Batch.FirstSeq(), "last_seq", res.Batch.LastSeq())
	}
}

// observeIntake observes, for each new record, how long after its
// producer spooled it the log took it. A record whose recorded_at was kept
// from a replayed log (keep_recorded_at) is passed over: its recorded_at
// is not the log's clock.
func (p *Persister) observeIntake(b batch, res store.Appended) {
	dups, k := res.Duplicates, 0
	for i, e := range b.entries {
		if len(dups) > 0 && dups[0] == i {
			dups = dups[1:]
			continue
		}
		if k >= len(res.Batch.Records) {
			return
		}
		r := res.Batch.Records[k]
		k++
		if !e.RecordedAt.IsZero() || i >= len(b.msgs) {
			continue
		}
		if pm, ok := b.msgs[i].(publishedMessage); ok {
			if at := pm.PublishedAt(); !at.IsZero() {
				p.m.intakeDelay.Observe(max(0, r.RecordedAt.Sub(at).Seconds()))
			}
		}
	}
}

// ack acknowledges b's messages, which are committed. Normally one
// multiple ack on the last one does: every earlier delivery of its channel
// is in this batch, in an earlier acked one, or dead-lettered.
func (p *Persister) ack(b batch) {
	toAck, multiple := b.msgs[len(b.msgs)-1:], true
	if _, ok := p.holed.Load(channelOf(b.msgs[len(b.msgs)-1])); ok {
		toAck, multiple = b.msgs, false
	}
	// Acked one by one, each goes on past a failure: the batch may span
	// a reconnect, and the messages of the new channel still need theirs.
	stale := 0
	for _, m := range toAck {
		err := m.Ack(multiple)
		switch {
		case err == nil:
		case errors.Is(err, ErrStale):
			stale++
		default:
			p.lg.Error("ack of a committed event failed; its redelivery will be a duplicate", "events", len(b.msgs), "err", err)
		}
	}
	if stale > 0 {
		p.lg.Info("batch committed but its channel closed before the ack; redeliveries will be duplicates", "events", len(b.msgs), "stale", stale)
	}
}

// publishLoop publishes committed batches in commit order, each bounded by
// PublishTimeout. A failure is logged and skipped: followers notice the gap
// by PrevSeq and read the database.
func (p *Persister) publishLoop(ctx context.Context) {
	for b := range p.pubCh {
		if ctx.Err() != nil {
			p.m.unpublished.Inc()
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
		err := p.seqr.PublishSequenced(pctx, b)
		cancel()
		if err != nil {
			p.m.unpublished.Inc()
			p.lg.Warn("sequenced publish failed; followers will read the batch from the database", "first_seq", b.FirstSeq(), "last_seq", b.LastSeq(), "err", err)
		}
	}
}

// maintain creates partitions ahead and applies retention now and every
// MaintenanceInterval until ctx ends: first the snapshots (keeping the
// newest usable one at or before the retention boundary, the anchor), then
// the event partitions, bounded by the oldest stored snapshot (see
// store.Log.Retain), which after the pruning is the anchor, and last the
// events of the anchor's day up to its seq (store.Log.TrimThrough). All go
// by the log's clock, which dated the records, not by this host's; but
// retention goes by this host's when the log's is ahead of it
// (retentionCut).
// Failures are logged and retried at the next interval; pmax keeps
// inserts working meanwhile.
func (p *Persister) maintain(ctx context.Context) {
	t := time.NewTicker(p.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		if now, err := p.log.Now(ctx); err != nil {
			if ctx.Err() == nil {
				p.lg.Error("partition maintenance and retention skipped", "err", err)
			}
		} else {
			if created, err := p.log.MaintainPartitions(ctx, now, p.cfg.PartitionLookahead); err != nil {
				if ctx.Err() == nil {
					p.lg.Error("partition maintenance failed", "err", err)
				}
			} else if len(created) > 0 {
				p.lg.Info("created partitions", "partitions", created)
			}
			p.retain(ctx, p.retentionCut(now))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clockAheadTolerance is how far the log's clock may run ahead of this
// host's before retention says it goes by this host's (retentionCut).
const clockAheadTolerance = time.Minute

// retentionCut is the retention boundary: Retention before the log's
// clock, now, which dated the records, or before this host's clock if that
// is behind it. A database server whose clock stepped forward (a bad NTP
// source, a VM restored with a wrong clock) makes every record look
// older than it is: by its clock alone, one maintenance round deleted
// what was still within retention, snapshots and events, for good. A host
// clock ahead is already no harm (the log's decides then); retention
// deletes only what both clocks find past it, and a clock behind only
// keeps records longer.
func (p *Persister) retentionCut(logNow time.Time) time.Time {
	at := logNow
	if host := time.Now(); host.Before(logNow) {
		at = host
		if ahead := logNow.Sub(host); ahead > clockAheadTolerance {
			p.lg.Warn("the log's clock (the database server's) is ahead of this host's: retention goes by this host's",
				"ahead", ahead.Round(time.Second), "log_now", logNow, "retention", p.cfg.Retention)
		}
	}
	return at.Add(-p.cfg.Retention)
}

// retentionLockWait is how long retention waits for the retention lock
// (held by `causeway snapshots prune-stale`) before it skips a round.
const retentionLockWait = 10 * time.Second

// retain prunes the snapshots and then the event partitions before cut,
// then deletes the events left of the anchor's day up to the anchor's seq
// (store.Log.TrimThrough), so that the oldest retained event comes right
// after the anchor: without that, the events of its day before it had no
// snapshot at or before them and could not be reconstructed. All of it
// runs under the retention lock, so that nothing else deletes snapshots
// meanwhile (the anchor the partition drop and the trim rely on). Without
// a snapshot store no anchor is checked, nor its seq known: the stored
// snapshots are taken as usable for the partition drop, and no event row
// is deleted.
func (p *Persister) retain(ctx context.Context, cut time.Time) {
	lease, err := p.log.LockRetention(ctx, retentionLockWait)
	if err != nil {
		if ctx.Err() == nil {
			p.lg.Warn("retention skipped this round: its lock is busy (a snapshots prune-stale running?)", "err", err)
		}
		return
	}
	defer lease.Release()
	// Without a snapshot store to check, the snapshots are taken as usable.
	anchored := p.snaps == nil
	var anchor int64 // the anchor's seq, when checked usable
	if p.snaps != nil {
		res, err := p.snaps.Prune(ctx, cut)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				p.lg.Error("snapshot retention failed", "err", err)
			}
		case res.Deleted > 0:
			p.m.snapsPruned.Add(float64(res.Deleted))
			p.lg.Info("pruned snapshots past retention", "deleted", res.Deleted, "anchor_seq", res.AnchorSeq,
				"anchor_recorded_at", res.AnchorRecordedAt, "retention", p.cfg.Retention)
		}
		anchored = err == nil && res.AnchorSeq > 0
		if anchored {
			anchor = res.AnchorSeq
		}
	}
	// The lock goes with its session: should that have dropped, another
	// may be deleting snapshots, and the partition drop must not rely on
	// the ones it saw.
	if err := lease.Held(ctx); err != nil {
		if ctx.Err() == nil {
			p.lg.Warn("retention stopped before dropping partitions: its lock was lost", "err", err)
		}
		return
	}
	dropped, bound, err := p.log.Retain(ctx, cut, anchored)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			p.lg.Error("retention failed", "err", err)
		}
		return
	case len(dropped) > 0:
		p.lg.Info("dropped partitions past retention", "partitions", dropped, "before", bound, "retention", p.cfg.Retention)
	case bound.IsZero():
		p.lg.Warn("retention skipped: no snapshot the processors can restore is stored at or before the boundary and the log starts at seq 1, so every event is still needed to reconstruct the window", "retention", p.cfg.Retention)
	}
	if anchor == 0 {
		return
	}
	// TrimThrough checks the lock before each of its statements.
	n, err := p.log.TrimThrough(ctx, anchor, lease)
	if n > 0 {
		p.m.trimmed.Add(float64(n))
		p.lg.Info("deleted the events up to the retention anchor", "events", n, "anchor_seq", anchor, "retention", p.cfg.Retention)
	}
	if err != nil && ctx.Err() == nil {
		p.lg.Error("retention could not delete the events up to its anchor", "anchor_seq", anchor, "deleted", n, "err", err)
	}
}
