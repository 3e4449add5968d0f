package evaluator

import (
	"testing"

	"github.com/causeway/causeway/graph/template"
)

// TestMatchIDsAsSupportID checks that the support ids do cuts from a
// match made by newMatchIDs are supportID's, whatever the actions (with and
// without ids, indexes of one and two digits).
func TestMatchIDsAsSupportID(t *testing.T) {
	types := []string{template.ActionExecuteMistral, template.ActionRaiseAlarm, template.ActionSetState,
		template.ActionAddCausal, template.ActionMarkDown}
	var acts []template.Action
	for i := 0; i < 23; i++ {
		acts = append(acts, template.Action{Type: types[(i*3)%len(types)]})
	}
	for n := 0; n <= len(acts); n++ {
		for _, mistralOnly := range []bool{false, true} {
			sc := &template.Scenario{Actions: acts[:n]}
			if mistralOnly {
				sc = &template.Scenario{Actions: []template.Action{{Type: template.ActionExecuteMistral}}}
			}
			r := &rule{tplName: "t", scenario: 3, clause: 1, sc: sc}
			b := []Binding{{Entity: "host", Vertex: 12}, {Entity: "instance", Vertex: 345}}
			key := appendMatchKey(nil, r, b)
			e := &Engine{}
			m := e.newMatchIDs(key, r, b)
			if m.key != string(key) {
				t.Fatalf("key %q, want %q", m.key, key)
			}
			ref := &match{key: m.key, rule: r, bindings: b}
			ids := supportIDs{m: m}
			for i, a := range sc.Actions {
				part, ok := supportPart(a.Type)
				if !ok {
					continue
				}
				if got, want := ids.next(i, part), supportID(ref, i, part); got != want {
					t.Fatalf("%d actions: action %d: id %q, want %q", n, i, got, want)
				}
			}
			if ids.pos != len(m.ids) && (ids.pos != 0 || m.ids != m.key) {
				t.Fatalf("%d actions: ids %q has %d bytes past the last id", n, m.ids, len(m.ids)-ids.pos)
			}
		}
	}
}
