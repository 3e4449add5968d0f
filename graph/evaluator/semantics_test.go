package evaluator

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/template"
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
