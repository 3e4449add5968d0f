// Package election elects one processor leader with hashicorp/raft and runs
// the leader's duties only while this node leads (invariant 4 of DESIGN.md).
//
// Raft is used for election and membership only: the event log lives in
// MariaDB, so the replicated state machine is empty and nothing but
// membership changes is ever written to the raft log.
//
// Leadership is level-triggered. raft's NotifyCh is drained by its own
// goroutine (raft blocks on it), and every signal, plus a periodic check,
// only makes the node look again at raft's current state: a dropped or
// coalesced transition cannot leave a stale leader loop running. After
// winning, the node waits for a Barrier of the term it leads at (every
// earlier entry applied) before it starts the leader function, and it starts the next one only after the
// previous one has returned: there are never two leader loops at once on a
// node. The leader function receives the raft term at which this node
// became leader, the fencing term that every leader write carries.
package election

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/causeway/causeway/internal/tlsfile"
)

// Sentinel errors.
var (
	// ErrNotRunning means the node's raft instance is not running (before
	// Run, or after it returned).
	ErrNotRunning = errors.New("election: raft not running")
	// ErrNotLeader means a membership change was asked of a follower; the
	// error returned wraps it and names the leader when one is known.
	ErrNotLeader = errors.New("election: not the leader")
	// ErrNoQuorum means a membership change was refused because the
	// configuration it makes would have no quorum of voters that answer:
	// committing it would depose the leader, and no election could be won
	// until the voters it counts on answer (for a voter that never will,
	// never: no leader would be left to remove it).
	ErrNoQuorum = errors.New("election: the change would leave no quorum of voters that answer")
	// ErrUnknownServer means a removal named no member of the
	// configuration.
	ErrUnknownServer = errors.New("election: no such member")
	// ErrOtherServer means a join was refused because another server is
	// at its address: a member of the configuration, or a raft that
	// answers under another id. Joined, that server would be counted
	// under an id that is not its own.
	ErrOtherServer = errors.New("election: another server is at that address")
)

// Defaults tuned for a LAN (DESIGN.md: 500 ms heartbeat and election
// timeouts give a 1.2-1.3 s failover, against 2 s with raft's defaults).
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
	DefaultCommitTimeout      = 50 * time.Millisecond
	DefaultBarrierTimeout     = 10 * time.Second
)

// Values of Config.Bootstrap.
const (
	// BootstrapAuto bootstraps an empty data dir from Config.Peers only
	// while no cluster has led on the database (Deps.TermFloor reads 0).
	BootstrapAuto = "auto"
	// BootstrapForce bootstraps an empty data dir from Config.Peers
	// whatever the database holds: the recovery of a cluster whose every
	// node lost its raft state. Left on, a node whose data dir is lost
	// later would bootstrap a configuration of its own again.
	BootstrapForce = "force"
)

// Peer is one voter of the static bootstrap configuration.
type Peer struct {
	ID      string `yaml:"id"`
	Address string `yaml:"address"`
}

