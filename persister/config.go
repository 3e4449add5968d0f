package persister

import (
	"errors"
	"time"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultBatchSize           = 500
	DefaultBatchWait           = 10 * time.Millisecond
	DefaultPrefetch            = 2000
	DefaultRetention           = 30 * 24 * time.Hour
	DefaultPartitionLookahead  = 3
	DefaultMaintenanceInterval = time.Hour
	DefaultShutdownGrace       = 10 * time.Second
	DefaultRetryMin            = 100 * time.Millisecond
	DefaultRetryMax            = 10 * time.Second
	DefaultPublishTimeout      = 5 * time.Second
	DefaultAppendTimeout       = 30 * time.Second
	DefaultHoldLimit           = 15 * time.Minute
)

// Config configures a Persister (YAML section "persister").
type Config struct {
	// BatchSize is the most events committed in one transaction.
	BatchSize int `yaml:"batch_size"`
	// BatchWait is how long a batch waits for more events after its first
	// before it is committed anyway.
	BatchWait time.Duration `yaml:"batch_wait"`
	// Prefetch is the broker's window of unacked deliveries; at least
	// BatchSize, so a batch can fill while the previous one commits.
	Prefetch int `yaml:"prefetch"`
	// Retention is how long events are kept; older day partitions are
	// dropped whole. Zero means the default (30 days).
	Retention time.Duration `yaml:"retention"`
	// PartitionLookahead is how many days of partitions are created ahead
	// of today.
	PartitionLookahead int `yaml:"partition_lookahead"`
	// MaintenanceInterval is how often partitions are created ahead and
	// retention is applied.
	MaintenanceInterval time.Duration `yaml:"maintenance_interval"`
	// ShutdownGrace bounds the time after the stop signal for committing
	// and acking the batch in flight.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// RetryMin and RetryMax bound the exponential backoff of a failed
	// commit (MariaDB down).
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// AppendTimeout bounds one attempt to commit a batch. A database
	// that stopped answering (frozen, or cut off by a network that drops
	// everything) fails the attempt then, rather than when the kernel's
	// TCP timeout ends the connection, and the batch is retried with the
	// backoff, its deliveries still unacked: the hang costs neither a
	// restart nor a redelivery. An attempt that times out while the
	// database still answers a ping (slow, not down: a commit of a full
	// batch that needs longer) makes the next attempt's bound twice as
	// long, up to 10 minutes, until one commits. The bound learned so
	// stays for the next batches (a database slow all the time would
	// otherwise cost each batch the same timed-out attempts again), and
	// comes down as commits show it can: each one that takes at most a
	// quarter of it halves it, down to AppendTimeout. A hang is noticed
	// within AppendTimeout whatever the bound: during an attempt the
	// database is pinged every half AppendTimeout, a ping unanswered that
	// long ends the attempt, and the bound is AppendTimeout again.
	AppendTimeout time.Duration `yaml:"append_timeout"`
	// HoldLimit is how long a batch may be held unacked without a
	// commit, from the earliest time the broker may have delivered one
	// of its messages: not from when the persister read it, since a
	// message delivered while the persister reads nothing (its next
	// batch full while a commit attempt runs, up to 10 minutes) waits
	// in the client's prefetch buffer, and the broker's clock runs
	// meanwhile. (That time is bounded from below: a message read after
	// the persister last waited on an empty stream for some milliseconds,
	// longer than a delivery takes to pass through the client, dates from
	// then, and
	// the n-th delivery of a channel from the read of its
	// (n-prefetch)-th, since the broker delivers only prefetch unacked
	// messages at a time.) Past it, after a
	// failed attempt, the persister hands the batch back to the queue
	// with every other unacked message and stops consuming until the
	// log takes writes (a write in a transaction rolled back; a ping
	// would not tell a read-only database), then consumes again: an
	// outage of any length costs each held message one redelivery (but
	// one that fails only the batch's own writes, a full disk, costs one
	// each hold limit). Holding on instead,
	// the broker's consumer_timeout (30 minutes by default) would close
	// the channel, and the queue redeliver the batch, once per timeout,
	// each toward the persist queue's delivery limit (100), past which
	// valid events are dead-lettered. Keep it under consumer_timeout,
	// by one attempt's bound at least (a batch is handed back only
	// between attempts, and no attempt holds it past hold_limit plus the
	// bound: a first attempt that comes late, its batch having waited
	// behind slow commits, gets only what is left of that, or none, and
	// the batch is handed back); the default is half the broker's default.
	HoldLimit time.Duration `yaml:"hold_limit"`
	// PublishTimeout bounds the publish of one sequenced batch, and of one
	// event to the dead-letter queue (past it the event is rejected, and
	// the broker dead-letters it without the reason).
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// KeepRecordedAt stores the recorded_at a replay re-published an event
	// with (bus.RecordedAtHeader) instead of this persister's clock, for a
	// second Causeway instance fed by `causeway replay --republish-url`:
	// its log then has the times of the log replayed, and its graph is the
	// one `replay --at` rebuilds, timestamps included. Never on a live
	// stack, whose recorded_at must be its own; off by default. A header
	// that does not parse, or is past year 9999 in UTC, is dead-lettered
	// as invalid.
	KeepRecordedAt bool `yaml:"keep_recorded_at"`
}

