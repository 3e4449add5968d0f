package template

import (
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"strings"
	"testing"
	"unsafe"

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
		size := 0
		for _, c := range want {
			size += len(c)
		}
		if k, n := dnfSizes(n, false); k != len(want) || n != size {
			t.Fatalf("%q: dnfSizes = %d clauses, %d terms; the DNF has %d, %d", cond, k, n, len(want), size)
		}
		compared++
	}
	if compared < 2000 {
		t.Fatalf("only %d conditions compared", compared)
	}
}

// allocated returns the bytes fn allocates: a measure of work that a
// loaded machine does not change, as it does time.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestFlatAndIsLinear: the DNF of a flat AND of k terms is built with work
// linear in k. Growing every partial clause one term at a time copied
// O(k^2) terms: 40k terms, a 1 MiB body, took 28 s.
func TestFlatAndIsLinear(t *testing.T) {
	const k = 40000
	n := &node{kind: nodeAnd}
	for i := 0; i < k; i++ {
		n.children = append(n.children, &node{kind: nodeTerm, term: Term{Source: "h"}})
	}
	var d [][]Term
	var err error
	alloc := allocated(func() { d, err = dnf(n, false) })
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 1 || len(d[0]) != k {
		t.Fatalf("got %d clauses (first of %d terms); want 1 of %d", len(d), len(d[0]), k)
	}
	// Linear: a few copies of the clause; quadratic: k/2 of them.
	if per := unsafe.Sizeof(Term{}); alloc > 16*uint64(k)*uint64(per) {
		t.Errorf("DNF of a flat AND of %d terms allocated %d bytes, over 16 clauses of %d-byte terms", k, alloc, per)
	}
}
func longAnd(k int) []byte {
	cond := strings.TrimSuffix(strings.Repeat("h AND ", k), " AND ")
	return []byte("metadata: {version: 3, name: t, type: standard}\nentities:\n  h: {type: nova.host}\n" +
		"scenarios:\n  - condition: " + cond + "\n    actions: [{mark_down: {target: h}}]\n")
}

// TestConditionTermBound: a condition of MaxTerms terms loads; one more is
// refused as a condition that cannot be converted (85), and a body of the
// largest size made of one long AND is refused as fast as a short one
// (it took 28 s when every AND step copied the clause built so far).
func TestConditionTermBound(t *testing.T) {
	if _, err := Parse(longAnd(MaxTerms), Options{}); err != nil {
		t.Fatalf("%d terms: %v", MaxTerms, err)
	}
	for _, k := range []int{MaxTerms + 1, (MaxSize - 200) / len("h AND ")} {
		body := longAnd(k)
		if len(body) > MaxSize {
			t.Fatalf("test body of %d bytes is over MaxSize", len(body))
		}
		var err error
		alloc := allocated(func() { _, err = Parse(body, Options{}) })
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%d terms: err = %v; want a *ValidationError", k, err)
		}
		want := fmt.Sprintf("condition has more than %d terms", MaxTerms)
		if len(ve.Problems) != 1 || ve.Problems[0].Code != 85 || !strings.Contains(ve.Problems[0].Message, want) {
			t.Fatalf("%d terms: problems %v; want one code 85 saying %q", k, ve.Problems, want)
		}
		// Work, not time, so that a loaded machine cannot fail it: the
		// bounded parse allocates under a hundred times the body; copying
		// the clause at every AND step allocated quadratically (28 s).
		if alloc > 256*uint64(len(body)) {
			t.Errorf("%d terms (%d bytes): refused after allocating %d bytes", k, len(body), alloc)
		}
		t.Logf("%d terms (%d bytes): %d bytes allocated", k, len(body), alloc)
	}
}

// bigConditions returns a body of n scenarios, each a condition of 256
// clauses of 240 terms: within MaxTerms and the clause bound, each just
// under MaxTemplateTerms.
func bigConditions(n int) []byte {
	var c strings.Builder
	for i := 0; i < 8; i++ {
		c.WriteString("(a OR b) AND ")
	}
	for i := 0; i < 231; i++ {
		c.WriteString("a [on] b AND ")
	}
	c.WriteString("a")
	var b strings.Builder
	b.WriteString("metadata: {version: 3, name: t, type: standard}\nentities:\n  a: {type: nova.host}\n  b: {type: nova.host}\nscenarios:\n")
	for i := 0; i < n; i++ {
		b.WriteString("  - condition: " + c.String() + "\n    actions: [{mark_down: {target: a}}]\n")
	}
	return []byte(b.String())
}

// TestTemplateTermBound: the DNFs of all the conditions of a template stay
// under MaxTemplateTerms. One condition at its largest loads; a second one
// is refused before its DNF is built, so a 1 MiB body of such conditions
// costs little (it took a minute and 25 GiB of allocations before).
func TestTemplateTermBound(t *testing.T) {
	if _, err := Parse(bigConditions(1), Options{}); err != nil {
		t.Fatalf("one large condition: %v", err)
	}
	var body []byte
	n := 1
	for len(bigConditions(n+1)) <= MaxSize {
		n++
	}
	body = bigConditions(n)
	var err error
	alloc := allocated(func() { _, err = Parse(body, Options{}) })
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%d large conditions: err = %v; want a *ValidationError", n, err)
	}
	if len(ve.Problems) != n-1 {
		t.Fatalf("%d large conditions: %d problems; want %d (every one after the first)", n, len(ve.Problems), n-1)
	}
	want := fmt.Sprintf("of the template's bound of %d", MaxTemplateTerms)
	if p := ve.Problems[0]; p.Code != 85 || p.Path != "scenarios[1].condition" || !strings.Contains(p.Message, want) {
		t.Fatalf("first problem %v; want code 85 on scenarios[1].condition saying %q", p, want)
	}
	// About what the one DNF built costs; building every one cost 25 GiB.
	one := allocated(func() { _, _ = Parse(bigConditions(1), Options{}) })
	if alloc > 4*one+256*uint64(len(body)) {
		t.Errorf("%d large conditions (%d bytes): refused after allocating %d bytes (one loads with %d)", n, len(body), alloc, one)
	}
	t.Logf("%d large conditions (%d bytes): %d bytes allocated; one: %d", n, len(body), alloc, one)
}

// TestLenientKeepsWhatOlderBuildsAccepted: a state computed under older
// semantics holds templates those builds accepted; parsed leniently they
// load as they did then.
func TestLenientKeepsWhatOlderBuildsAccepted(t *testing.T) {
	for name, body := range map[string][]byte{
		"terms":          longAnd(MaxTerms + 1),
		"template terms": bigConditions(2),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(body, Options{}); err == nil {
				t.Fatal("accepted without Lenient")
			}
			if _, err := Parse(body, Options{Lenient: true}); err != nil {
				t.Fatalf("refused with Lenient: %v", err)
			}
		})
	}
}
