// Package paged holds values by vertex id for the graph and the evaluator.
//
// Vertex ids are dense, given in increasing order and never reused, and
// the graph purges vertices in any order (graph.DeletedRetention). A slice
// indexed by id would keep a slot for every id ever given, purged ones
// included, for the life of the process. A Table keeps its ids in pages of
// pageSize ids instead, and holds memory for the ids in use only, plus one
// pointer per page of ids up to the highest one set (8 bytes per 1,024
// ids):
//
//   - a page with many ids in use is dense: an array of pageSize values,
//     which Get reads and Set writes as they would a slice;
//   - a page with few is thin: the values of its ids in use are in a map
//     by id, so that the few vertices that outlive their neighbours (a
//     long-lived instance among thousands that came and went) keep a few
//     dozen bytes each, not a page;
//   - a page with none is released.
//
// An id is in use while its value is not empty (Table.Empty: a nil
// vertex, an empty list). A dense page does not count its ids in use as
// they change, which would touch one more cache line on every Set: Trim,
// which the owner calls now and then (the graph when it purges), counts
// them, releases the pages with none and makes thin those with few, but
// for the pages of the newest ids. Set makes a dense page (or as
// Table.Crowded says), and a thin page turns dense past sparseMax ids in
// use. Until Trim, an emptied value stays in its dense page: an emptied
// slice keeps its capacity for its next append, as in a plain slice. Load
// fills an empty Table (a restore), each page dense or thin as the number
// of its ids asks, with no dense page on the way for a page of a few ids.
package paged

import (
	"math/bits"
	"slices"
	"unsafe"
)

const (
	pageBits = 10
	pageSize = 1 << pageBits
	pageMask = pageSize - 1
	words    = (pageSize + 63) / 64
	// sparseMax is the most ids in use a thin page holds.
	sparseMax = pageSize / 4
	// denseMin is the fewest ids in use a dense page keeps through Trim:
	// a dense page holds at most pageSize/denseMin values per id in use.
	denseMin = pageSize / 8
)

// Table maps ids (non-negative) to values of T. Its owner sets Empty
// before use. A Table is not safe for concurrent use.
type Table[T any] struct {
	// pages[id>>pageBits] is the page of id: zero for a page with no id in
	// use, nil for a thin page (whose ids are in few), or a dense page.
	// Get reads a page without checking which.
	pages []*page[T]
	// zero is a page whose values stay zero.
	zero *page[T]
	// few holds the values of the ids in use of the thin pages, and thin
	// the ids in use of each thin page, by page.
	few  map[int64]T
	thin map[int]*bitmap
	// fewPeak is the most values few held since it was made: a Go map
	// does not shrink, so Trim makes a new one once it holds far fewer.
	fewPeak int
	dense   int // dense pages
	// top is the highest page set so far: pages from top-1 up are the
	// newest ids'.
	top int
	// Empty reports whether a value is empty: its id is not in use.
	Empty func(T) bool
	// Crowded, when set, tells whether the page that Set makes for id
	// starts dense (true) or thin; unset, it starts dense. An index of
	// some of the graph's vertices (the evaluator's) follows the graph's
	// own (Dense): a restore, or an id come back to a range that drained,
	// makes no dense page for a vertex among few.
	Crowded func(id int64) bool
}

// bitmap has bit off%64 of word off/64 set for each offset (id&pageMask)
// in use of a thin page.
type bitmap struct {
	bits [words]uint64
	n    int // bits set
}

// set sets or clears off's bit and reports whether that changed it.
func (m *bitmap) set(off int, on bool) bool {
	w, b := off/64, uint64(1)<<(off%64)
	if (m.bits[w]&b != 0) == on {
		return false
	}
	m.bits[w] ^= b
	if on {
		m.n++
	} else {
		m.n--
	}
	return true
}

// all yields the offsets in use, ascending.
func (m *bitmap) all(yield func(int) bool) {
	for w, word := range m.bits {
		for ; word != 0; word &= word - 1 {
			if !yield(w*64 + bits.TrailingZeros64(word)) {
				return
			}
		}
	}
}

type page[T any] struct {
	vals [pageSize]T
}

// Get returns the value of id (the zero T for an id never set).
func (t *Table[T]) Get(id int64) (v T) {
	// Written to be inlined: it is the graph's most frequent call.
	if p := uint64(id) >> pageBits; p < uint64(len(t.pages)) {
		if pg := t.pages[p]; pg != nil {
			return pg.vals[id&pageMask]
		}
		return t.few[id]
	}
	return v
}

// Set stores v for id. It panics for a negative id: callers index by
// vertex ids, which are not.
func (t *Table[T]) Set(id int64, v T) {
	if p := uint64(id) >> pageBits; p < uint64(len(t.pages)) {
		if pg := t.pages[p]; pg != nil && pg != t.zero {
			pg.vals[id&pageMask] = v
			return
		}
	}
	t.set(id, v)
}

// set is Set for an id of a thin page or of none.
func (t *Table[T]) set(id int64, v T) {
	if id < 0 {
		panic("paged: negative id")
	}
	p, off := int(id>>pageBits), int(id&pageMask)
	used := !t.Empty(v)
	if p >= len(t.pages) || t.pages[p] == t.zero {
		if !used {
			return
		}
		t.open(p, t.Crowded == nil || t.Crowded(id))
		if pg := t.pages[p]; pg != nil {
			pg.vals[off] = v
			return
		}
	}
	m := t.thin[p]
	if used {
		t.few[id] = v
		t.fewPeak = max(t.fewPeak, len(t.few))
	} else {
		delete(t.few, id)
	}
	if !m.set(off, used) {
		return
	}
	switch {
	case used && m.n > sparseMax:
		t.thicken(p)
	case m.n == 0:
		delete(t.thin, p)
		t.pages[p] = t.zero
	}
}

