package evaluator

import (
	"fmt"
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

// deducedRCA returns RCA of the only deduced alarm named name, as
// "roots=[..] paths=[..]" in external ids, and whether it is cleared.
func deducedRCA(t *testing.T, g *graph.Graph, name string) (string, bool) {
	t.Helper()
	var found *graph.Vertex
	for _, v := range g.Alarms("", true, true) {
		if v.Type == graph.DeducedType && v.Name == name {
			if found != nil {
				t.Fatalf("two deduced alarms %s", name)
			}
			found = &v
		}
	}
	if found == nil {
		t.Fatalf("no deduced alarm %s", name)
	}
	r, err := g.RCA(found.ID)
	if err != nil {
		t.Fatal(err)
	}
	ext := func(id graph.VertexID) string {
		v, _ := g.Vertex(id)
		if v.Type == graph.DeducedType {
			return v.Name
		}
		return v.ExternalID
	}
	var roots []string
	for _, id := range r.Roots {
		roots = append(roots, ext(id))
	}
	var paths [][]string
	for _, p := range r.Paths {
		var ps []string
		for _, id := range p {
			ps = append(ps, ext(id))
		}
		paths = append(paths, ps)
	}
	return fmt.Sprintf("roots=%v paths=%v", roots, paths), found.IsDeleted
}

// TestDeducedAlarmClearedByItsScenarioKeepsItsCause: a deduced alarm that
// clears because its scenario stops holding, while the alarm causing it
// stays raised, still has that cause in RCA (its link was deleted with it,
// not retracted while both were raised).
func TestDeducedAlarmClearedByItsScenarioKeepsItsCause(t *testing.T) {
	const tpl = `
metadata: {version: 3, name: unconfirmed_nic, type: standard}
entities:
  nic_alarm: {category: ALARM, name: NIC_DOWN}
  ping_alarm: {category: ALARM, name: PING_LOST}
  host: {type: nova.host}
scenarios:
  - condition: nic_alarm [on] host AND NOT ping_alarm [on] host
    actions:
      - raise_alarm: {target: host, alarm_name: nic_down_reachable, severity: WARNING, causing_alarm: nic_alarm}
`
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(host("h1", "available"))
	l.must(put("t", tpl))
	l.must(alarmOn("nic", "NIC_DOWN", "h1"))
	const want = "roots=[nic] paths=[[nic nic_down_reachable]]"
	if got, cleared := deducedRCA(t, l.e.Graph(), "nic_down_reachable"); got != want || cleared {
		t.Fatalf("raised: %s (cleared %v); want %s", got, cleared, want)
	}
	l.must(alarmOn("ping", "PING_LOST", "h1")) // the NOT stops holding
	if got, cleared := deducedRCA(t, l.e.Graph(), "nic_down_reachable"); got != want || !cleared {
		t.Errorf("cleared by its scenario: %s (cleared %v); want %s, cleared", got, cleared, want)
	}
	// The cause flaps while the alarm stays cleared: the cleared alarm was
	// still caused by the cause's earlier occurrence.
	l.must(event.Event{Source: "nagios", Kind: event.KindEntityDelete, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: "nic"}})
	l.must(alarmOn("nic", "NIC_DOWN", "h1"))
	if got, cleared := deducedRCA(t, l.e.Graph(), "nic_down_reachable"); got != want || !cleared {
		t.Errorf("after its cause flapped: %s (cleared %v); want %s, cleared", got, cleared, want)
	}
}

// TestReraisedAlarmHasOnlyItsNewCause: an alarm cleared when its cause
// cleared, then raised again by another cause, is caused by the new one
// only; its first cause belongs to its first occurrence.
func TestReraisedAlarmHasOnlyItsNewCause(t *testing.T) {
	const tpl = `
metadata: {version: 3, name: uplink, type: standard}
entities:
  switch_alarm: {category: ALARM, name: UPLINK}
  switch: {type: switch}
  host: {type: nova.host}
scenarios:
  - condition: switch_alarm [on] switch AND switch [attached] host
    actions:
      - raise_alarm: {target: host, alarm_name: host_net, severity: CRITICAL, causing_alarm: switch_alarm}
`
	sw := func(id string) event.Event {
		return event.Event{Source: "static", Kind: event.KindEntityUpsert, Entity: &event.Entity{
			Category: event.CategoryResource, Type: "switch", ID: id, Name: id, State: "ok",
			Relations: []event.Relation{{Relationship: "attached", Type: "nova.host", ID: "h1", Direction: event.Out}}}}
	}
	uplink := func(id, on string) event.Event {
		return event.Event{Source: "nagios", Kind: event.KindEntityUpsert, Entity: &event.Entity{
			Category: event.CategoryAlarm, Type: "nagios", ID: id, Name: "UPLINK", Severity: "CRITICAL",
			Relations: []event.Relation{{Relationship: "on", Type: "switch", ID: on, Direction: event.Out}}}}
	}
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(host("h1", "available"))
	l.must(sw("sw1"))
	l.must(sw("sw2"))
	l.must(put("t", tpl))
	l.must(uplink("a1", "sw1"))
	l.must(event.Event{Source: "nagios", Kind: event.KindEntityDelete, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: "a1"}})
	if got, cleared := deducedRCA(t, l.e.Graph(), "host_net"); got != "roots=[a1] paths=[[a1 host_net]]" || !cleared {
		t.Fatalf("cleared with its cause: %s (cleared %v)", got, cleared)
	}
	l.must(uplink("a2", "sw2"))
	if got, cleared := deducedRCA(t, l.e.Graph(), "host_net"); got != "roots=[a2] paths=[[a2 host_net]]" || cleared {
		t.Errorf("raised again by a2: %s (cleared %v); want a2 its only cause", got, cleared)
	}
}

