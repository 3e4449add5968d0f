package election

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// freeAddr is a loopback host:port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// tcpNode runs a node over raft's TCP transport and bolt store in a
// fresh data dir, bootstrapped alone, until the test ends.
func tcpNode(t *testing.T, id string) *Node {
	t.Helper()
	addr := freeAddr(t)
	n := runTCPNode(t, id, addr, TLSConfig{}, []Peer{{ID: id, Address: addr}})
	waitFor(t, id+" leading", 10*time.Second, func() bool { return n.LeaderTerm() != 0 })
	return n
}

// runTCPNode runs a node over TCP (mutual TLS with tc) at addr with peers
// (none: it waits to be joined), on a fresh data dir, until the test ends,
// when Run must return nil.
func runTCPNode(t *testing.T, id, addr string, tc TLSConfig, peers []Peer) *Node {
	t.Helper()
	n, err := New(Config{
		NodeID: id, BindAddr: addr, DataDir: t.TempDir(), Peers: peers, TLS: tc,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}, Deps{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run(%s) = %v", id, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run(%s) did not return", id)
		}
	})
	return n
}

// TestJoinOfAnUnreachableVoterIsRefused: a voter added at an address
// where no raft answers (a typo, or a node not started yet) counts toward
// the quorum at once; joined to a lone leader it takes the quorum away
// for good: the leader steps down, no election can be won, and no leader
// is left to remove the voter again. The join must be refused, the
// configuration and the leadership left as they were.
func TestJoinOfAnUnreachableVoterIsRefused(t *testing.T) {
	n := tcpNode(t, "n0")
	err := n.Join("n1", freeAddr(t), 5*time.Second)
	if !errors.Is(err, ErrNoQuorum) {
		t.Errorf("Join of a voter no raft answers at = %v; want ErrNoQuorum", err)
	}
	keepsLeading(t, n)
	servers, serr := n.Servers()
	if serr != nil || len(servers) != 1 {
		t.Fatalf("after the join: servers %v (%v); want n0 alone", servers, serr)
	}
}

// TestJoinThatMovesTheLeaderAwayIsRefused: a join of the leader's own id
// at another address rewrites its address in the configuration, so the
// address must be one it answers at, as for any other voter.
func TestJoinThatMovesTheLeaderAwayIsRefused(t *testing.T) {
	n := tcpNode(t, "n0")
	if err := n.Join("n0", freeAddr(t), 5*time.Second); !errors.Is(err, ErrNoQuorum) {
		t.Errorf("Join of the leader at an address where nothing answers = %v; want ErrNoQuorum", err)
	}
	servers, err := n.Servers()
	if err != nil || len(servers) != 1 || servers[0].Address != string(n.r.Load().Leader()) {
		t.Errorf("servers %v (%v); want n0 at its own address", servers, err)
	}
}

// keepsLeading fails the test if n stops leading within ten lease
// timeouts: a leader whose configuration lost its quorum steps down
// after one.
func keepsLeading(t *testing.T, n *Node) {
	t.Helper()
	for end := time.Now().Add(10 * n.cfg.LeaderLeaseTimeout); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if n.State() != "Leader" || n.LeaderTerm() == 0 {
			t.Fatalf("state %s, leader loop at term %d; want the leader to lead on", n.State(), n.LeaderTerm())
		}
	}
}