// open makes page p, which has no id in use, dense or thin.
func (t *Table[T]) open(p int, dense bool) {
	if p >= len(t.pages) {
		if t.zero == nil {
			t.zero = new(page[T])
		}
		n := len(t.pages)
		t.pages = slices.Grow(t.pages, p+1-n)[:p+1]
		for i := n; i <= p; i++ {
			t.pages[i] = t.zero
		}
	}
	t.top = max(t.top, p)
	if dense {
		t.pages[p] = new(page[T])
		t.dense++
		return
	}
	if t.thin == nil {
		t.thin, t.few = map[int]*bitmap{}, map[int64]T{}
	}
	t.thin[p] = &bitmap{}
	t.pages[p] = nil
}

// thicken makes thin page p dense.
func (t *Table[T]) thicken(p int) {
	pg := new(page[T])
	base := int64(p) << pageBits
	for off := range t.thin[p].all {
		pg.vals[off] = t.few[base+int64(off)]
		delete(t.few, base+int64(off))
	}
	delete(t.thin, p)
	t.pages[p] = pg
	t.dense++
}

// inUse returns the offsets of the ids in use of dense page pg.
func (t *Table[T]) inUse(pg *page[T]) bitmap {
	var m bitmap
	for off := range pg.vals {
		if !t.Empty(pg.vals[off]) {
			m.set(off, true)
		}
	}
	return m
}

// Trim releases the dense pages with no id in use and makes thin those
// with at most denseMin, but for the newest ids' pages. It reads every
// value of every dense page: call it when many ids may have gone (the
// graph's purge), not on every change.
func (t *Table[T]) Trim() {
	for p, pg := range t.pages {
		if pg == nil || pg == t.zero {
			continue
		}
		m := t.inUse(pg)
		switch {
		case m.n > denseMin || (p >= t.top-1 && m.n > 0):
		case m.n == 0:
			t.pages[p] = t.zero
			t.dense--
		default:
			if t.thin == nil {
				t.thin, t.few = map[int]*bitmap{}, map[int64]T{}
			}
			base := int64(p) << pageBits
			for off := range m.all {
				t.few[base+int64(off)] = pg.vals[off]
			}
			t.fewPeak = max(t.fewPeak, len(t.few))
			t.thin[p] = &m
			t.pages[p] = nil
			t.dense--
		}
	}
	if len(t.few) < t.fewPeak/4 {
		few := make(map[int64]T, len(t.few))
		for id, v := range t.few {
			few[id] = v
		}
		thin := make(map[int]*bitmap, len(t.thin))
		for p, m := range t.thin {
			thin[p] = m
		}
		t.few, t.thin, t.fewPeak = few, thin, len(few)
	}
}

// Load sets the ids all yields, with their values, as Set would (it
// panics for a negative id), but makes each page that was empty dense or
// thin at once by the number of its ids, when all yields them grouped by
// page (ascending, as a snapshot lists them): a restore of a graph whose
// survivors are scattered makes thin pages, with no dense one on the way.
func (t *Table[T]) Load(all func(yield func(int64, T) bool)) {
	var (
		run  []int64 // ids of one page, as yielded
		vals []T
	)
	flush := func() {
		if len(run) == 0 {
			return
		}
		if p := int(run[0] >> pageBits); p >= len(t.pages) || t.pages[p] == t.zero {
			t.open(p, len(run) > sparseMax)
		}
		for i, id := range run {
			t.Set(id, vals[i])
		}
		run, vals = run[:0], vals[:0]
	}
	for id, v := range all {
		if id < 0 {
			panic("paged: negative id")
		}
		if len(run) > 0 && id>>pageBits != run[0]>>pageBits {
			flush()
		}
		run, vals = append(run, id), append(vals, v)
	}
	flush()
}

// All yields the ids in use and their values, ascending by id. The
// Table must not be Set during the walk.
func (t *Table[T]) All(yield func(int64, T) bool) {
	for p, pg := range t.pages {
		if pg == t.zero {
			continue
		}
		base := int64(p) << pageBits
		if pg == nil {
			for off := range t.thin[p].all {
				id := base + int64(off)
				if !yield(id, t.few[id]) {
					return
				}
			}
			continue
		}
		for off, v := range pg.vals {
			if !t.Empty(v) && !yield(base+int64(off), v) {
				return
			}
		}
	}
}

// Dense reports whether the page of id is dense: whether many ids near id
// are in use, or were lately.
func (t *Table[T]) Dense(id int64) bool {
	p := uint64(id) >> pageBits
	return p < uint64(len(t.pages)) && t.pages[p] != nil && t.pages[p] != t.zero
}

// Len returns the number of ids in use. It reads every value of every
// dense page.
func (t *Table[T]) Len() int {
	n := len(t.few)
	for _, pg := range t.pages {
		if pg != nil && pg != t.zero {
			n += t.inUse(pg).n
		}
	}
	return n
}

// Pages returns the number of pages allocated, dense or thin.
func (t *Table[T]) Pages() int { return t.dense + len(t.thin) }

// Bytes returns an estimate of the memory the Table holds itself (its
// page pointers, pages and maps, not what the values point to), the maps
// counted at some 10 bytes besides their keys and values per entry of
// their peak.
func (t *Table[T]) Bytes() int {
	var zero T
	n := cap(t.pages) * int(unsafe.Sizeof(t.zero))
	if t.zero != nil {
		n += (t.dense + 1) * int(unsafe.Sizeof(*t.zero))
	}
	n += t.fewPeak * (8 + int(unsafe.Sizeof(zero)) + 10)
	n += len(t.thin) * (8 + 8 + 10 + int(unsafe.Sizeof(bitmap{})))
	return n
}
