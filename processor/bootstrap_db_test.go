package processor

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/processor/election"
	"github.com/causeway/causeway/snapshot"
	"github.com/prometheus/client_golang/prometheus"
)

// raftOnDB is an election node on real raft (bolt, loopback TCP) whose
// term floor and leader claims are the processor's fence on a real
// MariaDB, as newNode wires them.
type raftOnDB struct {
	*election.Node
	addr string
	logs *logtest.Buffer
	stop func()
}

func freeRaftAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// startRaftOnDB runs id at addr on a new data dir with peers as its
// static bootstrap configuration and bootstrap as raft.bootstrap.
func startRaftOnDB(t *testing.T, db *sql.DB, id, addr string, peers []election.Peer, bootstrap string) *raftOnDB {
	t.Helper()
	fence := newLeaderFence(db, snapshot.DefaultFenceName, time.Second, nil)
	r := &raftOnDB{addr: addr, logs: &logtest.Buffer{}}
	n, err := election.New(election.Config{
		NodeID: id, BindAddr: addr, DataDir: t.TempDir(), Peers: peers, Bootstrap: bootstrap,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}, election.Deps{
		Logger: slog.New(slog.NewTextHandler(r.logs, nil)), Registerer: prometheus.NewRegistry(),
		OnLead: func(ctx context.Context, term uint64) {
			if err := fence.Claim(ctx, int64(term)); err != nil && ctx.Err() == nil {
				t.Logf("%s: claim at term %d: %v", id, term, err)
			}
			<-ctx.Done()
		},
		TermFloor: func(ctx context.Context) (uint64, error) {
			s, err := fence.Stored(ctx)
			return uint64(max(s, 0)), err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Node = n
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run(%s) = %v", id, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run(%s) did not return", id)
		}
	}
	t.Cleanup(r.stop)
	waitLong(t, id+"'s raft to start", func() bool {
		_, err := n.Servers()
		return err == nil
	})
	return r
}

func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 20s waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leading waits for one of nodes to run its leader duties with the
// fencing rows claimed at its term, and returns it.
func leading(t *testing.T, db *sql.DB, nodes ...*raftOnDB) *raftOnDB {
	t.Helper()
	var lead *raftOnDB
	waitLong(t, "a leader with the fencing rows claimed", func() bool {
		for _, n := range nodes {
			if term := n.LeaderTerm(); term != 0 && claimedAll(context.Background(), db, int64(term)) {
				lead = n
				return true
			}
		}
		return false
	})
	return lead
}

// TestRemovedNodeWithLostRaftStateDoesNotBootstrap: a cluster began as
// a single voter p1 (raft.peers: [p1]), grew by joins to p1, p2, p3, and
// p1 was then removed. p1's data dir is lost and it is started again with
// its old config. Before, an empty data dir bootstrapped raft.peers: p1
// became a cluster of its own, raised its term to the fencing rows' (the
// real leader's term) and won its election above it, so its claim passed
// the fence and the real leader's writes were refused: a removed node
// leading. The fencing rows say a cluster has led on this database, so
// p1 must not bootstrap: it starts with no configuration (it can never
// campaign), says what the operator must do, and follows once joined
// again.
func TestRemovedNodeWithLostRaftStateDoesNotBootstrap(t *testing.T) {
	db := openTestDB(t)
	a1, a2, a3 := freeRaftAddr(t), freeRaftAddr(t), freeRaftAddr(t)
	p1 := startRaftOnDB(t, db, "p1", a1, []election.Peer{{ID: "p1", Address: a1}}, "")
	leading(t, db, p1)
	p2 := startRaftOnDB(t, db, "p2", a2, nil, "")
	p3 := startRaftOnDB(t, db, "p3", a3, nil, "")
	for _, n := range []*raftOnDB{p2, p3} {
		if err := p1.Join(n.ID(), n.addr, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := p1.StepDown(); err != nil {
		t.Fatal(err)
	}
	lead := leading(t, db, p2, p3)
	if err := lead.Remove("p1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	term := lead.LeaderTerm()
	p1.stop()

	// p1 again, its data dir lost, raft.peers as at its first start.
	p1 = startRaftOnDB(t, db, "p1", a1, []election.Peer{{ID: "p1", Address: a1}}, "")
	if servers, err := p1.Servers(); err != nil || len(servers) != 0 {
		t.Fatalf("p1, removed and its raft state lost, started with the configuration %v (%v); want none (it must not bootstrap raft.peers again)", servers, err)
	}
	waitLong(t, "p1 to say why it does not bootstrap", func() bool {
		return strings.Contains(p1.logs.String(), "not bootstrapping")
	})
	if !strings.Contains(p1.logs.String(), "causeway cluster join") {
		t.Errorf("p1's log does not tell the operator to join it again:\n%s", p1.logs.String())
	}

	// Joined again, it follows the leader, at the leader's term.
	if err := lead.Join("p1", a1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "p1 following "+lead.ID(), func() bool {
		id, _ := p1.Leader()
		return id == lead.ID()
	})
	if got := lead.LeaderTerm(); got != term {
		t.Errorf("the leader's term moved from %d to %d as p1 was joined again", term, got)
	}
	if !claimedAll(context.Background(), db, int64(term)) {
		t.Errorf("the fencing rows moved past the leader's term %d", term)
	}
}

// TestLateFirstStartFollows: on the first start of a new cluster the
// nodes bootstrap raft.peers alike; one that starts only after the others
// elected a leader and claimed the fencing rows finds them set, does not
// bootstrap, and is brought into the configuration by the leader, which
// has it as a voter already.
func TestLateFirstStartFollows(t *testing.T) {
	db := openTestDB(t)
	a1, a2, a3 := freeRaftAddr(t), freeRaftAddr(t), freeRaftAddr(t)
	peers := []election.Peer{{ID: "p1", Address: a1}, {ID: "p2", Address: a2}, {ID: "p3", Address: a3}}
	p1 := startRaftOnDB(t, db, "p1", a1, peers, "")
	p2 := startRaftOnDB(t, db, "p2", a2, peers, "")
	lead := leading(t, db, p1, p2)
	term := lead.LeaderTerm()
	p3 := startRaftOnDB(t, db, "p3", a3, peers, "")
	waitLong(t, "p3 following "+lead.ID()+" with the three voters", func() bool {
		id, _ := p3.Leader()
		servers, err := p3.Servers()
		return id == lead.ID() && err == nil && len(servers) == 3
	})
	if !strings.Contains(p3.logs.String(), "not bootstrapping") {
		t.Errorf("p3 does not say it did not bootstrap:\n%s", p3.logs.String())
	}
	if got := lead.LeaderTerm(); got != term {
		t.Errorf("the leader's term moved from %d to %d as p3 started", term, got)
	}
}
