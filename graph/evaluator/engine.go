package evaluator

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
	"github.com/causeway/causeway/internal/event"
)

// ErrNoFixpoint is returned when evaluating one record takes more steps than
// Config.MaxSteps: templates that feed each other without end.
var ErrNoFixpoint = errors.New("evaluator: no fixpoint within the step bound")

// ErrInvalidTemplate wraps the validation error of a template.put whose body
// is refused. The engine's state is unchanged (a previous version of the
// template stays loaded); callers log it and go on with the next record.
var ErrInvalidTemplate = errors.New("invalid template")

// DefaultMaxSteps bounds the changes evaluated for one record.
const DefaultMaxSteps = 1_000_000

// Config tunes an Engine.
type Config struct {
	// MaxSteps bounds the graph changes evaluated for one record (0: DefaultMaxSteps).
	MaxSteps int
}

// Engine owns a graph and the loaded templates. It is not safe for
// concurrent use; its owner serialises every call.
type Engine struct {
	g        *graph.Graph
	norm     *graph.Normalizer
	maxSteps int
	// semantics is the Semantics the state was computed under: this
	// build's for an engine started empty, the snapshot's for a restored
	// one.
	semantics int

	templates map[string]*loaded
	rules     []*rule // sorted by (template, scenario, clause)
	idx       ruleIndex

	// byAnchor holds the stored matches, indexed by each of their
	// bindings.
	byAnchor anchorIndex
	effects  effectIndex

	// en is the reusable enumerator (scratch space, not state).
	en *enumerator

	// Scratch space of run and reconcile, reused from record to record.
	anchorBuf []anchor
	recRule   *rule
	recKeys   []byte
	recBinds  []Binding
	recCands  []candidate
	recUndo   []*match
	allBuf    []graph.Change // Result.Changes, reused from record to record
	nextBuf   []graph.Change // the next wave of run
	sbuf      []byte         // support ids
	idBuf     []byte         // newMatchIDs
	collectFn func([]Binding)
	// Where the matches done and the effects made are cut from (see
	// batch); not state.
	matchBuf  batch[matchBox]
	effectBuf batch[effectBox]

	// outputs of the record being applied; not state.
	external []ExternalAction
	seq      int64
	// changes counts the graph changes of every record applied since the
	// engine was made or restored (ChangesApplied); not state.
	changes int64
}

type loaded struct {
	name, body string
	// params are the values the template was put with (nil for none).
	params map[string]string
	// includes are the bodies of the definition templates it included, so
	// that a restore can rebuild it even if a definition was deleted since.
	includes []TemplateState
	tpl      *template.Template
	rules    []*rule
}

type rule struct {
	tplName  string
	scenario int
	clause   int
	tpl      *template.Template
	sc       *template.Scenario
	c        *template.Clause
	pos      []template.Term // positive terms
	neg      []template.Term // negated relationship terms
	posSet   map[string]bool
	ents     map[string]*matcher

	// The clause compiled for enumeration (see index): slots are the
	// entities bound by positive terms, sorted, so bindings come out sorted
	// by entity; terms refer to slots.
	slots     []string
	slotOf    map[string]int
	slotM     []*matcher
	posT      []posTerm // pos, by slot
	negT      []negTerm // neg, by slot
	keyPrefix string    // of matchKey
}

type posTerm struct {
	src, dst int // slots; dst unused for an entity term
	entity   bool
	label    string
}

type negTerm struct {
	src, dst   int // slots, -1: not bound by a positive term
	label      string
	srcM, dstM *matcher
}