func (c *Config) setDefaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Prefetch == 0 {
		c.Prefetch = max(DefaultPrefetch, 2*c.BatchSize)
	}
	if c.PartitionLookahead == 0 {
		c.PartitionLookahead = DefaultPartitionLookahead
	}
	set(&c.BatchWait, DefaultBatchWait)
	set(&c.Retention, DefaultRetention)
	set(&c.MaintenanceInterval, DefaultMaintenanceInterval)
	set(&c.ShutdownGrace, DefaultShutdownGrace)
	set(&c.RetryMin, DefaultRetryMin)
	set(&c.RetryMax, DefaultRetryMax)
	set(&c.PublishTimeout, DefaultPublishTimeout)
	set(&c.AppendTimeout, DefaultAppendTimeout)
	set(&c.HoldLimit, DefaultHoldLimit)
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	c.setDefaults()
	return c
}

// Validate reports every problem of c (after defaults), naming its YAML key.
func (c Config) Validate() error {
	var errs []error
	add := func(msg string) { errs = append(errs, errors.New(msg)) }
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		add("batch_size: must be between 1 and 10000")
	}
	if c.BatchWait <= 0 || c.BatchWait > time.Minute {
		add("batch_wait: must be positive and at most 1m")
	}
	if c.Prefetch < c.BatchSize {
		add("prefetch: must be at least batch_size (a batch could never fill)")
	}
	if c.Prefetch > 65535 {
		add("prefetch: must be at most 65535 (AMQP limit)")
	}
	if c.Retention < 48*time.Hour {
		add("retention: must be at least 48h (partitions are one day)")
	}
	if c.PartitionLookahead < 1 || c.PartitionLookahead > 366 {
		add("partition_lookahead: must be between 1 and 366 days")
	}
	if c.MaintenanceInterval < time.Minute || c.MaintenanceInterval > 12*time.Hour {
		add("maintenance_interval: must be between 1m and 12h (partitions must be created ahead of each day)")
	}
	if c.ShutdownGrace <= 0 {
		add("shutdown_grace: must be positive")
	}
	if c.RetryMin <= 0 {
		add("retry_min: must be positive")
	}
	if c.RetryMax < c.RetryMin {
		add("retry_max: must be at least retry_min")
	}
	if c.PublishTimeout <= 0 {
		add("publish_timeout: must be positive")
	}
	if c.AppendTimeout < time.Second || c.AppendTimeout > 10*time.Minute {
		// Under a second, a healthy commit slowed by a busy disk could
		// time out; past 30s the stall limit, four times it, grows too
		// (Persister.Alive).
		add("append_timeout: must be between 1s and 10m")
	}
	if c.HoldLimit < c.AppendTimeout || c.HoldLimit > 24*time.Hour {
		// A batch gets one whole attempt at least before it is handed
		// back; a day is far beyond any broker's consumer_timeout.
		add("hold_limit: must be at least append_timeout and at most 24h")
	}
	return errors.Join(errs...)
}
