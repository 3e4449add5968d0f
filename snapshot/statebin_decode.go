package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/notifier/subscription"
)

// The decoder of the bin encodings, whose layout statebin.go describes.

// readEngineBin reads an EngineBin payload from r. step, if not nil, is
// called every stepEvery items decoded.
func readEngineBin(r io.Reader, step func()) (evaluator.State, error) {
	data, err := readBin(r)
	if err != nil {
		return evaluator.State{}, fmt.Errorf("decode evaluator state (bin): %w", err)
	}
	s, err := decodeEngineBin(data, step)
	if err != nil {
		return evaluator.State{}, fmt.Errorf("decode evaluator state (bin): %w", err)
	}
	return s, nil
}

// readNodeBin reads a NodeBin payload from r. step, if not nil, is called
// every stepEvery items decoded.
func readNodeBin(r io.Reader, step func()) (NodeState, error) {
	data, err := readBin(r)
	if err != nil {
		return NodeState{}, fmt.Errorf("decode node state (bin): %w", err)
	}
	s, err := decodeNodeBin(data, step)
	if err != nil {
		return NodeState{}, fmt.Errorf("decode node state (bin): %w", err)
	}
	return s, nil
}

// readBin reads a whole EngineBin or NodeBin payload from r: the length in
// its header, then exactly that many bytes and the end of r. Whatever the
// header claims, it allocates at most binReadAhead, or twice the bytes
// that arrived, before the claim proves false.
func readBin(r io.Reader) ([]byte, error) {
	var hdr [binHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	n, err := checkBinHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	if n > maxRawSize {
		return nil, fmt.Errorf("header: length %d over the limit %d", n, uint64(maxRawSize))
	}
	buf := make([]byte, binHeaderLen, min(n, binReadAhead))
	copy(buf, hdr[:])
	for uint64(len(buf)) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(n, 2*uint64(cap(buf))))
			copy(nb, buf)
			buf = nb
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if errors.Is(err, io.EOF) && uint64(len(buf)) < n {
			return nil, fmt.Errorf("truncated: %d bytes of the %d its header announces", len(buf), n)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read: %w", err)
		}
	}
	var one [1]byte
	switch _, err := io.ReadFull(r, one[:]); {
	case err == nil:
		return nil, fmt.Errorf("trailing bytes after the %d its header announces", n)
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("read: %w", err)
	}
	return buf, nil
}

// checkBinHeader checks the fixed header and returns the payload length it
// announces.
func checkBinHeader(h []byte) (uint64, error) {
	if len(h) < binHeaderLen {
		return 0, fmt.Errorf("header: %d bytes, want %d", len(h), binHeaderLen)
	}
	if [4]byte(h[:4]) != binMagic {
		return 0, fmt.Errorf("header: bad magic %q", h[:4])
	}
	if h[4] < binLayoutNoParams || h[4] > binLayoutVersion {
		return 0, fmt.Errorf("%w: state layout %d (this build reads %d to %d)", ErrUnknownVersion, h[4], binLayoutNoParams, binLayoutVersion)
	}
	if h[5] != binKindEngine && h[5] != binKindNode {
		return 0, fmt.Errorf("header: unknown kind %d", h[5])
	}
	n := binary.BigEndian.Uint64(h[6:])
	if n < binHeaderLen {
		return 0, fmt.Errorf("header: length %d is shorter than the header", n)
	}
	return n, nil
}

// decodeEngineBin decodes an EngineBin payload.
func decodeEngineBin(data []byte, step func()) (evaluator.State, error) {
	d, err := newBinDecoder(data, binKindEngine, step)
	if err != nil {
		return evaluator.State{}, err
	}
	var s evaluator.State
	if err := d.state(&s); err != nil {
		return evaluator.State{}, err
	}
	if err := d.end(); err != nil {
		return evaluator.State{}, err
	}
	return s, nil
}