// Config configures a Node.
type Config struct {
	// NodeID is this node's raft server id; it must be unique in the cluster.
	NodeID string `yaml:"node_id"`
	// BindAddr is the TCP address raft listens on (host:port).
	BindAddr string `yaml:"bind_addr"`
	// AdvertiseAddr is the address the other nodes dial; default BindAddr.
	// It must not be an unspecified address (0.0.0.0).
	AdvertiseAddr string `yaml:"advertise_addr"`
	// DataDir holds raft's log and stable store (raft.db) and its snapshots.
	DataDir string `yaml:"data_dir"`
	// Peers is the static bootstrap configuration, this node included. It is
	// used only when DataDir holds no raft state yet, and then only on the
	// cluster's first start (see Bootstrap); later changes go through Join
	// and Remove. Empty means "join an existing cluster".
	Peers []Peer `yaml:"peers"`
	// Bootstrap says when an empty data dir bootstraps Peers:
	// BootstrapAuto (the default) or BootstrapForce.
	Bootstrap string `yaml:"bootstrap"`

	HeartbeatTimeout   time.Duration `yaml:"heartbeat_timeout"`
	ElectionTimeout    time.Duration `yaml:"election_timeout"`
	LeaderLeaseTimeout time.Duration `yaml:"leader_lease_timeout"`
	CommitTimeout      time.Duration `yaml:"commit_timeout"`
	// BarrierTimeout bounds the enqueueing of the Barrier a new leader
	// waits for before its duties; while the Barrier is not committed, a
	// warning is logged every BarrierTimeout.
	BarrierTimeout time.Duration `yaml:"barrier_timeout"`
	// TLS secures the transport with mutual TLS (see TLSConfig); unset,
	// raft talks plain TCP to whoever reaches BindAddr.
	TLS TLSConfig `yaml:"tls"`
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.AdvertiseAddr == "" {
		c.AdvertiseAddr = c.BindAddr
	}
	if c.Bootstrap == "" {
		c.Bootstrap = BootstrapAuto
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = DefaultLeaderLeaseTimeout
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	if c.BarrierTimeout == 0 {
		c.BarrierTimeout = DefaultBarrierTimeout
	}
}

// HandOverBound is the longest the hand-over of a leader that stops may
// take (Node.Run's, see handOver), with c's defaults set: a voter is
// tried again only within two heartbeat and two election timeouts of the
// start, and the last one tried may take the Successor lookup's bound and
// a transfer, which raft ends after two election timeouts at most.
func (c Config) HandOverBound() time.Duration {
	return 2*(c.HeartbeatTimeout+c.ElectionTimeout) + successorLimit + 2*c.ElectionTimeout
}

// Validate reports every problem of c (after SetDefaults), naming its YAML
// key. withTransport is true when the caller supplies its own transport
// (tests), which makes the addresses and DataDir optional.
func (c Config) validate(withTransport bool) error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("node_id: is required"))
	}
	if !withTransport {
		if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
			errs = append(errs, fmt.Errorf("bind_addr: %q is not host:port", c.BindAddr))
		}
		if host, _, err := net.SplitHostPort(c.AdvertiseAddr); err != nil {
			errs = append(errs, fmt.Errorf("advertise_addr: %q is not host:port", c.AdvertiseAddr))
		} else if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("advertise_addr: %q is unspecified; other nodes cannot dial it", c.AdvertiseAddr))
		}
		if c.DataDir == "" {
			errs = append(errs, errors.New("data_dir: is required"))
		}
		if err := c.TLS.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]bool{}
	addrs := map[string]int{}
	self := len(c.Peers) == 0
	for i, p := range c.Peers {
		if p.ID == "" {
			errs = append(errs, fmt.Errorf("peers[%d].id: is required", i))
		}
		// The peers are raft's configuration from the first start on
		// (fixing them here later changes nothing): a voter at an
		// address no one can dial would count toward the quorum for good.
		// (A transport of the caller's has addresses of its own form.)
		if p.Address == "" {
			errs = append(errs, fmt.Errorf("peers[%d].address: is required", i))
		} else if err := checkPeerAddress(p.Address); err != nil && !withTransport {
			errs = append(errs, fmt.Errorf("peers[%d].address: %w", i, err))
		} else if j, ok := addrs[p.Address]; ok {
			errs = append(errs, fmt.Errorf("peers[%d].address: %q is also peers[%d]'s", i, p.Address, j))
		} else {
			addrs[p.Address] = i
		}
		if seen[p.ID] {
			errs = append(errs, fmt.Errorf("peers[%d].id: %q appears twice", i, p.ID))
		}
		seen[p.ID] = true
		if p.ID == c.NodeID {
			self = true
		}
	}
	if !self {
		errs = append(errs, fmt.Errorf("peers: must include this node (%q)", c.NodeID))
	}
	if c.Bootstrap != BootstrapAuto && c.Bootstrap != BootstrapForce {
		errs = append(errs, fmt.Errorf("bootstrap: %q is neither %q nor %q", c.Bootstrap, BootstrapAuto, BootstrapForce))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"heartbeat_timeout", c.HeartbeatTimeout}, {"election_timeout", c.ElectionTimeout},
		{"leader_lease_timeout", c.LeaderLeaseTimeout}, {"commit_timeout", c.CommitTimeout},
		{"barrier_timeout", c.BarrierTimeout},
	} {
		if d.v < 5*time.Millisecond {
			errs = append(errs, fmt.Errorf("%s: %s is too short (at least 5ms)", d.name, d.v))
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, errors.New("leader_lease_timeout: must not exceed heartbeat_timeout"))
	}
	// raft refuses to start with it (only once the processor runs).
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("election_timeout: %s is below heartbeat_timeout (%s)", c.ElectionTimeout, c.HeartbeatTimeout))
	}
	return errors.Join(errs...)
}

// checkPeerAddress refuses an address the other voters cannot dial: not
// host:port, without a host, or with a port outside 1 to 65535.
func checkPeerAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not 1 to 65535", addr, port)
	}
	return nil
}

// Validate reports every problem of c, naming its YAML key.
func (c Config) Validate() error {
	c.SetDefaults()
	return c.validate(false)
}

// LeaderFunc runs the leader's duties. It is called only once this node is
// leader and a Barrier succeeded, with the term at which it became leader;
// ctx is cancelled as soon as leadership is lost (or Run ends), and the
// function must return promptly then. It is never called twice at once.
type LeaderFunc func(ctx context.Context, term uint64)

// Deps are the node's collaborators.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// OnLead runs the leader's duties; nil runs none.
	OnLead LeaderFunc
	// Successor names the voter a leader that hands leadership over (on
	// stop, or StepDown) should give it to: one ready to serve, and none
	// of exclude, the voters that a transfer of this hand-over failed to
	// (it is asked again after each failure). "" (or nil, or a name that
	// is not another voter) leaves the choice to configuration order.
	Successor func(ctx context.Context, exclude []string) string
	// TermFloor reads, once as the node starts, the lowest term it may
	// start raft at: the highest term the fencing rows hold (nil: no
	// floor). See raiseTerm.
	TermFloor func(ctx context.Context) (uint64, error)

	// Transport and the stores replace the TCP transport and the bolt and
	// file stores (tests use raft's in-memory ones). Either all of
	// Transport, LogStore, StableStore and SnapshotStore are set, or none.
	Transport     raft.Transport
	LogStore      raft.LogStore
	StableStore   raft.StableStore
	SnapshotStore raft.SnapshotStore
}

// Node is one raft voter. Its query methods are safe for concurrent use.
type Node struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	r          atomic.Pointer[raft.Raft]
	trans      raft.Transport // set before r is stored, and read only after r is loaded
	leaderTerm atomic.Uint64  // term of the running leader loop; 0 when none

	// pause, when set (tests only, before Run), is called by the
	// leadership loop at each pausePoint, so that a test can hold the
	// loop there while it moves leadership with real raft: the races
	// that the term checks guard then happen on cue.
	pause func(pausePoint)
	// barrier, when set (tests only, before Run), stands for raft's
	// Barrier, so that a test can hold one.
	barrier func(r *raft.Raft, timeout time.Duration) raft.Future

	mIsLeader      prometheus.Gauge
	mTerm          prometheus.Gauge
	mLeaderChanges prometheus.Counter
	mLoops         prometheus.Counter
}

