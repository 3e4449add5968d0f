package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/causeway/causeway/internal/logtest"
)

// floorCluster is n in-memory voters whose stores outlive their runs, so
// that a node can be stopped and started again on its raft state.
type floorCluster struct {
	t      *testing.T
	peers  []Peer
	trans  []*raft.InmemTransport
	stores []*raft.InmemStore
	snaps  []*raft.InmemSnapshotStore
	nodes  []*Node
	logs   []*logtest.Buffer
	stops  []func()
}

func newFloorCluster(t *testing.T, n int) *floorCluster {
	c := &floorCluster{t: t, nodes: make([]*Node, n), logs: make([]*logtest.Buffer, n), stops: make([]func(), n)}
	for range n {
		addr, tr := raft.NewInmemTransport("")
		c.trans = append(c.trans, tr)
		c.peers = append(c.peers, Peer{ID: fmt.Sprintf("n%d", len(c.peers)), Address: string(addr)})
		c.stores = append(c.stores, raft.NewInmemStore())
		c.snaps = append(c.snaps, raft.NewInmemSnapshotStore())
	}
	for i := range n {
		for j := range n {
			if i != j {
				c.trans[i].Connect(raft.ServerAddress(c.peers[j].Address), c.trans[j])
			}
		}
	}
	t.Cleanup(func() {
		for i := range c.stops {
			c.stop(i)
		}
	})
	return c
}

// start runs node i with the term floor given.
func (c *floorCluster) start(i int, floor func(context.Context) (uint64, error)) {
	c.t.Helper()
	c.startWith(i, floor, "")
}

// startWith runs node i with the term floor and raft.bootstrap given.
func (c *floorCluster) startWith(i int, floor func(context.Context) (uint64, error), bootstrap string) {
	c.t.Helper()
	c.logs[i] = &logtest.Buffer{}
	node, err := New(Config{
		NodeID: c.peers[i].ID, Peers: c.peers, Bootstrap: bootstrap,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}, Deps{
		Logger:    slog.New(slog.NewTextHandler(c.logs[i], nil)),
		OnLead:    func(ctx context.Context, _ uint64) { <-ctx.Done() },
		TermFloor: floor,
		Transport: c.trans[i], LogStore: c.stores[i], StableStore: c.stores[i], SnapshotStore: c.snaps[i],
	})
	if err != nil {
		c.t.Fatalf("New(%s): %v", c.peers[i].ID, err)
	}
	c.nodes[i] = node
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	c.stops[i] = func() {
		cancel()
		if err := <-done; err != nil {
			c.t.Errorf("Run(%s): %v", c.peers[i].ID, err)
		}
	}
}

func (c *floorCluster) stop(i int) {
	if c.stops[i] != nil {
		c.stops[i]()
		c.stops[i] = nil
	}
}

// leader waits for one node to run its leader loop and returns it.
func (c *floorCluster) leader() int {
	c.t.Helper()
	lead := -1
	waitFor(c.t, "a leader", 15*time.Second, func() bool {
		for i, n := range c.nodes {
			if c.stops[i] != nil && n.LeaderTerm() != 0 {
				lead = i
				return true
			}
		}
		return false
	})
	return lead
}

func floorAt(term uint64) func(context.Context) (uint64, error) {
	return func(context.Context) (uint64, error) { return term, nil }
}

// TestTermFloorLiftsAWipedCluster: raft's state wiped on every voter
// while the fencing rows keep the old cluster's term (500), recovered
// with raft.bootstrap: force: the nodes start their terms at it, so the
// first leader is elected above it, not at term 2.
func TestTermFloorLiftsAWipedCluster(t *testing.T) {
	c := newFloorCluster(t, 3)
	for i := range 3 {
		c.startWith(i, floorAt(500), BootstrapForce)
	}
	lead := c.leader()
	if got := c.nodes[lead].LeaderTerm(); got <= 500 {
		t.Fatalf("first leader at term %d; want above the floor 500", got)
	}
	if !strings.Contains(c.logs[lead].String(), "raft term raised to the fencing rows' term") {
		t.Errorf("no log line says the term was raised:\n%s", c.logs[lead].String())
	}
}

// TestTermFloorAtTheClusterTermDisruptsNothing: a follower restarted (its
// raft state kept, or a new data dir) reads the floor at the running
// leader's term, which is what the fencing rows hold in a cluster whose
// raft state is whole. Raised to it, and not past it, it follows that
// leader: no election, the same leader at the same term.
func TestTermFloorAtTheClusterTermDisruptsNothing(t *testing.T) {
	c := newFloorCluster(t, 3)
	for i := range 3 {
		c.start(i, floorAt(0))
	}
	lead := c.leader()
	term := c.nodes[lead].LeaderTerm()
	f := (lead + 1) % 3
	c.stop(f)
	c.stores[f] = raft.NewInmemStore() // its data dir lost, too
	c.snaps[f] = raft.NewInmemSnapshotStore()
	c.start(f, floorAt(term))
	waitFor(t, c.peers[f].ID+" following at term "+fmt.Sprint(term), 10*time.Second, func() bool {
		id, _ := c.nodes[f].Leader()
		return id == c.peers[lead].ID && c.nodes[f].Term() == term
	})
	time.Sleep(5 * 100 * time.Millisecond) // five election timeouts: nothing may happen
	if got, id := c.nodes[lead].LeaderTerm(), c.nodes[f].Term(); got != term || id != term {
		t.Errorf("after the restart the leader runs at term %d and the follower is at %d; want both at %d", got, id, term)
	}
}