// index compiles the rule's terms over slots.
func (r *rule) index() {
	r.slotOf = map[string]int{}
	names := append([]string(nil), r.c.Positive...)
	for _, t := range r.pos {
		names = append(names, t.Source)
		if !t.IsEntity() {
			names = append(names, t.Target)
		}
	}
	slices.Sort(names)
	r.slots = slices.Compact(names)
	r.slotM = make([]*matcher, len(r.slots))
	for i, n := range r.slots {
		r.slotOf[n] = i
		r.slotM[i] = r.ents[n]
	}
	r.posT = make([]posTerm, 0, len(r.pos))
	for _, t := range r.pos {
		pt := posTerm{src: r.slotOf[t.Source], entity: t.IsEntity(), label: t.Label}
		if !pt.entity {
			pt.dst = r.slotOf[t.Target]
		}
		r.posT = append(r.posT, pt)
	}
	r.negT = make([]negTerm, 0, len(r.neg))
	for _, t := range r.neg {
		nt := negTerm{src: -1, dst: -1, label: t.Label, srcM: r.ents[t.Source], dstM: r.ents[t.Target]}
		if i, ok := r.slotOf[t.Source]; ok {
			nt.src = i
		}
		if i, ok := r.slotOf[t.Target]; ok {
			nt.dst = i
		}
		r.negT = append(r.negT, nt)
	}
	r.keyPrefix = r.tplName + "\x00" + strconv.Itoa(r.scenario) + "/" + strconv.Itoa(r.clause)
}

type match struct {
	key      string
	rule     *rule
	bindings []Binding // sorted by entity
	// ids holds the support ids of the actions of a match made by
	// newMatchIDs ("": supportID makes them).
	ids string
}

func (m *match) vertex(entity string) graph.VertexID {
	for _, b := range m.bindings {
		if b.Entity == entity {
			return b.Vertex
		}
	}
	return 0
}

// Binding binds a template entity to a graph vertex.
type Binding struct {
	Entity string         `json:"entity"`
	Vertex graph.VertexID `json:"vertex"`
}

// effect is what the actions of the stored matches make the graph show at
// one place: an alarm name raised on a target, a target's deduced state or
// marked-down flag, or a causes link from source to target. Its key (see
// effectKey) is derived from these fields, never stored.
type effect struct {
	kind    string // "alarm", "state", "causes", "down"
	target  graph.VertexID
	source  graph.VertexID // causes: from
	name    string         // alarm name
	applied string         // the value the graph shows
	on      bool           // the graph shows the effect
	alarmID graph.VertexID
	// supports: the support ids and their values (severity, state, or ""),
	// sorted by id.
	supports supportList
}

// supportList is a set of supports sorted by id: most effects have one or
// two, so a slice beats a map.
type supportList []Support

func (l *supportList) find(id string) (int, bool) {
	return slices.BinarySearchFunc(*l, id, func(s Support, id string) int { return strings.Compare(s.ID, id) })
}

// set adds the support id or changes its value.
func (l *supportList) set(id, value string) {
	i, ok := l.find(id)
	if ok {
		(*l)[i].Value = value
		return
	}
	*l = slices.Insert(*l, i, Support{ID: id, Value: value})
}

// del removes the support id, if present.
func (l *supportList) del(id []byte) {
	i, ok := slices.BinarySearchFunc(*l, id, func(s Support, id []byte) int { return -compareBytesString(id, s.ID) })
	if ok {
		*l = slices.Delete(*l, i, i+1)
	}
}

// ExternalAction is a request for an action outside the graph (Vitrage's
// execute_mistral), produced when a scenario starts to hold. The notifier
// delivers it; it is an output of Apply, not part of the engine's state.
type ExternalAction struct {
	// ID is stable: the record's seq and the action's rank within it.
	ID       string            `json:"id"`
	Template string            `json:"template"`
	Scenario int               `json:"scenario"`
	Type     string            `json:"type"`
	Workflow string            `json:"workflow"`
	Input    map[string]string `json:"input,omitempty"`
	Bindings []Binding         `json:"bindings"`
}

// Result is what applying one record produced.
type Result struct {
	// Changes are every graph change, the record's own then the evaluator's.
	// The slice is the engine's and valid until its next call: callers
	// read it before applying the next record (the changes it points to
	// are theirs to keep).
	Changes []graph.Change
	// External are the external actions requested.
	External []ExternalAction
}

// New returns an engine over an empty graph.
func New(cfg Config, norm *graph.Normalizer) *Engine {
	return newEngine(cfg, graph.New(norm), norm)
}

