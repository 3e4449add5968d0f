package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/logtest"
)

// followerDisk is a log store whose appends fail while its node's raft
// runs and does not lead (the bootstrap before it runs goes through): a
// follower whose disk is full or read-only. Heartbeats carry no entries
// and still succeed, so the leader keeps its lease.
type followerDisk struct {
	*raft.InmemStore
	node atomic.Pointer[Node]
}

func (d *followerDisk) StoreLogs(logs []*raft.Log) error {
	if st := d.node.Load().State(); st == "Follower" || st == "Candidate" {
		return errors.New("write raft.db: no space left on device")
	}
	return d.InmemStore.StoreLogs(logs)
}

func (d *followerDisk) StoreLog(l *raft.Log) error { return d.StoreLogs([]*raft.Log{l}) }

// TestBarrierThatCannotCommitIsReported: a new leader whose followers
// cannot store its entries (their disks full) keeps its lease, and its
// Barrier never completes (raft's timeout bounds only its enqueueing).
// The leader must say, each barrier_timeout, that it has no Barrier and so
// runs no leader duties, rather than wait in silence.
func TestBarrierThatCannotCommitIsReported(t *testing.T) {
	const n = 3
	addrs := make([]raft.ServerAddress, n)
	trans := make([]*raft.InmemTransport, n)
	for i := range n {
		addrs[i], trans[i] = raft.NewInmemTransport("")
	}
	var peers []Peer
	for i := range n {
		for j := range n {
			if i != j {
				trans[i].Connect(addrs[j], trans[j])
			}
		}
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i), Address: string(addrs[i])})
	}
	logs := make([]*logtest.Buffer, n)
	nodes := make([]*Node, n)
	for i := range n {
		disk := &followerDisk{InmemStore: raft.NewInmemStore()}
		logs[i] = &logtest.Buffer{}
		node, err := New(Config{
			NodeID: peers[i].ID, Peers: peers,
			HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
			LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
			BarrierTimeout: 300 * time.Millisecond,
		}, Deps{
			Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(logs[i], nil)),
			OnLead:    func(context.Context, uint64) { t.Errorf("%s's leader loop started without a Barrier", peers[i].ID) },
			Transport: trans[i], LogStore: disk, StableStore: disk, SnapshotStore: raft.NewInmemSnapshotStore(),
		})
		if err != nil {
			t.Fatal(err)
		}
		disk.node.Store(node)
		nodes[i] = node
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- node.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	waitFor(t, "a leader", 10*time.Second, func() bool {
		for _, node := range nodes {
			if node.State() == "Leader" {
				return true
			}
		}
		return false
	})
	waitFor(t, "the leader to report its pending Barrier", 3*time.Second, func() bool {
		for i := range nodes {
			if strings.Contains(logs[i].String(), "no barrier within barrier_timeout") {
				return true
			}
		}
		return false
	})
}
