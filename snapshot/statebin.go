package snapshot

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
)

// The binary payload encoding of an evaluator State (EngineBin) and of a
// NodeState (NodeBin). It exists for the speed of a cold reconstruction,
// which restores a snapshot before it replays anything: gob decodes a state
// of 100k entities through reflection and millions of allocations, while
// this layout decodes in one pass over one buffer, with every string a
// substring of one string table and every slice of a kind cut from one
// array of exact size.
//
// Layout versions 1 and 2; 2 adds the params of templates. The encoder
// writes the oldest layout that holds the state: 1 unless a template (or
// one it included) has params, so that a release before params reads the
// snapshots of a cluster that does not use them, and skips
// (ErrUnknownVersion) those it would misread. A fixed header:
//
//	0  magic    [4]byte "CWSB"
//	4  version  uint8   (binLayoutVersion, or binLayoutNoParams)
//	5  kind     uint8   (binKindEngine or binKindNode)
//	6  length   uint64  big-endian: the whole payload, header included
//
// then, in varints of encoding/binary (Uvarint for counts, lengths, string
// indexes and flags, Varint for every other integer):
//
//	strings    n, size, the size bytes of the n strings, their n lengths
//	node       (binKindNode only) NodeState.Version
//	state      Version, Semantics
//	graph      Version, Now (flag, [nanos]), Step, NextID,
//	           vertex count, edge count, owner count (totals),
//	           the vertices, sync count, the syncs
//	templates  count, the templates
//	matches    count, binding count (total), the matches
//	effects    count, support count (total), the effects
//	subs       (binKindNode only) count, the subscriptions
//
// A string is the uvarint index of an entry of the table; index 0 is the
// empty string, which the table never holds, and every other string is held
// once. The table's entries are numbered from 1 in their order; their
// bytes add up to less than 4 GiB.
//
// A vertex is its id less the previous vertex's (the first: less 0), its
// Category, Type, ExternalID, Name, State, Severity, DeducedState,
// AggregatedState, OperationalState, ProjectID and Source, flags (binV*),
// SampleTimestamp and UpdateTimestamp in Unix nanoseconds when their flags
// say they are not zero, Seen, a property count and (key, value) pairs
// sorted by key, and an edge count and its edges. An edge is its To less
// the previous edge's of the same vertex (the first: less 0), its
// Relationship, flags (binE*), UpdateTimestamp when flagged, and an owner
// count and (Entity, Source) pairs. A sync is Source, ID, Begin. A template
// is Name, Body, (layout 2 only) a param count and (name, value) pairs
// sorted by name, an include count and the included templates (nested at
// most binMaxIncludeDepth deep). A match is Template, Scenario, Clause, a
// binding count and (Entity, Vertex) pairs. An effect is Key, Kind, Target,
// Source, Name, Applied, flags (binEffectOn), AlarmID, a support count and
// (ID, Value) pairs. A subscription is ID, Seq, Spec and, when
// NodeState.Version is 2 or more, a count and the keys it was told of
// (subscription.Entry.Told).
//
// Times are written as Unix nanoseconds and read back in UTC, as the graph
// keeps them (graph.State returns UTC times, or the zero time): a time in
// another location reads back as the same instant in UTC, and one out of
// the range of Unix nanoseconds (years 1678 to 2262, which the graph
// clamps its times to) is refused by the encoder. The zero time has its
// own flag, so that it and the Unix epoch stay apart. Empty slices and
// maps read back as nil, as gob gives them (gob keeps an empty map apart
// from a nil one, which graph.FromState reads alike).
//
// The decoder (statebin_decode.go) trusts nothing: every count is checked
// against the bytes that remain (no count can allocate more than the
// payload could describe), every index against its table, unknown flags
// and trailing bytes are errors. The consistency of the state itself (ids,
// keys, sorting) is graph.FromState's and evaluator.Restore's to check.

