package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"io"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/subscription"
)

// includesTemplates are a definition template and a template that includes
// it, so that a state holds a template with includes.
var includesTemplates = []event.Template{
	{Name: "definitions.yaml", Body: `
metadata: {version: 2, type: definition, name: defs}
definitions:
  entities:
    - entity: {category: ALARM, name: DISK_FULL, template_id: alarm}
    - entity: {category: RESOURCE, type: nova.host, template_id: host}
  relationships:
    - relationship: {source: alarm, target: host, relationship_type: on, template_id: alarm_on_host}
`},
	{Name: "uses", Body: `
metadata: {version: 2, type: standard, name: uses}
includes: [{name: defs}]
scenarios:
  - scenario:
      condition: alarm_on_host
      actions:
        - action: {action_type: set_state, action_target: {target: host}, properties: {state: ERROR}}
`},
}

// paramsTemplates are includesTemplates with params: the definition
// template's alarm name is a parameter, and a version 3 template has
// parameters with and without defaults (a state of them is written in
// bin layout 2).
var paramsTemplates = []event.Template{
	{Name: "definitions.yaml", Params: map[string]string{"alarm_name": "DISK_FULL", "unused": ""}, Body: `
metadata: {version: 2, type: definition, name: defs}
parameters:
  alarm_name: {}
definitions:
  entities:
    - entity: {category: ALARM, name: get_param(alarm_name), template_id: alarm}
    - entity: {category: RESOURCE, type: nova.host, template_id: host}
  relationships:
    - relationship: {source: alarm, target: host, relationship_type: on, template_id: alarm_on_host}
`},
	includesTemplates[1],
	{Name: "nic", Params: map[string]string{"alarm_name": "NIC_DOWN", "severity": "CRITICAL"}, Body: `
metadata: {version: 3, name: nic, type: standard}
parameters:
  alarm_name: {}
  severity: {default: WARNING}
entities:
  alarm: {category: ALARM, name: get_param(alarm_name)}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions: [{raise_alarm: {target: host, alarm_name: nic trouble, severity: get_param(severity)}}]
`},
}

// binNodeStates feeds a node nodeLog(n), with a template that includes a
// definition template (includesTemplates, or tpls), and returns the
// node's state and canonical dump at a few points of the log (the empty
// node first).
func binNodeStates(t testing.TB, n int, tpls ...event.Template) ([]NodeState, []string) {
	t.Helper()
	if len(tpls) == 0 {
		tpls = includesTemplates
	}
	evs := nodeLog(n)
	at := evs[0].ObservedAt
	var puts []event.Event
	for i, tp := range tpls {
		puts = append(puts, event.Event{V: event.Version, EventID: "incl" + string(rune('a'+i)), Source: "operator",
			Kind: event.KindTemplatePut, ObservedAt: at, Template: &tp})
	}
	evs = append(evs[:n/8], append(puts, evs[n/8:]...)...)
	m, err := NodeFactory{Normalizer: graph.DefaultNormalizer()}.New()
	if err != nil {
		t.Fatal(err)
	}
	node := m.(*Node)
	var states []NodeState
	var dumps []string
	take := func() {
		states = append(states, node.State())
		var b bytes.Buffer
		if err := node.Dump(&b); err != nil {
			t.Fatal(err)
		}
		dumps = append(dumps, b.String())
	}
	take()
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i, ev := range evs {
		seq := int64(i) + 1
		at := base.Add(time.Duration(seq) * time.Millisecond)
		if i >= 2*len(evs)/3 {
			// Past the retention of what was deleted before: it is
			// purged, and the ids of the purged vertices are holes.
			at = at.Add(graph.DeletedRetention + time.Hour)
		}
		_ = node.Apply(event.Record{Seq: seq, RecordedAt: at, Event: ev})
		if (i+1)%(len(evs)/5) == 0 || i == len(evs)-1 {
			take()
		}
	}
	return states, dumps
}