func newEngine(cfg Config, g *graph.Graph, norm *graph.Normalizer) *Engine {
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = DefaultMaxSteps
	}
	if norm == nil {
		norm = graph.DefaultNormalizer()
	}
	e := &Engine{
		g: g, norm: norm, maxSteps: cfg.MaxSteps, semantics: Semantics,
		templates: map[string]*loaded{},
	}
	// The indexes by vertex id make a dense page where the graph's is,
	// a thin one for a vertex among few (paged.Table.Crowded).
	crowded := func(id int64) bool { return g.Crowded(graph.VertexID(id)) }
	e.byAnchor.byVertex.Crowded = crowded
	e.effects.byTarget.Crowded = crowded
	e.byAnchor.byVertex.Empty = func(es []anchorEntry) bool { return len(es) == 0 }
	// one is nil only when more is empty: add fills one first.
	e.effects.byTarget.Empty = func(l effectList) bool { return l.one == nil }
	return e
}

// Graph returns the engine's graph for reading (queries, RCA). Callers must
// not change it.
func (e *Engine) Graph() *graph.Graph { return e.g }

// StaleSemantics reports whether the state was computed under another
// Semantics than this build's: restored from a snapshot of a build that
// applies the same log differently. Such a state is still a function of
// the log, but not the one this build's replay of it gives.
func (e *Engine) StaleSemantics() bool { return e.semantics != Semantics }

// StateSemantics is the Semantics the state was computed under (0: a state
// older than the number).
func (e *Engine) StateSemantics() int { return e.semantics }

// ChangesApplied is the number of graph changes (the records' own and the
// evaluator's) of every record applied since the engine was made or
// restored: a measure of the work a replay of those records costs. It is
// not part of the state: a restored engine counts from 0.
func (e *Engine) ChangesApplied() int64 { return e.changes }

// IndexBytes estimates the memory the engine's indexes by vertex id hold
// (of the stored matches' and the effects' lists, not counting the
// matches and effects): 56 bytes for each id of a page of 1,024 ids whose
// vertices many matches bind or effects target, some 100 for each vertex
// of a page that few do, and 16 bytes for each 1,024 ids the graph gave
// (graph/internal/paged). The graph's own is Graph().IndexBytes().
func (e *Engine) IndexBytes() int { return e.byAnchor.byVertex.Bytes() + e.effects.byTarget.Bytes() }

// Apply applies one record and evaluates it to a fixpoint. Its caller
// sees none of the record's changes, so the graph holds their vertices
// and edges in space it reuses (graph.Graph.ScratchChanges): a replay
// allocates none of them.
func (e *Engine) Apply(rec event.Record) error {
	e.g.ScratchChanges(true)
	_, err := e.ApplyResult(rec)
	e.g.ScratchChanges(false)
	return err
}

// ApplyResult is Apply that also returns what the record produced.
func (e *Engine) ApplyResult(rec event.Record) (Result, error) {
	e.external = nil
	e.seq = rec.Seq
	var res Result
	var changes []graph.Change
	switch rec.Event.Kind {
	case event.KindTemplatePut, event.KindTemplateDelete:
		if rec.Event.Template == nil {
			return res, fmt.Errorf("apply seq %d: %s without template", rec.Seq, rec.Event.Kind)
		}
		// The graph sees every record (today it ignores template kinds and
		// its logical time stays at the previous record's).
		gc, err := e.g.AppendApply(e.allBuf[:0], rec)
		gc = e.forget(e.g.Purged(), gc)
		if err != nil {
			return res, fmt.Errorf("apply seq %d: %w", rec.Seq, err)
		}
		changes = gc
		var tc []graph.Change
		if rec.Event.Kind == event.KindTemplatePut {
			tc, err = e.putTemplate(rec.Event.Template.Name, rec.Event.Template.Body, rec.Event.Template.Params)
		} else {
			tc, err = e.deleteTemplate(rec.Event.Template.Name)
		}
		if err != nil {
			return res, fmt.Errorf("apply seq %d: %w", rec.Seq, err)
		}
		changes = append(changes, tc...)
	default:
		gc, err := e.g.AppendApply(e.allBuf[:0], rec)
		gc = e.forget(e.g.Purged(), gc)
		if err != nil {
			return res, fmt.Errorf("apply seq %d: %w", rec.Seq, err)
		}
		changes = gc
	}
	all, err := e.run(changes)
	e.changes += int64(len(all))
	res.Changes = all
	res.External = e.external
	e.external = nil
	if err != nil {
		return res, fmt.Errorf("apply seq %d: %w", rec.Seq, err)
	}
	return res, nil
}

