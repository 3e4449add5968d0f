package evaluator

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"testing"

	"github.com/causeway/causeway/graph"
)

// TestSemanticsFollowsTheState checks that a state keeps the Semantics it
// was computed under: an engine started empty has this build's, one
// restored from an older build's state keeps that one through applies,
// Freeze, State and a snapshot's encodings, and a state written before the
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
	if got := r.Freeze().State().Semantics; got != Semantics-1 {
		t.Fatalf("Freeze().State().Semantics = %d; want %d", got, Semantics-1)
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
