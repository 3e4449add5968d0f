package processor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
)

// failingFence refuses every claim with a database error (not the fence).
type failingFence struct{}

func (failingFence) Claim(context.Context, int64) error {
	return errors.New("dial tcp 10.0.0.5:3306: connect: no route to host")
}
func (failingFence) Stored(context.Context) (int64, error) {
	return 0, errors.New("dial tcp 10.0.0.5:3306: connect: no route to host")
}

// leadFor runs n as the leader of term until stop says so or within
// ends, and returns how many times it handed leadership over.
func leadFor(t *testing.T, n *node, term uint64, within time.Duration, stop func(*fakeElector) bool) int64 {
	t.Helper()
	elect := n.elect.(*fakeElector)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.lead(ctx, term) }()
	for ctx.Err() == nil && !stop(elect) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	return elect.stepDowns.Load()
}

func presenceOf(ps ...store.Presence) func(context.Context) ([]store.Presence, error) {
	return func(context.Context) ([]store.Presence, error) { return ps, nil }
}

// TestUnableLeaderHandsOver: a leader that cannot claim its fencing rows
// (cut off from the database, its grants missing) writes nothing — no
// outbox row, no snapshot — for as long as it leads, and raft keeps it
// leading while it reaches the other voters. With a ready processor
// standing by, or when it cannot even read who is, it hands leadership
// over; without one ready, it stays.
func TestUnableLeaderHandsOver(t *testing.T) {
	defer func(d time.Duration) { unableHandOverAfter = d }(unableHandOverAfter)
	unableHandOverAfter = 20 * time.Millisecond
	handedOver := func(e *fakeElector) bool { return e.stepDowns.Load() > 0 }

	t.Run("a ready processor stands by", func(t *testing.T) {
		n := testNode(t, nil, nil)
		n.parts.Fence, n.parts.Snapshots = failingFence{}, nil
		n.parts.Present = presenceOf(store.Presence{NodeID: "p2", NodeState: store.NodeState{Ready: true, AppliedSeq: 5}})
		if got := leadFor(t, n, 3, 5*time.Second, handedOver); got == 0 {
			t.Error("a leader unable to claim its fence, with p2 ready, never handed leadership over")
		}
	})
	t.Run("the presence rows cannot be read", func(t *testing.T) {
		n := testNode(t, nil, nil)
		n.parts.Fence, n.parts.Snapshots = failingFence{}, nil
		n.parts.Present = func(context.Context) ([]store.Presence, error) { return nil, errors.New("no route to host") }
		if got := leadFor(t, n, 3, 5*time.Second, handedOver); got == 0 {
			t.Error("a leader cut off from the database never handed leadership over")
		}
	})
	t.Run("none is ready", func(t *testing.T) {
		n := testNode(t, nil, nil)
		n.parts.Fence, n.parts.Snapshots = failingFence{}, nil
		n.parts.Present = presenceOf(store.Presence{NodeID: "p2", NodeState: store.NodeState{Ready: false, AppliedSeq: 9}})
		if got := leadFor(t, n, 3, 20*unableHandOverAfter, handedOver); got != 0 {
			t.Errorf("%d hand-overs with no processor ready to take over", got)
		}
	})
	t.Run("an able leader", func(t *testing.T) {
		fence := &fakeFence{}
		n := testNode(t, fence, &fakeSnaps{fence: fence})
		n.elect = &fakeElector{leader: "t"}
		n.cfg.PollInterval, n.cfg.ReadyLag = time.Hour, new(int64(0))
		n.f.setHead(5) // caught up: applied 5 of 5
		n.parts.Present = presenceOf(store.Presence{NodeID: "p2", NodeState: store.NodeState{Ready: true, AppliedSeq: 5}})
		if got := leadFor(t, n, 3, 20*unableHandOverAfter, handedOver); got != 0 {
			t.Errorf("%d hand-overs by a leader doing its duties", got)
		}
	})
}