// run evaluates changes, and the changes they cause, to a fixpoint. It
// works in waves: the anchors of every change of a wave are collected,
// deduplicated and reconciled once each (reconciling reads the current
// graph, so one pass per anchor covers every change that touched it); the
// changes the actions make form the next wave.
func (e *Engine) run(changes []graph.Change) ([]graph.Change, error) {
	// changes is allBuf's array, or one grown from it (ApplyResult).
	all := changes
	defer func() { e.allBuf = all[:0] }()
	wave := all
	steps := 0
	next := e.nextBuf[:0]
	defer func() { e.nextBuf = next[:0] }()
	for len(wave) > 0 {
		steps += len(wave)
		if steps > e.maxSteps {
			return all, fmt.Errorf("%w (%d changes)", ErrNoFixpoint, steps)
		}
		anchors := e.anchorBuf[:0]
		for i := range wave {
			anchors = e.anchors(&wave[i], anchors)
		}
		slices.SortFunc(anchors, cmpAnchor)
		anchors = slices.Compact(anchors)
		e.anchorBuf = anchors
		next = next[:0]
		for _, a := range anchors {
			next = e.reconcile(e.rules[a.rule], a.slot, a.vertex, next)
		}
		if len(next) == 0 {
			break
		}
		// all may share its array with wave: start the next wave after it.
		start := len(all)
		all = append(all, next...)
		wave = all[start:]
	}
	return all, nil
}

func cmpAnchor(a, b anchor) int {
	switch {
	case a.rule != b.rule:
		return cmp.Compare(a.rule, b.rule)
	case a.slot != b.slot:
		return cmp.Compare(a.slot, b.slot)
	}
	return cmp.Compare(a.vertex, b.vertex)
}

// akey is a binding of a rule's entity (slot) to a vertex.
type akey struct {
	r    *rule
	slot int
	v    graph.VertexID
}

// anchor is a binding of a rule's entity to reconcile. Slots are sorted by
// entity id, so anchors sort as (rule, entity, vertex).
type anchor struct {
	rule   int
	slot   int
	vertex graph.VertexID
}

// anchors appends the anchors of a change: every (clause, entity, vertex)
// whose matches the change may have made start or stop holding.
func (e *Engine) anchors(ch *graph.Change, anchors []anchor) []anchor {
	if len(e.rules) == 0 {
		return anchors
	}
	switch ch.Op {
	case graph.VertexAdded, graph.VertexUpdated, graph.VertexDeleted:
		if ch.Vertex == nil {
			return anchors
		}
		id := ch.Vertex.ID
		for _, ri := range e.idx.forVertex(ch.Vertex) {
			r := e.rules[ri]
			for slot, te := range r.slotM {
				// Matches through the vertex change only if whether it
				// fits the entity changed (added, deleted, or a filtered
				// property moved); edges are changes of their own.
				if matchesVertex(te, ch.Vertex) != (ch.Prev != nil && matchesVertex(te, ch.Prev)) {
					anchors = append(anchors, anchor{ri, slot, id})
				}
			}
			// A vertex bound only inside a negation changes the truth of
			// the matches of its neighbours.
			for ti := range r.negT {
				t := &r.negT[ti]
				for side := 0; side < 2; side++ {
					own, other, te := t.src, t.dst, t.srcM
					if side == 1 {
						own, other, te = t.dst, t.src, t.dstM
					}
					if own >= 0 {
						continue
					}
					if matchesVertex(te, ch.Vertex) == (ch.Prev != nil && matchesVertex(te, ch.Prev)) {
						continue
					}
					if other < 0 {
						continue
					}
					// Out then In, as the edges were listed before.
					visit := func(ed graph.Edge) bool {
						if ed.Relationship != t.label {
							return true
						}
						if side == 0 && ed.From == id {
							anchors = append(anchors, anchor{ri, other, ed.To})
						}
						if side == 1 && ed.To == id {
							anchors = append(anchors, anchor{ri, other, ed.From})
						}
						return true
					}
					e.g.EachOut(id, visit)
					e.g.EachIn(id, visit)
				}
			}
		}
	case graph.EdgeAdded, graph.EdgeUpdated, graph.EdgeDeleted:
		if ch.Edge == nil {
			return anchors
		}
		ed := ch.Edge
		if ch.PrevEdge != nil && ch.PrevEdge.IsDeleted == ed.IsDeleted {
			return anchors // only a timestamp moved
		}
		for _, ri := range e.idx.byLabel[ed.Relationship] {
			r := e.rules[ri]
			// Relationship terms, negated ones included: their positive
			// ends.
			for ti := range r.posT {
				t := &r.posT[ti]
				if t.entity || t.label != ed.Relationship {
					continue
				}
				anchors = e.edgeAnchors(ri, t.src, t.dst, ed, anchors)
			}
			for ti := range r.negT {
				if t := &r.negT[ti]; t.label == ed.Relationship {
					anchors = e.edgeAnchors(ri, t.src, t.dst, ed, anchors)
				}
			}
		}
	}
	return anchors
}

