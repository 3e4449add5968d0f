// Package drivers is the pull side of intake: the driver contract and the
// Runner that owns, for every driver, the schedule, the backoff, the
// metrics and the markers of each full pull.
//
// A full pull is published as sync.begin, one entity.upsert per entity and
// sync.end; the processors delete the source's entities that were not
// reported between the begin and the end, by anyone (a webhook listener
// may share the driver's source). The begin is published before the source
// is read, and every event of the pull is observed at the start of the
// read: an entity another path reports after the read started usually
// lands after the begin in the log and so survives the end, and a report
// the other path makes during the read (a resolve) is newer than the
// pull's. "Usually": Publish returns once the begin is spooled, so a
// driver whose spool lags behind the other path's (a broker problem the
// driver alone sees), or two persisters committing out of order, can put
// the other path's event first; the entity is then deleted until the next
// pull reports it.
//
// Every event id of a pull is derived from the source, the pull's sync id,
// the entity's key and a hash of its content, and the sync id from the
// source and the schedule slot, so a pull that is published again after a
// crash (same slot, same content) dedups in the log. (A pull repeated in
// the same slot after it completed has its begin and end dropped as
// duplicates: its deletions wait for the next slot.)
//
// Invariant 1 of DESIGN.md: the Runner moves on from a batch only once
// Publisher.Publish returned nil (the events are confirmed or spooled);
// otherwise it retries the same events with backoff.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/drivers/pull"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/liveness"
)

// Driver is a datasource that can list everything it knows.
type Driver interface {
	// Name is the source of the driver's events; it is unique among the
	// Runner's drivers.
	Name() string
	// GetAll returns every entity the source reports now. An error fails
	// the pull, which is retried with backoff; of it only the sync.begin,
	// published before the read, is in the log (a retry in the same slot
	// reuses it; a later begin of the source supersedes it).
	GetAll(ctx context.Context) ([]event.Entity, error)
}

// ChangesGetter is implemented by drivers that can report what changed
// between full pulls. The events must carry stable event ids.
type ChangesGetter interface {
	GetChanges(ctx context.Context) ([]event.Event, error)
}

// Watcher is implemented by drivers that notice changes themselves (a
// file that changed): Watch calls changed, and the Runner pulls in full at
// once. Watch returns when ctx ends.
type Watcher interface {
	Watch(ctx context.Context, changed func()) error
}

// Publisher is where the Runner hands events; internal/bus.Publisher is
// the real one. Publish returns nil once the events are durable.
type Publisher interface {
	Publish(ctx context.Context, evs ...event.Event) error
}

// Defaults of Schedule.
const (
	DefaultInterval    = time.Minute
	DefaultBackoffMin  = time.Second
	DefaultBackoffMax  = 2 * time.Minute
	DefaultPullTimeout = 30 * time.Second
	DefaultBatchSize   = 500
)

// Schedule configures when a driver is pulled.
type Schedule struct {
	// Interval between full pulls (default 1m). Pulls are aligned to
	// multiples of Interval since the Unix epoch: the "slot" of a pull.
	Interval time.Duration `yaml:"interval"`
	// ChangesInterval, for a ChangesGetter, between change pulls (0: none).
	ChangesInterval time.Duration `yaml:"changes_interval"`
	// Jitter delays each scheduled pull by a random fraction of Interval
	// up to this (0..1, default 0) so drivers of many processes spread out.
	Jitter float64 `yaml:"jitter"`
	// BackoffMin and BackoffMax bound the exponential backoff after a
	// failed pull or publish (defaults 1s, 2m).
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// PullTimeout bounds one GetAll or GetChanges (default 30s).
	PullTimeout time.Duration `yaml:"pull_timeout"`
	// BatchSize is the most events handed to one Publish (default 500).
	BatchSize int `yaml:"batch_size"`
}

