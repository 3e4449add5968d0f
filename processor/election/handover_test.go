package election

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// goneWays are the ways a voter is gone to the others, once its raft
// stopped: a killed process's transport refuses at once; a host that is
// gone takes RPCs and never answers, so raft's transfer to it times out
// while its TimeoutNow RPC is still out, and raft refuses the next
// transfer until that RPC gives up (here 500 ms, ten RPC timeouts; 10 s
// over TCP).
var goneWays = []struct {
	name string
	// make makes node i gone to the others, once its raft stopped.
	make func(c *cluster, i int)
}{
	{"killed", func(c *cluster, i int) {
		for j, tr := range c.trans {
			if j != i {
				tr.Disconnect(c.trans[i].LocalAddr())
			}
		}
	}},
	{"host gone", func(*cluster, int) {}},
}

// leaveWays are the ways a leader hands leadership over.
var leaveWays = []string{"step down", "stop"}

// handOverBy makes node lead hand leadership over by leave, failing the
// test if the hand-over fails; want says where leadership should go.
func (c *cluster) handOverBy(t *testing.T, lead int, leave, want string) {
	t.Helper()
	switch leave {
	case "step down":
		if err := c.nodes[lead].StepDown(); err != nil {
			t.Fatalf("step down: %v; want %s", err, want)
		}
	case "stop":
		c.stop(lead)
		if logs := c.logs[lead].String(); !strings.Contains(logs, `msg="leadership transferred"`) {
			t.Fatalf("stopped without a hand-over; want %s. Its log:\n%s", want, logs)
		}
	default:
		t.Fatalf("no way to leave %q", leave)
	}
}

// eachHandOver runs test for every way a voter is gone and every way a
// leader leaves, on a new five-voter cluster whose leader is elected (five,
// so that three are left to elect once the leader stopped too): others are
// the other voters in configuration order, and drop(i) stops voter i and
// makes it gone that way.
func eachHandOver(t *testing.T, test func(t *testing.T, c *cluster, lead int, others []int, drop func(int), leave string)) {
	for _, gone := range goneWays {
		for _, leave := range leaveWays {
			t.Run(gone.name+"/"+leave, func(t *testing.T) {
				// Timeouts long enough that a leader under -race on a
				// loaded machine keeps its lease through two transfers
				// (with 250 ms it lost quorum contact and stepped down
				// mid-hand-over now and then).
				c := newClusterRPC(t, 5, 500*time.Millisecond, 50*time.Millisecond)
				lead := c.waitLeader(-1)
				test(t, c, lead, c.othersOf(lead), func(i int) { c.stop(i); gone.make(c, i) }, leave)
			})
		}
	}
}

// othersOf are the nodes but lead, in configuration order.
func (c *cluster) othersOf(lead int) []int {
	var others []int
	for i := range c.nodes {
		if i != lead {
			others = append(others, i)
		}
	}
	return others
}

// TestHandOverFallsBackWhenTheSuccessorIsGone: the successor named is
// gone, as when a processor dies while its presence row is still current
// (up to 15 s). The transfer to it fails, and the leader that steps down,
// or stops, hands leadership to another voter instead: not to the gone
// one again, which is first in the configuration, so raft, all voters
// being alike to it, would pick it.
func TestHandOverFallsBackWhenTheSuccessorIsGone(t *testing.T) {
	eachHandOver(t, func(t *testing.T, c *cluster, lead int, others []int, drop func(int), leave string) {
		g, live := others[0], others[1]
		drop(g)
		c.setNext(c.nodes[g].ID())
		c.handOverBy(t, lead, leave, fmt.Sprintf("leadership handed to %s after the transfer to %s, the successor named and gone, failed", c.nodes[live].ID(), c.nodes[g].ID()))
		waitFor(t, c.nodes[live].ID()+" leading", 10*time.Second, func() bool { return c.nodes[live].LeaderTerm() != 0 })
	})
}

// TestHandOverGoesToAReadyVoterWhenTheSuccessorIsGone: the successor
// named is gone; of the voters left, those first in the configuration are
// still loading their graph, and the last one is ready. The leader that
// steps down, or stops, asks Successor again with the gone one excluded,
// and hands leadership to the ready one; before, it went by configuration
// order after the failure, to a voter that could not serve yet.
func TestHandOverGoesToAReadyVoterWhenTheSuccessorIsGone(t *testing.T) {
	eachHandOver(t, func(t *testing.T, c *cluster, lead int, others []int, drop func(int), leave string) {
		g, ready := others[0], others[len(others)-1]
		drop(g)
		c.setNext(c.nodes[g].ID(), c.nodes[ready].ID()) // the ready ones, best first
		want := fmt.Sprintf("leadership handed to %s, the one ready left, after the transfer to %s, the successor named and gone, failed", c.nodes[ready].ID(), c.nodes[g].ID())
		c.handOverBy(t, lead, leave, want)
		if got := c.waitLeader(lead); got != ready {
			t.Fatalf("%s leads, still loading; want %s", c.nodes[got].ID(), want)
		}
	})
}

// TestHandOverFallsBackWhenNoneIsReady: no voter is ready, so Successor
// names none, and the first voter in the configuration, which raft would
// pick (all voters are alike to it once they have caught up), is gone.
// The leader that steps down, or stops, hands leadership to the next
// voter; before, it left the choice to raft, whose transfer to the gone
// one failed with nothing to fall back on.
func TestHandOverFallsBackWhenNoneIsReady(t *testing.T) {
	eachHandOver(t, func(t *testing.T, c *cluster, lead int, others []int, drop func(int), leave string) {
		g, next := others[0], others[1]
		waitFor(t, "every voter caught up with the leader's log", 10*time.Second, func() bool {
			last := c.nodes[lead].r.Load().LastIndex()
			for _, n := range c.nodes {
				if r := n.r.Load(); r == nil || r.LastIndex() != last {
					return false
				}
			}
			return true
		})
		drop(g)
		want := fmt.Sprintf("leadership handed to %s after the transfer to %s, first in the configuration and gone, failed", c.nodes[next].ID(), c.nodes[g].ID())
		c.handOverBy(t, lead, leave, want)
		if got := c.waitLeader(lead); got != next {
			t.Fatalf("%s leads; want %s", c.nodes[got].ID(), want)
		}
	})
}