// New validates cfg and allocates a Node. It starts nothing.
func New(cfg Config, deps Deps) (*Node, error) {
	cfg.SetDefaults()
	custom := deps.Transport != nil || deps.LogStore != nil || deps.StableStore != nil || deps.SnapshotStore != nil
	if custom && (deps.Transport == nil || deps.LogStore == nil || deps.StableStore == nil || deps.SnapshotStore == nil) {
		return nil, errors.New("election: set all of Transport, LogStore, StableStore and SnapshotStore, or none")
	}
	if err := cfg.validate(custom); err != nil {
		return nil, fmt.Errorf("election config: %w", err)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, deps: deps, log: deps.Logger.With("component", "election", "node_id", cfg.NodeID)}
	n.mIsLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "causeway_processor_raft_is_leader", Help: "1 while this node runs the leader's duties.",
	})
	n.mTerm = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "causeway_processor_raft_term", Help: "Current raft term seen by this node.",
	})
	n.mLeaderChanges = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "causeway_processor_raft_leadership_changes_total", Help: "Leadership transitions (gained or lost) seen by this node.",
	})
	n.mLoops = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "causeway_processor_leader_loops_total", Help: "Leader loops started on this node.",
	})
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{n.mIsLeader, n.mTerm, n.mLeaderChanges, n.mLoops} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register election metrics: %w", err)
			}
		}
	}
	return n, nil
}

// raftConfig builds raft's configuration from cfg.
func (n *Node) raftConfig(notify chan bool) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.NotifyCh = notify
	rc.Logger = newHCLogger(n.deps.Logger.With("component", "raft", "node_id", n.cfg.NodeID), "raft")
	// The FSM is empty: a snapshot costs nothing, keep raft's log short.
	rc.SnapshotThreshold = 1024
	// A leader that removes itself (cluster remove of the leader's id)
	// becomes a follower outside the configuration, which never starts an
	// election, rather than shut its raft down while the process runs on:
	// joined again, it answers, instead of counting toward the quorum
	// without a raft behind it until its process is restarted.
	rc.ShutdownOnRemove = false
	return rc
}

// open builds the stores and the transport.
func (n *Node) open() (logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, trans raft.Transport, closeFn func() error, err error) {
	if n.deps.Transport != nil {
		return n.deps.LogStore, n.deps.StableStore, n.deps.SnapshotStore, n.deps.Transport, func() error { return nil }, nil
	}
	if err := os.MkdirAll(n.cfg.DataDir, 0o750); err != nil {
		return nil, nil, nil, nil, nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(n.cfg.DataDir, "raft.db")
	// Another process holding the file (a second node given the same
	// data dir) is an error; bbolt's default is to wait for its lock for
	// ever, before raft, or any log line, starts.
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: storeLockLimit}})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			err = fmt.Errorf("%w: is another node running on this data dir?", err)
		}
		return nil, nil, nil, nil, nil, fmt.Errorf("open raft store %s: %w", path, err)
	}
	hl := newHCLogger(n.deps.Logger.With("component", "raft", "node_id", n.cfg.NodeID), "raft")
	fss, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, hl)
	if err != nil {
		_ = bolt.Close()
		return nil, nil, nil, nil, nil, fmt.Errorf("open raft snapshot store: %w", err)
	}
	adv, err := net.ResolveTCPAddr("tcp", n.cfg.AdvertiseAddr)
	if err != nil {
		_ = bolt.Close()
		return nil, nil, nil, nil, nil, fmt.Errorf("resolve advertise_addr: %w", err)
	}
	tcp, err := n.transport(adv, hl)
	if err != nil {
		_ = bolt.Close()
		return nil, nil, nil, nil, nil, err
	}
	if !loopback(n.cfg.BindAddr) && !n.cfg.TLS.enabled() {
		n.log.Warn("raft listens past loopback, unauthenticated and unencrypted: whoever reaches it can pose as a leader (the nodes then follow it, and no leader of theirs acts) or change the membership; set raft.tls, or keep it on a network only the processors reach",
			"bind_addr", n.cfg.BindAddr, "key", "processor.raft.bind_addr")
	}
	closeFn = func() error {
		return errors.Join(tcp.Close(), bolt.Close())
	}
	return bolt, bolt, fss, tcp, closeFn, nil
}

// transport is raft's network transport on BindAddr: plain TCP, or
// mutual TLS when configured.
func (n *Node) transport(adv net.Addr, hl hclog.Logger) (*raft.NetworkTransport, error) {
	if !n.cfg.TLS.enabled() {
		tcp, err := raft.NewTCPTransportWithLogger(n.cfg.BindAddr, adv, 3, 10*time.Second, hl)
		if err != nil {
			return nil, fmt.Errorf("listen raft transport on %s: %w", n.cfg.BindAddr, err)
		}
		return tcp, nil
	}
	server, client, err := n.cfg.TLS.load(tlsfile.Options{Logger: n.log, Key: "processor.raft.tls"})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", n.cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("listen raft transport on %s: %w", n.cfg.BindAddr, err)
	}
	stream := &tlsStream{Listener: &tlsListener{Listener: ln, server: server}, adv: adv, client: client}
	return raft.NewNetworkTransportWithLogger(stream, 3, 10*time.Second, hl), nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckBind reports whether raft's bind address can be listened on now,