// decodeNodeBin decodes a NodeBin payload.
func decodeNodeBin(data []byte, step func()) (NodeState, error) {
	d, err := newBinDecoder(data, binKindNode, step)
	if err != nil {
		return NodeState{}, err
	}
	var s NodeState
	s.Version = d.intn()
	if err := d.state(&s.Engine); err != nil {
		return NodeState{}, err
	}
	n := d.count(binMinSubscription)
	if d.err != nil {
		return NodeState{}, fmt.Errorf("subscriptions: %w", d.err)
	}
	if n > 0 {
		s.Subscriptions = make([]subscription.Entry, n)
	}
	for i := range s.Subscriptions {
		sub := &s.Subscriptions[i]
		sub.ID = d.str()
		sub.Seq = d.int()
		if spec := d.str(); spec != "" {
			sub.Spec = []byte(spec)
		}
		if s.Version >= nodeStateTold {
			if k := d.count(binMinTold); k > 0 && d.err == nil {
				sub.Told = make([]string, k)
				for j := range sub.Told {
					sub.Told[j] = d.str()
				}
			}
		}
		if d.err != nil {
			return NodeState{}, fmt.Errorf("subscription %d: %w", i, d.err)
		}
	}
	if err := d.end(); err != nil {
		return NodeState{}, err
	}
	return s, nil
}

// binDecoder reads a payload held whole in data. The first error sticks:
// after it every read returns a zero value, which nothing allocates for,
// and callers check err once per item to say where it happened.
type binDecoder struct {
	data   []byte
	off    int
	layout byte // the header's
	// String i of the table is all[ends[i-1]:ends[i]]; ends[0] is 0, so
	// string 0 is "". Offsets hold no pointers for the garbage collector
	// to scan, and take a quarter of the memory of string headers.
	all  string
	ends []uint32
	// reserved is what the templates being read still need of the
	// remaining bytes, at their least: the included templates not yet
	// read, binMinTemplate bytes each. A count of includes is checked
	// against the bytes not reserved, so that nested counts cannot claim
	// the same bytes once per level.
	reserved int
	err      error
	// step reports progress (WithProgress) every stepEvery items, counted
	// in items; nil, nothing is counted.
	step  func()
	items int
}

var errBinTruncated = errors.New("truncated")

func newBinDecoder(data []byte, kind byte, step func()) (*binDecoder, error) {
	n, err := checkBinHeader(data)
	if err != nil {
		return nil, err
	}
	if data[5] != kind {
		return nil, fmt.Errorf("header: kind %d, want %d", data[5], kind)
	}
	if n != uint64(len(data)) {
		return nil, fmt.Errorf("header: length %d, payload %d bytes", n, len(data))
	}
	d := &binDecoder{data: data, off: binHeaderLen, layout: data[4], step: step}
	if err := d.table(); err != nil {
		return nil, fmt.Errorf("string table: %w", err)
	}
	return d, nil
}

// progress counts an item (a vertex, match or effect) decoded, and calls
// step every stepEvery of them: a decode of millions of entities reports
// progress as it goes, for the price of a nil check when nothing listens.
func (d *binDecoder) progress() {
	if d.step == nil {
		return
	}
	if d.items++; d.items%stepEvery == 0 {
		d.step()
	}
}

func (d *binDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *binDecoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	if d.off < len(d.data) && d.data[d.off] < 0x80 {
		v := d.data[d.off]
		d.off++
		return uint64(v)
	}
	v, n := binary.Uvarint(d.data[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail(errBinTruncated)
		} else {
			d.fail(fmt.Errorf("varint at offset %d overflows 64 bits", d.off))
		}
		return 0
	}
	d.off += n
	return v
}

func (d *binDecoder) int() int64 {
	if d.err != nil {
		return 0
	}
	if d.off < len(d.data) && d.data[d.off] < 0x80 {
		u := d.data[d.off]
		d.off++
		return int64(u>>1) ^ -int64(u&1) // zigzag, as binary.Varint
	}
	v, n := binary.Varint(d.data[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail(errBinTruncated)
		} else {
			d.fail(fmt.Errorf("varint at offset %d overflows 64 bits", d.off))
		}
		return 0
	}
	d.off += n
	return v
}

// intn reads an int field.
func (d *binDecoder) intn() int {
	v := d.int()
	if int64(int(v)) != v {
		d.fail(fmt.Errorf("integer %d out of range at offset %d", v, d.off))
		return 0
	}
	return int(v)
}

