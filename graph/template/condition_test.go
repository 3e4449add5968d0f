package template

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// naiveDNF is the DNF as the parser computed it before the AND product was
// built in one pass: every partial clause grown one child at a time. It is
// the reference the faster product must equal, clause for clause.
func naiveDNF(n *node, neg bool) [][]Term {
	switch n.kind {
	case nodeTerm:
		t := n.term
		t.Negated = neg
		return [][]Term{{t}}
	case nodeNot:
		return naiveDNF(n.children[0], !neg)
	}
	if (n.kind == nodeAnd) == neg {
		var out [][]Term
		for _, c := range n.children {
			out = append(out, naiveDNF(c, neg)...)
		}
		return out
	}
	out := [][]Term{{}}
	for _, c := range n.children {
		var next [][]Term
		for _, a := range out {
			for _, b := range naiveDNF(c, neg) {
				next = append(next, append(append([]Term(nil), a...), b...))
			}
		}
		out = next
	}
	return out
}

// randCond writes a random v3 condition over a few entities.
func randCond(rng *rand.Rand, depth int) string {
	ents := []string{"a", "b", "c", "d"}
	term := func() string {
		if rng.Intn(3) == 0 {
			return ents[rng.Intn(len(ents))]
		}
		return fmt.Sprintf("%s [%s] %s", ents[rng.Intn(len(ents))], []string{"on", "contains"}[rng.Intn(2)], ents[rng.Intn(len(ents))])
	}
	if depth == 0 || rng.Intn(3) == 0 {
		return term()
	}
	var parts []string
	for i := 0; i < 2+rng.Intn(3); i++ {
		p := randCond(rng, depth-1)
		if rng.Intn(4) == 0 {
			p = "NOT " + p
		}
		parts = append(parts, "("+p+")")
	}
	return strings.Join(parts, []string{" AND ", " OR "}[rng.Intn(2)])
}

// TestDNFMatchesNaiveProduct: the one-pass AND product gives the same
// clauses, in the same order, as growing the clauses child by child did, so
// a template stored in the log parses to the same thing as before.
func TestDNFMatchesNaiveProduct(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	compared := 0
	for i := 0; i < 3000; i++ {
		cond := randCond(rng, 3)
		toks, err := tokenize(cond, true)
		if err != nil {
			t.Fatalf("%q: %v", cond, err)
		}
		p := &condParser{toks: toks, v3: true}
		n, err := p.expr()
		if err != nil {
			t.Fatalf("%q: %v", cond, err)
		}
		got, err := dnf(n, false)
		want := naiveDNF(n, false)
		if len(want) > maxClauses {
			if err == nil {
				t.Fatalf("%q: %d clauses accepted", cond, len(want))
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", cond, err)
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Fatalf("%q (-got +want):\n%s", cond, diff)
		}
		compared++
	}
	if compared < 2000 {
		t.Fatalf("only %d conditions compared", compared)
	}
}

// TestFlatAndIsLinear: the DNF of a flat AND of k terms is built in time
// linear in k. Growing every partial clause one term at a time copied
// O(k^2) terms: 40k terms, a 1 MiB body, took 28 s.
func TestFlatAndIsLinear(t *testing.T) {
	const k = 40000
	n := &node{kind: nodeAnd}
	for i := 0; i < k; i++ {
		n.children = append(n.children, &node{kind: nodeTerm, term: Term{Source: "h"}})
	}
	start := time.Now()
	d, err := dnf(n, false)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 1 || len(d[0]) != k {
		t.Fatalf("got %d clauses (first of %d terms); want 1 of %d", len(d), len(d[0]), k)
	}
	// Generous for a loaded machine: the quadratic build took seconds,
	// the linear one takes about a millisecond.
	if took > time.Second {
		t.Errorf("DNF of a flat AND of %d terms took %v", k, took)
	}
}