// TestJoinOfARunningNode: a node started to join (no peers) is added as a
// voter and follows the leader.
func TestJoinOfARunningNode(t *testing.T) {
	n := tcpNode(t, "n0")
	addr := freeAddr(t)
	j, err := New(Config{
		NodeID: "n1", BindAddr: addr, DataDir: t.TempDir(),
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}, Deps{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "n1's raft running", 10*time.Second, func() bool { return j.State() != "" })
	if err := n.Join("n1", addr, 5*time.Second); err != nil {
		t.Fatalf("Join of a running node: %v", err)
	}
	waitFor(t, "n1 to know its leader", 10*time.Second, func() bool { id, _ := j.Leader(); return id != "" })
	servers, err := n.Servers()
	if err != nil || len(servers) != 2 {
		t.Fatalf("servers %v (%v); want n0 and n1", servers, err)
	}
}

// TestJoinAtTheAPIPortIsRefused: an address where something else than
// raft listens (the processor's HTTP API, given for its raft port) is
// refused like one where nothing does.
func TestJoinAtTheAPIPortIsRefused(t *testing.T) {
	n := tcpNode(t, "n0")
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if err := n.Join("n1", srv.Listener.Addr().String(), 5*time.Second); !errors.Is(err, ErrNoQuorum) {
		t.Errorf("Join at an HTTP server = %v; want ErrNoQuorum", err)
	}
	keepsLeading(t, n)
}

// TestRemoveRefusesAnUnknownMember: raft commits the removal of an id
// that is no member as an unchanged configuration and says nothing; a
// typo must not read as a removal.
func TestRemoveRefusesAnUnknownMember(t *testing.T) {
	c := newCluster(t, 3, 100*time.Millisecond)
	lead := c.waitLeader(-1)
	if err := c.nodes[lead].Remove("n9", 5*time.Second); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("Remove(n9) of n0..n2 = %v; want ErrUnknownServer", err)
	}
}

// TestRemoveThatLeavesNoQuorumIsRefused: with one voter of three down,
// removing a live one leaves a configuration of the leader and the one
// that is down: committing it deposes the leader, and no election can be
// won until the down one is back. The removal must be refused; removing
// the one that is down goes through.
func TestRemoveThatLeavesNoQuorumIsRefused(t *testing.T) {
	// Timeouts long enough that a leader under -race on a loaded machine
	// keeps its lease with one follower left.
	c := newClusterRPC(t, 3, 500*time.Millisecond, 50*time.Millisecond)
	lead := c.waitLeader(-1)
	others := c.othersOf(lead)
	down, live := others[0], others[1]
	c.stop(down)
	for j, tr := range c.trans {
		if j != down {
			tr.Disconnect(c.trans[down].LocalAddr())
		}
	}
	l := c.nodes[lead]
	err := l.Remove(c.nodes[live].ID(), 5*time.Second)
	if !errors.Is(err, ErrNoQuorum) {
		t.Errorf("Remove(%s) with %s down = %v; want ErrNoQuorum", c.nodes[live].ID(), c.nodes[down].ID(), err)
	}
	keepsLeading(t, l)
	if err := l.Remove(c.nodes[down].ID(), 5*time.Second); err != nil {
		t.Fatalf("Remove(%s), the one down: %v", c.nodes[down].ID(), err)
	}
	servers, err := l.Servers()
	if err != nil || len(servers) != 2 {
		t.Fatalf("servers %v (%v); want the leader and %s", servers, err, c.nodes[live].ID())
	}
}