// count reads a count of items of at least size bytes each, refusing one
// the remaining bytes cannot hold.
func (d *binDecoder) count(size int) int {
	v := d.uint()
	if rest := uint64(max(0, len(d.data)-d.off-d.reserved)); v > rest/uint64(size) {
		d.fail(fmt.Errorf("count %d at offset %d: the %d remaining bytes hold at most %d", v, d.off, rest, rest/uint64(size)))
		return 0
	}
	return int(v)
}

// pool is one array of a kind of item (edges, owners, bindings,
// supports), allocated at the total the payload announces, from which each
// parent takes its run in turn: one allocation for all of them.
type pool[T any] struct {
	items []T
	used  int
	what  string
}

func newPool[T any](n int, what string) *pool[T] {
	p := &pool[T]{what: what}
	if n > 0 {
		p.items = make([]T, n)
	}
	return p
}

// take reads a parent's count of items and returns them, cut from the
// pool with their capacity capped (nil for none).
func take[T any](d *binDecoder, p *pool[T]) []T {
	v := d.uint()
	left := len(p.items) - p.used
	if v > uint64(left) {
		d.fail(fmt.Errorf("%d %s, %d left of the %d announced", v, p.what, left, len(p.items)))
		return nil
	}
	if v == 0 {
		return nil
	}
	n := int(v)
	run := p.items[p.used : p.used+n : p.used+n]
	p.used += n
	return run
}

// whole checks that the parents took every item announced.
func (p *pool[T]) whole() error {
	if p.used != len(p.items) {
		return fmt.Errorf("%d %s held, %d announced", p.used, p.what, len(p.items))
	}
	return nil
}

func (d *binDecoder) str() string {
	i := d.uint()
	if i == 0 || i >= uint64(len(d.ends)) {
		if i != 0 {
			d.fail(fmt.Errorf("string index %d out of range (%d strings)", i, len(d.ends)-1))
		}
		return ""
	}
	return d.all[d.ends[i-1]:d.ends[i]]
}

// time reads a time written by nanos, if set says it was.
func (d *binDecoder) time(set bool) time.Time {
	if !set {
		return time.Time{}
	}
	return time.Unix(0, d.int()).UTC()
}

// table reads the string table into one string, which every string of the
// payload is a substring of, and the offsets where its strings end. The
// table stays in memory while any string of the restored state does: a
// few tens of MB at 100k entities, most of them strings the state keeps
// anyway, and no more than one snapshot's table, since what the engine
// sets after the restore is allocated apart.
func (d *binDecoder) table() error {
	n := d.count(binMinString)
	size := d.uint()
	if d.err != nil {
		return d.err
	}
	if size > uint64(len(d.data)-d.off) || size > math.MaxUint32 {
		return fmt.Errorf("%d bytes of strings, %d remain", size, len(d.data)-d.off)
	}
	d.all = string(d.data[d.off : d.off+int(size)])
	d.off += int(size)
	d.ends = make([]uint32, n+1)
	var end uint64
	for i := 1; i <= n; i++ {
		l := d.uint()
		if d.err != nil {
			return fmt.Errorf("string %d: %w", i, d.err)
		}
		if l == 0 || l > size-end {
			return fmt.Errorf("string %d: length %d, %d bytes left", i, l, size-end)
		}
		end += l
		d.ends[i] = uint32(end)
	}
	if end != size {
		return fmt.Errorf("%d strings use %d of its %d bytes", n, end, size)
	}
	return nil
}

// end checks that the whole payload was read.
func (d *binDecoder) end() error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.data) {
		return fmt.Errorf("%d trailing bytes", len(d.data)-d.off)
	}
	return nil
}

func (d *binDecoder) state(s *evaluator.State) error {
	s.Version = d.intn()
	s.Semantics = d.intn()
	if d.err != nil {
		return d.err
	}
	if err := d.graph(&s.Graph); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	if n := d.count(binMinTemplate); n > 0 {
		s.Templates = make([]evaluator.TemplateState, n)
	}
	if d.err != nil {
		return fmt.Errorf("templates: %w", d.err)
	}
	d.reserved += len(s.Templates) * binMinTemplate
	for i := range s.Templates {
		d.reserved -= binMinTemplate
		if err := d.template(&s.Templates[i], 1); err != nil {
			return fmt.Errorf("template %d: %w", i, err)
		}
	}
	if err := d.matches(s); err != nil {
		return err
	}
	return d.effects(s)
}

