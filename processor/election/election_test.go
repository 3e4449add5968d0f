package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/logtest"
)

// cluster is n in-memory nodes in one process.
type cluster struct {
	t      testing.TB
	trans  []*raft.InmemTransport
	nodes  []*Node
	gates  []*gate
	logs   []*logtest.Buffer
	cancel []context.CancelFunc
	done   []chan error

	mu        sync.Mutex
	active    map[string]int // running leader loops per node
	total     int            // running leader loops in the cluster
	maxTotal  int
	maxOnNode int
	starts    []string // node ids, in start order
	terms     []uint64
	// next is what Successor answers: the first of these that is neither
	// the node asking nor excluded (none: configuration order), as the
	// processors ready to serve, best first.
	next []string
}

// successor is Deps.Successor of node self.
func (c *cluster) successor(self string) func(context.Context, []string) string {
	return func(_ context.Context, exclude []string) string {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, id := range c.next {
			if id != self && !slices.Contains(exclude, id) {
				return id
			}
		}
		return ""
	}
}

// setNext sets what Successor answers: the first of ids that is neither
// the node asking nor excluded.
func (c *cluster) setNext(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = ids
}

func newCluster(t testing.TB, n int, timeout time.Duration) *cluster {
	t.Helper()
	return newClusterRPC(t, n, timeout, 0)
}

// newClusterRPC is newCluster with transports whose RPCs time out after
// rpcTimeout (0: raft's default for in-memory transports, 500 ms; a
// TimeoutNow, which starts a leadership transfer, gets ten times that).
func newClusterRPC(t testing.TB, n int, timeout, rpcTimeout time.Duration) *cluster {
	t.Helper()
	c := &cluster{t: t, active: map[string]int{}}
	addrs := make([]raft.ServerAddress, n)
	trans := make([]*raft.InmemTransport, n)
	for i := range n {
		if rpcTimeout > 0 {
			addrs[i], trans[i] = raft.NewInmemTransportWithTimeout("", rpcTimeout)
		} else {
			addrs[i], trans[i] = raft.NewInmemTransport("")
		}
	}
	for i := range n {
		for j := range n {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
	}
	c.trans = trans
	var peers []Peer
	for i := range n {
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i), Address: string(addrs[i])})
	}
	for i := range n {
		id := fmt.Sprintf("n%d", i)
		store := raft.NewInmemStore()
		g := &gate{}
		logs := &logtest.Buffer{}
		lead := c.onLead(id)
		node, err := New(Config{
			NodeID: id, Peers: peers,
			HeartbeatTimeout: timeout, ElectionTimeout: timeout,
			LeaderLeaseTimeout: timeout / 2, CommitTimeout: 5 * time.Millisecond,
		}, Deps{
			Registerer: prometheus.NewRegistry(),
			Logger:     slog.New(slog.NewTextHandler(logs, nil)),
			OnLead: func(ctx context.Context, term uint64) {
				g.record(traceEvent{what: "lead", term: term, raftTerm: g.node.Term()})
				lead(ctx, term)
			},
			Successor: c.successor(id),
			Transport: trans[i], LogStore: store, StableStore: store,
			SnapshotStore: raft.NewInmemSnapshotStore(),
		})
		if err != nil {
			t.Fatalf("New(%s): %v", id, err)
		}
		g.node = node
		node.pause = g.pause
		c.gates = append(c.gates, g)
		c.logs = append(c.logs, logs)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- node.Run(ctx) }()
		c.nodes = append(c.nodes, node)
		c.cancel = append(c.cancel, cancel)
		c.done = append(c.done, done)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	return c
}

// traceEvent is one step of a node's leadership loop, as its gate saw it.
type traceEvent struct {
	what string // "check", "barrier" or "lead"
	// term is, for a check, the term of the leader loop running as the
	// loop looks at raft (0: none); for a barrier, raft's term as it
	// succeeded; for a lead, the term the leader function was given.
	term uint64
	// raftTerm is, for a lead, raft's term as the leader function began.
	raftTerm uint64
}

