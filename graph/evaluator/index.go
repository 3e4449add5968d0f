package evaluator

import (
	"fmt"
	"slices"
	"strings"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/internal/paged"
)

// anchorIndex maps an anchor (rule, slot, vertex) to the stored matches
// that bind it. Vertex ids are small and dense (graph.newVertex), so it
// is a table by vertex of short lists of (rule, slot): one index and a
// scan of a few entries, where a map over every anchor of a large graph
// costs a cache miss or more per probe. The table is in pages that hold
// only the vertices with a list (paged.Table), as ids are never reused:
// the lists of purged vertices give their memory back.
type anchorIndex struct {
	byVertex paged.Table[[]anchorEntry]
	// first is where a vertex's first entry is cut from (see add); not
	// state.
	first []anchorEntry
}

type anchorEntry struct {
	r    *rule
	slot int
	set  matchSet
}

// find returns k's vertex's list and the index of k's entry in it, or -1.
// The entries are the table's: a change to one stays.
func (x *anchorIndex) find(k akey) ([]anchorEntry, int) {
	es := x.byVertex.Get(int64(k.v))
	for i, e := range es {
		if e.r == k.r && e.slot == k.slot {
			return es, i
		}
	}
	return es, -1
}

// get returns the matches that bind k (an empty set if none).
func (x *anchorIndex) get(k akey) matchSet {
	if es, i := x.find(k); i >= 0 {
		return es[i].set
	}
	return matchSet{}
}

func (x *anchorIndex) add(k akey, m *match) {
	es, i := x.find(k)
	if i >= 0 {
		es[i].set.add(m)
		return
	}
	if k.v < 0 {
		panic(fmt.Sprintf("evaluator: negative vertex id %d", k.v))
	}
	e := anchorEntry{r: k.r, slot: k.slot}
	e.set.add(m)
	if cap(es) == 0 {
		// Most vertices are bound by one (rule, slot): their list is cut
		// from an array of batchLen, where each was an allocation of its
		// own. Its capacity ends there: a second entry moves the list to
		// an array of its own.
		if len(x.first) == cap(x.first) {
			x.first = make([]anchorEntry, 0, batchLen)
		}
		n := len(x.first)
		x.first = x.first[:n+1]
		es = x.first[n : n : n+1]
	}
	x.byVertex.Set(int64(k.v), append(es, e))
}

func (x *anchorIndex) remove(k akey, m *match) {
	es, i := x.find(k)
	if i < 0 {
		return
	}
	es[i].set.remove(m)
	if es[i].set.len() > 0 {
		return
	}
	es[i] = es[len(es)-1]
	es[len(es)-1] = anchorEntry{}
	// An emptied list keeps its array for the vertex's next match, while
	// the page holds it.
	x.byVertex.Set(int64(k.v), es[:len(es)-1])
}

// lists returns the vertices with a list and their lists, ascending by
// vertex.
func (x *anchorIndex) lists(yield func(graph.VertexID, []anchorEntry) bool) {
	for v, es := range x.byVertex.All {
		if !yield(graph.VertexID(v), es) {
			return
		}
	}
}

// at returns the list of vertex v.
func (x *anchorIndex) at(v graph.VertexID) []anchorEntry { return x.byVertex.Get(int64(v)) }

// matchSet holds the stored matches that bind one anchor, all of one rule:
// one match inline, a slice sorted by key, or a map once it grows past
// maxFew. Most sets hold a match or two; one vertex of many matches (a
// host of a hundred instances) has them in a slice, where a map hashed
// every key and took longer to walk.
type matchSet struct {
	one  *match // the only match, while few and many are empty
	few  []*match
	many map[string]*match
}

const maxFew = 1024

// cmpMatches orders two matches of one rule by key (cmpBindings).
func cmpMatches(a, b *match) int {
	if c, ok := cmpBindings(a.bindings, b.bindings); ok {
		return c
	}
	return strings.Compare(a.key, b.key)
}

func (s matchSet) len() int {
	if s.one != nil {
		return 1
	}
	return len(s.few) + len(s.many)
}

func (s *matchSet) add(m *match) {
	if s.many != nil {
		s.many[m.key] = m
		return
	}
	if s.one != nil {
		if s.one.key == m.key {
			s.one = m
			return
		}
		s.few = make([]*match, 2, 4)
		if cmpMatches(s.one, m) < 0 {
			s.few[0], s.few[1] = s.one, m
		} else {
			s.few[0], s.few[1] = m, s.one
		}
		s.one = nil
		return
	}
	if len(s.few) == 0 {
		s.one = m
		return
	}
	i, found := slices.BinarySearchFunc(s.few, m, cmpMatches)
	if found {
		s.few[i] = m
		return
	}
	if len(s.few) < maxFew {
		s.few = slices.Insert(s.few, i, m)
		return
	}
	s.many = make(map[string]*match, 2*maxFew)
	for _, x := range s.few {
		s.many[x.key] = x
	}
	s.many[m.key] = m
	s.few = nil
}