func (d *binDecoder) template(t *evaluator.TemplateState, depth int) error {
	t.Name = d.str()
	t.Body = d.str()
	if d.layout >= binLayoutVersion {
		if np := d.count(binMinProperty); np > 0 {
			t.Params = make(map[string]string, np)
			for range np {
				k := d.str()
				t.Params[k] = d.str()
			}
			if len(t.Params) != np && d.err == nil {
				d.fail(fmt.Errorf("%d params, %d distinct names", np, len(t.Params)))
			}
		}
	}
	n := d.count(binMinTemplate)
	if d.err != nil {
		return d.err
	}
	if n > 0 && depth >= binMaxIncludeDepth {
		return fmt.Errorf("includes nested deeper than %d", binMaxIncludeDepth)
	}
	if n > 0 {
		t.Includes = make([]evaluator.TemplateState, n)
	}
	// The includes not yet read keep their least size reserved while
	// each one (and what it includes) is read.
	d.reserved += n * binMinTemplate
	for i := range t.Includes {
		d.reserved -= binMinTemplate
		if err := d.template(&t.Includes[i], depth+1); err != nil {
			return fmt.Errorf("include %d: %w", i, err)
		}
	}
	return nil
}

func (d *binDecoder) graph(g *graph.State) error {
	g.Version = d.intn()
	switch d.uint() {
	case 0:
	case 1:
		g.Now = d.time(true)
	default:
		d.fail(errors.New("bad time flag"))
	}
	g.Step = d.int()
	g.NextID = graph.VertexID(d.int())
	nv := d.count(binMinVertex)
	ne := d.count(binMinEdge)
	no := d.count(binMinOwner)
	if d.err != nil {
		return d.err
	}
	if need := nv*binMinVertex + ne*binMinEdge + no*binMinOwner; need > len(d.data)-d.off {
		return fmt.Errorf("%d vertices, %d edges and %d owners need %d bytes, %d remain", nv, ne, no, need, len(d.data)-d.off)
	}
	edges, owners := newPool[graph.EdgeState](ne, "edges"), newPool[graph.Owner](no, "owners")
	if nv > 0 {
		g.Vertices = make([]graph.VertexState, nv)
	}
	var id graph.VertexID
	for i := range g.Vertices {
		d.progress()
		v := &g.Vertices[i]
		id += graph.VertexID(d.int())
		v.ID = id
		v.Category = d.str()
		v.Type = d.str()
		v.ExternalID = d.str()
		v.Name = d.str()
		v.State = d.str()
		v.Severity = d.str()
		v.DeducedState = d.str()
		v.AggregatedState = d.str()
		v.OperationalState = d.str()
		v.ProjectID = d.str()
		v.Source = d.str()
		flags := d.uint()
		if flags&^binVAll != 0 {
			d.fail(fmt.Errorf("unknown flags %#x", flags))
		}
		v.IsDeleted = flags&binVDeleted != 0
		v.IsPlaceholder = flags&binVPlaceholder != 0
		v.IsMarkedDown = flags&binVMarkedDown != 0
		v.SampleTimestamp = d.time(flags&binVSample != 0)
		v.UpdateTimestamp = d.time(flags&binVUpdate != 0)
		v.Seen = d.int()
		if np := d.count(binMinProperty); np > 0 {
			v.Properties = make(map[string]string, np)
			for range np {
				k := d.str()
				v.Properties[k] = d.str()
			}
			if len(v.Properties) != np && d.err == nil {
				d.fail(fmt.Errorf("%d properties, %d distinct keys", np, len(v.Properties)))
			}
		}
		v.Out = take(d, edges)
		var to graph.VertexID
		for j := range v.Out {
			es := &v.Out[j]
			to += graph.VertexID(d.int())
			es.To = to
			es.Relationship = d.str()
			flags := d.uint()
			if flags&^binEAll != 0 {
				d.fail(fmt.Errorf("unknown flags %#x", flags))
			}
			es.IsDeleted = flags&binEDeleted != 0
			es.DeletedWithVertex = flags&binEWithVertex != 0
			es.UpdateTimestamp = d.time(flags&binEUpdate != 0)
			es.Owners = take(d, owners)
			for k := range es.Owners {
				es.Owners[k].Entity = graph.VertexID(d.int())
				es.Owners[k].Source = d.str()
			}
			if d.err != nil {
				return fmt.Errorf("vertex %d (id %d): edge %d: %w", i, id, j, d.err)
			}
		}
		if d.err != nil {
			return fmt.Errorf("vertex %d (id %d): %w", i, id, d.err)
		}
	}
	if err := errors.Join(edges.whole(), owners.whole()); err != nil {
		return fmt.Errorf("vertices: %w", err)
	}
	if n := d.count(binMinSync); n > 0 {
		g.Syncs = make([]graph.SyncState, n)
	}
	for i := range g.Syncs {
		g.Syncs[i] = graph.SyncState{Source: d.str(), ID: d.str(), Begin: d.int()}
		if d.err != nil {
			return fmt.Errorf("sync %d: %w", i, d.err)
		}
	}
	return d.err
}