const (
	// binLayoutVersion is the newest layout, which this build reads with
	// every older one; binLayoutNoParams the one without template params.
	binLayoutVersion  = 2
	binLayoutNoParams = 1
	binHeaderLen      = 14

	binKindEngine = 0
	binKindNode   = 1

	// binMaxIncludeDepth bounds the nesting of TemplateState.Includes
	// (the evaluator writes one level), so that a hostile payload cannot
	// exhaust the decoder's stack.
	binMaxIncludeDepth = 8

	// binReadAhead is the most the reader allocates on the header's word
	// alone: the length there is only a claim until the bytes arrive.
	// Payloads up to this size (some 100k entities) are read into one
	// buffer of exact size; larger ones grow it as they arrive.
	binReadAhead = 64 << 20
)

var binMagic = [4]byte{'C', 'W', 'S', 'B'}

// Vertex flags.
const (
	binVDeleted = 1 << iota
	binVPlaceholder
	binVMarkedDown
	binVSample
	binVUpdate
	binVAll = binVDeleted | binVPlaceholder | binVMarkedDown | binVSample | binVUpdate
)

// Edge flags.
const (
	binEDeleted = 1 << iota
	binEWithVertex
	binEUpdate
	binEAll = binEDeleted | binEWithVertex | binEUpdate
)

// binEffectOn is the effect flag for EffectState.On.
const binEffectOn = 1

// The fewest bytes each item takes: a count above what the remaining
// bytes can hold is refused before anything is allocated for it.
const (
	binMinString       = 2  // a length, at least one byte
	binMinVertex       = 16 // id, 11 strings, flags, seen, two counts
	binMinEdge         = 4  // to, relationship, flags, owner count
	binMinOwner        = 2  // entity, source
	binMinProperty     = 2  // key, value
	binMinSync         = 3  // source, id, begin
	binMinTemplate     = 3  // name, body, include count
	binMinMatch        = 4  // template, scenario, clause, binding count
	binMinBinding      = 2  // entity, vertex
	binMinEffect       = 9  // six fields, flags, alarm id, support count
	binMinSupport      = 2  // id, value
	binMinSubscription = 3  // id, seq, spec (and, in node state 2, a told count)
	binMinTold         = 1  // a string index
)

// The range of times Unix nanoseconds hold.
var (
	binMinTime = time.Unix(0, math.MinInt64)
	binMaxTime = time.Unix(0, math.MaxInt64)
)

// encodeEngineBin writes s as an EngineBin payload.
func encodeEngineBin(w io.Writer, s *evaluator.State) error {
	e := newBinEncoder(len(s.Graph.Vertices), binLayout(s.Templates))
	e.state(s)
	return e.finish(w, binKindEngine)
}

// encodeNodeBin writes s as a NodeBin payload.
func encodeNodeBin(w io.Writer, s *NodeState) error {
	e := newBinEncoder(len(s.Engine.Graph.Vertices), binLayout(s.Engine.Templates))
	e.int(int64(s.Version))
	e.state(&s.Engine)
	e.uint(uint64(len(s.Subscriptions)))
	for _, sub := range s.Subscriptions {
		e.str(sub.ID)
		e.int(sub.Seq)
		e.str(string(sub.Spec))
		if s.Version >= nodeStateTold {
			e.uint(uint64(len(sub.Told)))
			for _, k := range sub.Told {
				e.str(k)
			}
		}
	}
	return e.finish(w, binKindNode)
}

// binLayout is the layout a state of these templates is written in: the
// oldest that holds them.
func binLayout(tpls []evaluator.TemplateState) byte {
	if evaluator.HasParams(tpls) {
		return binLayoutVersion
	}
	return binLayoutNoParams
}

// binEncoder appends the body to buf while it collects the string table;
// finish writes the header, the table and the body. The first error
// sticks.
type binEncoder struct {
	layout byte
	buf    []byte
	idx    map[string]uint64
	strs   []string
	size   int // bytes of the strings in strs
	keys   []string
	err    error
}

// newBinEncoder sizes the body and the string index for a state of that
// many vertices: a vertex with its edges, and the effects and matches
// about it, take some 60 to 120 bytes and bring a few distinct strings (its
// external id and name, effect keys, support ids).
func newBinEncoder(vertices int, layout byte) *binEncoder {
	return &binEncoder{layout: layout, buf: make([]byte, 0, 1024+64*vertices), idx: make(map[string]uint64, 64+4*vertices)}
}