// gate traces a node's leadership loop at its pause points and, when
// armed, holds it once at one of them until released.
type gate struct {
	node *Node // set before Run

	mu      sync.Mutex
	events  []traceEvent
	armed   bool
	at      pausePoint
	parked  chan struct{}
	release chan struct{}
}

func (g *gate) record(e traceEvent) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.events = append(g.events, e)
}

// trace returns the events from index from on.
func (g *gate) trace(from int) []traceEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]traceEvent(nil), g.events[from:]...)
}

func (g *gate) pause(at pausePoint) {
	switch at {
	case pauseCheck:
		g.record(traceEvent{what: "check", term: g.node.LeaderTerm()})
	case pauseBarrier:
		g.record(traceEvent{what: "barrier", term: g.node.Term()})
	}
	g.mu.Lock()
	if !g.armed || g.at != at {
		g.mu.Unlock()
		return
	}
	g.armed = false
	parked, release := g.parked, g.release
	g.mu.Unlock()
	close(parked)
	<-release
}

// hold arms the gate at point at. It returns a channel closed once the
// loop is held there, and the function that lets it go on (idempotent,
// and called when the test ends).
func (g *gate) hold(t testing.TB, at pausePoint) (parked <-chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.at = true, at
	g.parked, g.release = make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(g.release) })
	t.Cleanup(release)
	return g.parked, release
}

// mark is the index of the next event.
func (g *gate) mark() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.events)
}

// waitFor polls cond every few milliseconds until it holds, failing the
// test after within.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitClosed waits for ch to be closed, failing the test after within.
func waitClosed(t testing.TB, what string, within time.Duration, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("timed out after %s waiting for %s", within, what)
	}
}

func (c *cluster) onLead(id string) LeaderFunc {
	return func(ctx context.Context, term uint64) {
		c.mu.Lock()
		c.active[id]++
		c.total++
		c.maxOnNode = max(c.maxOnNode, c.active[id])
		c.maxTotal = max(c.maxTotal, c.total)
		c.starts = append(c.starts, id)
		c.terms = append(c.terms, term)
		c.mu.Unlock()
		<-ctx.Done()
		c.mu.Lock()
		c.active[id]--
		c.total--
		c.mu.Unlock()
	}
}

// stop cancels node i and waits for its Run to return (idempotent).
func (c *cluster) stop(i int) {
	if c.cancel[i] == nil {
		return
	}
	c.cancel[i]()
	c.cancel[i] = nil
	select {
	case err := <-c.done[i]:
		if err != nil {
			c.t.Errorf("Run(%s) = %v", c.nodes[i].ID(), err)
		}
	case <-time.After(20 * time.Second):
		c.t.Fatalf("Run(%s) did not return", c.nodes[i].ID())
	}
}