// edgeAnchors appends the anchors of an edge change for a term of rule ri
// between the slots src and dst (-1: not a positive entity).
func (e *Engine) edgeAnchors(ri, src, dst int, ed *graph.Edge, anchors []anchor) []anchor {
	r := e.rules[ri]
	if src >= 0 && e.mayMatch(r, src, ed.From) {
		anchors = append(anchors, anchor{ri, src, ed.From})
	}
	if dst >= 0 && e.mayMatch(r, dst, ed.To) {
		anchors = append(anchors, anchor{ri, dst, ed.To})
	}
	return anchors
}

// mayMatch reports whether a match of r can bind slot to v: v fits the
// entity now, or a stored match binds it (and may have to be undone).
func (e *Engine) mayMatch(r *rule, slot int, v graph.VertexID) bool {
	if x, ok := e.g.Ref(v); matchesRef(r.slotM[slot], x, ok) {
		return true
	}
	return e.byAnchor.get(akey{r, slot, v}).len() > 0
}

// candidate is a binding found by reconcile: its match key and bindings,
// as ranges of the engine's scratch buffers.
type candidate struct {
	ks, ke int  // in recKeys
	bs, be int  // in recBinds
	stored bool // a stored match has its key
}

// collect is the enumerate callback of reconcile.
func (e *Engine) collect(b []Binding) {
	c := candidate{ks: len(e.recKeys), bs: len(e.recBinds)}
	e.recKeys = appendMatchKey(e.recKeys, e.recRule, b)
	e.recBinds = append(e.recBinds, b...)
	c.ke, c.be = len(e.recKeys), len(e.recBinds)
	e.recCands = append(e.recCands, c)
}

func (e *Engine) candKey(c candidate) []byte { return e.recKeys[c.ks:c.ke] }

// reconcile compares the matches of r that bind slot to v now with those
// stored, and runs UNDO then DO for the difference, both in key order. It
// appends the changes to out.
func (e *Engine) reconcile(r *rule, slot int, v graph.VertexID, out []graph.Change) []graph.Change {
	e.recRule = r
	e.recKeys, e.recBinds, e.recCands = e.recKeys[:0], e.recBinds[:0], e.recCands[:0]
	if e.collectFn == nil {
		e.collectFn = e.collect
	}
	e.enumerate(r, slot, v, e.collectFn)
	// Candidates and stored matches are of r: their keys compare as their
	// bindings do (cmpBindings).
	slices.SortFunc(e.recCands, func(a, b candidate) int {
		if c, ok := cmpBindings(e.recBinds[a.bs:a.be], e.recBinds[b.bs:b.be]); ok {
			return c
		}
		return bytes.Compare(e.candKey(a), e.candKey(b))
	})
	undo := e.recUndo[:0]
	stored := e.byAnchor.get(akey{r, slot, v})
	if stored.few != nil {
		undo = e.markStored(stored.few, undo)
	} else {
		for m := range stored.all {
			i, found := slices.BinarySearchFunc(e.recCands, m, e.cmpCandMatch)
			if !found {
				undo = append(undo, m)
				continue
			}
			for ; i < len(e.recCands) && e.cmpCandMatch(e.recCands[i], m) == 0; i++ {
				e.recCands[i].stored = true
			}
		}
	}
	slices.SortFunc(undo, func(a, b *match) int { return strings.Compare(a.key, b.key) })
	for _, m := range undo {
		out = e.undo(m, out)
	}
	clear(undo)
	e.recUndo = undo[:0]
	// Every stored match that binds slot to v is in stored, and undoing
	// removes only matches that are not candidates: a candidate is stored
	// now if it was found there. A repeated candidate (sorted next to the
	// first) was just done.
	for i, c := range e.recCands {
		if c.stored || (i > 0 && bytes.Equal(e.candKey(e.recCands[i-1]), e.candKey(c))) {
			continue
		}
		out = e.do(e.newMatchIDs(e.candKey(c), r, e.recBinds[c.bs:c.be]), out)
	}
	e.recRule = nil
	return out
}