// without holding it: a taken port fails the processor's start, naming
// the address, before it tells systemd READY, while raft's own listener
// is opened by Run only, so that it never accepts a connection raft does
// not serve. A port taken between the two fails Run. It checks nothing
// with a custom transport (Deps.Transport).
func (n *Node) CheckBind() error {
	if n.deps.Transport != nil {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.BindAddr)
	if err != nil {
		return fmt.Errorf("listen raft transport on %s: %w", n.cfg.BindAddr, err)
	}
	if err := ln.Close(); err != nil {
		return fmt.Errorf("close raft bind address check on %s: %w", n.cfg.BindAddr, err)
	}
	return nil
}

// storeLockLimit bounds the wait for the raft store's file lock.
const storeLockLimit = time.Second

// Run starts raft, bootstraps it from the static peers if its data dir is
// empty and the cluster has never led, and runs the leader function while
// this node leads. When ctx ends it stops the leader function, hands
// leadership over if it holds it, shuts raft down, closes its stores and
// returns nil.
//
// An empty data dir (a new node, a lost one, an empty raft.db) is
// bootstrapped from the static peers only while the fencing rows
// (Deps.TermFloor) hold no term: no leader has ever claimed them, so the
// cluster is being formed, and every node of its first start bootstraps
// the same peers, which is safe. Once a leader has claimed them, the
// membership may have changed since (join, remove): a node that
// bootstrapped the peers again could campaign in a configuration of its
// own — a removed node, its term lifted to the rows' by raiseTerm, could
// be elected and pass the fence. Such a node starts with no
// configuration instead, which never campaigns: a leader that has it as
// a voter (a node of the first start that started late, or one whose
// data dir was lost) brings it up to date by itself, and a removed one
// waits to be joined again. While the rows cannot be read, a node with
// an empty data dir waits for them. Config.Bootstrap BootstrapForce
// bootstraps the peers regardless, for a cluster whose every node lost
// its raft state; without Deps.TermFloor (no database) the peers are
// bootstrapped as before.
func (n *Node) Run(ctx context.Context) error {
	logs, stable, snaps, trans, closeStores, err := n.open()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeStores(); cerr != nil {
			n.log.Warn("close raft stores", "err", cerr)
		}
	}()

	hasState, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	boot := !hasState && len(n.cfg.Peers) > 0
	var floor uint64
	var floorErr error
	if n.deps.TermFloor != nil && (hasState || boot) {
		floor, floorErr = n.readFloor(ctx)
		if boot && n.cfg.Bootstrap != BootstrapForce {
			if floor, err = n.awaitFloor(ctx, floor, floorErr); err != nil {
				return nil // stopped while waiting
			}
			floorErr = nil
			if floor > 0 {
				boot = false
				n.log.Warn("not bootstrapping raft.peers: the raft data dir holds no state (new, lost, or an empty raft.db), "+
					"but the fencing rows show that a cluster has led on this database (term "+strconv.FormatUint(floor, 10)+"), "+
					"and raft.peers may no longer be its membership: bootstrapped, this node could lead a cluster of its own. "+
					"It starts with no configuration and never campaigns: if it is still a member, the leader brings it up to date by itself; "+
					"if it was removed, add it again with causeway cluster join "+n.cfg.NodeID+" "+n.cfg.AdvertiseAddr+" (sent to the leader); "+
					"only if every node's raft state was lost, start the nodes once with raft.bootstrap: force (or --force-bootstrap)",
					"term", floor, "data_dir", n.cfg.DataDir)
			}
		}
	}
	// raft blocks on NotifyCh: a dedicated goroutine drains it into a
	// coalescing one-slot signal, which only says "look again".
	notify := make(chan bool, 16)
	rc := n.raftConfig(notify)
	if boot {
		var servers []raft.Server
		for _, p := range n.cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
		}
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, trans, raft.Configuration{Servers: servers}); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap raft cluster: %w", err)
		}
		if n.cfg.Bootstrap == BootstrapForce && floor > 0 {
			n.log.Warn("bootstrapped raft.peers although a cluster has led on this database (raft.bootstrap: force): "+
				"right only when every node's raft state was lost; set raft.bootstrap back to auto once a leader is elected",
				"peers", len(servers), "term", floor)
		} else {
			n.log.Info("bootstrapped raft cluster", "peers", len(servers))
		}
	}
	if hasState || boot {
		if err := n.raiseTerm(stable, floor, floorErr); err != nil {
			return err
		}
	}
	r, err := raft.NewRaft(rc, fsm{}, logs, stable, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.trans = trans
	n.r.Store(r)
	if hasState && len(n.cfg.Peers) > 0 {
		n.comparePeers(r)
	}

	poke := make(chan struct{}, 1)
	drainDone := make(chan struct{})
	stopDrain := make(chan struct{})
	go func() {
		defer close(drainDone)
		for {
			select {
			case <-notify:
				n.mLeaderChanges.Inc()
				select {
				case poke <- struct{}{}:
				default:
				}
			case <-stopDrain:
				return
			}
		}
	}()

	n.watch(ctx, r, poke)

	// Leave gracefully: the leader loop has already stopped; hand over
	// leadership so the cluster need not wait for an election timeout.
	if r.State() == raft.Leader {
		if err := n.handOver(r); err != nil {
			n.log.Warn("leadership transfer", "err", err)
		} else {
			n.log.Info("leadership transferred")
		}
	}
	n.r.Store(nil)
	serr := r.Shutdown().Error()
	close(stopDrain)
	<-drainDone
	n.mIsLeader.Set(0)
	if serr != nil {
		return fmt.Errorf("shut down raft: %w", serr)
	}
	return nil
}

