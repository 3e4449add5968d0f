package evaluator

import (
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

// TestEquivalenceChangeReconciles: putting or deleting an equivalence
// template undoes only the matches that stop holding and does only the new
// ones. Before, it undid every stored match and did them all again: every
// execute_mistral was requested again and every deduced alarm cleared and
// raised again within the record.
func TestEquivalenceChangeReconciles(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(put("r", `
metadata: {version: 3, name: r, type: standard}
entities:
  alarm: {category: ALARM, type: nagios, name: NIC_DOWN}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions:
      - raise_alarm: {target: host, alarm_name: hostnet, severity: CRITICAL, causing_alarm: alarm}
      - execute_mistral:
          workflow: evacuate
          input:
            host: get_attr(host, name)
`))
	l.must(host("h1", "available"))
	l.must(host("h2", "available"))
	if r := l.must(alarmOn("a1", "NIC_DOWN", "h1")); len(r.External) != 1 {
		t.Fatalf("first match: %d external actions; want 1", len(r.External))
	}
	zabbixOn := event.Event{Source: "zabbix", Kind: event.KindEntityUpsert, Entity: &event.Entity{
		Category: event.CategoryAlarm, Type: "zabbix", ID: "z1", Name: "nic down", Severity: "MAJOR",
		Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h2", Direction: event.Out}}}}
	l.must(zabbixOn)

	unrelated := put("unrelated", `
metadata: {version: 2, name: unrelated, type: equivalence}
equivalences:
  - equivalence:
      - entity: {category: ALARM, type: zabbix, rawtext: cpu high}
      - entity: {category: ALARM, type: nagios, name: CPU_HIGH}
`)
	if r := l.must(unrelated); len(r.Changes) != 0 || len(r.External) != 0 {
		t.Fatalf("unrelated equivalence: %d changes, %d external actions; want none", len(r.Changes), len(r.External))
	}

	// The zabbix alarm now means NIC_DOWN: h2 gains a match, h1 keeps its
	// own untouched.
	related := put("related", `
metadata: {version: 2, name: related, type: equivalence}
equivalences:
  - equivalence:
      - entity: {category: ALARM, type: nagios, name: NIC_DOWN}
      - entity: {category: ALARM, type: zabbix, name: nic down}
`)
	r := l.must(related)
	if len(r.External) != 1 || r.External[0].Input["host"] != "h2" || !bindsHost(l.e, r.External[0].Bindings, "h2") {
		t.Fatalf("related equivalence: external actions %+v; want one, for h2", r.External)
	}
	h1Alarm := deducedAlarm(t, l.e, "h1", "hostnet")
	for _, c := range r.Changes {
		if c.Vertex != nil && c.Vertex.ID == h1Alarm {
			t.Fatalf("related equivalence changed h1's deduced alarm: %v", c.Op)
		}
	}
	if _, on := deducedOn(l.e, "h2", "hostnet"); !on {
		t.Fatal("h2's deduced alarm is not raised")
	}

	// Deleting it stops only h2's match.
	r = l.must(event.Event{Source: "api", Kind: event.KindTemplateDelete, Template: &event.Template{Name: "related"}})
	if len(r.External) != 0 {
		t.Fatalf("delete: %d external actions; want none", len(r.External))
	}
	for _, c := range r.Changes {
		if c.Vertex != nil && c.Vertex.ID == h1Alarm {
			t.Fatalf("deleting the equivalence changed h1's deduced alarm: %v", c.Op)
		}
	}
	if _, on := deducedOn(l.e, "h2", "hostnet"); on {
		t.Fatal("h2's deduced alarm is still raised")
	}
	if _, on := deducedOn(l.e, "h1", "hostnet"); !on {
		t.Fatal("h1's deduced alarm is gone")
	}
}

func deducedOn(e *Engine, hostID, name string) (graph.VertexID, bool) {
	hid, ok := e.Graph().Lookup(graph.CategoryResource, "nova.host", hostID)
	if !ok {
		return 0, false
	}
	aid, ok := e.Graph().Lookup(graph.CategoryAlarm, graph.DeducedType, graph.DeducedExternalID(hid, name))
	if !ok {
		return 0, false
	}
	v, _ := e.Graph().Vertex(aid)
	return aid, !v.IsDeleted
}

func deducedAlarm(t *testing.T, e *Engine, hostID, name string) graph.VertexID {
	t.Helper()
	id, on := deducedOn(e, hostID, name)
	if !on {
		t.Fatalf("no deduced %s on %s", name, hostID)
	}
	return id
}

func bindsHost(e *Engine, bs []Binding, hostID string) bool {
	hid, _ := e.Graph().Lookup(graph.CategoryResource, "nova.host", hostID)
	for _, b := range bs {
		if b.Entity == "host" && b.Vertex == hid {
			return true
		}
	}
	return false
}
