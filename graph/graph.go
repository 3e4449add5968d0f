package graph

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/causeway/causeway/graph/internal/paged"
)

// Graph is the entity graph. It is a pure, deterministic state machine: the
// same sequence of Apply calls (and evaluator primitives) gives the same
// graph, whatever the machine, the run or the wall clock.
//
// A Graph is not safe for concurrent use: its owner serialises every call,
// reads included (the processor holds a lock around it).
type Graph struct {
	norm *Normalizer
	// verts holds the vertices by id. Ids are never reused and purge
	// leaves holes among them: a table in pages holds the vertices not
	// purged, not a slot for every id ever given.
	verts paged.Table[*vertex]
	// last is the highest id given: the next vertex gets last+1.
	last VertexID
	// nverts counts the vertices, deleted ones included: last less the
	// purged ones.
	nverts int

	keys  keyIndex
	now   int64 // RecordedAt of the last applied record, unix nanos
	step  int64 // records applied; orders upserts against sync.begin
	syncs []openSync
	// purged are the ids the last Apply removed (Purged); not state.
	purged []VertexID
	// wantBuf is setRelations' scratch space, reused from record to
	// record; not state.
	wantBuf []triple
	// scratch holds the vertices and edges of changes (ScratchChanges);
	// not state.
	scratch changeSpace
	// ownBuf is where an edge's first owner is cut from (ownerSlot); not
	// state.
	ownBuf []owner
	// syms numbers the low-cardinality strings (categories, types, states,
	// projects, sources, relationships): vertices hold 4-byte symbols
	// instead of 16-byte strings, and equal strings share one backing
	// array. Symbol numbers depend on the order strings were first seen, so
	// nothing outside the graph ever sees them and nothing is sorted by them.
	syms symtab
	// normed caches normalize's results by the symbols it reads: the
	// Normalizer is fixed for the graph's life, and a few combinations of
	// category, type and states cover every vertex.
	normed map[normKey][2]sym
	// lastNorm is the last key normalize used and its result: runs of
	// vertices of one kind in one state (a restore, a wave of deduced
	// alarms) skip the map.
	lastNorm struct {
		k  normKey
		r  [2]sym
		ok bool
	}
}

// sym is a string of the graph's symbol table; 0 is "".
type sym uint32

type symtab struct {
	names []string
	index map[string]sym
}

// Strings every graph uses hold fixed symbols, so the evaluator's
// primitives name them without a lookup.
const (
	symAlarm sym = iota + 1
	symDeduced
	symActive
	symEvaluator
)

func newSymtab() symtab {
	t := symtab{names: []string{""}, index: map[string]sym{"": 0}}
	for _, s := range []string{CategoryAlarm, DeducedType, "Active", EvaluatorSource} {
		t.of(s)
	}
	return t
}

func (t *symtab) of(s string) sym {
	if x, ok := t.index[s]; ok {
		return x
	}
	x := sym(len(t.names))
	t.names = append(t.names, s)
	t.index[s] = x
	return x
}

// vkey is a vertex's key: category and type as symbols, which hash and
// compare faster than their strings.
type vkey struct {
	category, typ sym
	ext           string
}

// keyIndex finds the vertices by key: a map by external id for each
// category and type. A lookup hashes the external id alone, on the
// runtime's fast path for string keys, where one map by vkey hashed and
// compared the whole struct (a third of the time of an upsert went to
// it), and each map's slots are a third smaller.
type keyIndex struct {
	byType map[uint64]map[string]VertexID
	n      int // keys, over every map
}

func typeKey(category, typ sym) uint64 { return uint64(category)<<32 | uint64(typ) }

func newKeyIndex() keyIndex { return keyIndex{byType: make(map[uint64]map[string]VertexID)} }

func (x *keyIndex) get(k vkey) (VertexID, bool) {
	id, ok := x.byType[typeKey(k.category, k.typ)][k.ext]
	return id, ok
}

// set maps k to id and reports whether k was new.
func (x *keyIndex) set(k vkey, id VertexID) bool {
	m := x.byType[typeKey(k.category, k.typ)]
	if m == nil {
		m = make(map[string]VertexID)
		x.byType[typeKey(k.category, k.typ)] = m
	}
	n := len(m)
	m[k.ext] = id
	if len(m) == n {
		return false
	}
	x.n++
	return true
}

