package evaluator

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/event"
)

type logger struct {
	t   *testing.T
	e   *Engine
	seq int64
}

func (l *logger) apply(ev event.Event) (Result, error) {
	l.seq++
	at := time.Date(2026, 1, 1, 0, 0, int(l.seq), 0, time.UTC)
	ev.V = event.Version
	ev.EventID = "e" + time.Duration(l.seq).String()
	if ev.ObservedAt.IsZero() {
		ev.ObservedAt = at
	}
	return l.e.ApplyResult(event.Record{Seq: l.seq, RecordedAt: at, Event: ev})
}

func (l *logger) must(ev event.Event) Result {
	l.t.Helper()
	r, err := l.apply(ev)
	if err != nil {
		l.t.Fatalf("apply %s: %v", ev.Kind, err)
	}
	return r
}

func put(name, body string) event.Event {
	return event.Event{Source: "api", Kind: event.KindTemplatePut, Template: &event.Template{Name: name, Body: body}}
}

func host(id, state string) event.Event {
	return event.Event{Source: "static", Kind: event.KindEntityUpsert, Entity: &event.Entity{
		Category: event.CategoryResource, Type: "nova.host", ID: id, Name: id, State: state}}
}

func alarmOn(id, name, hostID string) event.Event {
	return event.Event{Source: "nagios", Kind: event.KindEntityUpsert, Entity: &event.Entity{
		Category: event.CategoryAlarm, Type: "nagios", ID: id, Name: name, Severity: "CRITICAL",
		Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: hostID, Direction: event.Out}}}}
}

func TestNoFixpointIsAnError(t *testing.T) {
	// The deduced state makes the condition false, which removes the
	// deduced state, which makes it true again: an oscillation.
	l := &logger{t: t, e: New(Config{MaxSteps: 500}, nil)}
	l.must(host("h1", "available"))
	v, _ := l.e.Graph().Vertex(1)
	body := `
metadata: {version: 3, name: flip, type: standard}
entities:
  host: {type: nova.host, aggregated_state: ` + v.AggregatedState + `}
scenarios:
  - condition: host
    actions: [{set_state: {target: host, state: ERROR}}]
`
	_, err := l.apply(put("flip", body))
	if !errors.Is(err, ErrNoFixpoint) {
		t.Fatalf("err = %v, want ErrNoFixpoint (aggregated state %q)", err, v.AggregatedState)
	}
}

func TestInvalidTemplateKeepsState(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	good := `
metadata: {version: 3, name: t, type: standard}
entities:
  alarm: {category: ALARM, name: NIC_DOWN}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions: [{mark_down: {target: host}}]
`
	l.must(put("t", good))
	l.must(host("h1", "available"))
	l.must(alarmOn("a1", "NIC_DOWN", "h1"))
	_, err := l.apply(put("t", "metadata: {version: 3, name: t, type: standard}\nentities: {}\nscenarios: []\n"))
	if !errors.Is(err, ErrInvalidTemplate) {
		t.Fatalf("err = %v, want ErrInvalidTemplate", err)
	}
	id, _ := l.e.Graph().Lookup(graph.CategoryResource, "nova.host", "h1")
	if v, _ := l.e.Graph().Vertex(id); !v.IsMarkedDown {
		t.Error("the refused template replaced the good one")
	}
	if got := l.e.Templates(); len(got) != 1 || got[0].Body != good {
		t.Errorf("templates = %+v", got)
	}
}

func TestExecuteMistralIsRequestedOnDoOnly(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(put("m", `
metadata: {version: 3, name: m, type: standard}
entities:
  alarm: {category: ALARM, name: NIC_DOWN}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions:
      - execute_mistral:
          workflow: evacuate
          input:
            host: get_attr(host, name)
            force: "true"
`))
	l.must(host("h1", "available"))
	r := l.must(alarmOn("a1", "NIC_DOWN", "h1"))
	if len(r.External) != 1 {
		t.Fatalf("external actions = %+v, want one", r.External)
	}
	x := r.External[0]
	if x.Workflow != "evacuate" || x.Input["host"] != "h1" || x.Input["force"] != "true" || x.ID != "3-0" {
		t.Errorf("external action = %+v", x)
	}
	// Updating the alarm keeps the match: no new request.
	if r := l.must(alarmOn("a1", "NIC_DOWN", "h1")); len(r.External) != 0 {
		t.Errorf("re-report requested again: %+v", r.External)
	}
	if r := l.must(event.Event{Source: "nagios", Kind: event.KindEntityDelete, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: "a1"}}); len(r.External) != 0 {
		t.Errorf("UNDO requested an external action: %+v", r.External)
	}
}

