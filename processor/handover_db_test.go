package processor

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/processor/election"
)

// TestHandOverSkipsAKilledSuccessor: the processor that the presence rows
// name as the successor (ready, most applied) is killed; its row stays
// current for up to 15 s, so the leader that steps down still names it,
// and its transfer fails. Leadership goes to the ready processor left,
// which the rows name once the killed one is excluded, not to one still
// loading its graph that comes before it in the configuration. Real raft
// (in memory) and the rows in MariaDB.
func TestHandOverSkipsAKilledSuccessor(t *testing.T) {
	dsn := storetest.NewDB(t)
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	log := slog.New(slog.DiscardHandler)

	// Four voters whose transports time out after 50 ms, so that raft's
	// transfer to one whose raft stopped gives up (ten RPC timeouts) well
	// within the hand-over's time.
	const n = 4
	addrs := make([]raft.ServerAddress, n)
	trans := make([]*raft.InmemTransport, n)
	for i := range n {
		addrs[i], trans[i] = raft.NewInmemTransportWithTimeout("", 50*time.Millisecond)
	}
	var peers []election.Peer
	for i := range n {
		for j := range n {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
		peers = append(peers, election.Peer{ID: fmt.Sprintf("p%d", i), Address: string(addrs[i])})
	}
	nodes := make([]*election.Node, n)
	stops := make([]func(), n)
	for i := range n {
		id := peers[i].ID
		st := raft.NewInmemStore()
		node, err := election.New(election.Config{
			NodeID: id, Peers: peers,
			HeartbeatTimeout: 250 * time.Millisecond, ElectionTimeout: 250 * time.Millisecond,
			LeaderLeaseTimeout: 125 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		}, election.Deps{
			Successor: presentSuccessor(db, id, log),
			Transport: trans[i], LogStore: st, StableStore: st, SnapshotStore: raft.NewInmemSnapshotStore(),
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = node
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- node.Run(rctx) }()
		stopped := false
		stops[i] = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run(%s): %v", id, err)
			}
		}
		t.Cleanup(stops[i])
	}
	lead := -1
	waitFor(t, "a leader", func() bool {
		for i, node := range nodes {
			if node.LeaderTerm() != 0 {
				lead = i
				return true
			}
		}
		return false
	})
	var others []int // in configuration order
	for i := range n {
		if i != lead {
			others = append(others, i)
		}
	}
	killed, loading, live := others[0], others[1], others[2]

	// Every processor but one says it is ready; the one to be killed has
	// applied most, so it is the successor. It announces on a pool of its
	// own. The one still loading has applied most of the others.
	announce := func(db *sql.DB, i int, ready bool, applied int64) (stop func()) {
		actx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = store.Announce(actx, db, peers[i].ID, func() store.NodeState { return store.NodeState{Ready: ready, AppliedSeq: applied} }, log)
		}()
		stop = func() { cancel(); <-done }
		t.Cleanup(stop)
		return stop
	}
	announce(db, lead, true, 10)
	announce(db, live, true, 10)
	announce(db, loading, false, 15)
	killedDB, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	stopKilled := announce(killedDB, killed, true, 20)
	leaderSuccessor := presentSuccessor(db, peers[lead].ID, log)
	waitFor(t, "the successor named by the presence rows", func() bool {
		return leaderSuccessor(ctx, nil) == peers[killed].ID && leaderSuccessor(ctx, []string{peers[killed].ID}) == peers[live].ID
	})

	// Killed: its raft stops, and its row is neither refreshed nor
	// deleted (its pool is closed under it).
	stops[killed]()
	_ = killedDB.Close()
	stopKilled()
	if got := leaderSuccessor(ctx, nil); got != peers[killed].ID {
		t.Fatalf("successor after the kill = %q; want %s, whose row is still current", got, peers[killed].ID)
	}

	if err := nodes[lead].StepDown(); err != nil {
		t.Fatalf("step down with the successor %s killed: %v; want leadership handed to %s", peers[killed].ID, err, peers[live].ID)
	}
	waitFor(t, "a new leader", func() bool { return nodes[live].LeaderTerm() != 0 || nodes[loading].LeaderTerm() != 0 })
	if nodes[loading].LeaderTerm() != 0 {
		t.Fatalf("%s, still loading, leads; want %s, the ready one left", peers[loading].ID, peers[live].ID)
	}
}