// TestCausesOfReraisedAlarmStay: a deduced alarm cleared and raised again
// within one record keeps the `causes` links that other templates' matches
// still support, to and from it: putting its template again, or a clause
// of its scenario giving way to another, must not end them while both
// alarms stay raised.
func TestCausesOfReraisedAlarmStay(t *testing.T) {
	hostNet := func(desc string) string {
		return `
metadata: {version: 3, name: host_net, type: standard, description: ` + desc + `}
entities:
  nic_critical: {category: ALARM, name: NIC_DOWN, severity: CRITICAL}
  nic_warning: {category: ALARM, name: NIC_DOWN, severity: WARNING}
  host: {type: nova.host}
scenarios:
  - condition: nic_critical [on] host OR nic_warning [on] host
    actions:
      - raise_alarm: {target: host, alarm_name: host_net, severity: CRITICAL}
`
	}
	const instNet = `
metadata: {version: 3, name: inst_net, type: standard}
entities:
  nic: {category: ALARM, name: NIC_DOWN}
  host_alarm: {category: ALARM, type: vitrage, name: host_net}
  host: {type: nova.host}
  instance: {type: nova.instance}
scenarios:
  - condition: host_alarm [on] host AND host [contains] instance
    actions:
      - raise_alarm: {target: instance, alarm_name: inst_net, severity: CRITICAL, causing_alarm: host_alarm}
  - condition: nic [on] host AND host_alarm [on] host
    actions:
      - add_causal_relationship: {source: nic, target: host_alarm}
`
	vm := event.Event{Source: "static", Kind: event.KindEntityUpsert, Entity: &event.Entity{
		Category: event.CategoryResource, Type: "nova.instance", ID: "vm1", Name: "vm1", State: "ACTIVE",
		Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: "h1", Direction: event.In}}}}
	nic := func(severity string) event.Event {
		ev := alarmOn("nic", "NIC_DOWN", "h1")
		ev.Entity.Severity = severity
		return ev
	}
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(host("h1", "available"))
	l.must(vm)
	l.must(put("a", hostNet("one")))
	l.must(put("b", instNet))
	l.must(nic("CRITICAL"))
	g := l.e.Graph()
	alarm := func(name string) graph.VertexID {
		for _, v := range g.Alarms("", true, true) {
			if v.Type == graph.DeducedType && v.Name == name {
				return v.ID
			}
		}
		t.Fatalf("no deduced alarm %s", name)
		return 0
	}
	nicID, _ := g.Lookup(graph.CategoryAlarm, "nagios", "nic")
	hostNetID, instNetID := alarm("host_net"), alarm("inst_net")
	check := func(when string) {
		t.Helper()
		for _, l := range [][2]graph.VertexID{{nicID, hostNetID}, {hostNetID, instNetID}} {
			if ed, ok := g.EdgeOf(l[0], l[1], graph.RelCauses); !ok || ed.IsDeleted {
				t.Errorf("%s: causes %d -> %d = %+v (found %v), want live", when, l[0], l[1], ed, ok)
			}
		}
		for _, id := range []graph.VertexID{hostNetID, instNetID} {
			if v, _ := g.Vertex(id); v.IsDeleted {
				t.Errorf("%s: alarm %s cleared", when, v.Name)
			}
		}
	}
	check("raised")
	l.must(put("a", hostNet("two")))
	check("template put again")
	// The critical clause, first, stops holding before the warning
	// one starts: host_net is cleared and raised again in one wave.
	l.must(nic("WARNING"))
	check("clause changed")
}
