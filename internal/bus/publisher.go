package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/clip"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/liveness"
)

// Sentinel errors of the Publisher.
var (
	// ErrSpoolFull means the spool is at its configured limit (bytes or
	// events): the broker has been away, or too slow, for too long. The
	// events of the failed call were not accepted; the caller refuses its
	// input (HTTP 503) or retries later.
	ErrSpoolFull = errors.New("bus: spool full")
	// ErrClosed means Publish was called after Close.
	ErrClosed = errors.New("bus: publisher closed")
)

// ContentType of event messages (event.Encode's output).
const ContentType = "application/json"

// Publisher publishes events to EventsExchange (or PublisherConfig.Exchange)
// through a local disk spool.
//
// Publish may be called from any number of goroutines, before, during and
// after Run; concurrent calls are grouped into one fsynced spool commit.
// Run (one at a time) moves the spool to the broker: it publishes spooled
// events in spool order, persistent and mandatory, with up to MaxInFlight
// confirms outstanding (a sync marker alone: isBarrier), and deletes each event from the spool once the
// broker confirms it. A nack or a return (unroutable) ends the broker
// session: the topology is declared again on the next connection and the
// unconfirmed events are sent again. Close releases the spool file after Run
// has returned.
type Publisher struct {
	cfg   PublisherConfig
	log   *slog.Logger
	now   func() time.Time
	conn  *connector
	spool *spool
	// peakInFlight is the largest window reached, for tests and the
	// in-flight gauge's sake.
	peakInFlight atomic.Int64
	// nReturned counts messages returned unroutable (Returned).
	nReturned atomic.Int64
	// sessionUp is set while a broker session is set up and sending
	// (Drain).
	sessionUp atomic.Bool
	inFlight  prometheus.Gauge
	// sent, when set (tests), is told each message sent and how many are
	// then in flight, itself included.
	sent func(id string, inFlight int)

	// sending holds the step of the broker session in flight, and
	// committing the spool's commit in flight (Alive); stallLimit is how
	// long one may run before the publisher is stuck.
	sending, committing liveness.Ops
	stallLimit          time.Duration

	spoolFull  prometheus.Counter
	published  prometheus.Counter
	confirmed  prometheus.Counter
	nacked     prometheus.Counter
	returned   prometheus.Counter
	corrupt    prometheus.Counter
	latency    prometheus.Histogram
	commitSecs prometheus.Histogram
	commitSize prometheus.Histogram
}

// NewPublisher validates cfg and opens (or creates) the spool file. Events
// left in the spool by an earlier process, even one killed with SIGKILL, are
// sent again by Run.
func NewPublisher(cfg PublisherConfig, deps Deps) (*Publisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("publisher config: %w", err)
	}
	deps = deps.withDefaults("bus.publisher")
	var labels prometheus.Labels
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	}
	p := &Publisher{
		cfg: cfg, log: deps.Logger, now: deps.Now, stallLimit: liveness.Limit(cfg.ConfirmTimeout),
		spoolFull: counter("causeway_bus_spool_full_total", "Publish calls refused because the spool was full."),
		published: counter("causeway_bus_published_total", "Messages sent to the broker (re-sends included)."),
		confirmed: counter("causeway_bus_confirmed_total", "Messages confirmed by the broker and removed from the spool."),
		nacked:    counter("causeway_bus_nacked_total", "Messages nacked by the broker or lost with their channel; they stay spooled."),
		returned:  counter("causeway_bus_returned_total", "Messages returned as unroutable; they stay spooled."),
		corrupt:   counter("causeway_bus_spool_corrupt_total", "Spool records that failed to decode, moved to the corrupt bucket."),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_bus_in_flight", ConstLabels: labels,
			Help: "Messages published and not yet confirmed.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causeway_bus_publish_latency_seconds", ConstLabels: labels,
			Help:    "Time from spooling an event to its broker confirm.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causeway_bus_spool_commit_seconds", ConstLabels: labels,
			Help:    "Duration of one fsynced spool commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "causeway_bus_spool_commit_events", ConstLabels: labels,
			Help:    "Events per spool commit (concurrent Publish calls share one).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
	}
	conn, err := newConnector(cfg.Conn, deps.Logger, "publisher", nil, deps.Registerer)
	if err != nil {
		return nil, err
	}
	p.conn = conn
	sp, err := openSpool(cfg.SpoolPath, cfg.SpoolMaxBytes, cfg.SpoolMaxEvents, spoolCompactMin, &p.committing, p.log)
	if err != nil {
		return nil, err
	}
	sp.commitHook = func(n int, d time.Duration) {
		p.commitSecs.Observe(d.Seconds())
		p.commitSize.Observe(float64(n))
	}
	p.spool = sp
	err = register(deps.Registerer,
		p.spoolFull, p.published, p.confirmed, p.nacked, p.returned, p.corrupt,
		p.inFlight, p.latency, p.commitSecs, p.commitSize,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "causeway_bus_spool_events", ConstLabels: labels,
			Help: "Events in the spool, not yet confirmed by the broker.",
		}, func() float64 { n, _ := sp.size(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "causeway_bus_spool_bytes", ConstLabels: labels,
			Help: "Encoded bytes in the spool, not yet confirmed by the broker.",
		}, func() float64 { _, b := sp.size(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "causeway_bus_spool_file_bytes", ConstLabels: labels,
			Help: "Size of the spool file on disk; it shrinks back once a large backlog has drained.",
		}, sp.fileSize),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "causeway_bus_spool_compactions_total", ConstLabels: labels,
			Help: "Compactions of the spool file that gave the pages of a drained backlog back to the file system.",
		}, func() float64 { return float64(sp.compactions.Load()) }),
	)
	if err != nil {
		_ = sp.close()
		return nil, err
	}
	if n, b := sp.size(); n > 0 {
		p.log.Info("spool holds events from an earlier run", "events", n, "bytes", b)
	}
	return p, nil
}