func (e *binEncoder) uint(u uint64) { e.buf = binary.AppendUvarint(e.buf, u) }
func (e *binEncoder) int(i int64)   { e.buf = binary.AppendVarint(e.buf, i) }

// str appends the index of s in the string table, adding it the first
// time.
func (e *binEncoder) str(s string) {
	if s == "" {
		e.buf = append(e.buf, 0)
		return
	}
	i, ok := e.idx[s]
	if !ok {
		e.strs = append(e.strs, s)
		e.size += len(s)
		i = uint64(len(e.strs))
		e.idx[s] = i
	}
	e.uint(i)
}

// nanos appends t, which must not be the zero time (its flag says so), as
// Unix nanoseconds; what and id say whose time it is, for the error.
func (e *binEncoder) nanos(t time.Time, what string, id graph.VertexID) {
	if t.Before(binMinTime) || t.After(binMaxTime) {
		if e.err == nil {
			e.err = fmt.Errorf("encode state: %s of vertex %d: %s is out of the range of Unix nanoseconds", what, id, t)
		}
		return
	}
	e.int(t.UnixNano())
}

func (e *binEncoder) state(s *evaluator.State) {
	e.int(int64(s.Version))
	e.int(int64(s.Semantics))
	e.graph(&s.Graph)
	e.uint(uint64(len(s.Templates)))
	for i := range s.Templates {
		e.template(&s.Templates[i], 1)
	}
	nb := 0
	for i := range s.Matches {
		nb += len(s.Matches[i].Bindings)
	}
	e.uint(uint64(len(s.Matches)))
	e.uint(uint64(nb))
	for i := range s.Matches {
		m := &s.Matches[i]
		e.str(m.Template)
		e.int(int64(m.Scenario))
		e.int(int64(m.Clause))
		e.uint(uint64(len(m.Bindings)))
		for _, b := range m.Bindings {
			e.str(b.Entity)
			e.int(int64(b.Vertex))
		}
	}
	ns := 0
	for i := range s.Effects {
		ns += len(s.Effects[i].Supports)
	}
	e.uint(uint64(len(s.Effects)))
	e.uint(uint64(ns))
	for i := range s.Effects {
		ef := &s.Effects[i]
		e.str(ef.Key)
		e.str(ef.Kind)
		e.int(int64(ef.Target))
		e.int(int64(ef.Source))
		e.str(ef.Name)
		e.str(ef.Applied)
		var flags uint64
		if ef.On {
			flags |= binEffectOn
		}
		e.uint(flags)
		e.int(int64(ef.AlarmID))
		e.uint(uint64(len(ef.Supports)))
		for _, sp := range ef.Supports {
			e.str(sp.ID)
			e.str(sp.Value)
		}
	}
}

func (e *binEncoder) template(t *evaluator.TemplateState, depth int) {
	if depth > binMaxIncludeDepth && e.err == nil {
		e.err = fmt.Errorf("encode state: template %q: includes nested deeper than %d", t.Name, binMaxIncludeDepth)
	}
	e.str(t.Name)
	e.str(t.Body)
	if e.layout >= binLayoutVersion {
		e.uint(uint64(len(t.Params)))
		// Sorted, so that the same state always gives the same bytes.
		e.keys = slices.AppendSeq(e.keys[:0], maps.Keys(t.Params))
		slices.Sort(e.keys)
		for _, k := range e.keys {
			e.str(k)
			e.str(t.Params[k])
		}
	}
	e.uint(uint64(len(t.Includes)))
	for i := range t.Includes {
		e.template(&t.Includes[i], depth+1)
	}
}