// TestDataDirInUseFailsTheStart: a second node started on a data dir a
// running one holds (a second unit given the same raft.data_dir) fails at
// once, naming the store, instead of waiting for ever on its lock,
// silently, with no raft started.
func TestDataDirInUseFailsTheStart(t *testing.T) {
	first := tcpNode(t, "n0")
	second, err := New(Config{
		NodeID: "n1", BindAddr: freeAddr(t), DataDir: first.cfg.DataDir,
	}, Deps{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- second.Run(ctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "raft.db") {
			t.Errorf("Run on a data dir in use = %v; want an error naming raft.db", err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("Run on a data dir in use neither started nor failed within 10s")
	}
}

// TestRemovedLeaderCanRejoin: `causeway cluster remove` of the leader
// itself, then `cluster join` of it again (maintenance of its host, or an
// address fixed) must give back a voter that answers. raft shuts a leader
// that removed itself down by default (ShutdownOnRemove) while the
// process runs on: the join is accepted — the other two make the quorum —
// and the cluster counts a voter that never answers until its process is
// restarted, so one more failure leaves it without a leader.
func TestRemovedLeaderCanRejoin(t *testing.T) {
	c := newCluster(t, 3, 100*time.Millisecond)
	lead := c.waitLeader(-1)
	old := c.nodes[lead]
	if err := old.Remove(old.ID(), 5*time.Second); err != nil {
		t.Fatalf("Remove(%s) by itself, the leader: %v", old.ID(), err)
	}
	next := c.waitLeader(lead)
	addr := c.trans[lead].LocalAddr()
	if err := c.nodes[next].Join(old.ID(), string(addr), 5*time.Second); err != nil {
		t.Fatalf("Join(%s) again: %v", old.ID(), err)
	}
	waitFor(t, old.ID()+" following "+c.nodes[next].ID()+" again", 10*time.Second, func() bool {
		id, _ := old.Leader()
		if old.State() == "Shutdown" {
			t.Fatalf("%s's raft shut down when it removed itself; rejoined, it can never answer", old.ID())
		}
		return old.State() == "Follower" && id == c.nodes[next].ID()
	})
	// Two of the three voters are enough once it answers.
	third := 3 - lead - next
	c.stop(third)
	for j, tr := range c.trans {
		if j != third {
			tr.Disconnect(c.trans[third].LocalAddr())
		}
	}
	waitFor(t, "a leader with "+c.nodes[third].ID()+" down", 10*time.Second, func() bool {
		return c.nodes[lead].LeaderTerm() != 0 || c.nodes[next].LeaderTerm() != 0
	})
}

// joiningNode runs a node over TCP that waits to be joined (no peers)
// until the test ends, and returns it with its raft address.
func joiningNode(t *testing.T, id string) (*Node, string) {
	t.Helper()
	addr := freeAddr(t)
	j := runTCPNode(t, id, addr, TLSConfig{}, nil)
	waitFor(t, id+"'s raft running", 10*time.Second, func() bool { return j.State() != "" })
	return j, addr
}

// TestJoinAtAnotherNodesAddressIsRefused: a join whose address is where
// another node's raft answers (two new nodes' addresses swapped, a typo
// of the id) would put that node in the configuration under an id that is
// not its own: it finds itself nowhere in it (or at the other's address),
// while the leader counts it, sends its replication and leadership
// transfers there, and takes its votes as another voter's. The raft that
// answers says its id: the join must be refused, naming it.
func TestJoinAtAnotherNodesAddressIsRefused(t *testing.T) {
	n := tcpNode(t, "n0")
	_, addr := joiningNode(t, "n1")
	err := n.Join("n2", addr, 5*time.Second)
	if !errors.Is(err, ErrOtherServer) || !strings.Contains(err.Error(), "n1") {
		t.Errorf("Join(n2) at n1's address = %v; want ErrOtherServer naming n1", err)
	}
	keepsLeading(t, n)
	if servers, err := n.Servers(); err != nil || len(servers) != 1 {
		t.Fatalf("after the join: servers %v (%v); want n0 alone", servers, err)
	}
}

// TestJoinAtAMembersAddressIsRefused: a join of a new id at the address
// of a member (a host replaced under a new id before the old one was
// removed) is refused as the operator's error it is, naming the member,
// not failed as a server error by raft's own configuration check.
func TestJoinAtAMembersAddressIsRefused(t *testing.T) {
	c := newCluster(t, 3, 100*time.Millisecond)
	lead := c.waitLeader(-1)
	other := c.othersOf(lead)[0]
	err := c.nodes[lead].Join("n9", string(c.trans[other].LocalAddr()), 5*time.Second)
	if !errors.Is(err, ErrOtherServer) || !strings.Contains(err.Error(), c.nodes[other].ID()) {
		t.Errorf("Join(n9) at %s's address = %v; want ErrOtherServer naming %s", c.nodes[other].ID(), err, c.nodes[other].ID())
	}
}