// Validate reports every problem of s, naming its YAML key.
func (s Schedule) Validate() error {
	var errs []error
	for _, d := range [...]struct {
		name string
		v    time.Duration
	}{{"interval", s.Interval}, {"changes_interval", s.ChangesInterval}, {"backoff_min", s.BackoffMin}, {"backoff_max", s.BackoffMax}, {"pull_timeout", s.PullTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", d.name))
		}
	}
	if s.Jitter < 0 || s.Jitter > 1 {
		errs = append(errs, fmt.Errorf("jitter: must be between 0 and 1, not %g", s.Jitter))
	}
	if s.BackoffMax > 0 && s.BackoffMax < s.BackoffMin {
		errs = append(errs, errors.New("backoff_max: must be at least backoff_min"))
	}
	if s.BatchSize < 0 {
		errs = append(errs, errors.New("batch_size: must not be negative"))
	}
	return errors.Join(errs...)
}

func (s *Schedule) setDefaults() {
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.BackoffMin == 0 {
		s.BackoffMin = DefaultBackoffMin
	}
	if s.BackoffMax == 0 {
		s.BackoffMax = max(DefaultBackoffMax, s.BackoffMin)
	}
	if s.PullTimeout == 0 {
		s.PullTimeout = DefaultPullTimeout
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	}
}

// Job is one driver with its schedule.
type Job struct {
	Driver   Driver
	Schedule Schedule
}

// Deps are the Runner's collaborators.
type Deps struct {
	Publisher Publisher
	// Logger defaults to one that discards.
	Logger *slog.Logger
	// Registerer defaults to no registration.
	Registerer prometheus.Registerer
	// Now defaults to time.Now.
	Now func() time.Time
	// After defaults to time.After; tests inject a clock (or use
	// testing/synctest).
	After func(time.Duration) <-chan time.Time
	// Rand returns a float in [0,1) for the jitter (default math/rand/v2).
	Rand func() float64
	// StallLimit, when set, replaces every job's stall limit (see
	// Runner.Alive); tests shorten it.
	StallLimit time.Duration
}

