package processor

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/election"
	"github.com/causeway/causeway/snapshot"
)

// Defaults.
const (
	DefaultPollInterval         = time.Second
	DefaultReadyLag             = 1000
	DefaultPageSize             = 5000
	DefaultSnapshotCheck        = 100 * time.Millisecond
	DefaultRetryMin             = 100 * time.Millisecond
	DefaultRetryMax             = 5 * time.Second
	DefaultMaxHistoricalQueries = 2
	DefaultLeaderWriteLimit     = 30 * time.Second // within the unit's TimeoutStopSec (see Config.StopBound)
	DefaultFlushInterval        = 100 * time.Millisecond
	DefaultHistoryPrune         = time.Hour
	DefaultFenceEvictAfter      = 2 * time.Second
)

// Config configures a processor node (YAML section "processor").
type Config struct {
	// NodeID names this node; it is its raft server id.
	NodeID string `yaml:"node_id"`
	// DataDir holds raft's state and the API's publish spool.
	DataDir string `yaml:"data_dir"`
	// Raft: bind and advertise addresses, bootstrap peers, timeouts.
	// node_id and data_dir default to the processor's.
	Raft election.Config `yaml:"raft"`
	// API: listen address and bearer tokens.
	API api.Config `yaml:"api"`
	// Snapshot: the leader's snapshot policy and writer settings.
	Snapshot snapshot.Config `yaml:"snapshot"`
	// Reconstruct: page size of cold starts and historical RCA.
	Reconstruct snapshot.ReconstructConfig `yaml:"reconstruct"`
	// DatabaseDSN is the MariaDB DSN of the event log.
	DatabaseDSN string `yaml:"database_dsn"`
	// AMQPURL is the broker URL (vhost included).
	AMQPURL string `yaml:"amqp_url"`
	// AMQPReconnectMin and AMQPReconnectMax bound the backoff between
	// broker connection attempts (0: the bus defaults). They are the
	// shared bus section's reconnect_min and reconnect_max, filled in by
	// the loader; there is no key of the processor's own.
	AMQPReconnectMin time.Duration `yaml:"-"`
	AMQPReconnectMax time.Duration `yaml:"-"`
	// PollInterval is how often the log head is read from the database, a
	// safety net against a lost doorbell (default 1s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// ReadyLag is how far behind the log head a node may be and still be
	// ready (nil: 1000 events; 0: ready only at the head).
	ReadyLag *int64 `yaml:"ready_lag"`
	// PageSize is the number of events read per catch-up query.
	PageSize int `yaml:"page_size"`
	// SnapshotCheck is how often the leader asks the policy whether a
	// snapshot is due.
	SnapshotCheck time.Duration `yaml:"snapshot_check"`
	// FlushInterval is how often the leader writes the outbox rows and
	// alarm history of what it applied (default 100ms).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxPending bounds the outbox rows and history items a node keeps
	// unwritten (default 200000); past it they are dropped, and a node
	// that becomes leader regenerates them from the log instead.
	MaxPending int `yaml:"max_pending"`
	// History: the alarm history's retention, pruned by the leader every
	// HistoryPruneInterval (default 1h).
	History              history.Config `yaml:"history"`
	HistoryPruneInterval time.Duration  `yaml:"history_prune_interval"`
	// SnapshotCaptureLive makes the leader capture the live machine
	// under its lock for a snapshot (snapshot.Writer.Take), which pauses
	// event processing for as long as the deep copy takes. By default
	// (false) it snapshots a shadow machine that follows the log from the
	// database (snapshot.Writer.TakeFromLog): no pause, at the cost of a
	// second machine's memory and replaying the log a second time.
	SnapshotCaptureLive bool `yaml:"snapshot_capture_live"`
	// FenceEvictAfter is how long a new leader waits for the fencing
	// row before it kills the connection holding it (default 2s): a
	// deposed leader stopped or cut off in the middle of a fenced write
	// would otherwise block it until that connection dies. The database
	// user needs the PROCESS privilege, and CONNECTION ADMIN unless every
	// processor uses the same user.
	FenceEvictAfter time.Duration `yaml:"fence_evict_after"`
	// RetryMin and RetryMax bound the backoff of a failed catch-up or load.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// MaxHistoricalQueries bounds the API's historical queries (RCA ?at=
	// or ?seq=) running at once (default 2): each rebuilds a whole graph
	// beside the live one, so without a bound a burst of them could take
	// the node's memory, leader included. One over the bound gets 503
	// with Retry-After.
	MaxHistoricalQueries int `yaml:"max_historical_queries"`
}

// busConn is the broker connection of the node's subscriber and publisher.
func (c Config) busConn() bus.Conn {
	return bus.Conn{URL: c.AMQPURL, ReconnectMin: c.AMQPReconnectMin, ReconnectMax: c.AMQPReconnectMax}
}