// newMatchIDs is newMatch for a match about to be done: its key and the
// support ids of its actions (supportID) are cut from one string, where
// each would cost an allocation of its own. The string (match.ids) holds,
// for each action with a support id, in order, the key, "\x00#", the
// action's index and its part ("c" for raise_alarm, whose alarm's id is
// the id without it); the match's key is its first len(key) bytes.
func (e *Engine) newMatchIDs(key []byte, r *rule, b []Binding) *match {
	buf := append(e.idBuf[:0], key...)
	first := true
	for i, a := range r.sc.Actions {
		part, ok := supportPart(a.Type)
		if !ok {
			continue
		}
		if !first {
			buf = append(buf, key...)
		}
		first = false
		buf = append(buf, 0, '#')
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, part...)
	}
	e.idBuf = buf
	ids := string(buf)
	var m *match
	if len(b) > len(matchBox{}.b) {
		m = newMatch(ids[:len(key)], r, b)
	} else {
		x := e.matchBuf.take()
		n := copy(x.b[:], b)
		x.m = match{key: ids[:len(key)], rule: r, bindings: x.b[:n:n]}
		m = &x.m
	}
	m.ids = ids
	return m
}

// matchBox is a match with room for a short binding list.
type matchBox struct {
	m match
	b [4]Binding
}

// batchLen is how many values one allocation of a batch holds.
const batchLen = 32

// batch hands out values of T cut from arrays of batchLen: a replay
// does a match and makes an effect or two for every deduced alarm it
// raises, where each was an allocation of its own. Values made together
// (the matches of one wave, their effects) mostly go together, so an
// array kept by the few of its values still in use is rare.
type batch[T any] struct{ buf []T }

// take returns a zero T.
func (b *batch[T]) take() *T {
	if len(b.buf) == 0 {
		b.buf = make([]T, batchLen)
	}
	p := &b.buf[0]
	b.buf = b.buf[1:]
	return p
}

// markStored marks the candidates of reconcile that stored matches have
// the keys of, and appends to undo the stored matches no candidate has
// the key of. stored is sorted by key (matchSet.few), as the candidates
// are: one walk through both.
func (e *Engine) markStored(stored, undo []*match) []*match {
	cands := e.recCands
	i := 0
	for _, m := range stored {
		for i < len(cands) && e.cmpCandMatch(cands[i], m) < 0 {
			i++
		}
		found := false
		for ; i < len(cands) && e.cmpCandMatch(cands[i], m) == 0; i++ {
			cands[i].stored, found = true, true
		}
		if !found {
			undo = append(undo, m)
		}
	}
	return undo
}

// cmpCandMatch compares the key of candidate c with that of m, a match of
// the rule being reconciled.
func (e *Engine) cmpCandMatch(c candidate, m *match) int {
	if x, ok := cmpBindings(e.recBinds[c.bs:c.be], m.bindings); ok {
		return x
	}
	return compareBytesString(e.candKey(c), m.key)
}

