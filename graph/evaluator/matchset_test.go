package evaluator

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
)

// TestMatchSet checks the anchor index's set against a plain map through
// random adds and removes that cross the slice/map threshold both ways.
func TestMatchSet(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	ms := make([]*match, 3*maxFew)
	for i := range ms {
		ms[i] = &match{key: fmt.Sprint("k", i)}
	}
	var s matchSet
	want := map[string]*match{}
	for step := 0; step < 5000; step++ {
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
	}
}
