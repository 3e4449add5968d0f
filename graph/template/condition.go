package template

import (
	"fmt"
	"sort"
	"strings"
)

// maxClauses bounds the DNF expansion of one condition, so a hostile
// condition cannot blow up memory.
const maxClauses = 256

// MaxTerms bounds the terms (entities and relationships, negated or not)
// written in one condition. The largest shipped template has three;
// Vitrage's examples stay under twenty, so 256 leaves room for generated
// templates while keeping one condition's DNF under MaxTerms*maxClauses
// (64k) terms. Parsing stops at the first term over the bound, so a 1 MiB
// body of "h AND h AND ..." is refused as fast as a short one.
const MaxTerms = 256

// MaxTemplateTerms bounds the terms of the DNFs of all the conditions of
// one template: within the bounds above each condition can still expand to
// 64k terms, and a 1 MiB body holds hundreds of conditions (one such body
// allocated 25 GiB and took a minute to refuse). One condition at its
// largest still fits.
const MaxTemplateTerms = MaxTerms * maxClauses

// limits bound a condition, when on (off: Options.Lenient).
type limits struct {
	on bool
	// terms bounds the terms written in the condition.
	terms int
	// dnfTerms bounds the terms of its DNF, summed over its clauses.
	dnfTerms int
}

type nodeKind int

const (
	nodeTerm nodeKind = iota
	nodeAnd
	nodeOr
	nodeNot
)

type node struct {
	kind     nodeKind
	term     Term
	children []*node
}

type token struct {
	kind string // "ident", "label", "(", ")", "and", "or", "not"
	text string
	pos  int
}

func tokenize(s string, v3 bool) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{kind: string(c), text: string(c), pos: i})
			i++
		case c == '[':
			if !v3 {
				return nil, fmt.Errorf("unexpected '[' at offset %d", i)
			}
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated '[' at offset %d", i)
			}
			label := strings.TrimSpace(s[i+1 : i+end])
			if label == "" || strings.ContainsAny(label, "[()") {
				return nil, fmt.Errorf("bad relationship label at offset %d", i)
			}
			toks = append(toks, token{kind: "label", text: label, pos: i})
			i += end + 1
		case c == ']':
			return nil, fmt.Errorf("unexpected ']' at offset %d", i)
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n()[]", rune(s[j])) {
				j++
			}
			w := s[i:j]
			switch strings.ToLower(w) {
			case "and", "or", "not":
				// Vitrage v1/v2 rewrite only lowercase operators before
				// handing the condition to sympy, which then refuses "AND".
				if !v3 && w != strings.ToLower(w) {
					return nil, fmt.Errorf("operator %q at offset %d must be lowercase in version 1 and 2 templates", w, i)
				}
				toks = append(toks, token{kind: strings.ToLower(w), text: w, pos: i})
			default:
				toks = append(toks, token{kind: "ident", text: w, pos: i})
			}
			i = j
		}
	}
	return toks, nil
}

type condParser struct {
	toks  []token
	i     int
	v3    bool
	depth int
	terms int
	lim   limits
	// resolve turns an identifier (v2) into a term.
	resolve func(id string) (Term, error)
}

func (p *condParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i].kind
	}
	return ""
}

func (p *condParser) errf(format string, a ...any) error {
	pos := -1
	if p.i < len(p.toks) {
		pos = p.toks[p.i].pos
	}
	if pos < 0 {
		return fmt.Errorf(format+" at end of condition", a...)
	}
	return fmt.Errorf(format+" at offset %d", append(a, pos)...)
}

// expr := and ("or" and)*
func (p *condParser) expr() (*node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 64 {
		return nil, p.errf("condition nested too deeply")
	}
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	children := []*node{left}
	for p.peek() == "or" {
		p.i++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		children = append(children, r)
	}
	if len(children) == 1 {
		return left, nil
	}
	return &node{kind: nodeOr, children: children}, nil
}

func (p *condParser) and() (*node, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	children := []*node{left}
	for p.peek() == "and" {
		p.i++
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		children = append(children, r)
	}
	if len(children) == 1 {
		return left, nil
	}
	return &node{kind: nodeAnd, children: children}, nil
}

func (p *condParser) unary() (*node, error) {
	switch p.peek() {
	case "not":
		p.i++
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > 64 {
			return nil, p.errf("condition nested too deeply")
		}
		c, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &node{kind: nodeNot, children: []*node{c}}, nil
	case "(":
		p.i++
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, p.errf("expected ')'")
		}
		p.i++
		return e, nil
	case "ident":
		p.terms++
		if p.lim.on && p.terms > p.lim.terms {
			return nil, p.errf("condition has more than %d terms", p.lim.terms)
		}
		id := p.toks[p.i].text
		p.i++
		if p.v3 {
			if p.peek() == "label" {
				label := p.toks[p.i].text
				p.i++
				if p.peek() != "ident" {
					return nil, p.errf("expected an entity after [%s]", label)
				}
				target := p.toks[p.i].text
				p.i++
				return &node{kind: nodeTerm, term: Term{Source: id, Label: label, Target: target}}, nil
			}
			return &node{kind: nodeTerm, term: Term{Source: id}}, nil
		}
		t, err := p.resolve(id)
		if err != nil {
			return nil, err
		}
		return &node{kind: nodeTerm, term: t}, nil
	case "":
		return nil, p.errf("expected a term")
	default:
		return nil, p.errf("unexpected %q", p.toks[p.i].text)
	}
}