func (e *binEncoder) graph(g *graph.State) {
	e.int(int64(g.Version))
	if g.Now.IsZero() {
		e.uint(0)
	} else {
		e.uint(1)
		e.nanos(g.Now, "graph time", 0)
	}
	e.int(g.Step)
	e.int(int64(g.NextID))
	ne, no := 0, 0
	for i := range g.Vertices {
		ne += len(g.Vertices[i].Out)
		for j := range g.Vertices[i].Out {
			no += len(g.Vertices[i].Out[j].Owners)
		}
	}
	e.uint(uint64(len(g.Vertices)))
	e.uint(uint64(ne))
	e.uint(uint64(no))
	var prev graph.VertexID
	for i := range g.Vertices {
		v := &g.Vertices[i]
		e.int(int64(v.ID - prev))
		prev = v.ID
		e.str(v.Category)
		e.str(v.Type)
		e.str(v.ExternalID)
		e.str(v.Name)
		e.str(v.State)
		e.str(v.Severity)
		e.str(v.DeducedState)
		e.str(v.AggregatedState)
		e.str(v.OperationalState)
		e.str(v.ProjectID)
		e.str(v.Source)
		var flags uint64
		if v.IsDeleted {
			flags |= binVDeleted
		}
		if v.IsPlaceholder {
			flags |= binVPlaceholder
		}
		if v.IsMarkedDown {
			flags |= binVMarkedDown
		}
		if !v.SampleTimestamp.IsZero() {
			flags |= binVSample
		}
		if !v.UpdateTimestamp.IsZero() {
			flags |= binVUpdate
		}
		e.uint(flags)
		if flags&binVSample != 0 {
			e.nanos(v.SampleTimestamp, "sample timestamp", v.ID)
		}
		if flags&binVUpdate != 0 {
			e.nanos(v.UpdateTimestamp, "update timestamp", v.ID)
		}
		e.int(v.Seen)
		e.uint(uint64(len(v.Properties)))
		if len(v.Properties) > 0 {
			// Sorted, so that the same state always gives the same bytes.
			e.keys = slices.AppendSeq(e.keys[:0], maps.Keys(v.Properties))
			slices.Sort(e.keys)
			for _, k := range e.keys {
				e.str(k)
				e.str(v.Properties[k])
			}
		}
		e.uint(uint64(len(v.Out)))
		var prevTo graph.VertexID
		for j := range v.Out {
			es := &v.Out[j]
			e.int(int64(es.To - prevTo))
			prevTo = es.To
			e.str(es.Relationship)
			var flags uint64
			if es.IsDeleted {
				flags |= binEDeleted
			}
			if es.DeletedWithVertex {
				flags |= binEWithVertex
			}
			if !es.UpdateTimestamp.IsZero() {
				flags |= binEUpdate
			}
			e.uint(flags)
			if flags&binEUpdate != 0 {
				e.nanos(es.UpdateTimestamp, "update timestamp of an edge", v.ID)
			}
			e.uint(uint64(len(es.Owners)))
			for _, o := range es.Owners {
				e.int(int64(o.Entity))
				e.str(o.Source)
			}
		}
	}
	e.uint(uint64(len(g.Syncs)))
	for _, s := range g.Syncs {
		e.str(s.Source)
		e.str(s.ID)
		e.int(s.Begin)
	}
}

// finish writes the header, the string table and the body.
func (e *binEncoder) finish(w io.Writer, kind byte) error {
	if e.err != nil {
		return e.err
	}
	if e.size > math.MaxUint32 {
		return fmt.Errorf("encode state: %d bytes of distinct strings, over the 4 GiB the layout holds", e.size)
	}
	table := make([]byte, binHeaderLen, binHeaderLen+2*binary.MaxVarintLen64+e.size+2*len(e.strs))
	table = binary.AppendUvarint(table, uint64(len(e.strs)))
	table = binary.AppendUvarint(table, uint64(e.size))
	for _, s := range e.strs {
		table = append(table, s...)
	}
	for _, s := range e.strs {
		table = binary.AppendUvarint(table, uint64(len(s)))
	}
	copy(table, binMagic[:])
	table[4] = e.layout
	table[5] = kind
	binary.BigEndian.PutUint64(table[6:], uint64(len(table)+len(e.buf)))
	if _, err := w.Write(table); err != nil {
		return fmt.Errorf("write state strings: %w", err)
	}
	if _, err := w.Write(e.buf); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}