// cmpBindings compares the keys of two matches of one rule by their
// bindings, without the keys. A key is the rule's prefix then, for each
// binding, "\x00", the entity, "=" and the vertex in decimal
// (appendMatchKey). Through bindings of the same entities, keys first
// differ where the vertices' decimals do, and a decimal that is a prefix
// of the other ends its key, or goes on with a "\x00", below the other's
// next digit. ok is false when the first differing bindings name other
// entities, or a vertex is not positive: compare the keys then.
func cmpBindings(a, b []Binding) (c int, ok bool) {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i].Entity != b[i].Entity {
			return 0, false
		}
		if va, vb := a[i].Vertex, b[i].Vertex; va != vb {
			if va <= 0 || vb <= 0 {
				return 0, false
			}
			return cmpDecimal(int64(va), int64(vb)), true
		}
	}
	return cmp.Compare(len(a), len(b)), true
}

// cmpDecimal compares the decimal strings of a and b (positive) as
// bytes.Compare would, without making them: scaled to the same number of
// digits (19 at most, which a uint64 holds), they differ where the strings
// first do; equal scaled, one string is a prefix of the other, and the
// shorter is less.
func cmpDecimal(a, b int64) int {
	da, db := decDigits(uint64(a)), decDigits(uint64(b))
	if da == db {
		return cmp.Compare(a, b)
	}
	sa, sb := uint64(a), uint64(b)
	for i := da; i < db; i++ {
		sa *= 10
	}
	for i := db; i < da; i++ {
		sb *= 10
	}
	if sa != sb {
		return cmp.Compare(sa, sb)
	}
	return cmp.Compare(da, db)
}

// decDigits is the number of decimal digits of x.
func decDigits(x uint64) int {
	n := 1
	for ; x >= 10; x /= 10 {
		n++
	}
	return n
}

// newMatch makes a match with a copy of b; a short binding list shares
// the match's allocation.
func newMatch(key string, r *rule, b []Binding) *match {
	if len(b) > len(matchBox{}.b) {
		return &match{key: key, rule: r, bindings: slices.Clone(b)}
	}
	x := &matchBox{}
	n := copy(x.b[:], b)
	x.m = match{key: key, rule: r, bindings: x.b[:n:n]}
	return &x.m
}

// compareBytesString is bytes.Compare(b, []byte(s)) without the copy.
func compareBytesString(b []byte, s string) int {
	n := min(len(b), len(s))
	for i := 0; i < n; i++ {
		if b[i] != s[i] {
			if b[i] < s[i] {
				return -1
			}
			return 1
		}
	}
	return cmp.Compare(len(b), len(s))
}

func matchKey(r *rule, b []Binding) string {
	return string(appendMatchKey(nil, r, b))
}

// matchKeyLen is len(matchKey(r, b)), without making it.
func matchKeyLen(r *rule, b []Binding) int {
	if r.keyPrefix == "" {
		r.keyPrefix = r.tplName + "\x00" + strconv.Itoa(r.scenario) + "/" + strconv.Itoa(r.clause)
	}
	n := len(r.keyPrefix)
	for _, x := range b {
		n += 2 + len(x.Entity)
		if v := int64(x.Vertex); v < 0 {
			n += 1 + decDigits(uint64(-(v+1))+1) // the sign, then -v (which MinInt64 has no int64 for)
		} else {
			n += decDigits(uint64(v))
		}
	}
	return n
}

func appendMatchKey(dst []byte, r *rule, b []Binding) []byte {
	if r.keyPrefix == "" {
		r.keyPrefix = r.tplName + "\x00" + strconv.Itoa(r.scenario) + "/" + strconv.Itoa(r.clause)
	}
	dst = append(dst, r.keyPrefix...)
	for _, x := range b {
		dst = append(dst, 0)
		dst = append(dst, x.Entity...)
		dst = append(dst, '=')
		dst = strconv.AppendInt(dst, int64(x.Vertex), 10)
	}
	return dst
}

// slotKey is the byAnchor key of a binding of m.
func (m *match) slotKey(b Binding) akey {
	slot, ok := m.rule.slotOf[b.Entity]
	if !ok {
		slot = -1 // a binding no term makes (restored from elsewhere)
	}
	return akey{m.rule, slot, b.Vertex}
}

func (e *Engine) addMatch(m *match) {
	for _, b := range m.bindings {
		e.byAnchor.add(m.slotKey(b), m)
	}
}

func (e *Engine) removeMatch(m *match) {
	for _, b := range m.bindings {
		e.byAnchor.remove(m.slotKey(b), m)
	}
}