// checkCoverage fails unless the states together hold every kind of
// thing the layout encodes (and those also names), so that a round trip
// of them tests it all.
func checkCoverage(t *testing.T, states []NodeState, also ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, s := range states {
		g := s.Engine.Graph
		have["open sync"] = have["open sync"] || len(g.Syncs) > 0
		have["hole in the ids"] = have["hole in the ids"] || int(g.NextID)-1 > len(g.Vertices)
		have["subscription"] = have["subscription"] || len(s.Subscriptions) > 0
		for _, sub := range s.Subscriptions {
			have["told alarm"] = have["told alarm"] || len(sub.Told) > 0
		}
		for _, v := range g.Vertices {
			have["deleted vertex"] = have["deleted vertex"] || v.IsDeleted
			have["placeholder"] = have["placeholder"] || v.IsPlaceholder
			have["tombstone"] = have["tombstone"] || (v.IsDeleted && v.IsPlaceholder && !v.SampleTimestamp.IsZero())
			have["marked down"] = have["marked down"] || v.IsMarkedDown
			have["zero sample time"] = have["zero sample time"] || v.SampleTimestamp.IsZero()
			have["sample time"] = have["sample time"] || !v.SampleTimestamp.IsZero()
			have["deduced state"] = have["deduced state"] || v.DeducedState != ""
			have["properties"] = have["properties"] || len(v.Properties) > 0
			for _, e := range v.Out {
				have["edge with owners"] = have["edge with owners"] || len(e.Owners) > 0
				have["deleted edge"] = have["deleted edge"] || e.IsDeleted
				have["edge deleted with vertex"] = have["edge deleted with vertex"] || e.DeletedWithVertex
			}
		}
		for _, tp := range s.Engine.Templates {
			have["template with includes"] = have["template with includes"] || len(tp.Includes) > 0
			have["template with params"] = have["template with params"] || len(tp.Params) > 0
			for _, inc := range tp.Includes {
				have["include with params"] = have["include with params"] || len(inc.Params) > 0
			}
		}
		for _, m := range s.Engine.Matches {
			have["match with bindings"] = have["match with bindings"] || len(m.Bindings) > 0
		}
		for _, ef := range s.Engine.Effects {
			have["effect with supports"] = have["effect with supports"] || len(ef.Supports) > 0
			have["effect on"] = have["effect on"] || ef.On
		}
	}
	for _, k := range append([]string{"open sync", "hole in the ids", "subscription", "told alarm", "deleted vertex", "placeholder", "tombstone", "marked down", "zero sample time",
		"sample time", "deduced state", "properties", "edge with owners", "deleted edge", "edge deleted with vertex",
		"template with includes", "match with bindings", "effect with supports", "effect on"}, also...) {
		if !have[k] {
			t.Errorf("no state holds a %s: the round trip does not test it", k)
		}
	}
}