// waitLeader waits until exactly one running node (not in skip) runs its
// leader loop, and every running node agrees on who leads.
func (c *cluster) waitLeader(skip int) int {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		lead := -1
		count := 0
		for i, n := range c.nodes {
			if i == skip || c.cancel[i] == nil {
				continue
			}
			if n.LeaderTerm() != 0 {
				lead = i
				count++
			}
		}
		if count == 1 {
			agree := true
			for i, n := range c.nodes {
				if i == skip || c.cancel[i] == nil {
					continue
				}
				if id, _ := n.Leader(); id != c.nodes[lead].ID() {
					agree = false
				}
			}
			if agree {
				return lead
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no single leader within the deadline")
	return -1
}

func TestElectionFailover(t *testing.T) {
	c := newCluster(t, 3, 100*time.Millisecond)
	first := c.waitLeader(-1)
	term1 := c.nodes[first].LeaderTerm()
	if term1 == 0 || term1 != c.nodes[first].Term() {
		t.Fatalf("leader term %d, current term %d", term1, c.nodes[first].Term())
	}
	servers, err := c.nodes[first].Servers()
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 3 {
		t.Fatalf("servers = %v, want 3", servers)
	}

	c.stop(first)
	second := c.waitLeader(first)
	if second == first {
		t.Fatalf("leader did not change")
	}
	term2 := c.nodes[second].LeaderTerm()
	if term2 <= term1 {
		t.Fatalf("new leader term %d, want > %d", term2, term1)
	}

	// LeaderTerm is set just before the leader function's goroutine runs:
	// wait for the function itself to have started.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.starts)
		c.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxOnNode != 1 {
		t.Errorf("a node ran %d leader loops at once", c.maxOnNode)
	}
	if c.maxTotal != 1 {
		t.Errorf("the cluster ran %d leader loops at once during a graceful handover", c.maxTotal)
	}
	if c.active[c.nodes[first].ID()] != 0 {
		t.Errorf("stopped node still runs its leader loop")
	}
	if len(c.starts) < 2 || c.starts[len(c.starts)-1] != c.nodes[second].ID() {
		t.Errorf("leader loop starts = %v, want last %s", c.starts, c.nodes[second].ID())
	}
}

// TestHandOverGoesToTheSuccessor: a leader that stops, or steps down,
// hands leadership to the voter Successor names, not to the first in
// the configuration (raft's own pick, all voters being alike to it).
func TestHandOverGoesToTheSuccessor(t *testing.T) {
	c := newCluster(t, 5, 100*time.Millisecond)
	lead := c.waitLeader(-1)
	pick := func(skip ...int) int { // the last running node in configuration order
		for i := len(c.nodes) - 1; i >= 0; i-- {
			if c.cancel[i] != nil && !slices.Contains(skip, i) {
				return i
			}
		}
		return -1
	}
	want := pick(lead)
	c.setNext(c.nodes[want].ID())
	c.stop(lead)
	if got := c.waitLeader(lead); got != want {
		t.Fatalf("after %s stopped, %s leads; want %s, the successor named", c.nodes[lead].ID(), c.nodes[got].ID(), c.nodes[want].ID())
	}
	lead = want
	want = pick(lead)
	c.setNext(c.nodes[want].ID())
	if err := c.nodes[lead].StepDown(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.nodes[want].LeaderTerm() == 0 {
		if time.Now().After(deadline) {
			id, _ := c.nodes[want].Leader()
			t.Fatalf("after %s stepped down, %s leads; want %s, the successor named", c.nodes[lead].ID(), id, c.nodes[want].ID())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMembershipNeedsLeader(t *testing.T) {
	c := newCluster(t, 3, 100*time.Millisecond)
	lead := c.waitLeader(-1)
	follower := (lead + 1) % 3
	err := c.nodes[follower].Remove("n9", time.Second)
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Remove on follower = %v, want ErrNotLeader", err)
	}
	// Remove a follower through the leader: the configuration shrinks.
	victim := (lead + 2) % 3
	if err := c.nodes[lead].Remove(c.nodes[victim].ID(), 5*time.Second); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	servers, err := c.nodes[lead].Servers()
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 {
		t.Fatalf("servers after remove = %v", servers)
	}
	for _, s := range servers {
		if s.ID == c.nodes[victim].ID() {
			t.Fatalf("removed server still listed: %v", servers)
		}
	}
}

func TestLeaderLoopRestartsAfterReturn(t *testing.T) {
	// A leader function that returns by itself is started again while the
	// node still leads, never twice at once.
	_, tr := raft.NewInmemTransport("")
	store := raft.NewInmemStore()
	var running, maxRunning, calls atomic.Int32
	n, err := New(Config{
		NodeID: "solo", Peers: []Peer{{ID: "solo", Address: string(tr.LocalAddr())}},
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		LeaderLeaseTimeout: 25 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}, Deps{
		OnLead: func(ctx context.Context, term uint64) {
			r := running.Add(1)
			for {
				m := maxRunning.Load()
				if r <= m || maxRunning.CompareAndSwap(m, r) {
					break
				}
			}
			calls.Add(1)
			running.Add(-1)
		},
		Transport: tr, LogStore: store, StableStore: store, SnapshotStore: raft.NewInmemSnapshotStore(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 3 {
		t.Fatalf("leader function called %d times", calls.Load())
	}
	if maxRunning.Load() != 1 {
		t.Fatalf("max concurrent leader functions = %d", maxRunning.Load())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"ok", Config{NodeID: "a", BindAddr: "127.0.0.1:7000", DataDir: "/tmp/x", Peers: []Peer{{ID: "a", Address: "127.0.0.1:7000"}}}, nil},
		{"missing", Config{}, []string{"node_id", "bind_addr", "advertise_addr", "data_dir"}},
		{"unspecified", Config{NodeID: "a", BindAddr: "0.0.0.0:7000", DataDir: "/d"}, []string{"advertise_addr"}},
		{"peers", Config{NodeID: "a", BindAddr: ":7000", AdvertiseAddr: "h:1", DataDir: "/d", Peers: []Peer{{ID: "b"}, {ID: "b", Address: "x"}}}, []string{"peers[0].address", "peers[1].id", "peers: must include"}},
		{"peer addresses", Config{NodeID: "a", BindAddr: "h:1", DataDir: "/d", Peers: []Peer{{ID: "a", Address: "h:1"}, {ID: "b", Address: "10.0.0.2"}, {ID: "c", Address: "h:1"}, {ID: "d", Address: "h:0"}, {ID: "e", Address: ":7000"}}},
			[]string{"peers[1].address", "peers[2].address: \"h:1\" is also peers[0]'s", "peers[3].address", "peers[4].address"}},
		{"election below heartbeat", Config{NodeID: "a", BindAddr: "h:1", DataDir: "/d", HeartbeatTimeout: time.Second}, []string{"election_timeout: 500ms is below heartbeat_timeout (1s)"}},
		{"timeouts", Config{NodeID: "a", BindAddr: "h:1", DataDir: "/d", HeartbeatTimeout: time.Millisecond, LeaderLeaseTimeout: time.Second}, []string{"heartbeat_timeout", "leader_lease_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %v", tt.want)
			}
			for _, w := range tt.want {
				if !contains(err.Error(), w) {
					t.Errorf("Validate() = %v, missing %q", err, w)
				}
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// heldFuture is a raft.Future that completes when release is closed.
type heldFuture struct{ release chan struct{} }

func (f heldFuture) Error() error {
	<-f.release
	return raft.ErrRaftShutdown
}

// TestStopDoesNotWaitForTheBarrier: a node stopped while the Barrier after
// its win is still pending returns without waiting for it (raft's Shutdown
// ends it), and never starts the leader loop.
func TestStopDoesNotWaitForTheBarrier(t *testing.T) {
	addr, trans := raft.NewInmemTransport("")
	store := raft.NewInmemStore()
	node, err := New(Config{
		NodeID: "n0", Peers: []Peer{{ID: "n0", Address: string(addr)}},
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		LeaderLeaseTimeout: 25 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}, Deps{
		Registerer: prometheus.NewRegistry(),
		Logger:     slog.New(slog.DiscardHandler),
		OnLead:     func(context.Context, uint64) { t.Error("the leader loop started without its Barrier") },
		Transport:  trans, LogStore: store, StableStore: store, SnapshotStore: raft.NewInmemSnapshotStore(),
	})
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	var once sync.Once
	node.barrier = func(*raft.Raft, time.Duration) raft.Future {
		once.Do(func() { close(held) })
		return heldFuture{release}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the node never won its election")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return while the Barrier was pending")
	}
}