func (x *keyIndex) remove(k vkey) {
	m := x.byType[typeKey(k.category, k.typ)]
	n := len(m)
	delete(m, k.ext)
	x.n -= n - len(m)
}

func (x *keyIndex) len() int { return x.n }

type prop struct{ k, v string }

// vertex is the compact internal form of a Vertex.
type vertex struct {
	id                              VertexID
	ext, name                       string
	category, typ                   sym
	state, severity, deduced        sym
	agg, op                         sym
	project, source                 sym
	deleted, placeholder, markedDwn bool
	sample, update                  int64 // unix nanos, 0 = zero time
	props                           []prop
	seen                            int64      // step of the last upsert reported by the vertex's source
	out                             []edge     // sorted by (to, rel)
	in                              []VertexID // sorted, unique: vertices with an edge to this one
	// owning counts the owner entries of edges whose entity is this
	// vertex, whichever the source: the relations it asserted.
	owning int
}

// owner is an entity whose source asserted an edge among its relations.
type owner struct {
	entity VertexID
	source string
}

type edge struct {
	to      VertexID
	rel     string
	deleted bool
	// withVertex marks an edge deleted because one of its vertices was
	// (not retracted by its owners): RCA follows such causal edges, so a
	// cleared alarm keeps the links it had when it cleared.
	withVertex bool
	update     int64
	owners     []owner // sorted by (entity, source)
}

type openSync struct {
	source, id string
	begin      int64 // step of the sync.begin record
}

// New returns an empty graph that normalises states with norm (nil: the
// built-in defaults).
func New(norm *Normalizer) *Graph {
	if norm == nil {
		norm = DefaultNormalizer()
	}
	g := &Graph{norm: norm, keys: newKeyIndex(), syms: newSymtab(), normed: make(map[normKey][2]sym)}
	g.verts.Empty = func(v *vertex) bool { return v == nil }
	return g
}

// str returns the graph's copy of s, so that equal strings share memory.
func (g *Graph) str(s string) string { return g.syms.names[g.syms.of(s)] }

// sym returns the symbol of s.
func (g *Graph) sym(s string) sym { return g.syms.of(s) }

// s returns the string of a symbol.
func (g *Graph) s(x sym) string { return g.syms.names[x] }

// key returns the key of v.
func (g *Graph) key(v *vertex) vkey { return vkey{v.category, v.typ, v.ext} }

// lookup finds the vertex of a key given as strings. A category or type
// the symbol table does not hold has no vertex.
func (g *Graph) lookup(category, typ, ext string) (VertexID, bool) {
	c, ok := g.syms.index[category]
	if !ok {
		return 0, false
	}
	t, ok := g.syms.index[typ]
	if !ok {
		return 0, false
	}
	return g.keys.get(vkey{c, t, ext})
}

// Bounds of the instants that int64 nanoseconds since the epoch represent.
var (
	minNanosTime = time.Unix(0, math.MinInt64+1)
	maxNanosTime = time.Unix(0, math.MaxInt64)
)

