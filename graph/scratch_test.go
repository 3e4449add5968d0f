package graph

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// changeValue is a change with the values its pointers point to.
type changeValue struct {
	Op             ChangeOp
	Vertex, Prev   *Vertex
	Edge, PrevEdge *Edge
}

func changeValues(ch []Change) []changeValue {
	out := make([]changeValue, 0, len(ch))
	for _, c := range ch {
		v := changeValue{Op: c.Op}
		if c.Vertex != nil {
			x := c.Vertex.Clone()
			v.Vertex = &x
		}
		if c.Prev != nil {
			x := c.Prev.Clone()
			v.Prev = &x
		}
		if c.Edge != nil {
			x := *c.Edge
			v.Edge = &x
		}
		if c.PrevEdge != nil {
			x := *c.PrevEdge
			v.PrevEdge = &x
		}
		out = append(out, v)
	}
	return out
}

// payloads are the addresses of the vertices and edges changes point to.
func payloads(ch []Change) map[any]bool {
	m := map[any]bool{}
	for _, c := range ch {
		for _, p := range []any{c.Vertex, c.Prev, c.Edge, c.PrevEdge} {
			switch x := p.(type) {
			case *Vertex:
				if x != nil {
					m[x] = true
				}
			case *Edge:
				if x != nil {
					m[x] = true
				}
			}
		}
	}
	return m
}

// With ScratchChanges on, Apply reports the same changes as without, and
// the space they point to serves again once it is switched off.
func TestScratchChangesSameChangesReusedSpace(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			ops := genRun(seed, 1500)
			own, scratch := New(nil), New(nil)
			var first map[any]bool
			reused := false
			for _, o := range ops {
				if o.rec == nil {
					o.action(own)
					scratch.ScratchChanges(true)
					o.action(scratch)
					scratch.ScratchChanges(false)
					continue
				}
				want, werr := own.Apply(*o.rec)
				scratch.ScratchChanges(true)
				got, gerr := scratch.Apply(*o.rec)
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("%s: error %v with scratch, %v without", o.desc, gerr, werr)
				}
				if d := cmp.Diff(changeValues(want), changeValues(got)); d != "" {
					t.Fatalf("%s: changes with scratch differ (-without +with):\n%s", o.desc, d)
				}
				p := payloads(got)
				if first == nil && len(p) > 0 {
					first = p
				} else {
					for x := range p {
						reused = reused || first[x]
					}
				}
				scratch.ScratchChanges(false)
			}
			if dump(t, own) != dump(t, scratch) {
				t.Fatal("the graphs differ")
			}
			if !reused {
				t.Error("no change of a later record reused the space of the first's")
			}
		})
	}
}