// TestTermFloorUnreadable: the floor cannot be read (the database away
// at the start) by a node that has raft state; it starts all the same,
// says so, and raft's term is left as it was.
func TestTermFloorUnreadable(t *testing.T) {
	c := newFloorCluster(t, 1)
	c.start(0, floorAt(0))
	c.leader()
	c.stop(0)
	c.start(0, func(context.Context) (uint64, error) { return 0, errors.New("database away") })
	lead := c.leader()
	if got := c.nodes[lead].LeaderTerm(); got > 10 {
		t.Errorf("leader at term %d", got)
	}
	if !strings.Contains(c.logs[0].String(), "database away") {
		t.Errorf("the failed read of the floor is not logged:\n%s", c.logs[0].String())
	}
}

// TestEmptyDataDirWaitsForTheFloor: a node with no raft state cannot
// tell whether its cluster has led while the floor cannot be read, and
// bootstrapping raft.peers is safe only if it has not: it does not start
// raft, says why, and reads the floor again until it can; read at 0 (a
// new cluster), it bootstraps and leads.
func TestEmptyDataDirWaitsForTheFloor(t *testing.T) {
	c := newFloorCluster(t, 1)
	var away atomic.Bool
	away.Store(true)
	c.start(0, func(context.Context) (uint64, error) {
		if away.Load() {
			return 0, errors.New("database away")
		}
		return 0, nil
	})
	waitFor(t, "the node to say it waits for the fencing rows", 10*time.Second, func() bool {
		return strings.Contains(c.logs[0].String(), "fencing rows could not be read")
	})
	if _, err := c.nodes[0].Servers(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("raft started before the floor was read (Servers: %v)", err)
	}
	away.Store(false)
	c.leader()
	if !strings.Contains(c.logs[0].String(), "bootstrapped raft cluster") {
		t.Errorf("the node did not bootstrap once the floor read 0:\n%s", c.logs[0].String())
	}
}

// TestForceBootstrapsOverTheFloor: raft.bootstrap: force bootstraps an
// empty data dir whatever the floor, and says so when a cluster has led.
func TestForceBootstrapsOverTheFloor(t *testing.T) {
	c := newFloorCluster(t, 1)
	c.startWith(0, floorAt(7), BootstrapForce)
	if got := c.nodes[c.leader()].LeaderTerm(); got <= 7 {
		t.Errorf("leader at term %d; want above the floor 7", got)
	}
	if !strings.Contains(c.logs[0].String(), "raft.bootstrap: force") {
		t.Errorf("the forced bootstrap is not logged:\n%s", c.logs[0].String())
	}
}

// TestEmptyDataDirOverTheFloorDoesNotBootstrap: a lone voter with no raft
// state whose fencing rows say a cluster has led does not bootstrap: it
// starts raft with no configuration, says what to do, and never leads.
func TestEmptyDataDirOverTheFloorDoesNotBootstrap(t *testing.T) {
	c := newFloorCluster(t, 1)
	c.start(0, floorAt(7))
	waitFor(t, "raft to start", 10*time.Second, func() bool {
		_, err := c.nodes[0].Servers()
		return err == nil
	})
	if s, err := c.nodes[0].Servers(); err != nil || len(s) != 0 {
		t.Errorf("configuration %v (%v); want none", s, err)
	}
	for _, want := range []string{"not bootstrapping", "causeway cluster join n0", "raft.bootstrap: force"} {
		if !strings.Contains(c.logs[0].String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, c.logs[0].String())
		}
	}
}

// TestEmptyRaftDBOverTheFloorDoesNotBootstrap: real bolt and TCP; the
// data dir holds a raft.db of 0 bytes (a disk that lost it, a copy cut
// short), which raft reads as no state. With the fencing rows set it is
// not bootstrapped either.
func TestEmptyRaftDBOverTheFloorDoesNotBootstrap(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "raft.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logs := &logtest.Buffer{}
	n, err := New(Config{
		NodeID: "n0", BindAddr: addr, DataDir: dir, Peers: []Peer{{ID: "n0", Address: addr}},
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}, Deps{Logger: slog.New(slog.NewTextHandler(logs, nil)), TermFloor: floorAt(3)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitFor(t, "raft to start", 10*time.Second, func() bool {
		_, err := n.Servers()
		return err == nil
	})
	if s, err := n.Servers(); err != nil || len(s) != 0 {
		t.Errorf("configuration %v (%v); want none", s, err)
	}
	if !strings.Contains(logs.String(), "not bootstrapping") {
		t.Errorf("the log does not say it did not bootstrap:\n%s", logs.String())
	}
}
