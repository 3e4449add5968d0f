package graph

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestPropertyCloneIsolated checks copy on write: after a Clone, changes
// to either graph never show in the other, however often they are cloned.
func TestPropertyCloneIsolated(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	for _, seed := range seeds(t) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			ops := genRun(seed, n)
			straight := New(nil)
			for _, o := range ops {
				o.apply(t, straight)
			}
			want := dump(t, straight)
			rng := rand.New(rand.NewPCG(seed, 11))
			g := New(nil)
			type frozen struct {
				g    *Graph
				at   int
				dump string
			}
			var clones []frozen
			for i, o := range ops {
				if rng.IntN(100) == 0 {
					c := g.Clone()
					clones = append(clones, frozen{c, i, dump(t, c)})
					if rng.IntN(2) == 0 {
						// The clone goes on instead, the original stays.
						g, clones[len(clones)-1].g = c, g
					}
				}
				o.apply(t, g)
			}
			if got := dump(t, g); got != want {
				t.Fatalf("seed %d: a graph cloned along the way differs from a straight run", seed)
			}
			for _, c := range clones {
				if got := dump(t, c.g); got != c.dump {
					t.Fatalf("seed %d: the graph cloned at step %d changed after the clone", seed, c.at)
				}
				if err := checkInvariants(c.g); err != nil {
					t.Fatalf("seed %d: clone at %d: %v", seed, c.at, err)
				}
				// A frozen copy finishes the run to the same graph.
				for _, o := range ops[c.at:] {
					o.apply(t, c.g)
				}
				if got := dump(t, c.g); got != want {
					t.Fatalf("seed %d: the graph cloned at step %d, run to the end, differs", seed, c.at)
				}
			}
		})
	}
}