func TestIncludesSurviveDefinitionDeleteAndRestore(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	// The event names the file; includes name the metadata name.
	l.must(put("definitions.yaml", `
metadata: {version: 2, type: definition, name: defs}
definitions:
  entities:
    - entity: {category: ALARM, name: NIC_DOWN, template_id: alarm}
    - entity: {category: RESOURCE, type: nova.host, template_id: host}
  relationships:
    - relationship: {source: alarm, target: host, relationship_type: on, template_id: alarm_on_host}
`))
	l.must(put("uses", `
metadata: {version: 2, type: standard, name: uses}
includes: [{name: defs}]
scenarios:
  - scenario:
      condition: alarm_on_host
      actions:
        - action: {action_type: set_state, action_target: {target: host}, properties: {state: ERROR}}
`))
	l.must(event.Event{Source: "api", Kind: event.KindTemplateDelete, Template: &event.Template{Name: "definitions.yaml"}})
	l.must(host("h1", "available"))
	l.must(alarmOn("a1", "NIC_DOWN", "h1"))
	id, _ := l.e.Graph().Lookup(graph.CategoryResource, "nova.host", "h1")
	if v, _ := l.e.Graph().Vertex(id); v.DeducedState != "ERROR" {
		t.Fatalf("deduced state = %q", v.DeducedState)
	}
	r, err := Restore(l.e.State(), Config{}, nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if string(dump(t, r)) != string(dump(t, l.e)) {
		t.Error("restored engine dumps differently")
	}
}

func TestReputSameTemplateChangesNothing(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	body := `
metadata: {version: 3, name: t, type: standard}
entities:
  alarm: {category: ALARM, name: NIC_DOWN}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions: [{raise_alarm: {target: host, alarm_name: nic, severity: WARNING}}]
`
	l.must(host("h1", "available"))
	l.must(alarmOn("a1", "NIC_DOWN", "h1"))
	if r := l.must(put("t", body)); len(r.Changes) == 0 {
		t.Fatal("first put raised nothing")
	}
	if r := l.must(put("t", body)); len(r.Changes) != 0 {
		t.Errorf("second put of the same body changed the graph: %d changes", len(r.Changes))
	}
	// A changed body re-runs the template: the alarm's severity follows it.
	l.must(put("t", strings.Replace(body, "WARNING", "CRITICAL", 1)))
	id, _ := l.e.Graph().Lookup(graph.CategoryResource, "nova.host", "h1")
	aid, ok := l.e.Graph().Lookup(graph.CategoryAlarm, graph.DeducedType, graph.DeducedExternalID(id, "nic"))
	if !ok {
		t.Fatal("no deduced alarm")
	}
	if v, _ := l.e.Graph().Vertex(aid); v.Severity != "CRITICAL" || v.IsDeleted {
		t.Errorf("deduced alarm = %s deleted=%v", v.Severity, v.IsDeleted)
	}
}

// TestChangesApplied checks the change counter against the changes each
// record returned, deduced ones included, and that a restored engine
// counts from 0 (the counter is not state).
func TestChangesApplied(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	var sum int64
	add := func(r Result) { sum += int64(len(r.Changes)) }
	add(l.must(put("host_nic", historytest.Template)))
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 4, Rounds: 4}
	for _, ev := range s.Events()[1:] {
		add(l.must(ev))
	}
	if got := l.e.ChangesApplied(); got != sum || sum <= int64(len(s.Events())) {
		t.Fatalf("ChangesApplied = %d; the results held %d changes over %d events (deduced alarms must add to them)", got, sum, len(s.Events()))
	}
	r, err := Restore(l.e.State(), Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.ChangesApplied() != 0 {
		t.Fatalf("restored engine counts %d changes; want 0", r.ChangesApplied())
	}
}

// TestTombstoneMatchesNothing: a delete of a host the graph does not know
// leaves a deleted vertex, which no template matches, nor does an upsert of
// it observed before the delete; a newer one does.
func TestTombstoneMatchesNothing(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(put("down", `
metadata: {version: 3, name: down, type: standard}
entities:
  host: {type: nova.host}
scenarios:
  - condition: host
    actions: [{mark_down: {target: host}}]
`))
	deleted := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	r := l.must(event.Event{Source: "static", Kind: event.KindEntityDelete, ObservedAt: deleted,
		Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: "h1"}})
	if len(r.Changes) != 1 || r.Changes[0].Op != graph.VertexAdded || !r.Changes[0].Vertex.IsDeleted {
		t.Fatalf("delete of an unknown host: changes %+v, want the tombstone's VertexAdded only", r.Changes)
	}
	stale := host("h1", "available")
	stale.ObservedAt = deleted.Add(-time.Second)
	if r := l.must(stale); len(r.Changes) != 0 {
		t.Fatalf("upsert older than the delete: changes %+v", r.Changes)
	}
	id, _ := l.e.Graph().Lookup(graph.CategoryResource, "nova.host", "h1")
	if v, _ := l.e.Graph().Vertex(id); !v.IsDeleted || v.IsMarkedDown {
		t.Fatalf("after the stale upsert: deleted=%v marked down=%v, want deleted, not marked down", v.IsDeleted, v.IsMarkedDown)
	}
	newer := host("h1", "available")
	newer.ObservedAt = deleted.Add(time.Second)
	l.must(newer)
	if v, _ := l.e.Graph().Vertex(id); v.IsDeleted || !v.IsMarkedDown {
		t.Fatalf("after a newer upsert: deleted=%v marked down=%v, want live and marked down", v.IsDeleted, v.IsMarkedDown)
	}
}
