package evaluator

import (
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/causeway/causeway/graph"
)

// TestMatchSet checks the anchor index's set against a plain map through
// random adds and removes that cross the slice/map threshold both ways.
func TestMatchSet(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	// Matches of one rule, as a set holds them: vertices of several widths,
	// some the decimal prefix of others, and a binding list of another
	// length.
	r := &rule{tplName: "t", scenario: 1, clause: 0}
	ms := make([]*match, 3*maxFew)
	for i := range ms {
		b := []Binding{{Entity: "host", Vertex: 7}, {Entity: "instance", Vertex: graph.VertexID(i/2 + 1)}}
		if i%2 == 1 {
			b[1].Vertex = graph.VertexID((i/2 + 1) * 10)
		}
		if i == 5 {
			b = b[:1]
		}
		ms[i] = &match{key: matchKey(r, b), rule: r, bindings: b}
	}
	var s matchSet
	want := map[string]*match{}
	sawMany := false
	for step := 0; step < 30000; step++ {
		// A few keys first (one inline, a short slice), then many (the map).
		k := 3
		if step >= 1000 {
			k = len(ms)
		}
		m := ms[rng.Intn(k)]
		if rng.Intn(2) == 0 {
			s.add(m)
			want[m.key] = m
		} else {
			s.remove(m)
			delete(want, m.key)
		}
		if s.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, s.len(), len(want))
		}
		if s.many != nil {
			sawMany = true
		}
		if x := ms[rng.Intn(k)]; s.has(x.key) != (want[x.key] != nil) {
			t.Fatalf("step %d: has(%q) = %v", step, x.key, s.has(x.key))
		}
		if step >= 1000 && step%97 != 0 {
			continue // the whole set, now and then
		}
		var got []string
		for x := range s.all {
			if want[x.key] != x {
				t.Fatalf("step %d: %s in the set, not in the model", step, x.key)
			}
			got = append(got, x.key)
		}
		slices.Sort(got)
		if len(slices.Compact(got)) != len(want) {
			t.Fatalf("step %d: %d distinct matches, want %d", step, len(got), len(want))
		}
		if !slices.IsSortedFunc(s.few, func(a, b *match) int { return strings.Compare(a.key, b.key) }) {
			t.Fatalf("step %d: the slice is not sorted by key", step)
		}
	}
	if !sawMany {
		t.Fatal("the set never grew into a map")
	}
}