func encodeBin(t testing.TB, s *NodeState) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := encodeNodeBin(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gobRoundTrip(t testing.TB, s *NodeState) NodeState {
	t.Helper()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(s); err != nil {
		t.Fatal(err)
	}
	var out NodeState
	if err := gob.NewDecoder(&b).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// States of real nodes, encoded in bin, decode to what gob decodes, and
// restore (through both factories) to the node's canonical dump byte for
// byte; encoding the decoded state gives the same bytes again. A state
// whose templates have no params is written in layout 1, as a release
// before params wrote it; one with params in layout 2.
func TestStateBinRoundTrip(t *testing.T) {
	t.Run("layout 1", func(t *testing.T) {
		states, dumps := binNodeStates(t, 800)
		checkCoverage(t, states)
		checkBinRoundTrip(t, states, dumps)
	})
	t.Run("layout 2", func(t *testing.T) {
		states, dumps := binNodeStates(t, 800, paramsTemplates...)
		checkCoverage(t, states, "template with params", "include with params")
		checkBinRoundTrip(t, states, dumps)
	})
}

func checkBinRoundTrip(t *testing.T, states []NodeState, dumps []string) {
	nf := NodeFactory{Normalizer: graph.DefaultNormalizer()}
	ef := EngineFactory{Normalizer: graph.DefaultNormalizer()}
	for i := range states {
		s := &states[i]
		payload := encodeBin(t, s)
		wantLayout := byte(binLayoutNoParams)
		for _, tp := range s.Engine.Templates {
			if len(tp.Params) > 0 || (len(tp.Includes) > 0 && len(tp.Includes[0].Params) > 0) {
				wantLayout = binLayoutVersion
			}
		}
		if payload[4] != wantLayout {
			t.Fatalf("state %d: written in layout %d, want %d", i, payload[4], wantLayout)
		}
		got, err := decodeNodeBin(payload, nil)
		if err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		if want := gobRoundTrip(t, s); !reflect.DeepEqual(got, want) {
			t.Fatalf("state %d: bin decodes to another state than gob", i)
		}
		if again := encodeBin(t, &got); !bytes.Equal(again, payload) {
			t.Fatalf("state %d: the decoded state encodes to other bytes", i)
		}
		m, err := nf.Restore(context.Background(), NodeBin, bytes.NewReader(payload))
		if err != nil {
			t.Fatalf("state %d: restore node: %v", i, err)
		}
		if dumpOf(t, m) != dumps[i] {
			t.Fatalf("state %d: restored node dumps differently", i)
		}
		e, err := ef.Restore(context.Background(), NodeBin, bytes.NewReader(payload))
		if err != nil {
			t.Fatalf("state %d: restore engine of a node payload: %v", i, err)
		}
		if dumpOf(t, e) != dumpOf(t, m.(*Node).Engine) {
			t.Fatalf("state %d: engine restored from a node payload dumps differently", i)
		}

		var eb bytes.Buffer
		if err := encodeEngineBin(&eb, &s.Engine); err != nil {
			t.Fatal(err)
		}
		gotEngine, err := decodeEngineBin(eb.Bytes(), nil)
		if err != nil {
			t.Fatalf("state %d: engine: %v", i, err)
		}
		if !reflect.DeepEqual(gotEngine, gobRoundTrip(t, s).Engine) {
			t.Fatalf("state %d: engine payload decodes to another state than gob", i)
		}
		e, err = ef.Restore(context.Background(), EngineBin, bytes.NewReader(eb.Bytes()))
		if err != nil {
			t.Fatalf("state %d: restore engine: %v", i, err)
		}
		if dumpOf(t, e) != dumpOf(t, m.(*Node).Engine) {
			t.Fatalf("state %d: restored engine dumps differently", i)
		}
		if _, err := nf.Restore(context.Background(), EngineBin, bytes.NewReader(eb.Bytes())); !errors.Is(err, ErrUnknownEncoding) {
			t.Fatalf("node factory on an engine-only payload: %v, want ErrUnknownEncoding", err)
		}
		if _, err := decodeNodeBin(eb.Bytes(), nil); err == nil {
			t.Fatal("an engine payload decoded as a node's")
		}
		if _, err := decodeEngineBin(payload, nil); err == nil {
			t.Fatal("a node payload decoded as an engine's")
		}
	}
}

// edgeCaseState has what real states rarely hold: extreme and negative
// integers, ids out of order (their deltas overflow), the Unix epoch
// beside the zero time, long and odd strings, nested includes, empty
// properties, supports without values.
func edgeCaseState() NodeState {
	long := strings.Repeat("ü/%\x00", 100)
	return NodeState{
		Version: -1,
		Engine: evaluator.State{
			Version: 7, Semantics: math.MinInt,
			Graph: graph.State{
				Version: 1, Now: time.Unix(0, 0).UTC(), Step: math.MaxInt64, NextID: math.MinInt64,
				Vertices: []graph.VertexState{
					{Vertex: graph.Vertex{ID: math.MaxInt64, Category: "ALARM", Type: long, ExternalID: "x", Name: long,
						SampleTimestamp: time.Unix(0, math.MinInt64).UTC(), UpdateTimestamp: time.Unix(0, math.MaxInt64).UTC(),
						Properties: map[string]string{"": "", long: "v", "k": long}}, Seen: -3},
					{Vertex: graph.Vertex{ID: math.MinInt64, IsDeleted: true, IsPlaceholder: true, IsMarkedDown: true, Properties: map[string]string{}},
						Out: []graph.EdgeState{
							{To: 5, IsDeleted: true, DeletedWithVertex: true, UpdateTimestamp: time.Unix(1, 2).UTC()},
							{To: -5, Relationship: "on", DeletedWithVertex: true, Owners: []graph.Owner{{Entity: -1}, {Entity: math.MaxInt64, Source: long}}},
							{To: math.MaxInt64, Owners: []graph.Owner{}},
						}},
					{Vertex: graph.Vertex{ID: 0}, Out: []graph.EdgeState{}},
				},
				Syncs: []graph.SyncState{{}, {Source: "s", ID: long, Begin: math.MinInt64}},
			},
			Templates: []evaluator.TemplateState{
				{Name: "a", Body: long, Includes: []evaluator.TemplateState{{Name: "b", Includes: []evaluator.TemplateState{{Name: "c", Body: "a"}}}}},
				{},
			},
			Matches: []evaluator.MatchState{
				{Template: "a", Scenario: -1, Clause: math.MaxInt, Bindings: []evaluator.Binding{{Entity: "e", Vertex: math.MinInt64}, {}}},
				{Bindings: []evaluator.Binding{}},
			},
			Effects: []evaluator.EffectState{
				{Key: long, Kind: "k", Target: -1, Source: math.MaxInt64, Name: "n", Applied: "x", On: true, AlarmID: math.MinInt64,
					Supports: []evaluator.Support{{ID: "a"}, {ID: "a", Value: long}}},
				{Supports: []evaluator.Support{}},
			},
		},
		Subscriptions: []subscription.Entry{{ID: "s", Seq: math.MinInt64, Spec: []byte(`{"url":"http://x/"}`)}, {Spec: []byte{}}},
	}
}

// normalizeEmpty gives nil for the empty slices and maps of s, as the bin
// decoder gives them.
func normalizeEmpty(s *NodeState) {
	g := &s.Engine.Graph
	for i := range g.Vertices {
		v := &g.Vertices[i]
		if len(v.Properties) == 0 {
			v.Properties = nil
		}
		if len(v.Out) == 0 {
			v.Out = nil
		}
		for j := range v.Out {
			if len(v.Out[j].Owners) == 0 {
				v.Out[j].Owners = nil
			}
		}
	}
	for i := range s.Engine.Matches {
		if len(s.Engine.Matches[i].Bindings) == 0 {
			s.Engine.Matches[i].Bindings = nil
		}
	}
	for i := range s.Engine.Effects {
		if len(s.Engine.Effects[i].Supports) == 0 {
			s.Engine.Effects[i].Supports = nil
		}
	}
	for i := range s.Subscriptions {
		if len(s.Subscriptions[i].Spec) == 0 {
			s.Subscriptions[i].Spec = nil
		}
	}
}

func TestStateBinEdgeCases(t *testing.T) {
	s := edgeCaseState()
	payload := encodeBin(t, &s)
	got, err := decodeNodeBin(payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := edgeCaseState()
	normalizeEmpty(&want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// gob keeps an empty map apart from a nil one (graph.State never
	// holds an empty one, and graph.FromState reads both alike).
	g := gobRoundTrip(t, &s)
	normalizeEmpty(&g)
	if !reflect.DeepEqual(got, g) {
		t.Fatalf("bin and gob decode differently:\n bin %+v\n gob %+v", got, g)
	}
	if got.Engine.Graph.Now.IsZero() || !got.Engine.Graph.Vertices[1].SampleTimestamp.IsZero() {
		t.Fatal("the Unix epoch and the zero time are confused")
	}
	// Each distinct string is held once.
	if n := bytes.Count(payload, []byte(strings.Repeat("ü/%\x00", 100))); n != 1 {
		t.Fatalf("the long string is written %d times", n)
	}

	var b bytes.Buffer
	bad := edgeCaseState()
	bad.Engine.Graph.Vertices[0].UpdateTimestamp = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := encodeNodeBin(&b, &bad); err == nil {
		t.Fatal("encoded a time past the range of Unix nanoseconds")
	}
	// In layout 2, with params: odd names and values, on an include too.
	withParams := edgeCaseState()
	withParams.Engine.Templates[0].Params = map[string]string{"": "", "k": strings.Repeat("ü/%\x00", 100), "v": "k"}
	withParams.Engine.Templates[0].Includes[0].Includes[0].Params = map[string]string{"p": "q"}
	p2 := encodeBin(t, &withParams)
	if p2[4] != binLayoutVersion {
		t.Fatalf("a state with params written in layout %d", p2[4])
	}
	got, err = decodeNodeBin(p2, nil)
	if err != nil {
		t.Fatal(err)
	}
	normalizeEmpty(&withParams)
	if !reflect.DeepEqual(got, withParams) {
		t.Fatalf("round trip with params:\n got %+v\nwant %+v", got.Engine.Templates, withParams.Engine.Templates)
	}

	// In node state 2, subscriptions hold the alarms they were told of;
	// below it they are not written at all.
	withTold := edgeCaseState()
	withTold.Version = nodeStateTold
	withTold.Subscriptions[0].Told = []string{"", "ALARM/a%2Fb/c", strings.Repeat("ü/%\x00", 100)}
	withTold.Subscriptions[1].Told = []string{}
	got, err = decodeNodeBin(encodeBin(t, &withTold), nil)
	if err != nil {
		t.Fatal(err)
	}
	withTold.Subscriptions[1].Told = nil
	normalizeEmpty(&withTold)
	if !reflect.DeepEqual(got, withTold) {
		t.Fatalf("round trip with told alarms:\n got %+v\nwant %+v", got.Subscriptions, withTold.Subscriptions)
	}
	withTold.Version = nodeStateNoTold
	if got, err = decodeNodeBin(encodeBin(t, &withTold), nil); err != nil || got.Subscriptions[0].Told != nil {
		t.Fatalf("node state 1 round trip: told %q, %v", got.Subscriptions[0].Told, err)
	}

	deep := edgeCaseState()
	tp := &deep.Engine.Templates[0]
	for range binMaxIncludeDepth {
		tp.Includes = []evaluator.TemplateState{{Name: "deeper"}}
		tp = &tp.Includes[0]
	}
	if err := encodeNodeBin(&b, &deep); err == nil {
		t.Fatal("encoded includes nested deeper than the decoder reads")
	}
}

// smallPayload is a node payload of a few hundred bytes holding some of
// everything (of tpls, as binNodeStates).
func smallPayload(t testing.TB, tpls ...event.Template) []byte {
	t.Helper()
	states, _ := binNodeStates(t, 40, tpls...)
	s := states[len(states)-1]
	// Keep a few vertices with their edges to the others dropped, so that
	// the payload stays small enough to flip every byte of.
	g := &s.Engine.Graph
	g.Vertices = g.Vertices[:min(6, len(g.Vertices))]
	return encodeBin(t, &s)
}

// withLength sets the header's length to the payload's.
func withLength(p []byte) []byte {
	p = bytes.Clone(p)
	if len(p) >= binHeaderLen {
		binary.BigEndian.PutUint64(p[6:], uint64(len(p)))
	}
	return p
}

// decodeAll decodes p in both kinds, through the reader as Restore does;
// it must not panic, and what it accepts must encode again to an equal
// state (decodeBoth).
func decodeAll(t *testing.T, p []byte) error {
	t.Helper()
	data, err := readBin(bytes.NewReader(p))
	if err != nil {
		return err
	}
	return decodeBoth(t, data)
}

// decodeBoth decodes data as a node payload and as an engine payload. A
// state either accepts must encode again to a payload that decodes to an
// equal state; the error is nil when either accepts.
func decodeBoth(t *testing.T, data []byte) error {
	t.Helper()
	ns, nerr := decodeNodeBin(data, nil)
	if nerr == nil {
		var b bytes.Buffer
		if err := encodeNodeBin(&b, &ns); err != nil {
			t.Fatalf("decoded node state does not encode: %v", err)
		}
		again, err := decodeNodeBin(b.Bytes(), nil)
		if err != nil {
			t.Fatalf("decoded node state, encoded again, does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, ns) {
			t.Fatal("decoded node state, encoded again, decodes to another state")
		}
	}
	es, eerr := decodeEngineBin(data, nil)
	if eerr == nil {
		var b bytes.Buffer
		if err := encodeEngineBin(&b, &es); err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		again, err := decodeEngineBin(b.Bytes(), nil)
		if err != nil {
			t.Fatalf("decoded state, encoded again, does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, es) {
			t.Fatal("decoded state, encoded again, decodes to another state")
		}
	}
	if nerr != nil && eerr != nil {
		return errors.Join(nerr, eerr)
	}
	return nil
}

// Every truncation of a valid payload fails, with the header's length as
// written or set to the truncated length (so the body is decoded); so do
// trailing bytes.
func TestStateBinTruncated(t *testing.T) {
	t.Run("layout 1", func(t *testing.T) { checkTruncated(t, smallPayload(t)) })
	t.Run("layout 2", func(t *testing.T) {
		p := smallPayload(t, paramsTemplates...)
		if p[4] != binLayoutVersion {
			t.Fatalf("layout %d", p[4])
		}
		checkTruncated(t, p)
	})
}

func checkTruncated(t *testing.T, p []byte) {
	if err := decodeAll(t, p); err != nil {
		t.Fatal(err)
	}
	for i := range len(p) {
		if err := decodeAll(t, p[:i]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: accepted", i, len(p))
		}
		if err := decodeAll(t, withLength(p[:i])); err == nil {
			t.Fatalf("truncated to %d of %d bytes, length set: accepted", i, len(p))
		}
	}
	for _, extra := range [][]byte{{0}, []byte("garbage")} {
		if err := decodeAll(t, append(bytes.Clone(p), extra...)); err == nil {
			t.Fatalf("trailing %q after the announced length: accepted", extra)
		}
		if err := decodeAll(t, withLength(append(bytes.Clone(p), extra...))); err == nil || !strings.Contains(err.Error(), "trailing") {
			t.Fatalf("trailing %q inside the announced length: %v", extra, err)
		}
	}
}

// Flipping any byte of a valid payload never panics; whatever still
// decodes encodes again to an equal state (decodeAll).
func TestStateBinFlipped(t *testing.T) {
	t.Run("layout 1", func(t *testing.T) { checkFlipped(t, smallPayload(t)) })
	t.Run("layout 2", func(t *testing.T) { checkFlipped(t, smallPayload(t, paramsTemplates...)) })
}

func checkFlipped(t *testing.T, p []byte) {
	refused := 0
	for i := range len(p) {
		for _, x := range []byte{0x01, 0x40, 0x80, 0xff} {
			q := bytes.Clone(p)
			q[i] ^= x
			if decodeAll(t, q) != nil {
				refused++
			}
		}
	}
	if refused == 0 {
		t.Fatal("no flipped byte was refused")
	}
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Huge counts and lengths are refused before anything is allocated for
// them.
func TestStateBinHostileCounts(t *testing.T) {
	hdr := func(kind byte) []byte {
		h := make([]byte, binHeaderLen)
		copy(h, binMagic[:])
		h[4], h[5] = binLayoutNoParams, kind
		return h
	}
	u := func(b []byte, vs ...uint64) []byte {
		for _, v := range vs {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	const huge = 1 << 40
	pad := make([]byte, 4096) // a little room, far from what the counts claim
	engine := func(tail ...uint64) []byte {
		// Empty string table, versions 1, no time, step 0, next id 1.
		p := u(hdr(binKindEngine), 0, 0, 2, 0, 2, 0, 0, 2)
		return withLength(append(u(p, tail...), pad...))
	}
	for name, tc := range map[string]struct {
		p    []byte
		want string
	}{
		"strings":      {withLength(append(u(hdr(binKindEngine), huge, 10), pad...)), "string table: count"},
		"string bytes": {withLength(append(u(hdr(binKindEngine), 1, huge), pad...)), "bytes of strings"},
		"vertices":     {engine(huge, 0, 0), "graph: count"},
		"edges":        {engine(0, huge, 0), "graph: count"},
		"owners":       {engine(0, 0, huge), "graph: count"},
		"all three":    {engine(200, 800, 1600), "need 9600 bytes"},
		"out":          {engine(1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, huge), "vertex 0 (id 1): 1099511627776 edges, 0 left"},
		"properties":   {engine(1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, huge), "vertex 0 (id 1): count"},
		"syncs":        {engine(0, 0, 0, huge), "graph: count"},
		"templates":    {engine(0, 0, 0, 0, huge), "templates: count"},
		"matches":      {engine(0, 0, 0, 0, 0, huge, 0), "matches: count"},
		"bindings":     {engine(0, 0, 0, 0, 0, 0, huge), "matches: count"},
		"effects":      {engine(0, 0, 0, 0, 0, 0, 0, huge, 0), "effects: count"},
		"supports":     {engine(0, 0, 0, 0, 0, 0, 0, 0, huge), "effects: count"},
		"subs":         {withLength(append(u(hdr(binKindNode), 0, 0, 2, 2, 0, 2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, huge), pad...)), "subscriptions: count"},
		// Layout 2: a template's params (name, body, then their count).
		"params": {layout2(engine(0, 0, 0, 0, 1, 0, 0, huge)), "template 0: count"},
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			n := allocated(func() {
				if tc.p[5] == binKindNode {
					_, err = decodeNodeBin(tc.p, nil)
				} else {
					_, err = decodeEngineBin(tc.p, nil)
				}
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if n > 1<<20 {
				t.Fatalf("allocated %d bytes for a payload of %d: %v", n, len(tc.p), err)
			}
		})
	}
	// Nested includes: each level's count claims the bytes that remain,
	// which the enclosing levels' counts claimed already. What is
	// allocated must stay within what the payload could describe once
	// (56 bytes of TemplateState for each 3 bytes), not once per level.
	const size = 1 << 20
	c := uint64(size/binMinTemplate - 64)
	nested := u(u(hdr(binKindEngine), 0, 0, 2, 0, 2, 0, 0, 2), 0, 0, 0, 0, c)
	for range binMaxIncludeDepth - 1 {
		nested = u(nested, 0, 0, c)
	}
	nested = withLength(append(nested, make([]byte, size-len(nested))...))
	var nerr error
	if n := allocated(func() { _, nerr = decodeEngineBin(nested, nil) }); nerr == nil || n > 24*size {
		t.Fatalf("nested includes: allocated %d bytes (%dx) for a payload of %d: %v", n, n/size, len(nested), nerr)
	}
	// A header claiming a huge payload: the reader allocates what arrives.
	p := withLength(hdr(binKindEngine))
	binary.BigEndian.PutUint64(p[6:], maxRawSize)
	var err error
	if n := allocated(func() { _, err = readBin(io.MultiReader(bytes.NewReader(p), bytes.NewReader(pad))) }); err == nil || n > binReadAhead+1<<20 {
		t.Fatalf("a header claiming %d bytes: allocated %d, %v", uint64(maxRawSize), n, err)
	}
	binary.BigEndian.PutUint64(p[6:], maxRawSize+1)
	if _, err := readBin(bytes.NewReader(p)); err == nil {
		t.Fatal("accepted a length over the limit")
	}
	for _, v := range []byte{0, binLayoutVersion + 1} {
		p[4] = v
		if _, err := readBin(bytes.NewReader(p)); !errors.Is(err, ErrUnknownVersion) {
			t.Fatalf("unknown layout version %d: %v, want ErrUnknownVersion", v, err)
		}
	}
}

// layout2 is payload p with its header saying layout 2.
func layout2(p []byte) []byte {
	p = bytes.Clone(p)
	p[4] = binLayoutVersion
	return p
}