// parseCondition parses a condition and converts it to DNF, within lim. It
// also returns the number of terms of the DNF, before duplicates in a
// clause are dropped.
func parseCondition(cond string, v3 bool, resolve func(string) (Term, error), lim limits) ([]Clause, int, error) {
	toks, err := tokenize(cond, v3)
	if err != nil {
		return nil, 0, err
	}
	if len(toks) == 0 {
		return nil, 0, fmt.Errorf("empty condition")
	}
	p := &condParser{toks: toks, v3: v3, resolve: resolve, lim: lim}
	n, err := p.expr()
	if err != nil {
		return nil, 0, err
	}
	if p.i != len(toks) {
		return nil, 0, p.errf("unexpected %q", toks[p.i].text)
	}
	if lim.on {
		// Over maxClauses, dnf says so.
		if k, t := dnfSizes(n, false); k <= maxClauses && t > lim.dnfTerms {
			return nil, 0, fmt.Errorf("condition expands to more terms than the %d left of the template's bound of %d", lim.dnfTerms, MaxTemplateTerms)
		}
	}
	raw, err := dnf(n, false)
	if err != nil {
		return nil, 0, err
	}
	clauses := make([]Clause, 0, len(raw))
	size := 0
	for _, terms := range raw {
		size += len(terms)
		clauses = append(clauses, newClause(terms))
	}
	return clauses, size, nil
}

// dnfSizes returns the number of clauses of dnf(n, neg) and the number of
// terms over all of them, without building them. The clause count is capped
// just over maxClauses (dnf refuses past it) and the term count just over
// MaxTemplateTerms, so neither overflows.
func dnfSizes(n *node, neg bool) (clauses, terms int) {
	switch n.kind {
	case nodeTerm:
		return 1, 1
	case nodeNot:
		return dnfSizes(n.children[0], !neg)
	}
	if (n.kind == nodeAnd) == neg {
		for _, c := range n.children {
			k, t := dnfSizes(c, neg)
			clauses = min(clauses+k, maxClauses+1)
			terms = min(terms+t, MaxTemplateTerms+1)
		}
		return clauses, terms
	}
	// Each child's clauses appear in clauses/k of the product's, so its
	// terms are counted that many times.
	clauses = 1
	ks := make([]int, len(n.children))
	ts := make([]int, len(n.children))
	for i, c := range n.children {
		ks[i], ts[i] = dnfSizes(c, neg)
		clauses = min(clauses*ks[i], maxClauses+1)
	}
	if clauses > maxClauses {
		return clauses, MaxTemplateTerms + 1
	}
	for i := range n.children {
		terms = min(terms+clauses/ks[i]*ts[i], MaxTemplateTerms+1)
	}
	return clauses, terms
}

func newClause(terms []Term) Clause {
	var out []Term
	seen := map[Term]bool{}
	pos := map[string]bool{}
	for _, t := range terms {
		if seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, t)
		if !t.Negated {
			pos[t.Source] = true
			if !t.IsEntity() {
				pos[t.Target] = true
			}
		}
	}
	c := Clause{Terms: out}
	for e := range pos {
		c.Positive = append(c.Positive, e)
	}
	sort.Strings(c.Positive)
	return c
}

// dnf returns the clauses (each a list of literals) equivalent to n, or to
// NOT n when neg is set (De Morgan).
func dnf(n *node, neg bool) ([][]Term, error) {
	switch n.kind {
	case nodeTerm:
		t := n.term
		t.Negated = neg
		return [][]Term{{t}}, nil
	case nodeNot:
		return dnf(n.children[0], !neg)
	}
	conj := (n.kind == nodeAnd) != neg
	if !conj {
		var out [][]Term
		for _, c := range n.children {
			d, err := dnf(c, neg)
			if err != nil {
				return nil, err
			}
			out = append(out, d...)
			if len(out) > maxClauses {
				return nil, fmt.Errorf("condition expands to more than %d clauses", maxClauses)
			}
		}
		return out, nil
	}
	// The product of the children's clauses, in the order of a nested loop
	// with the first child outermost. Each clause is built once, from the
	// children's, so a flat AND of k terms costs O(k), not the O(k^2) of
	// growing every partial clause one child at a time.
	ds := make([][][]Term, 0, len(n.children))
	size := 1
	for _, c := range n.children {
		d, err := dnf(c, neg)
		if err != nil {
			return nil, err
		}
		// Every DNF has at least one clause, so size never shrinks.
		if size*len(d) > maxClauses {
			return nil, fmt.Errorf("condition expands to more than %d clauses", maxClauses)
		}
		size *= len(d)
		ds = append(ds, d)
	}
	out := make([][]Term, 0, size)
	idx := make([]int, len(ds))
	for {
		k := 0
		for i, d := range ds {
			k += len(d[idx[i]])
		}
		m := make([]Term, 0, k)
		for i, d := range ds {
			m = append(m, d[idx[i]]...)
		}
		out = append(out, m)
		// Advance the last child first, as the innermost loop.
		i := len(ds) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(ds[i]) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return out, nil
		}
	}
}