// Publish appends evs to the spool and returns once they are fsynced there:
// from then on they reach the broker at least once, across broker outages
// and restarts of this process. Each event is encoded with event.Encode; an
// invalid event fails the whole call (wrapping event.ErrInvalid) and nothing
// of it is spooled. It fails with ErrSpoolFull when the spool is at its
// limit and with ctx's error if ctx ends first (the events may then have
// been spooled or not: re-publishing them is a harmless duplicate).
func (p *Publisher) Publish(ctx context.Context, evs ...event.Event) error {
	return p.publish(ctx, len(evs), event.Encode, func(i int) (event.Event, time.Time) { return evs[i], time.Time{} })
}

// PublishRecords is Publish for records of a log that a replay
// re-publishes: each message also carries its record's recorded_at in
// RecordedAtHeader, which a persister configured to keep it
// (keep_recorded_at) stores instead of its own clock's time. The events
// are encoded as stored ones (event.EncodeStored): a log written before a
// rule of input was added is re-published as it is.
func (p *Publisher) PublishRecords(ctx context.Context, recs ...event.Record) error {
	return p.publish(ctx, len(recs), event.EncodeStored, func(i int) (event.Event, time.Time) { return recs[i].Event, recs[i].RecordedAt })
}

// DeadEvent is an event that cannot go to the log (too large once encoded,
// say) and is dead-lettered instead, with the reason.
type DeadEvent struct {
	Event  event.Event
	Reason string
}

// MaxDeadLetterBytes bounds the body of a dead letter: a larger event is
// dead-lettered with its body clipped to it (no longer JSON then), as its
// reason says. RabbitMQ refuses messages over its max_message_size (16
// MiB by default since 4.0).
const MaxDeadLetterBytes = 16 << 20

// PublishOrDeadLetter is Publish of evs and, in the same fsynced spool
// commit, of dead: each sent to DeadLetterExchange (so to DeadLetterQueue,
// which `causeway dlq` reads) with its Reason in ReasonHeader, instead of
// to the events exchange. A dead letter's body is its event as JSON, of
// whatever size up to MaxDeadLetterBytes; its message id is the event id.
// Nothing is spooled unless all is.
func (p *Publisher) PublishOrDeadLetter(ctx context.Context, evs []event.Event, dead []DeadEvent) error {
	vals, err := p.records(len(evs), event.Encode, func(i int) (event.Event, time.Time) { return evs[i], time.Time{} })
	if err != nil {
		return err
	}
	now := p.now().UnixNano()
	for _, d := range dead {
		body, err := event.Marshal(d.Event)
		if err != nil {
			return fmt.Errorf("dead-letter event %s: %w", d.Event.EventID, err)
		}
		reason := cmp.Or(d.Reason, "dead-lettered on publish")
		if len(body) > MaxDeadLetterBytes {
			reason = fmt.Sprintf("%s (body clipped to %d of its %d bytes)", reason, MaxDeadLetterBytes, len(body))
			body = body[:MaxDeadLetterBytes]
		}
		vals = append(vals, encodeRecord(record{
			messageID:  d.Event.EventID,
			routingKey: RoutingKey(d.Event.Source, string(d.Event.Kind)),
			body:       body,
			enqueued:   now,
			reason:     clip.String(reason, MaxReasonBytes),
		}))
	}
	return p.append(ctx, vals)
}

