package evaluator

import (
	"testing"

	"github.com/causeway/causeway/internal/event"
)

// TestVitrageStateIsTheDeducedState: as in Vitrage, a template filter on
// vitrage_state reads the state set_state wrote, not the datasource's.
func TestVitrageStateIsTheDeducedState(t *testing.T) {
	const setsError = `
metadata: {version: 3, name: nic_sets_error, type: standard}
entities:
  nic: {category: ALARM, name: NIC_DOWN}
  host: {type: nova.host}
scenarios:
  - condition: nic [on] host
    actions:
      - set_state: {target: host, state: ERROR}
`
	const downWhenError = `
metadata: {version: 3, name: error_marks_down, type: standard}
entities:
  host: {type: nova.host, vitrage_state: ERROR}
scenarios:
  - condition: host
    actions:
      - mark_down: {target: host}
`
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(host("h1", "available"))
	l.must(put("a", setsError))
	l.must(put("b", downWhenError))
	down := func() bool {
		id, ok := l.e.Graph().Lookup("RESOURCE", "nova.host", "h1")
		v, found := l.e.Graph().Vertex(id)
		if !ok || !found {
			t.Fatal("no host")
		}
		return v.IsMarkedDown
	}
	if down() {
		t.Fatal("marked down before any deduced state")
	}
	l.must(alarmOn("nic", "NIC_DOWN", "h1"))
	if !down() {
		t.Error("a host whose deduced state is ERROR is not marked down")
	}
	l.must(event.Event{Source: "nagios", Kind: event.KindEntityDelete, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: "nic"}})
	if down() {
		t.Error("still marked down once the deduced state is gone")
	}
	// The datasource's own state is not vitrage_state.
	l.must(host("h1", "ERROR"))
	if down() {
		t.Error("marked down by the datasource's state")
	}
}