// keyCurrentTerm is the key under which raft keeps its current term in
// the stable store (hashicorp/raft's raft.go; TestTermFloorLiftsAWipedCluster
// would fail if it changed).
var keyCurrentTerm = []byte("CurrentTerm")

// termFloorLimit bounds the read of the term floor.
const termFloorLimit = 10 * time.Second

// readFloor reads the term floor (Deps.TermFloor, not nil), within
// termFloorLimit.
func (n *Node) readFloor(ctx context.Context) (uint64, error) {
	fctx, cancel := context.WithTimeout(ctx, termFloorLimit)
	defer cancel()
	return n.deps.TermFloor(fctx)
}

// floorRetry is how often a node with an empty data dir reads the
// fencing rows again when it could not.
const floorRetry = time.Second

// awaitFloor returns floor, or, while err says it was not read, reads it
// again every floorRetry until it is, or fails with ctx's error. Whether
// an empty data dir may bootstrap raft.peers depends on it (see Run).
func (n *Node) awaitFloor(ctx context.Context, floor uint64, err error) (uint64, error) {
	for err != nil {
		n.log.Warn("the raft data dir holds no state and the fencing rows could not be read: "+
			"whether raft.peers may be bootstrapped depends on them (a cluster that has led on this database is not bootstrapped again); reading them again",
			"err", err, "retry", floorRetry)
		t := time.NewTimer(floorRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
		floor, err = n.readFloor(ctx)
	}
	return floor, nil
}

// raiseTerm starts raft's term at the floor (Deps.TermFloor, read as
// floor or failed with floorErr) when raft's stored term is below it.
// Leader writes are fenced by raft term against rows that only move
// forward; if raft's state is wiped on every voter (a redeploy, recovered
// with raft.bootstrap: force), terms begin again at 1, far below the rows, and every
// leader would be refused until elections raised the term past them —
// hours for a long-lived cluster, never for a single voter. Raising the
// term instead of lowering the rows keeps the fence whole: a leader of
// the old cluster resumed late writes at a term at most the floor and is
// still refused.
//
// It is safe for raft: a server's term may rise at any time (as when it
// sees a higher term in an RPC), it only never falls, and no vote exists
// in a term the server has not reached. Raised to the floor and not past
// it, a node disrupts nothing in a cluster whose raft state is whole:
// the rows hold a term some leader claimed, at most the cluster's current
// term, and the node follows a leader of that term as it would have after
// its first heartbeat. A node without raft state that waits to be joined
// (no peers, or not bootstrapped: see Run) is left alone: it takes the
// term from the leader that adds it. When the floor cannot be read the
// node (with raft state) starts as it is, saying so;
// a leader refused by the fence then hands leadership over until the term
// passes the rows, or the processors are restarted.
func (n *Node) raiseTerm(stable raft.StableStore, floor uint64, floorErr error) error {
	if n.deps.TermFloor == nil {
		return nil
	}
	if floorErr != nil {
		n.log.Warn("raft term floor not read: raft starts at its stored term; if the fencing rows hold a higher one, "+
			"leader duties stay refused until the term passes them (restart the processors once the database answers)", "err", floorErr)
		return nil
	}
	cur, err := stable.GetUint64(keyCurrentTerm)
	// raft reads a missing term as 0 too, by this message.
	if err != nil && err.Error() != "not found" {
		return fmt.Errorf("read raft term: %w", err)
	}
	if cur >= floor {
		return nil
	}
	if err := stable.SetUint64(keyCurrentTerm, floor); err != nil {
		return fmt.Errorf("raise raft term to %d: %w", floor, err)
	}
	// Also after a mere restart of a node that missed an election; the
	// case that matters, a wiped cluster, shows in from (0 or 1).
	n.log.Info("raft term raised to the fencing rows' term: leaders wrote at it while this node's raft state was behind (down meanwhile, or its data dir wiped)",
		"from", cur, "to", floor)
	return nil
}

// comparePeers warns when the static peers differ from the configuration
// raft holds: they bootstrap an empty data dir of a new cluster only, so
// a change to them does nothing, and with raft.bootstrap: force a node
// whose data dir is lost would bootstrap them again.
func (n *Node) comparePeers(r *raft.Raft) {
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		n.log.Warn("read raft configuration", "err", err)
		return
	}
	key := func(id, addr string) string { return id + "@" + addr }
	var want, have []string
	for _, p := range n.cfg.Peers {
		want = append(want, key(p.ID, p.Address))
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			have = append(have, key(string(s.ID), string(s.Address)))
		}
	}
	slices.Sort(want)
	slices.Sort(have)
	if slices.Equal(want, have) {
		return
	}
	n.log.Warn("raft.peers differ from the raft configuration in the data dir, which raft keeps: "+
		"they bootstrap an empty data dir of a new cluster only; change the membership with causeway cluster join|remove, "+
		"and make raft.peers match it", "peers", want, "configuration", have)
}

// pausePoint is where the leadership loop calls Node.pause.
type pausePoint int

const (
	// pauseCheck is before the loop reads raft's state.
	pauseCheck pausePoint = iota
	// pauseBarrier is after the Barrier of a new leader succeeded, before
	// the leader loop is started.
	pauseBarrier
)

func (n *Node) pauseAt(at pausePoint) {
	if n.pause != nil {
		n.pause(at)
	}
}