func (p *Publisher) publish(ctx context.Context, n int, encode func(event.Event) ([]byte, error), at func(int) (event.Event, time.Time)) error {
	vals, err := p.records(n, encode, at)
	if err != nil {
		return err
	}
	return p.append(ctx, vals)
}

func (p *Publisher) records(n int, encode func(event.Event) ([]byte, error), at func(int) (event.Event, time.Time)) ([][]byte, error) {
	now := p.now().UnixNano()
	vals := make([][]byte, n)
	for i := range n {
		ev, recordedAt := at(i)
		body, err := encode(ev)
		if err != nil {
			return nil, fmt.Errorf("publish: %w", &event.ItemError{Index: i, EventID: ev.EventID, Err: err})
		}
		r := record{
			messageID:  ev.EventID,
			routingKey: RoutingKey(ev.Source, string(ev.Kind)),
			body:       body,
			enqueued:   now,
		}
		if !recordedAt.IsZero() {
			r.recordedAt = recordedAt.UnixNano()
		}
		vals[i] = encodeRecord(r)
	}
	return vals, nil
}

func (p *Publisher) append(ctx context.Context, vals [][]byte) error {
	if len(vals) == 0 {
		return nil
	}
	if err := p.spool.append(ctx, vals); err != nil {
		if errors.Is(err, ErrSpoolFull) {
			p.spoolFull.Inc()
		}
		return fmt.Errorf("publish %d events: %w", len(vals), err)
	}
	return nil
}

// Spooled reports the events and bytes currently in the spool (published or
// not, but not yet confirmed).
func (p *Publisher) Spooled() (events int, bytes int64) { return p.spool.size() }

// Returned is how many messages the broker returned as unroutable (they
// stay spooled and are sent again): on a custom Exchange with nothing
// bound to it, the sign that nothing will ever take them.
func (p *Publisher) Returned() int64 { return p.nReturned.Load() }

// drainPoll is how often Drain looks at the spool.
const drainPoll = 20 * time.Millisecond

