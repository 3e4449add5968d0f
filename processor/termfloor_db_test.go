package processor

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/processor/election"
	"github.com/causeway/causeway/snapshot"
	"github.com/prometheus/client_golang/prometheus"
)

// TestWipedRaftStatePassesTheFence: the fencing rows hold the term of a
// long-lived cluster (1000) and raft's state is gone (a redeploy wiped
// the data dirs): a single-voter processor starts on an empty data dir
// with raft.bootstrap: force (the rows say the cluster has led, so it
// would not bootstrap by itself), real raft on bolt and TCP, real MariaDB. Its first election must be won
// at a term above the stored one, so that its claim goes through and the
// leader duties run at once (before, raft's terms began again at 1 and a
// single voter never passed the fence: its duties stayed off for ever).
// The fence keeps moving forward only: a deposed writer of the old
// cluster at the old term, resumed after the new leader's claim, is
// refused.
func TestWipedRaftStatePassesTheFence(t *testing.T) {
	db := openTestDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const old = 1000
	for _, name := range []string{snapshot.DefaultFenceName, outbox.FenceName} {
		if _, err := store.ClaimFence(ctx, db, name, old, 0); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg := Config{NodeID: "p1", FlushInterval: 10 * time.Millisecond, SnapshotCheck: time.Hour}
	cfg.Raft = election.Config{
		NodeID: "p1", BindAddr: addr, DataDir: t.TempDir(), Peers: []election.Peer{{ID: "p1", Address: addr}},
		Bootstrap:        election.BootstrapForce,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
	}
	cfg.SetDefaults()
	p := &Processor{cfg: cfg, deps: Deps{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Now: time.Now},
		log: slog.New(slog.DiscardHandler)}
	n, err := p.newNode(Parts{
		Log: store.NewLog(db, nil), Fence: newLeaderFence(db, snapshot.DefaultFenceName, time.Second, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.elect.Run(rctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("raft: %v", err)
		}
	}()

	// Within a few election timeouts: a leader that the fence refused
	// would hand over every 3 s and, alone, win again at term+1.
	deadline := time.Now().Add(10 * time.Second)
	for n.elect.LeaderTerm() == 0 || !n.leading.Load() || !claimedAll(ctx, db, int64(n.elect.LeaderTerm())) {
		if time.Now().After(deadline) {
			t.Fatalf("leader duties not running 10 s after the start: raft term %d, leader term %d, fenced claims %d, status error %q",
				n.elect.Term(), n.elect.LeaderTerm(), n.fenced.Load(), n.Status(ctx).Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	term := n.elect.LeaderTerm()
	if term <= old {
		t.Fatalf("the new cluster leads at term %d; want above the stored %d", term, old)
	}
	if got := n.fenced.Load(); got != 0 {
		t.Errorf("%d fenced writes by the new cluster's leader", got)
	}
	if st := n.Status(ctx); st.Error != "" {
		t.Errorf("status error %q", st.Error)
	}

	// The deposed writer of the old cluster, at the old term.
	for _, name := range []string{snapshot.DefaultFenceName, history.FenceName, outbox.FenceName} {
		tx, err := store.Begin(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		err = store.CheckFence(ctx, tx, name, old)
		tx.Rollback(ctx)
		if !errors.Is(err, store.ErrFenced) {
			t.Errorf("a write at the old term %d on fence %s: %v; want ErrFenced", old, name, err)
		}
	}
}

// claimedAll reports whether every fencing row a leader claims holds term.
func claimedAll(ctx context.Context, db *sql.DB, term int64) bool {
	for _, name := range []string{snapshot.DefaultFenceName, history.FenceName, outbox.FenceName} {
		got, err := store.StoredFence(ctx, db, name)
		if err != nil || got != term {
			return false
		}
	}
	return true
}