// watch is the leadership loop: level-triggered, one leader loop at a time.
// It returns when ctx ends, after the leader loop (if any) has returned.
func (n *Node) watch(ctx context.Context, r *raft.Raft, poke <-chan struct{}) {
	tick := time.NewTicker(n.cfg.HeartbeatTimeout / 2)
	defer tick.Stop()

	var (
		cancelLoop context.CancelFunc
		loopDone   chan struct{}
	)
	stopLoop := func(why string) {
		if cancelLoop == nil {
			return
		}
		cancelLoop()
		<-loopDone
		cancelLoop, loopDone = nil, nil
		n.leaderTerm.Store(0)
		n.mIsLeader.Set(0)
		n.log.Info("leader loop stopped", "reason", why)
	}
	defer stopLoop("shutdown")

	for {
		n.pauseAt(pauseCheck)
		now := r.CurrentTerm()
		n.mTerm.Set(float64(now))
		leader := r.State() == raft.Leader
		if loopDone != nil {
			select {
			case <-loopDone:
				// The leader function returned by itself: it will be
				// started again at the next check if still leader.
				cancelLoop()
				cancelLoop, loopDone = nil, nil
				n.leaderTerm.Store(0)
				n.mIsLeader.Set(0)
			default:
			}
		}
		if loopDone != nil && now != n.leaderTerm.Load() {
			// Leadership was lost and won again between two checks: the
			// loop's term is not raft's any more, and its writes would
			// be fenced (or, at an equal stored term, not be).
			stopLoop("the term changed")
		}
		switch {
		case leader && loopDone == nil:
			// The loop's term is read before the Barrier and checked
			// after it, with the state read between: terms only rise,
			// so the node leads at that term, and the Barrier succeeded
			// in it. Leadership lost and won again meanwhile fails the
			// check, and the next look starts over with a Barrier of
			// the new term: a term read after the Barrier would start
			// the new term's loop on the old term's Barrier.
			term := r.CurrentTerm()
			stopped, err := n.awaitBarrier(ctx, r, term)
			if stopped {
				return
			}
			if err != nil {
				n.log.Warn("barrier after winning election", "err", err)
				break
			}
			n.pauseAt(pauseBarrier)
			if r.State() != raft.Leader || r.CurrentTerm() != term {
				break
			}
			lctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			cancelLoop, loopDone = cancel, done
			n.leaderTerm.Store(term)
			n.mIsLeader.Set(1)
			n.mLoops.Inc()
			n.log.Info("leader loop started", "term", term)
			go func() {
				defer close(done)
				if n.deps.OnLead != nil {
					n.deps.OnLead(lctx, term)
				} else {
					<-lctx.Done()
				}
			}()
		case !leader && loopDone != nil:
			stopLoop("leadership lost")
		}
		select {
		case <-ctx.Done():
			return
		case <-poke:
		case <-tick.C:
		case <-loopDoneOrNil(loopDone):
		}
	}
}

// awaitBarrier waits for a Barrier of the current term, or for ctx to end
// (stopped): a stop does not wait for a Barrier that cannot complete, the
// Shutdown that follows ends it.
//
// raft's timeout bounds only the Barrier's enqueueing: once appended it
// completes when a quorum has stored it, or fails when leadership is
// lost. A leader whose followers answer heartbeats but cannot store its
// entries (their disks full) keeps its lease and waits for ever, its
// duties not started; so each BarrierTimeout of the wait is logged. (A
// new Barrier would wait on the same followers, and another leader too.)
func (n *Node) awaitBarrier(ctx context.Context, r *raft.Raft, term uint64) (stopped bool, err error) {
	var f raft.Future
	if n.barrier != nil {
		f = n.barrier(r, n.cfg.BarrierTimeout)
	} else {
		f = r.Barrier(n.cfg.BarrierTimeout)
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	start := time.Now()
	t := time.NewTicker(n.cfg.BarrierTimeout)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return false, err
		case <-ctx.Done():
			return true, nil
		case <-t.C:
			n.log.Warn("no barrier within barrier_timeout: the leader duties wait for it (can the followers store raft's log?)",
				"term", term, "waited", time.Since(start).Round(time.Millisecond))
		}
	}
}

func loopDoneOrNil(c chan struct{}) <-chan struct{} {
	if c == nil {
		return nil
	}
	return c
}

func (n *Node) raft() (*raft.Raft, error) {
	r := n.r.Load()
	if r == nil {
		return nil, ErrNotRunning
	}
	return r, nil
}

// ID returns this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Leader returns the id and raft address of the leader this node knows,
// empty if none.
func (n *Node) Leader() (id, addr string) {
	r, err := n.raft()
	if err != nil {
		return "", ""
	}
	a, i := r.LeaderWithID()
	return string(i), string(a)
}

// State is raft's state of this node: Follower, Candidate, Leader or
// Shutdown ("" before Run).
func (n *Node) State() string {
	r, err := n.raft()
	if err != nil {
		return ""
	}
	return r.State().String()
}

// Term is the current raft term seen by this node.
func (n *Node) Term() uint64 {
	r, err := n.raft()
	if err != nil {
		return 0
	}
	return r.CurrentTerm()
}

// LeaderTerm is the fencing term of the running leader loop: the term at
// which this node became leader; 0 when no leader loop runs here.
func (n *Node) LeaderTerm() uint64 { return n.leaderTerm.Load() }

// Server is one member of the raft configuration.
type Server struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// Servers lists the raft configuration.
func (n *Node) Servers() ([]Server, error) {
	r, err := n.raft()
	if err != nil {
		return nil, err
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	_, lid := r.LeaderWithID()
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Suffrage: s.Suffrage.String(), Leader: s.ID == lid})
	}
	return out, nil
}