// Drain waits, while Run runs, until the broker has confirmed every event
// in the spool, and returns nil then: a component that stops calls it
// once its intake has stopped, so that what it accepted reaches the
// broker before the process exits rather than at its next start. It
// gives up, with an error saying how many events are left, when ctx ends
// or when Run has no broker session (the broker is away, or Run has
// returned): waiting would only delay the stop, and the spool keeps those
// events for the next start.
func (p *Publisher) Drain(ctx context.Context) error {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		n, _ := p.spool.size()
		if n == 0 {
			return nil
		}
		if !p.sessionUp.Load() {
			return fmt.Errorf("drain: %d events left in the spool: no broker session", n)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %d events left in the spool: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// Close closes the spool file. Call it after Run has returned; Publish then
// fails with ErrClosed.
func (p *Publisher) Close() error { return p.spool.close() }

// Alive reports whether the publisher is not stuck: no spool commit (an
// fsync), and no step of its broker session (setting the channel up,
// reading the spool, sending one message, waiting for the oldest confirm,
// which confirm_timeout bounds), has been in flight for longer than four
// times confirm_timeout, at least two minutes (liveness.Limit). Waiting for
// events to send is not stuck, nor is reconnecting with backoff while the
// broker is away, nor a step the broker holds up by blocking the
// connection (a resource alarm) until that limit has passed since it
// stopped: a restart would not help. systemd's watchdog restarts a process
// whose publisher is not alive; the spool keeps what it holds.
func (p *Publisher) Alive() bool {
	if d := p.committing.Longest(); d > p.stallLimit {
		p.log.Error("stuck: a spool commit has run past the stall limit", "running_for", d, "limit", p.stallLimit)
		return false
	}
	if d := p.sending.Longest(); d > p.stallLimit && !p.conn.blockedWithin(p.stallLimit) {
		p.log.Error("stuck: a step of the broker session has run past the stall limit", "running_for", d, "limit", p.stallLimit)
		return false
	}
	return true
}

// Run publishes the spool until ctx ends, reconnecting with backoff. It
// returns nil when ctx ends; events not yet confirmed stay in the spool.
func (p *Publisher) Run(ctx context.Context) error {
	return p.conn.run(ctx, p.session)
}

type inFlight struct {
	key      uint64
	id       string
	enqueued int64
	sent     time.Time
	dc       *amqp.DeferredConfirmation
}

// session publishes the spool over one connection until it fails or ctx
// ends. Each session starts again from the head of the spool, so events
// left unconfirmed by the previous one are sent again, in order. Its
// setup, each read of the spool, each message sent and each wait for the
// oldest confirm is a step tracked by p.sending (waiting for events to
// send is none): a send phase of up to max_in_flight large messages over
// a slow link may take longer than the stall limit as a whole while it
// progresses, and only a message that does not go out, or a confirm that
// does not come, is stuck.
func (p *Publisher) session(ctx context.Context, conn *amqp.Connection) error {
	end := p.sending.Begin()
	defer func() { end() }()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if _, err := DeclareTopology(conn); err != nil {
		return err
	}
	if p.cfg.Exchange != EventsExchange {
		if err := ch.ExchangeDeclare(p.cfg.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", p.cfg.Exchange, err)
		}
	}
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("enable confirms: %w", err)
	}
	window := p.cfg.MaxInFlight
	// At most window messages are unconfirmed, and each is returned at most
	// once, so this buffer never fills and never blocks the library's reader.
	returns := ch.NotifyReturn(make(chan amqp.Return, window+1))
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))
	p.conn.connected.Set(1)
	p.sessionUp.Store(true)
	defer p.sessionUp.Store(false)

	var (
		flight    []inFlight
		confirmed []uint64
		cursor    uint64
		unrouted  = map[string]int{} // message ids returned, not yet settled
		hold      bool               // a barrier is in flight
	)
	// Confirmed keys go to the spool's committer without waiting: the
	// sender never stalls on an fsync. A session starts by flushing them, so
	// it does not re-send what the previous one had confirmed.
	if err := p.spool.flush(); err != nil {
		return err
	}
	defer p.inFlight.Set(0)
	// Since Go 1.23 Reset on a timer also drains it, so one timer serves
	// every wait below.
	confirmTimer := time.NewTimer(p.cfg.ConfirmTimeout)
	defer confirmTimer.Stop()
	for {
		end()
		end = p.sending.Begin()
		if ctx.Err() != nil {
			return nil
		}
		// A barrier (a sync marker) in flight holds every later event back
		// until it is confirmed.
		if free := window - len(flight); free > 0 && !hold {
			recs, bad, err := p.spool.read(cursor, free)
			if err != nil {
				return err
			}
			if len(bad) > 0 {
				p.corrupt.Add(float64(len(bad)))
				p.log.Error("corrupt spool records moved aside", "count", len(bad))
				// Moved out of the events bucket, they are not read
				// again; the cursor stays on the last record sent, so a
				// record before them that is held back (a marker waiting
				// for the events in flight) is read again, not skipped.
				if err := p.spool.quarantine(bad); err != nil {
					return err
				}
			}
			for _, r := range recs {
				if isBarrier(r.routingKey) {
					if len(flight) > 0 {
						break // sent once everything before it is confirmed
					}
					hold = true
				}
				msg := amqp.Publishing{
					ContentType:  ContentType,
					DeliveryMode: amqp.Persistent,
					MessageId:    r.messageID,
					Timestamp:    time.Unix(0, r.enqueued),
					Body:         r.body,
				}
				if r.recordedAt != 0 {
					msg.Headers = amqp.Table{RecordedAtHeader: time.Unix(0, r.recordedAt).UTC().Format(time.RFC3339Nano)}
				}
				exchange := p.cfg.Exchange
				if r.reason != "" {
					exchange, msg.Headers = DeadLetterExchange, amqp.Table{ReasonHeader: r.reason}
				}
				end()
				end = p.sending.Begin()
				// Clipped again: a record spooled by an earlier release
				// may hold a key AMQP cannot carry.
				dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, clip.String(r.routingKey, MaxRoutingKey), true, false, msg)
				if err != nil {
					return fmt.Errorf("publish event %s: %w", r.messageID, err)
				}
				p.published.Inc()
				flight = append(flight, inFlight{key: r.key, id: r.messageID, enqueued: r.enqueued, sent: time.Now(), dc: dc})
				cursor = r.key
				if p.sent != nil {
					p.sent(r.messageID, len(flight))
				}
				if hold {
					break
				}
			}
			p.inFlight.Set(float64(len(flight)))
			if n := int64(len(flight)); n > p.peakInFlight.Load() {
				p.peakInFlight.Store(n)
			}
		}
		if len(flight) == 0 {
			end() // waiting for events to send is no step
			select {
			case <-ctx.Done():
				return nil
			case e := <-chClosed:
				return fmt.Errorf("channel closed: %w", channelErr(e))
			case <-p.spool.appended:
			}
			continue
		}
		var more <-chan struct{}
		if len(flight) < window && !hold {
			more = p.spool.appended
		}
		end()
		end = p.sending.Begin()
		confirmTimer.Reset(time.Until(flight[0].sent.Add(p.cfg.ConfirmTimeout)))
		select {
		case <-ctx.Done():
			return nil
		case e := <-chClosed:
			return fmt.Errorf("channel closed: %w", channelErr(e))
		case <-more:
			continue
		case <-confirmTimer.C:
			if p.conn.isBlocked.Load() {
				flight[0].sent = time.Now() // the broker said it is busy: wait on
				continue
			}
			return fmt.Errorf("no confirm for event %s within %s", flight[0].id, p.cfg.ConfirmTimeout)
		case <-flight[0].dc.Done():
		}
		failed := 0
		now := p.now().UnixNano()
	settle:
		for len(flight) > 0 {
			head := flight[0]
			select {
			case <-head.dc.Done():
			default:
				break settle
			}
			// A return precedes the ack of its message, and the library
			// queues it to us before it handles that ack.
		drain:
			for {
				select {
				case r, ok := <-returns:
					if !ok {
						break drain
					}
					unrouted[r.MessageId]++
				default:
					break drain
				}
			}
			flight = flight[1:]
			switch {
			case !head.dc.Acked():
				// It stays spooled and is sent again next session, after
				// the events acked behind it: a nack (a quorum queue
				// without a leader, a reject-publish overflow) can move an
				// event up to MaxInFlight places later in the log, though
				// never across a sync marker (isBarrier). Keeping those
				// spooled too would not help: the log keeps the first copy
				// of an event id.
				p.nacked.Inc()
				failed++
			case unrouted[head.id] > 0:
				unrouted[head.id]--
				p.returned.Inc()
				p.nReturned.Add(1)
				failed++
			default:
				confirmed = append(confirmed, head.key)
				p.confirmed.Inc()
				p.latency.Observe(time.Duration(now - head.enqueued).Seconds())
			}
		}
		p.spool.remove(confirmed)
		confirmed = confirmed[:0]
		if len(flight) == 0 {
			hold = false
		}
		if failed > 0 {
			return fmt.Errorf("%d events nacked or returned unroutable by the broker", failed)
		}
	}
}

// isBarrier says an event of this routing key is sent alone: after every
// event before it is confirmed, and before any after it is sent. A nack
// leaves its event spooled for the next session while the events acked
// behind it reach the log first, up to MaxInFlight places ahead of it;
// that is harmless between upserts, but a sync.begin that lands after the
// pull's upserts makes its sync.end delete every entity the pull
// reported, and a sync.end that lands after the next pull's begin is
// refused. Pull markers are rare, so the round trip each costs is not.
func isBarrier(routingKey string) bool {
	return strings.HasSuffix(routingKey, "."+string(event.KindSyncBegin)) || strings.HasSuffix(routingKey, "."+string(event.KindSyncEnd))
}

func channelErr(e *amqp.Error) error {
	if e == nil {
		return amqp.ErrClosed
	}
	return e
}
