package evaluator

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
	"github.com/causeway/causeway/internal/event"
)

// TestSemanticsFollowsTheState checks that a state keeps the Semantics it
// was computed under: an engine started empty has this build's, one
// restored from an older build's state keeps that one through applies,
// State and a snapshot's encodings, and a state written before the
// field existed reads as stale.
func TestSemanticsFollowsTheState(t *testing.T) {
	recs := genLog(t, 7, 300)
	e := New(Config{}, nil)
	applyAll(t, e, recs[:150])
	if e.StaleSemantics() {
		t.Fatal("an engine started empty reports stale semantics")
	}
	s := e.State()
	if s.Semantics != Semantics {
		t.Fatalf("State().Semantics = %d; want %d", s.Semantics, Semantics)
	}

	old := s
	old.Semantics = Semantics - 1
	r, err := Restore(old, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.StaleSemantics() {
		t.Fatal("an engine restored from an older build's state does not report stale semantics")
	}
	applyAll(t, r, recs[150:])
	applyAll(t, e, recs[150:])
	if !bytes.Equal(dump(t, r), dump(t, e)) {
		t.Fatal("the semantics number changed the dump")
	}
	if got := r.State().Semantics; got != Semantics-1 {
		t.Fatalf("after applying records, State().Semantics = %d; want the restored %d", got, Semantics-1)
	}

	// Through both payload encodings.
	var gb bytes.Buffer
	if err := gob.NewEncoder(&gb).Encode(r.State()); err != nil {
		t.Fatal(err)
	}
	var fromGob State
	if err := gob.NewDecoder(&gb).Decode(&fromGob); err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(e.State())
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON State
	if err := json.Unmarshal(jb, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if fromGob.Semantics != Semantics-1 || fromJSON.Semantics != Semantics {
		t.Fatalf("semantics through gob %d, JSON %d; want %d, %d", fromGob.Semantics, fromJSON.Semantics, Semantics-1, Semantics)
	}

	// A state written before the field existed has none.
	type stateV1 struct {
		Version int
		Graph   graph.State
	}
	gb.Reset()
	if err := gob.NewEncoder(&gb).Encode(stateV1{Version: StateVersion, Graph: s.Graph}); err != nil {
		t.Fatal(err)
	}
	var legacy State
	if err := gob.NewDecoder(&gb).Decode(&legacy); err != nil {
		t.Fatal(err)
	}
	lr, err := Restore(legacy, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !lr.StaleSemantics() {
		t.Fatal("a state written before the semantics number existed is not stale")
	}
}

// legacyTemplates are templates that builds before Semantics 3 loaded and
// this build refuses.
func legacyTemplates() map[string]string {
	return map[string]string{
		"over MaxTerms": `
metadata: {version: 3, name: long, type: standard}
entities:
  host: {type: nova.host}
scenarios:
  - condition: ` + strings.TrimSuffix(strings.Repeat("host AND ", template.MaxTerms+1), " AND ") + `
    actions: [{mark_down: {target: host}}]
`,
		"disconnected clause": `
metadata: {version: 3, name: typo, type: standard}
entities:
  host: {type: nova.host}
  other: {type: nova.host}
scenarios:
  - condition: host AND other
    actions: [{mark_down: {target: host}}]
`,
		"regex compiled only once anchored": `
metadata: {version: 3, name: regex, type: standard}
entities:
  host: {type: nova.host, name.regex: 'prod)|(.*'}
scenarios:
  - condition: host
    actions: [{mark_down: {target: host}}]
`,
	}
}

// TestRestoreKeepsLegacyTemplates: a template put is refused under this
// build's semantics, but a state computed under older semantics that holds
// it still restores, with the template loaded as the older build loaded it
// (else the snapshot would be skipped as unreadable, and what a node holds
// would depend on which snapshots it found). A state of this build's
// semantics holding it is refused.
func TestRestoreKeepsLegacyTemplates(t *testing.T) {
	for name, body := range legacyTemplates() {
		t.Run(name, func(t *testing.T) {
			l := &logger{t: t, e: New(Config{}, nil)}
			l.must(host("h1", "available"))
			if _, err := l.apply(put("legacy", body)); !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("put: err = %v; want ErrInvalidTemplate", err)
			}
			s := l.e.State()
			s.Templates = append(s.Templates, TemplateState{Name: "legacy", Body: body})
			s.Semantics = semanticsStrictTemplates - 1
			r, err := Restore(s, Config{}, nil)
			if err != nil {
				t.Fatalf("restore a state of semantics %d: %v", s.Semantics, err)
			}
			if tis := r.Templates(); len(tis) != 1 || tis[0].Name != "legacy" {
				t.Fatalf("restored templates %+v; want the legacy one", tis)
			}
			// Putting the same body again changes nothing, as before.
			l2 := &logger{t: t, e: r, seq: l.seq}
			if res := l2.must(put("legacy", body)); len(res.Changes) != 0 {
				t.Fatalf("the same body again made %d changes; want none", len(res.Changes))
			}
			s.Semantics = Semantics
			if _, err := Restore(s, Config{}, nil); !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("restore a state of this build's semantics: err = %v; want ErrInvalidTemplate", err)
			}
		})
	}
}

// TestRestoreRefusesMalformedBookkeeping checks that Restore refuses a state
// whose matches or effects the engine could not have made (a corrupt or
// hostile snapshot, which reconstruction then skips for an older one),
// rather than restore an effect the engine can never find again to undo.
func TestRestoreRefusesMalformedBookkeeping(t *testing.T) {
	const tpl = `metadata: {version: 3, name: every_kind, type: standard}
entities:
  down: {category: ALARM, name: HOST_DOWN}
  host: {type: nova.host}
  instance: {type: nova.instance}
scenarios:
  - condition: down [on] host AND host [contains] instance
    actions:
      - raise_alarm: {target: instance, alarm_name: instance_down, severity: CRITICAL, causing_alarm: down}
      - set_state: {target: instance, state: ERROR}
      - mark_down: {target: host}
`
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(put("every_kind", tpl))
	l.must(host("h1", "available"))
	l.must(event.Event{Source: "static", Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource,
		Type: "nova.instance", ID: "vm1", State: "available",
		Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: "h1", Direction: event.In}}}})
	l.must(alarmOn("n1", "HOST_DOWN", "h1"))
	good := l.e.State()
	if _, err := Restore(good, Config{}, nil); err != nil {
		t.Fatalf("the engine's own state: %v", err)
	}
	kinds := map[string]bool{}
	for _, es := range good.Effects {
		kinds[es.Kind] = true
	}
	if len(kinds) != 4 || len(good.Matches) == 0 {
		t.Fatalf("the scenario made effects of kinds %v and %d matches; want every kind and a match", kinds, len(good.Matches))
	}
	nv := graph.VertexID(good.Graph.NextID)
	for _, tc := range []struct {
		name string
		kind string // the effect changed ("": a match)
		mut  func(s *State, i int)
	}{
		{"alarm effect with a source", kindAlarm, func(s *State, i int) { s.Effects[i].Source = 1 }},
		{"causes effect with a name", kindCauses, func(s *State, i int) { s.Effects[i].Name = "x" }},
		{"state effect with a name", kindState, func(s *State, i int) { s.Effects[i].Name = "x" }},
		{"down effect with a source", kindDown, func(s *State, i int) { s.Effects[i].Source = 1 }},
		{"causes effect from no vertex", kindCauses, func(s *State, i int) {
			s.Effects[i].Source = 0
			s.Effects[i].Key = effectKey(&effect{kind: kindCauses, target: s.Effects[i].Target})
		}},
		{"unknown kind", kindAlarm, func(s *State, i int) { s.Effects[i].Kind = "teleport" }},
		{"key of other fields", kindAlarm, func(s *State, i int) { s.Effects[i].Key += "x" }},
		{"target past the graph", kindAlarm, func(s *State, i int) {
			s.Effects[i].Target = nv
			s.Effects[i].Key = effectKey(&effect{kind: kindAlarm, target: nv, name: s.Effects[i].Name})
		}},
		{"effect twice", kindAlarm, func(s *State, i int) { s.Effects = append(s.Effects, s.Effects[i]) }},
		{"binding past the graph", "", func(s *State, i int) { s.Matches[i].Bindings[0].Vertex = 1 << 40 }},
		{"match without bindings", "", func(s *State, i int) { s.Matches[i].Bindings = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := l.e.State() // a deep copy to change
			i := 0
			if tc.kind != "" {
				i = slices.IndexFunc(s.Effects, func(es EffectState) bool { return es.Kind == tc.kind })
			}
			tc.mut(&s, i)
			if _, err := Restore(s, Config{}, nil); err == nil {
				t.Fatal("restored")
			}
		})
	}
}