// Runner pulls its drivers on their schedules.
type Runner struct {
	jobs []Job
	deps Deps
	log  *slog.Logger
	// ops are the operations in flight of each job (a read of the source
	// or a Publish), and limits how long one may run before Alive says
	// the job is stuck; both indexed like jobs.
	ops    []liveness.Ops
	limits []time.Duration

	pulls    *prometheus.CounterVec
	entities *prometheus.GaugeVec
	seconds  *prometheus.HistogramVec
	events   *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

// Results of the pulls counter.
const (
	ResultOK           = "ok"
	ResultError        = "error"
	ResultPublishError = "publish_error"
)

// New validates the jobs and registers the metrics. It starts nothing.
func New(jobs []Job, deps Deps) (*Runner, error) {
	if deps.Publisher == nil {
		return nil, errors.New("drivers: a Publisher is required")
	}
	var errs []error
	names := map[string]bool{}
	out := make([]Job, len(jobs))
	for i, j := range jobs {
		if j.Driver == nil {
			errs = append(errs, fmt.Errorf("jobs[%d]: driver is nil", i))
			continue
		}
		n := j.Driver.Name()
		if names[n] {
			errs = append(errs, fmt.Errorf("jobs[%d]: driver name %q is used twice", i, n))
		}
		names[n] = true
		if err := j.Schedule.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
		j.Schedule.setDefaults()
		out[i] = j
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.After == nil {
		deps.After = time.After
	}
	if deps.Rand == nil {
		deps.Rand = rand.Float64
	}
	r := &Runner{
		jobs: out, deps: deps, log: deps.Logger.With("component", "drivers"),
		ops: make([]liveness.Ops, len(out)), limits: make([]time.Duration, len(out)),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_driver_pulls_total",
			Help: "Full pulls by driver and result (ok, error, publish_error).",
		}, []string{"driver", "result"}),
		entities: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_driver_entities",
			Help: "Entities reported by the driver's last successful pull.",
		}, []string{"driver"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_driver_pull_seconds",
			Help:    "Duration of a full pull, publishing included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}, []string{"driver"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_driver_events_published_total",
			Help: "Events published by driver (sync markers, upserts and changes).",
		}, []string{"driver"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_driver_events_refused_total",
			Help: "Events a driver produced that do not encode (over the event size limit once encoded, say), left out of what it publishes.",
		}, []string{"driver"}),
	}
	for i, j := range out {
		r.limits[i] = liveness.Limit(j.Schedule.PullTimeout)
		if deps.StallLimit > 0 {
			r.limits[i] = deps.StallLimit
		}
	}
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{r.pulls, r.entities, r.seconds, r.events, r.refused} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register driver metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Alive reports whether no job is stuck: none has had one operation (a
// GetAll or GetChanges of its driver, or a Publish) in flight for longer
// than its limit, four times its pull_timeout and at least two minutes
// (liveness.Limit). A read of the source ends at pull_timeout, and a
// Publish returns once the events are fsynced in the spool, or at once
// when the spool is full, so only a hang outlives the limit: a driver that
// ignores its context, a spool whose disk stopped answering. Waiting for
// the next interval, or backing off while the source or the broker fails,
// is not stuck. systemd's watchdog restarts a driver process that is not
// alive; the next process publishes the abandoned pull again, with the
// same event ids.
func (r *Runner) Alive() bool {
	for i, j := range r.jobs {
		if r.ops[i].Stuck(r.limits[i]) {
			r.log.Error("stuck: an operation has run past the stall limit", "driver", j.Driver.Name(),
				"running_for", r.ops[i].Longest(), "limit", r.limits[i])
			return false
		}
	}
	return true
}

// Run pulls every driver on its schedule until ctx ends, and returns nil
// then. A pull in progress is abandoned at ctx end: its unpublished events
// are published again, with the same ids, by the next process.
func (r *Runner) Run(ctx context.Context) error {
	done := make(chan struct{}, len(r.jobs))
	for i, j := range r.jobs {
		go func() {
			defer func() { done <- struct{}{} }()
			r.runJob(ctx, j, &r.ops[i])
		}()
	}
	for range r.jobs {
		<-done
	}
	return nil
}

func (r *Runner) runJob(ctx context.Context, j Job, ops *liveness.Ops) {
	name := j.Driver.Name()
	log := r.log.With("driver", name)
	trigger := make(chan struct{}, 1)
	watchDone := make(chan struct{})
	if w, ok := j.Driver.(Watcher); ok {
		go func() {
			defer close(watchDone)
			err := w.Watch(ctx, func() {
				select {
				case trigger <- struct{}{}:
				default:
				}
			})
			if err != nil && ctx.Err() == nil {
				log.Error("watch failed", "err", err)
			}
		}()
	} else {
		close(watchDone)
	}
	defer func() { <-watchDone }()

	cg, hasChanges := j.Driver.(ChangesGetter)
	s := j.Schedule
	slot := r.deps.Now().Truncate(s.Interval)
	triggered := false
	for {
		// Pull for this slot until it is published, with backoff; the
		// slot's sync.begin is published once.
		backoff := s.BackoffMin
		begun := false
		for {
			err := r.pull(ctx, j, ops, slot, triggered, &begun)
			if err == nil || ctx.Err() != nil {
				break
			}
			log.Warn("pull failed", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-r.deps.After(backoff):
			}
			backoff = min(2*backoff, s.BackoffMax)
		}
		if ctx.Err() != nil {
			return
		}
		// Wait for the next slot, a trigger, or change pulls meanwhile.
		// Slots that passed while this pull was retried are not pulled
		// one after the other: the pull just published, read during the
		// current slot, stands for them and for it.
		next := slot.Truncate(s.Interval).Add(s.Interval)
		if cur := r.deps.Now().Truncate(s.Interval); cur.After(next) {
			log.Info("slots that passed while the pull was retried are skipped", "skipped", int(cur.Sub(next)/s.Interval)+1)
			next = cur.Add(s.Interval)
		}
		if s.Jitter > 0 {
			next = next.Add(time.Duration(r.deps.Rand() * s.Jitter * float64(s.Interval)))
		}
		triggered = false
	wait:
		for {
			d := next.Sub(r.deps.Now())
			var changes <-chan time.Time
			if hasChanges && s.ChangesInterval > 0 && s.ChangesInterval < d {
				changes = r.deps.After(s.ChangesInterval)
			}
			select {
			case <-ctx.Done():
				return
			case <-r.deps.After(max(d, 0)):
				slot = next.Truncate(s.Interval)
				break wait
			case <-trigger:
				slot = r.deps.Now()
				triggered = true
				break wait
			case <-changes:
				if err := r.pullChanges(ctx, j, ops, cg); err != nil && ctx.Err() == nil {
					log.Warn("change pull failed", "err", err)
				}
			}
		}
	}
}

// pull runs one full pull for slot: it publishes the slot's sync.begin
// unless *begun says it was, then reads the source and publishes the
// entities and the sync.end in batches. A failed Publish of a batch is
// retried (same events) before the pull gives up. The read and each
// Publish are operations of ops.
func (r *Runner) pull(ctx context.Context, j Job, ops *liveness.Ops, slot time.Time, triggered bool, begun *bool) error {
	name := j.Driver.Name()
	start := r.deps.Now() // what the read reports is observed now
	syncID := pull.SyncID(name, slot)
	if !*begun {
		if err := r.publish(ctx, ops, name, []event.Event{pull.Begin(name, slot, start)}); err != nil {
			r.pulls.WithLabelValues(name, ResultPublishError).Inc()
			return fmt.Errorf("publish sync.begin of %s (sync %s): %w", name, syncID, err)
		}
		*begun = true
	}
	pctx, cancel := context.WithTimeout(ctx, j.Schedule.PullTimeout)
	end := ops.Begin()
	ents, err := j.Driver.GetAll(pctx)
	end()
	cancel()
	if err != nil {
		r.pulls.WithLabelValues(name, ResultError).Inc()
		return fmt.Errorf("get all from %s: %w", name, err)
	}
	evs, err := pull.Body(name, slot, start, ents)
	if err != nil {
		r.pulls.WithLabelValues(name, ResultError).Inc()
		return err
	}
	for i := 0; i < len(evs); i += j.Schedule.BatchSize {
		batch := evs[i:min(i+j.Schedule.BatchSize, len(evs))]
		if err := r.publish(ctx, ops, name, batch); err != nil {
			r.pulls.WithLabelValues(name, ResultPublishError).Inc()
			return fmt.Errorf("publish %d events of %s (sync %s): %w", len(batch), name, syncID, err)
		}
	}
	r.pulls.WithLabelValues(name, ResultOK).Inc()
	r.entities.WithLabelValues(name).Set(float64(len(ents)))
	r.seconds.WithLabelValues(name).Observe(r.deps.Now().Sub(start).Seconds())
	r.log.Debug("pull published", "driver", name, "sync_id", syncID, "entities", len(ents), "triggered", triggered)
	return nil
}

// publish publishes evs. An event the publisher refuses for good (one
// that does not encode: over event.MaxEventBytes once encoded, say) is
// left out, logged and counted, and the others are published: kept, it
// would fail every attempt and stop the driver's pulls for ever. An entity
// left out of a full pull is missing from it, as the persister
// dead-lettering it would make it. Each Publish is an operation of ops.
func (r *Runner) publish(ctx context.Context, ops *liveness.Ops, name string, evs []event.Event) error {
	for {
		end := ops.Begin()
		err := r.deps.Publisher.Publish(ctx, evs...)
		end()
		if err == nil {
			r.events.WithLabelValues(name).Add(float64(len(evs)))
			return nil
		}
		var bad *event.ItemError
		if !errors.As(err, &bad) || bad.Index < 0 || bad.Index >= len(evs) {
			return err
		}
		r.refused.WithLabelValues(name).Inc()
		r.log.Error("event refused: it does not encode", "driver", name, "event_id", bad.EventID, "err", bad.Err)
		evs = slices.Delete(slices.Clone(evs), bad.Index, bad.Index+1)
		if len(evs) == 0 {
			return nil
		}
	}
}

func (r *Runner) pullChanges(ctx context.Context, j Job, ops *liveness.Ops, cg ChangesGetter) error {
	name := j.Driver.Name()
	pctx, cancel := context.WithTimeout(ctx, j.Schedule.PullTimeout)
	end := ops.Begin()
	evs, err := cg.GetChanges(pctx)
	end()
	cancel()
	if err != nil {
		return fmt.Errorf("get changes from %s: %w", name, err)
	}
	for i := 0; i < len(evs); i += j.Schedule.BatchSize {
		batch := evs[i:min(i+j.Schedule.BatchSize, len(evs))]
		backoff := j.Schedule.BackoffMin
		for {
			err := r.publish(ctx, ops, name, batch)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.Warn("publish changes failed", "driver", name, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-r.deps.After(backoff):
			}
			backoff = min(2*backoff, j.Schedule.BackoffMax)
		}
	}
	return nil
}