func (s *matchSet) remove(m *match) {
	if s.one != nil {
		if s.one.key == m.key {
			s.one = nil
		}
		return
	}
	if s.many != nil {
		delete(s.many, m.key)
		return
	}
	if i, found := slices.BinarySearchFunc(s.few, m, cmpMatches); found {
		s.few = slices.Delete(s.few, i, i+1)
	}
}

// all yields every match of the set, in no particular order.
func (s matchSet) all(yield func(*match) bool) {
	if s.one != nil && !yield(s.one) {
		return
	}
	for _, m := range s.few {
		if !yield(m) {
			return
		}
	}
	for _, m := range s.many {
		if !yield(m) {
			return
		}
	}
}

// effectIndex holds the effects by target vertex: a vertex is the target of
// a few effects at most (an alarm per name raised on it, its deduced state,
// its marked-down flag, the causes links into it), so finding one is an
// index and a short scan, where a map keyed by the effect's key would hash
// a string per lookup and rehash every key as it grows. As byAnchor's, the
// table holds only the targets with an effect.
type effectIndex struct {
	byTarget paged.Table[effectList]
	n        int
}

// effectList is the effects of one target: the first inline, as most
// targets have one.
type effectList struct {
	one  *effect
	more []*effect
}

// get returns the effect of kind on target, for an alarm the one named
// name, for a causes link the one from source (nil if none).
func (x *effectIndex) get(kind string, target, source graph.VertexID, name string) *effect {
	l := x.byTarget.Get(int64(target))
	if ef := l.one; ef != nil && ef.kind == kind && ef.source == source && ef.name == name {
		return ef
	}
	for _, ef := range l.more {
		if ef.kind == kind && ef.source == source && ef.name == name {
			return ef
		}
	}
	return nil
}

// add stores ef, which get must not find yet.
func (x *effectIndex) add(ef *effect) {
	if ef.target < 0 {
		panic(fmt.Sprintf("evaluator: negative vertex id %d", ef.target))
	}
	l := x.byTarget.Get(int64(ef.target))
	if l.one == nil {
		l.one = ef
	} else {
		l.more = append(l.more, ef)
	}
	x.byTarget.Set(int64(ef.target), l)
	x.n++
}

// remove drops ef, if stored.
func (x *effectIndex) remove(ef *effect) {
	l := x.byTarget.Get(int64(ef.target))
	switch i := slices.Index(l.more, ef); {
	case l.one == ef:
		l.one = nil
		if n := len(l.more); n > 0 {
			l.one = l.more[n-1]
			l.more[n-1] = nil
			l.more = l.more[:n-1]
		}
	case i >= 0:
		l.more = slices.Delete(l.more, i, i+1)
	default:
		return
	}
	x.byTarget.Set(int64(ef.target), l)
	x.n--
}

// all yields every effect, in no particular order.
func (x *effectIndex) all(yield func(*effect) bool) {
	for _, l := range x.byTarget.All {
		if l.one != nil && !yield(l.one) {
			return
		}
		for _, ef := range l.more {
			if !yield(ef) {
				return
			}
		}
	}
}

// each yields every stored match once (from the entry of its first
// binding), in no particular order.
func (x *anchorIndex) each(yield func(*match) bool) {
	for v, es := range x.lists {
		for _, en := range es {
			for m := range en.set.all {
				b := m.bindings[0]
				if b.Vertex != v || m.slotKey(b) != (akey{en.r, en.slot, b.Vertex}) {
					continue
				}
				if !yield(m) {
					return
				}
			}
		}
	}
}

// has reports whether the set holds a match with key.
func (s matchSet) has(key string) bool {
	switch {
	case s.many != nil:
		_, ok := s.many[key]
		return ok
	case s.one != nil:
		return s.one.key == key
	}
	_, found := slices.BinarySearchFunc(s.few, key, func(m *match, k string) int { return strings.Compare(m.key, k) })
	return found
}

// sortedMatches returns every stored match, sorted by key.
func (e *Engine) sortedMatches() []*match {
	var ms []*match
	for m := range e.byAnchor.each {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *match) int { return strings.Compare(a.key, b.key) })
	return ms
}

// stored reports whether a match of r with key and bindings b is stored.
func (e *Engine) stored(r *rule, key string, b []Binding) bool {
	if len(b) == 0 {
		return false
	}
	m := match{key: key, rule: r, bindings: b}
	return e.byAnchor.get(m.slotKey(b[0])).has(key)
}