// releaseTemplate marks down the host named 1.10: read as text (semantics
// 4 and later) it is "1.10", read as a number (before) "1.1".
const releaseTemplate = `
metadata: {version: 2, type: standard, name: release}
definitions:
  entities:
    - entity: {category: RESOURCE, type: nova.host, name: 1.10, template_id: host}
scenarios:
  - scenario:
      condition: host
      actions:
        - action: {action_type: mark_down, action_target: {target: host}}
`

// TestTemplateScalarsAreTheirText: a template filter reads its value as
// written, as Vitrage does (`name: 1.10` is "1.10", not 1.1), and a state
// of semantics below 4 rebuilds its templates as they were read then, so
// that its rules are those its matches were found by.
func TestTemplateScalarsAreTheirText(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(host("1.1", "available"))
	l.must(host("1.10", "available"))
	l.must(put("release", releaseTemplate))
	for name, want := range map[string]bool{"1.1": false, "1.10": true} {
		id, _ := l.e.Graph().Lookup(graph.CategoryResource, "nova.host", name)
		if v, _ := l.e.Graph().Vertex(id); v.IsMarkedDown != want {
			t.Errorf("host %s marked down %v; want %v", name, v.IsMarkedDown, want)
		}
	}
	for sem, want := range map[int]string{semanticsTextScalars - 1: "1.1", Semantics: "1.10"} {
		s := l.e.State()
		s.Semantics = sem
		r, err := Restore(s, Config{}, nil)
		if err != nil {
			t.Fatalf("restore a state of semantics %d: %v", sem, err)
		}
		if got := r.templates["release"].tpl.Entities["host"].Props["name"]; got != want {
			t.Errorf("restored under semantics %d, the filter reads %q; want %q", sem, got, want)
		}
	}
}

