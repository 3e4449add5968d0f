package election

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHandOverFallsBackWhenTheSuccessorIsGone: the successor named is
// gone, as when a processor dies while its presence row is still current
// (up to 15 s). The transfer to it fails, and the leader that steps down,
// or stops, hands leadership to another voter instead: not to the gone
// one again, which is first in the configuration, so raft, all voters
// being alike to it, would pick it. (Five voters, so that three are left
// to elect once the leader stopped too.)
//
// A killed process's transport refuses at once; a host that is gone takes
// RPCs and never answers, so raft's transfer to it times out while its
// TimeoutNow RPC is still out, and raft refuses the next transfer until
// that RPC gives up (here 500 ms, ten RPC timeouts; 10 s over TCP).
func TestHandOverFallsBackWhenTheSuccessorIsGone(t *testing.T) {
	for _, gone := range []struct {
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
	} {
		for _, leave := range []string{"step down", "stop"} {
			t.Run(gone.name+"/"+leave, func(t *testing.T) {
				c := newClusterRPC(t, 5, 250*time.Millisecond, 50*time.Millisecond)
				lead := c.waitLeader(-1)
				var others []int
				for i := range c.nodes {
					if i != lead {
						others = append(others, i)
					}
				}
				g, live := others[0], others[1]
				c.stop(g)
				gone.make(c, g)
				c.setNext(c.nodes[g].ID())
				want := fmt.Sprintf("leadership handed to %s after the transfer to %s, the successor named and gone, failed", c.nodes[live].ID(), c.nodes[g].ID())
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
				}
				waitFor(t, c.nodes[live].ID()+" leading", 10*time.Second, func() bool { return c.nodes[live].LeaderTerm() != 0 })
			})
		}
	}
}