// toNanos stores a timestamp compactly: nanoseconds since the epoch, 0 for
// the zero time. Instants outside the years 1678-2262 are clamped, which
// keeps their order and a stable round trip.
func toNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNanosTime):
		return math.MinInt64 + 1
	case t.After(maxNanosTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (g *Graph) get(id VertexID) *vertex { return g.verts.Get(int64(id)) }

func (g *Graph) export(v *vertex) Vertex {
	out := Vertex{
		ID: v.id, Category: g.s(v.category), Type: g.s(v.typ), ExternalID: v.ext, Name: v.name,
		State: g.s(v.state), Severity: g.s(v.severity), DeducedState: g.s(v.deduced),
		AggregatedState: g.s(v.agg), OperationalState: g.s(v.op),
		ProjectID: g.s(v.project), Source: g.s(v.source),
		IsDeleted: v.deleted, IsPlaceholder: v.placeholder, IsMarkedDown: v.markedDwn,
		SampleTimestamp: fromNanos(v.sample), UpdateTimestamp: fromNanos(v.update),
	}
	if len(v.props) > 0 {
		out.Properties = make(map[string]string, len(v.props))
		for _, p := range v.props {
			out.Properties[p.k] = p.v
		}
	}
	return out
}

// updated is a vertex change from prev to v's current state; both copies
// share one allocation.
func (g *Graph) updated(op ChangeOp, prev Vertex, v *vertex) Change {
	p := g.scratch.verts.take(2)
	p[0], p[1] = prev, g.export(v)
	return Change{Op: op, Vertex: &p[1], Prev: &p[0]}
}

// edgeUpdated is an edge change from prev to e's current state; both
// copies share one allocation.
func (g *Graph) edgeUpdated(op ChangeOp, prev Edge, from VertexID, e *edge) Change {
	p := g.scratch.edges.take(2)
	p[0], p[1] = prev, exportEdge(from, e)
	return Change{Op: op, Edge: &p[1], PrevEdge: &p[0]}
}

// edgeAdded is the change of an edge added.
func (g *Graph) edgeAdded(from VertexID, e *edge) Change {
	p := g.scratch.edges.take(1)
	p[0] = exportEdge(from, e)
	return Change{Op: EdgeAdded, Edge: &p[0]}
}

func (g *Graph) exportPtr(v *vertex) *Vertex {
	p := g.scratch.verts.take(1)
	p[0] = g.export(v)
	return &p[0]
}

// changeSpace holds the vertices and edges that changes point to.
type changeSpace struct {
	verts slab[Vertex]
	edges slab[Edge]
}

// ScratchChanges says whether the vertices and edges that the changes of
// Apply and of the evaluator's primitives point to are their reader's or
// the graph's. Off (the default), each change's are its own, for its
// reader to keep. On, they are cut from arrays the graph reuses once
// ScratchChanges(false) is called, when they must no longer be read: for
// an owner that reads the changes of a record and keeps none of them (a
// replay), where they were most of what applying a record allocated.
func (g *Graph) ScratchChanges(on bool) {
	g.scratch.verts.on, g.scratch.edges.on = on, on
	if !on {
		g.scratch.verts.release()
		g.scratch.edges.release()
	}
}

// slab hands out short runs of T: each a new allocation while off, cut
// from chunks it reuses after release while on.
type slab[T any] struct {
	on     bool
	chunks [][]T
	ci, n  int // the chunk being cut, and how much of it is
}

const (
	slabChunk = 64
	// slabKeep is the most chunks a slab keeps across releases: a
	// record that changed many vertices (a sync.end) leaves no more
	// memory behind than a few hundred changes need.
	slabKeep = 8
)

// take returns n (at most slabChunk) values, of a chunk while on.
func (s *slab[T]) take(n int) []T {
	if !s.on {
		return make([]T, n)
	}
	for {
		if s.ci == len(s.chunks) {
			s.chunks = append(s.chunks, make([]T, slabChunk))
		}
		if s.n+n <= slabChunk {
			p := s.chunks[s.ci][s.n : s.n+n : s.n+n]
			s.n += n
			return p
		}
		s.ci, s.n = s.ci+1, 0
	}
}

// release makes every value handed out reusable.
func (s *slab[T]) release() {
	if len(s.chunks) > slabKeep {
		clear(s.chunks[slabKeep:])
		s.chunks = s.chunks[:slabKeep]
	}
	s.ci, s.n = 0, 0
}

// Vertex returns a copy of the vertex id.
func (g *Graph) Vertex(id VertexID) (Vertex, bool) {
	v := g.get(id)
	if v == nil {
		return Vertex{}, false
	}
	return g.export(v), true
}

// Lookup finds a vertex by its key. Category "" means RESOURCE.
func (g *Graph) Lookup(category, typ, externalID string) (VertexID, bool) {
	if category == "" {
		category = CategoryResource
	}
	return g.lookup(category, typ, externalID)
}

// Len returns the highest vertex id given so far: the number of vertices,
// deleted ones included, and of the ids of purged ones (see
// DeletedRetention), which are not given again.
func (g *Graph) Len() int { return int(g.last) }

// VertexIDs returns every vertex id, ascending, deleted ones included.
func (g *Graph) VertexIDs() []VertexID {
	ids := make([]VertexID, 0, g.nverts)
	for _, v := range g.verts.All {
		ids = append(ids, v.id)
	}
	return ids
}

// Crowded reports whether many vertices have ids near id: whether its
// page of the index by id is dense (see IndexBytes). The evaluator's own
// indexes by vertex id follow it, so that a restore makes no dense page
// for a few scattered vertices.
func (g *Graph) Crowded(id VertexID) bool { return g.verts.Dense(int64(id)) }

// IndexBytes estimates the memory the graph's index of vertices by id
// holds, not counting the vertices: 8 bytes for each id of a page of
// 1,024 ids that many vertices still hold, a few dozen for each vertex of
// a page that few do, and 8 bytes for each 1,024 ids given
// (graph/internal/paged).
func (g *Graph) IndexBytes() int { return g.verts.Bytes() }

// Now is the logical time: the RecordedAt of the last applied record. It
// never reads the wall clock.
func (g *Graph) Now() time.Time { return fromNanos(g.now) }

func exportEdge(from VertexID, e *edge) Edge {
	return Edge{From: from, To: e.to, Relationship: e.rel, IsDeleted: e.deleted, DeletedWithVertex: e.deleted && e.withVertex,
		UpdateTimestamp: fromNanos(e.update)}
}

// Out returns the edges from id, sorted by (To, Relationship), deleted ones
// included.
func (g *Graph) Out(id VertexID) []Edge {
	v := g.get(id)
	if v == nil {
		return nil
	}
	out := make([]Edge, 0, len(v.out))
	for i := range v.out {
		out = append(out, exportEdge(id, &v.out[i]))
	}
	return out
}

// In returns the edges to id, sorted by (From, Relationship), deleted ones
// included.
func (g *Graph) In(id VertexID) []Edge {
	v := g.get(id)
	if v == nil {
		return nil
	}
	var out []Edge
	g.EachIn(id, func(e Edge) bool {
		if out == nil {
			out = make([]Edge, 0, len(v.in))
		}
		out = append(out, e)
		return true
	})
	return out
}

// EachOut calls yield with the edges from id in Out's order, until yield
// returns false. It allocates nothing; yield must not change the graph.
func (g *Graph) EachOut(id VertexID, yield func(Edge) bool) {
	v := g.get(id)
	if v == nil {
		return
	}
	for i := range v.out {
		if !yield(exportEdge(id, &v.out[i])) {
			return
		}
	}
}

// EachIn calls yield with the edges to id in In's order, until yield
// returns false. It allocates nothing; yield must not change the graph.
func (g *Graph) EachIn(id VertexID, yield func(Edge) bool) {
	v := g.get(id)
	if v == nil {
		return
	}
	for _, from := range v.in {
		fv := g.get(from)
		i, _ := fv.findOut(id, "")
		for ; i < len(fv.out) && fv.out[i].to == id; i++ {
			if !yield(exportEdge(from, &fv.out[i])) {
				return
			}
		}
	}
}

// IsAlarm reports whether id is a vertex of category ALARM.
func (g *Graph) IsAlarm(id VertexID) bool {
	v := g.get(id)
	return v != nil && g.s(v.category) == CategoryAlarm
}

// EdgeOf returns the edge (from, to, rel).
func (g *Graph) EdgeOf(from, to VertexID, rel string) (Edge, bool) {
	v := g.get(from)
	if v == nil {
		return Edge{}, false
	}
	i, ok := v.findOut(to, rel)
	if !ok {
		return Edge{}, false
	}
	return exportEdge(from, &v.out[i]), true
}

// findOut returns the index of (to, rel) in v.out, or where it would go.
func (v *vertex) findOut(to VertexID, rel string) (int, bool) {
	// slices.BinarySearchFunc, by hand: this is the graph's hottest loop.
	lo, hi := 0, len(v.out)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if e := &v.out[m]; e.to < to || (e.to == to && e.rel < rel) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(v.out) && v.out[lo].to == to && v.out[lo].rel == rel
}

type edgeKey struct {
	to  VertexID
	rel string
}

// newVertex allocates the next id.
func (g *Graph) newVertex(category, typ sym, ext string) *vertex {
	return g.addVertex(&vertex{category: category, typ: typ, ext: ext})
}

// newDeduced is newVertex for a deduced alarm, made with room for its
// `on` edge and for one edge into it (the causes link from its causing
// alarm): one allocation where the three were one each, and no larger
// (a vertex and the two fill 256 bytes, a size class of their own).
func (g *Graph) newDeduced(ext string) *vertex {
	x := &struct {
		v   vertex
		out [1]edge
		in  [1]VertexID
	}{}
	x.v = vertex{category: symAlarm, typ: symDeduced, ext: ext, out: x.out[:0:1], in: x.in[:0:1]}
	return g.addVertex(&x.v)
}

// addVertex gives v the next id and indexes it.
func (g *Graph) addVertex(v *vertex) *vertex {
	g.last++
	v.id = g.last
	g.verts.Set(int64(v.id), v)
	g.nverts++
	g.keys.set(g.key(v), v.id)
	return v
}

// ensureEdge returns the edge (from, to, rel), creating it (deleted, no
// owners) when missing; created reports whether it was.
func (g *Graph) ensureEdge(from, to *vertex, rel string) (e *edge, created bool) {
	i, ok := from.findOut(to.id, rel)
	if ok {
		return &from.out[i], false
	}
	from.out = slices.Insert(from.out, i, edge{to: to.id, rel: g.str(rel), deleted: true})
	if j, found := slices.BinarySearch(to.in, from.id); !found {
		to.in = slices.Insert(to.in, j, from.id)
	}
	return &from.out[i], true
}

// ownerChunk is how many first owners one allocation of ownerSlot holds.
const ownerChunk = 32

// ownerSlot returns room for one owner, cut from an array it shares with
// other edges' first owners: most edges have one owner (an entity's
// relation, a deduced alarm's `on` edge, a causes link), and a slice of
// its own was an allocation per edge asserted. The room is the edge's
// alone (its capacity ends there): a second owner moves the edge's owners
// to an array of their own.
func (g *Graph) ownerSlot() []owner {
	if len(g.ownBuf) == cap(g.ownBuf) {
		g.ownBuf = make([]owner, 0, ownerChunk)
	}
	n := len(g.ownBuf)
	g.ownBuf = g.ownBuf[:n+1]
	return g.ownBuf[n : n : n+1]
}

func (e *edge) hasOwner(o owner) bool {
	_, ok := e.findOwner(o)
	return ok
}

func (e *edge) findOwner(o owner) (int, bool) {
	return slices.BinarySearchFunc(e.owners, o, cmpOwner)
}

func cmpOwner(a, b owner) int {
	switch {
	case a.entity < b.entity:
		return -1
	case a.entity > b.entity:
		return 1
	case a.source < b.source:
		return -1
	case a.source > b.source:
		return 1
	}
	return 0
}

// VertexRef reads one vertex in place, without copying it: the evaluator's
// matching reads a few attributes of many vertices. A VertexRef is valid until
// the graph next changes.
type VertexRef struct {
	g *Graph
	v *vertex
}

// Ref returns a reference to vertex id for reading.
func (g *Graph) Ref(id VertexID) (VertexRef, bool) {
	v := g.get(id)
	return VertexRef{g, v}, v != nil
}

// ID is the vertex's id.
func (x VertexRef) ID() VertexID { return x.v.id }

// Category is Vertex.Category.
func (x VertexRef) Category() string { return x.g.s(x.v.category) }

// Type is Vertex.Type.
func (x VertexRef) Type() string { return x.g.s(x.v.typ) }

// ExternalID is Vertex.ExternalID.
func (x VertexRef) ExternalID() string { return x.v.ext }

// Name is Vertex.Name.
func (x VertexRef) Name() string { return x.v.name }

// State is Vertex.State.
func (x VertexRef) State() string { return x.g.s(x.v.state) }

// DeducedState is the state the evaluator's set_state deduced ("" = none).
func (x VertexRef) DeducedState() string { return x.g.s(x.v.deduced) }

// Severity is Vertex.Severity.
func (x VertexRef) Severity() string { return x.g.s(x.v.severity) }

// AggregatedState is Vertex.AggregatedState.
func (x VertexRef) AggregatedState() string { return x.g.s(x.v.agg) }

// OperationalState is Vertex.OperationalState.
func (x VertexRef) OperationalState() string { return x.g.s(x.v.op) }

// ProjectID is Vertex.ProjectID.
func (x VertexRef) ProjectID() string { return x.g.s(x.v.project) }

// Source is Vertex.Source.
func (x VertexRef) Source() string { return x.g.s(x.v.source) }

// IsDeleted is Vertex.IsDeleted.
func (x VertexRef) IsDeleted() bool { return x.v.deleted }

// IsPlaceholder is Vertex.IsPlaceholder.
func (x VertexRef) IsPlaceholder() bool { return x.v.placeholder }

// IsMarkedDown is Vertex.IsMarkedDown.
func (x VertexRef) IsMarkedDown() bool { return x.v.markedDwn }

// Property is Vertex.Properties[k].
func (x VertexRef) Property(k string) (string, bool) {
	i, ok := slices.BinarySearchFunc(x.v.props, k, func(p prop, k string) int { return strings.Compare(p.k, k) })
	if !ok {
		return "", false
	}
	return x.v.props[i].v, true
}