// A template put into a state of older semantics must read the same after
// that state is snapshotted and restored: Restore reads it under the
// state's semantics, so the put must too, or a replay from the older
// snapshot and one from a later snapshot of it disagree (or the later one
// is refused outright).
func TestPutIntoOlderStateSurvivesRestore(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(host("1.1", "available"))
	l.must(host("1.10", "available"))
	s := l.e.State()
	s.Semantics = semanticsTextScalars - 1
	r, err := Restore(s, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.e = r
	l.must(put("release", releaseTemplate))
	downs := func(e *Engine) map[string]bool {
		out := map[string]bool{}
		for _, name := range []string{"1.1", "1.10"} {
			id, _ := e.Graph().Lookup(graph.CategoryResource, "nova.host", name)
			v, _ := e.Graph().Vertex(id)
			out[name] = v.IsMarkedDown
		}
		return out
	}
	before := downs(l.e)
	again, err := Restore(l.e.State(), Config{}, nil)
	if err != nil {
		t.Fatalf("restore the state the put went into: %v", err)
	}
	if !bytes.Equal(dump(t, again), dump(t, l.e)) {
		t.Fatalf("restored dump differs:\n%s", firstDiff(dump(t, l.e), dump(t, again)))
	}
	// The restored engine's rule must be the put one: a host reported
	// again is matched alike by both.
	l2 := &logger{t: t, e: again, seq: l.seq}
	for _, x := range []*logger{l, l2} {
		x.must(event.Event{Source: "static", Kind: event.KindEntityDelete, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: "1.1"}})
		x.must(host("1.1", "available"))
	}
	if a, b := downs(l.e), downs(again); a["1.1"] != b["1.1"] || a["1.10"] != b["1.10"] {
		t.Fatalf("live engine marks %v down, its restored snapshot %v (before the restore: %v)", a, b, before)
	}
	if got := r.templates["release"].tpl.Entities["host"].Props["name"]; got != again.templates["release"].tpl.Entities["host"].Props["name"] {
		t.Fatalf("the live engine's filter reads %q, the restored one's %q", got, again.templates["release"].tpl.Entities["host"].Props["name"])
	}
}

// A template that only new templates are refused for (template.Options
// .Stored: here a get_param call Vitrage cannot read, which older builds
// added) loads from the log as it did, so a replay of an older log
// computes the same state.
func TestStoredTemplateRefusedOnlyWhenNew(t *testing.T) {
	const body = `
metadata: {version: 3, name: literal, type: standard}
entities:
  host: {type: nova.host, name: get_param (h)}
scenarios:
  - condition: host
    actions: [{mark_down: {target: host}}]
`
	if _, err := template.Parse([]byte(body), template.Options{}); err == nil {
		t.Fatal("a new template with a malformed get_param call is valid")
	}
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(put("literal", body))
	if _, ok := l.e.templates["literal"]; !ok {
		t.Fatal("the stored template did not load")
	}
	if _, err := Restore(l.e.State(), Config{}, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
}
