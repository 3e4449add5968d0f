package election

import (
	"fmt"
	"testing"
	"time"
)

// TestLoopOfAnOlderTermStops: leadership lost and won again between two
// looks of the leadership loop (here the loop is held while the leader
// hands leadership to another voter, which hands it back) leaves raft
// leading at a newer term while the leader loop of the old term runs on.
// The loop must stop it and start one at the new term: the old term's
// writes would be fenced, or at an equal stored term, not be.
func TestLoopOfAnOlderTermStops(t *testing.T) {
	c := newCluster(t, 3, 100*time.Millisecond)
	lead := c.waitLeader(-1)
	l, other := c.nodes[lead], c.nodes[(lead+1)%3]
	old := l.LeaderTerm()
	parked, release := c.gates[lead].hold(t, pauseCheck)
	waitClosed(t, "the leadership loop held", 5*time.Second, parked)

	c.setNext(other.ID())
	if err := l.StepDown(); err != nil {
		t.Fatalf("hand leadership to %s: %v", other.ID(), err)
	}
	waitFor(t, other.ID()+"'s leader loop", 10*time.Second, func() bool { return other.LeaderTerm() != 0 })
	c.setNext(l.ID())
	if err := other.StepDown(); err != nil {
		t.Fatalf("hand leadership back to %s: %v", l.ID(), err)
	}
	waitFor(t, l.ID()+" leading again", 10*time.Second, func() bool { return l.State() == "Leader" })
	now := l.Term()
	if got := l.LeaderTerm(); got != old || now <= old {
		t.Fatalf("held: leader loop of term %d, raft at term %d; want the loop of %d to run on under a newer term", got, now, old)
	}
	from := c.gates[lead].mark()
	release()

	waitFor(t, fmt.Sprintf("the leader loop of term %d to give way to one of term %d", old, now), 10*time.Second,
		func() bool { return l.LeaderTerm() == now })
	c.mu.Lock()
	active := c.active[l.ID()]
	c.mu.Unlock()
	if active > 1 {
		t.Errorf("%s runs %d leader loops at once", l.ID(), active)
	}
	for _, e := range c.gates[lead].trace(from) {
		if e.what == "lead" && e.term != now {
			t.Errorf("a leader loop began at term %d; want %d", e.term, now)
		}
	}
}

// TestNoLoopForALeaderDeposedAfterItsBarrier: a node whose Barrier
// succeeded, and which is no longer leader when the loop looks again (its
// own removal from the configuration committed meanwhile, which deposes
// it at the same term), must not start a leader loop.
func TestNoLoopForALeaderDeposedAfterItsBarrier(t *testing.T) {
	c := newCluster(t, 3, 100*time.Millisecond)
	lead := c.waitLeader(-1)
	i := (lead + 1) % 3
	a := c.nodes[i]
	parked, release := c.gates[i].hold(t, pauseBarrier)
	c.setNext(a.ID())
	if err := c.nodes[lead].StepDown(); err != nil {
		t.Fatalf("hand leadership to %s: %v", a.ID(), err)
	}
	waitClosed(t, a.ID()+"'s leadership loop held after its Barrier", 10*time.Second, parked)
	term := a.Term()

	if err := a.Remove(a.ID(), 5*time.Second); err != nil {
		t.Logf("remove %s through itself: %v", a.ID(), err) // it may step down before it answers
	}
	waitFor(t, a.ID()+" no longer leading", 10*time.Second, func() bool { return a.State() != "Leader" })
	if got := a.Term(); got != term {
		t.Fatalf("%s's term went from %d to %d; the test needs it deposed at its term", a.ID(), term, got)
	}
	from := c.gates[i].mark()
	release()

	// The next look of the loop shows what it decided after the Barrier.
	waitFor(t, "the leadership loop to look again", 5*time.Second, func() bool {
		for _, e := range c.gates[i].trace(from) {
			if e.what == "check" {
				return true
			}
		}
		return false
	})
	for _, e := range c.gates[i].trace(from) {
		if e.what == "check" {
			if e.term != 0 {
				t.Errorf("a leader loop of term %d runs on %s, no longer leader (%s)", e.term, a.ID(), a.State())
			}
			break
		}
	}
}

// TestLoopStartsOnlyAfterABarrierOfItsTerm: leadership lost and won again
// after a new leader's Barrier succeeded (here its loop is held after the
// Barrier while it hands leadership away and gets it back) makes the
// Barrier one of an older term. The leader loop must start only after a
// Barrier of the term it is given, and with raft's term, not the older
// one.
func TestLoopStartsOnlyAfterABarrierOfItsTerm(t *testing.T) {
	c := newCluster(t, 3, 100*time.Millisecond)
	lead := c.waitLeader(-1)
	i := (lead + 1) % 3
	a, b := c.nodes[i], c.nodes[(lead+2)%3]
	parked, release := c.gates[i].hold(t, pauseBarrier)
	c.setNext(a.ID())
	if err := c.nodes[lead].StepDown(); err != nil {
		t.Fatalf("hand leadership to %s: %v", a.ID(), err)
	}
	waitClosed(t, a.ID()+"'s leadership loop held after its Barrier", 10*time.Second, parked)
	old := a.Term()

	c.setNext(b.ID())
	if err := a.StepDown(); err != nil {
		t.Fatalf("hand leadership to %s: %v", b.ID(), err)
	}
	waitFor(t, b.ID()+"'s leader loop", 10*time.Second, func() bool { return b.LeaderTerm() != 0 })
	c.setNext(a.ID())
	if err := b.StepDown(); err != nil {
		t.Fatalf("hand leadership back to %s: %v", a.ID(), err)
	}
	waitFor(t, a.ID()+" leading again", 10*time.Second, func() bool { return a.State() == "Leader" })
	now := a.Term()
	if now <= old {
		t.Fatalf("%s leads at term %d after its Barrier of term %d; want a newer term", a.ID(), now, old)
	}
	from := c.gates[i].mark()
	release()

	waitFor(t, fmt.Sprintf("%s's leader loop of term %d", a.ID(), now), 10*time.Second, func() bool { return a.LeaderTerm() == now })
	barrier := false // a Barrier of term now seen since the release
	for _, e := range c.gates[i].trace(from) {
		switch e.what {
		case "barrier":
			barrier = barrier || e.term == now
		case "lead":
			if e.term != e.raftTerm {
				t.Errorf("a leader loop began with term %d while raft was at term %d", e.term, e.raftTerm)
			} else if !barrier {
				t.Errorf("the leader loop of term %d began with no Barrier of that term: the last one succeeded at term %d", e.term, old)
			}
		}
	}
}