// readyLag is ReadyLag, or its default when unset.
func (c Config) readyLag() int64 {
	if c.ReadyLag == nil {
		return DefaultReadyLag
	}
	return *c.ReadyLag
}

// StopBound is the longest a node's stop may take (Run returning once its
// context ends) with c's defaults set, when the database stops answering
// as the stop begins: the API's requests in flight get api.shutdown_grace
// (Server.Drain); then raft stops, once the leader's duties have: a round
// of outbox and history writes (DefaultLeaderWriteLimit) or a snapshot
// write (snapshot.WriteLimit) begun just before runs to its limit, and
// the fence read that follows a failed write (deposedCheckLimit) to its
// own, while the presence row's delete (5 s) runs beside them;
// leadership is handed over (election.Config.HandOverBound), while the
// API's publisher sends what the API accepted (publishDrainLimit); and
// the API's listener closes, giving the probes and scrapes in flight
// api.shutdown_grace again. A unit's TimeoutStopSec below it lets systemd
// kill a stopping leader in the middle of its hand-over.
func (c Config) StopBound() time.Duration {
	grace := c.API.ShutdownGrace
	if grace == 0 {
		grace = api.DefaultShutdownGrace
	}
	duties := max(DefaultLeaderWriteLimit, snapshot.WriteLimit) + deposedCheckLimit
	return grace + max(duties+c.Raft.HandOverBound(), publishDrainLimit) + grace
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Raft.NodeID == "" {
		c.Raft.NodeID = c.NodeID
	}
	if c.Raft.DataDir == "" && c.DataDir != "" {
		c.Raft.DataDir = c.DataDir + "/raft"
	}
	c.Raft.SetDefaults()
	c.Snapshot = c.Snapshot.WithDefaults()
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ReadyLag == nil {
		c.ReadyLag = new(int64(DefaultReadyLag))
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.SnapshotCheck == 0 {
		c.SnapshotCheck = DefaultSnapshotCheck
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	c.History = c.History.WithDefaults()
	if c.HistoryPruneInterval == 0 {
		c.HistoryPruneInterval = DefaultHistoryPrune
	}
	if c.FenceEvictAfter == 0 {
		c.FenceEvictAfter = DefaultFenceEvictAfter
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.MaxHistoricalQueries == 0 {
		c.MaxHistoricalQueries = DefaultMaxHistoricalQueries
	}
}

// Validate reports every problem of c (defaults applied), each named by its
// YAML path.
func (c Config) Validate() error {
	c.SetDefaults()
	var errs []error
	// add names every problem of a section with the section's path.
	var add func(prefix string, err error)
	add = func(prefix string, err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				add(prefix, e)
			}
			return
		}
		errs = append(errs, fmt.Errorf("%s: %w", prefix, err))
	}
	if c.NodeID == "" {
		errs = append(errs, errors.New("node_id: is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: is required"))
	}
	if c.Raft.NodeID != c.NodeID {
		errs = append(errs, fmt.Errorf("raft.node_id: %q differs from node_id %q", c.Raft.NodeID, c.NodeID))
	}
	add("raft", c.Raft.Validate())
	add("api", c.API.Validate())
	add("snapshot", c.Snapshot.Validate())
	add("history", c.History.Validate())
	if c.MaxPending < 1 {
		errs = append(errs, errors.New("max_pending: must be positive"))
	}
	if c.DatabaseDSN == "" {
		errs = append(errs, errors.New("database_dsn: is required"))
	} else if err := store.CheckDSN(c.DatabaseDSN); err != nil {
		errs = append(errs, fmt.Errorf("database_dsn: %w", err))
	}
	add("amqp_url", (bus.Conn{URL: c.AMQPURL}).Validate())
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"poll_interval", c.PollInterval}, {"snapshot_check", c.SnapshotCheck}, {"flush_interval", c.FlushInterval}, {"history_prune_interval", c.HistoryPruneInterval}, {"fence_evict_after", c.FenceEvictAfter}, {"retry_min", c.RetryMin}, {"retry_max", c.RetryMax}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", d.name))
		}
	}
	if c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("retry_max: must be at least retry_min"))
	}
	if c.ReadyLag != nil && *c.ReadyLag < 0 {
		errs = append(errs, errors.New("ready_lag: must not be negative"))
	}
	if c.PageSize < 1 {
		errs = append(errs, errors.New("page_size: must be positive"))
	}
	if c.MaxHistoricalQueries < 1 {
		errs = append(errs, errors.New("max_historical_queries: must be positive"))
	}
	return errors.Join(errs...)
}

// String redacts secrets.
func (c Config) String() string {
	amqp := "<unparsable url>"
	if u, err := url.Parse(c.AMQPURL); err == nil {
		amqp = u.Redacted()
	}
	return fmt.Sprintf("{node_id:%s data_dir:%s raft:%s api:%s amqp_url:%s database_dsn:<redacted>}",
		c.NodeID, c.DataDir, c.Raft.BindAddr, c.API.Listen, amqp)
}