func (n *Node) leaderErr(r *raft.Raft) error {
	a, id := r.LeaderWithID()
	if id == "" {
		return fmt.Errorf("%w (no leader known)", ErrNotLeader)
	}
	return fmt.Errorf("%w (leader is %s at %s)", ErrNotLeader, id, a)
}

// StepDown hands leadership over to another voter (raft's leadership
// transfer); the election that follows raises the term. Only the leader
// can; others fail with ErrNotLeader.
func (n *Node) StepDown() error {
	r, err := n.raft()
	if err != nil {
		return err
	}
	if r.State() != raft.Leader {
		return n.leaderErr(r)
	}
	if err := n.handOver(r); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return n.leaderErr(r)
		}
		return fmt.Errorf("leadership transfer: %w", err)
	}
	return nil
}

// successorLimit bounds the Successor lookup of a hand-over.
const successorLimit = 2 * time.Second

// transferRetry is how often a hand-over asks raft again while it refuses
// a transfer because an earlier one is still settling.
const transferRetry = 10 * time.Millisecond

// handOver transfers leadership to another voter: to the one
// Deps.Successor names, else to the first in configuration order. That is
// raft's own choice among voters alike (all are here: the event log is not
// raft's), made here rather than by raft so that a failed transfer names
// the voter it failed to. When a transfer fails (the voter is gone, while
// a successor's presence row stays current for up to 15 s), the successor
// is asked again with the voters that failed excluded, and configuration
// order, past them, serves only when it names none: leadership goes to a
// ready voter while one is left, and never again to one that failed, which
// raft, all voters being alike to it, could pick again.
//
// Raft refuses a transfer while the failed one's TimeoutNow RPC is still
// out (ErrLeadershipTransferInProgress; until the transport gives up when
// the voter's host is gone), so a refused transfer is asked again, for as
// long as the hand-over has taken less than two heartbeat and two
// election timeouts: past that, it would take longer than the election
// that leaving without one causes.
func (n *Node) handOver(r *raft.Raft) error {
	deadline := time.Now().Add(2 * (n.cfg.HeartbeatTimeout + n.cfg.ElectionTimeout))
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	var voters []raft.Server // the others, in configuration order
	for _, s := range f.Configuration().Servers {
		if string(s.ID) != n.cfg.NodeID && s.Suffrage == raft.Voter {
			voters = append(voters, s)
		}
	}
	if len(voters) == 0 {
		return errors.New("no other voter to hand leadership to")
	}
	var failed []string
	var errs []error
	for {
		if len(failed) > 0 && !time.Now().Before(deadline) {
			return errors.Join(append(errs, errors.New("the hand-over took too long to try another voter"))...)
		}
		s, named := n.target(voters, failed)
		if s == nil {
			return errors.Join(errs...)
		}
		n.log.Info("handing leadership over", "to", s.ID, "successor", named)
		err := n.transfer(r, s, deadline)
		if err == nil || errors.Is(err, raft.ErrNotLeader) {
			return err
		}
		n.log.Warn("leadership transfer failed; handing over to another voter", "to", s.ID, "err", err)
		errs = append(errs, fmt.Errorf("to %s: %w", s.ID, err))
		failed = append(failed, string(s.ID))
	}
}

// target is the voter of voters to hand leadership to next, those in
// failed left out: the one Deps.Successor names, else the first in
// configuration order; nil when none is left. named says whether
// Deps.Successor named it.
func (n *Node) target(voters []raft.Server, failed []string) (s *raft.Server, named bool) {
	if n.deps.Successor != nil {
		ctx, cancel := context.WithTimeout(context.Background(), successorLimit)
		id := n.deps.Successor(ctx, slices.Clone(failed))
		cancel()
		if id != "" && !slices.Contains(failed, id) {
			for i := range voters {
				if string(voters[i].ID) == id {
					return &voters[i], true
				}
			}
		}
	}
	for i := range voters {
		if !slices.Contains(failed, string(voters[i].ID)) {
			return &voters[i], false
		}
	}
	return nil, false
}

// transfer asks raft to hand leadership to s, and asks again, until
// deadline, while raft refuses because an earlier transfer is still
// settling.
func (n *Node) transfer(r *raft.Raft, s *raft.Server, deadline time.Time) error {
	for {
		err := r.LeadershipTransferToServer(s.ID, s.Address).Error()
		if !errors.Is(err, raft.ErrLeadershipTransferInProgress) || !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(transferRetry)
	}
}

// Join adds a voter (or moves one to addr). Only the leader can; others
// fail with ErrNotLeader. A voter counts toward the quorum as soon as the
// change is appended, so a change whose configuration would have no
// quorum of voters that answer — the new one at a wrong address, or not
// started yet, joined to a lone leader — is refused with ErrNoQuorum
// before it is made: it would depose the leader for good. An address
// that another member has, or where a raft answers under another id (two
// new nodes' addresses swapped), is refused with ErrOtherServer.
func (n *Node) Join(id, addr string, timeout time.Duration) error {
	r, err := n.raft()
	if err != nil {
		return err
	}
	if id == "" || addr == "" {
		return errors.New("join: id and address are required")
	}
	if r.State() != raft.Leader {
		return n.leaderErr(r)
	}
	cur, err := n.configuration(r)
	if err != nil {
		return fmt.Errorf("join %s at %s: %w", id, addr, err)
	}
	for _, s := range cur {
		if string(s.Address) == addr && string(s.ID) != id {
			return fmt.Errorf("join %s at %s: %w: member %s is there", id, addr, ErrOtherServer, s.ID)
		}
	}
	next := slices.DeleteFunc(slices.Clone(cur), func(s raft.Server) bool { return string(s.ID) == id })
	next = append(next, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(addr)})
	if err := n.checkQuorum(next, cur, raft.ServerID(id)); err != nil {
		return fmt.Errorf("join %s at %s: %w", id, addr, err)
	}
	if err := r.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return n.leaderErr(r)
		}
		return fmt.Errorf("add voter %s at %s: %w", id, addr, err)
	}
	return nil
}

