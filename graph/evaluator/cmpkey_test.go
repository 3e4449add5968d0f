package evaluator

import (
	"bytes"
	"math"
	"math/rand"
	"strconv"
	"testing"

	"github.com/causeway/causeway/graph"
)

// TestCmpBindingsAsKeys checks that cmpBindings orders binding lists as
// their match keys do, whenever it says it can: vertices of other widths,
// decimals that are prefixes of each other, other entities and lengths.
func TestCmpBindingsAsKeys(t *testing.T) {
	r := &rule{tplName: "t", scenario: 0, clause: 1}
	rng := rand.New(rand.NewSource(1))
	entities := []string{"a", "alarm", "host", "host_b", "instance", "nic"}
	vertices := []graph.VertexID{1, 2, 9, 10, 12, 19, 99, 100, 120, 123, 1005, 10005, 12000, 99999, 100000,
		math.MaxInt64, math.MaxInt64 / 10, 999999999999999999, 1000000000000000000, 0, -1, -12}
	gen := func() []Binding {
		n := rng.Intn(4)
		b := make([]Binding, n)
		for i := range b {
			b[i] = Binding{Entity: entities[rng.Intn(2)+2*i], Vertex: vertices[rng.Intn(len(vertices))]}
		}
		return b
	}
	decided := 0
	for i := 0; i < 200000; i++ {
		a, b := gen(), gen()
		if rng.Intn(2) == 0 && len(a) > 0 {
			// Share a leading part, as candidates of one reconcile do.
			b = append(append([]Binding(nil), a[:rng.Intn(len(a))]...), b...)
		}
		c, ok := cmpBindings(a, b)
		if !ok {
			continue
		}
		decided++
		if want := bytes.Compare(appendMatchKey(nil, r, a), appendMatchKey(nil, r, b)); c != want {
			t.Fatalf("cmpBindings(%v, %v) = %d, keys compare %d", a, b, c, want)
		}
	}
	if decided < 100000 {
		t.Fatalf("cmpBindings decided only %d of 200000 comparisons", decided)
	}
	for _, p := range [][2]int64{{1, 10}, {12, 120}, {12, 123}, {1005, 10005}, {9, 10}, {math.MaxInt64, 1}, {math.MaxInt64, 99},
		{math.MaxInt64, 9223372036854775807 / 10}, {1, 1000000000000000000}} {
		for _, q := range [][2]int64{p, {p[1], p[0]}} {
			if got, want := cmpDecimal(q[0], q[1]), bytes.Compare(strconv.AppendInt(nil, q[0], 10), strconv.AppendInt(nil, q[1], 10)); got != want {
				t.Errorf("cmpDecimal(%d, %d) = %d, want %d", q[0], q[1], got, want)
			}
		}
	}
}

// TestMatchKeyLen checks that matchKeyLen is the length of the key
// matchKey makes, whatever the vertices' widths and signs.
func TestMatchKeyLen(t *testing.T) {
	r := &rule{tplName: "host_nic_down", scenario: 2, clause: 10}
	for _, v := range []graph.VertexID{0, 1, 9, 10, 99, 100, 123456, math.MaxInt64, -1, -10, -99, math.MinInt64} {
		b := []Binding{{Entity: "host", Vertex: 7}, {Entity: "instance", Vertex: v}}
		if got, want := matchKeyLen(r, b), len(matchKey(r, b)); got != want {
			t.Errorf("matchKeyLen with vertex %d = %d; want %d", v, got, want)
		}
	}
}