func (d *binDecoder) matches(s *evaluator.State) error {
	nm := d.count(binMinMatch)
	nb := d.count(binMinBinding)
	if d.err != nil {
		return fmt.Errorf("matches: %w", d.err)
	}
	if need := nm*binMinMatch + nb*binMinBinding; need > len(d.data)-d.off {
		return fmt.Errorf("matches: %d matches and %d bindings need %d bytes, %d remain", nm, nb, need, len(d.data)-d.off)
	}
	binds := newPool[evaluator.Binding](nb, "bindings")
	if nm > 0 {
		s.Matches = make([]evaluator.MatchState, nm)
	}
	for i := range s.Matches {
		d.progress()
		m := &s.Matches[i]
		m.Template = d.str()
		m.Scenario = d.intn()
		m.Clause = d.intn()
		m.Bindings = take(d, binds)
		for j := range m.Bindings {
			m.Bindings[j] = evaluator.Binding{Entity: d.str(), Vertex: graph.VertexID(d.int())}
		}
		if d.err != nil {
			return fmt.Errorf("match %d: %w", i, d.err)
		}
	}
	if err := binds.whole(); err != nil {
		return fmt.Errorf("matches: %w", err)
	}
	return nil
}

func (d *binDecoder) effects(s *evaluator.State) error {
	nf := d.count(binMinEffect)
	ns := d.count(binMinSupport)
	if d.err != nil {
		return fmt.Errorf("effects: %w", d.err)
	}
	if need := nf*binMinEffect + ns*binMinSupport; need > len(d.data)-d.off {
		return fmt.Errorf("effects: %d effects and %d supports need %d bytes, %d remain", nf, ns, need, len(d.data)-d.off)
	}
	sups := newPool[evaluator.Support](ns, "supports")
	if nf > 0 {
		s.Effects = make([]evaluator.EffectState, nf)
	}
	for i := range s.Effects {
		d.progress()
		ef := &s.Effects[i]
		ef.Key = d.str()
		ef.Kind = d.str()
		ef.Target = graph.VertexID(d.int())
		ef.Source = graph.VertexID(d.int())
		ef.Name = d.str()
		ef.Applied = d.str()
		flags := d.uint()
		if flags&^binEffectOn != 0 {
			d.fail(fmt.Errorf("unknown flags %#x", flags))
		}
		ef.On = flags&binEffectOn != 0
		ef.AlarmID = graph.VertexID(d.int())
		ef.Supports = take(d, sups)
		for j := range ef.Supports {
			ef.Supports[j] = evaluator.Support{ID: d.str(), Value: d.str()}
		}
		if d.err != nil {
			return fmt.Errorf("effect %d: %w", i, d.err)
		}
	}
	if err := sups.whole(); err != nil {
		return fmt.Errorf("effects: %w", err)
	}
	return nil
}

// stepEvery is how many items (vertices, matches, effects) a decode reads
// between two progress steps.
const stepEvery = 1 << 10