// Remove removes a member. Only the leader can; others fail with
// ErrNotLeader. An id that is no member fails with ErrUnknownServer (raft
// would commit the configuration unchanged and report success), and a
// removal that would leave no quorum of voters that answer (a live voter
// removed while another is down) with ErrNoQuorum.
func (n *Node) Remove(id string, timeout time.Duration) error {
	r, err := n.raft()
	if err != nil {
		return err
	}
	if id == "" {
		return errors.New("remove: id is required")
	}
	if r.State() != raft.Leader {
		return n.leaderErr(r)
	}
	cur, err := n.configuration(r)
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	member := func(s raft.Server) bool { return string(s.ID) == id }
	if !slices.ContainsFunc(cur, member) {
		return fmt.Errorf("remove %s: %w", id, ErrUnknownServer)
	}
	if err := n.checkQuorum(slices.DeleteFunc(slices.Clone(cur), member), cur, ""); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := r.RemoveServer(raft.ServerID(id), 0, timeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return n.leaderErr(r)
		}
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	return nil
}

func (n *Node) configuration(r *raft.Raft) ([]raft.Server, error) {
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	return f.Configuration().Servers, nil
}

// checkQuorum fails with ErrNoQuorum unless a majority of the voters of
// servers answer: this node at its address in cur, the configuration it
// leads, and those that answer a probe (this node at another address
// too: a join that moves it must name an address it answers at). It
// fails with ErrOtherServer when the raft at the address of joining, the
// voter a join adds or moves, answers under another id.
func (n *Node) checkQuorum(servers, cur []raft.Server, joining raft.ServerID) error {
	self := func(s raft.Server) bool {
		return string(s.ID) == n.cfg.NodeID && slices.Contains(cur, s)
	}
	var voters []raft.Server
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, s)
		}
	}
	if len(voters) == 0 {
		return fmt.Errorf("%w: no voter would be left", ErrNoQuorum)
	}
	errs := make([]error, len(voters))
	var wg sync.WaitGroup
	for i, s := range voters {
		if self(s) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := n.probe(s)
			// A raft of another protocol may not say its id. (A
			// member answering under another id still takes part in
			// commits and votes: its answer counts.)
			if err == nil && s.ID == joining && id != "" && id != s.ID {
				err = fmt.Errorf("%w: the raft there is %s", ErrOtherServer, id)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, s := range voters {
		if errors.Is(errs[i], ErrOtherServer) {
			return fmt.Errorf("%s at %s: %w", s.ID, s.Address, errs[i])
		}
	}
	answer, need := 0, len(voters)/2+1
	var silent []error
	for i, s := range voters {
		if errs[i] == nil {
			answer++
			continue
		}
		silent = append(silent, fmt.Errorf("%s at %s: %w", s.ID, s.Address, errs[i]))
	}
	if answer < need {
		return fmt.Errorf("%w: %d of its %d voters answer, %d needed (is each started, at its raft address?): %w",
			ErrNoQuorum, answer, len(voters), need, errors.Join(silent...))
	}
	return nil
}

// probe asks the raft at s's address whether it answers, with an
// AppendEntries of term 0 that carries nothing: a raft at any term above
// 0 ignores it, and a new one, at 0, only learns this node as its leader,
// as the first heartbeat after its join tells it. Anything else than a
// raft (another port, no listener) fails the RPC. It returns the server
// id the answer's header gives ("" from a raft that gives none).
func (n *Node) probe(s raft.Server) (raft.ServerID, error) {
	id := raft.ServerID(n.cfg.NodeID)
	addr := n.trans.EncodePeer(id, n.trans.LocalAddr())
	req := raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: addr},
	}
	type answer struct {
		id  raft.ServerID
		err error
	}
	done := make(chan answer, 1)
	go func() {
		// Ends at the transport's own timeout at the latest.
		var resp raft.AppendEntriesResponse
		err := n.trans.AppendEntries(s.ID, s.Address, &req, &resp)
		done <- answer{raft.ServerID(resp.ID), err}
	}()
	t := time.NewTimer(probeLimit)
	defer t.Stop()
	select {
	case a := <-done:
		if a.err != nil {
			return "", fmt.Errorf("no raft answers: %w", a.err)
		}
		return a.id, nil
	case <-t.C:
		return "", fmt.Errorf("no raft answers within %s", probeLimit)
	}
}

// probeLimit bounds a probe: a raft answers an RPC within milliseconds,
// while the TCP transport's timeout (10 s) waits as long for a listener
// that is not raft (an HTTP server waits for a request line).
const probeLimit = 2 * time.Second

// fsm is the empty state machine: raft here replicates membership only.
type fsm struct{}

func (fsm) Apply(*raft.Log) any                 { return nil }
func (fsm) Snapshot() (raft.FSMSnapshot, error) { return emptySnapshot{}, nil }
func (fsm) Restore(rc io.ReadCloser) error      { return rc.Close() }

type emptySnapshot struct{}

func (emptySnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (emptySnapshot) Release()                             {}
