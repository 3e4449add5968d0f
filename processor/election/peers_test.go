package election

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/logtest"
)

// TestChangedPeersOnRestartAreReported: raft.peers is used only to
// bootstrap an empty data dir. A node restarted on its raft state with
// peers that differ from the configuration raft holds (peers added to the
// file rather than joined, or a file left behind a join or a removal,
// which a node whose data dir is lost would bootstrap again) must say so
// rather than ignore them silently; with the same peers it says nothing.
func TestChangedPeersOnRestartAreReported(t *testing.T) {
	addr, trans := raft.NewInmemTransport("")
	store := raft.NewInmemStore()
	snaps := raft.NewInmemSnapshotStore()
	self := Peer{ID: "n0", Address: string(addr)}
	start := func(peers []Peer) string {
		t.Helper()
		logs := &logtest.Buffer{}
		n, err := New(Config{
			NodeID: "n0", Peers: peers,
			HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
			LeaderLeaseTimeout: 25 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		}, Deps{
			Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(logs, nil)),
			Transport: trans, LogStore: store, StableStore: store, SnapshotStore: snaps,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		waitFor(t, "n0 leading", 10*time.Second, func() bool { return n.LeaderTerm() != 0 })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		return logs.String()
	}
	const warning = "raft.peers differ from the raft configuration"
	if out := start([]Peer{self}); strings.Contains(out, warning) {
		t.Errorf("first start warned:\n%s", out)
	}
	if out := start([]Peer{self}); strings.Contains(out, warning) {
		t.Errorf("restart with the same peers warned:\n%s", out)
	}
	out := start([]Peer{self, {ID: "n1", Address: "elsewhere:7000"}})
	if !strings.Contains(out, warning) || !strings.Contains(out, "n1") {
		t.Errorf("restart with another peer added: no warning naming it:\n%s", out)
	}
}
