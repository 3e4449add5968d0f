package evaluator

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

// The templates of Vitrage's documentation, run as the pages describe them
// (graph/template/testdata/vitrage_docs names the page of each).

func docTemplate(t *testing.T, file string) event.Event {
	t.Helper()
	body, err := os.ReadFile("../template/testdata/vitrage_docs/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return put(strings.TrimSuffix(file, ".yaml"), string(body))
}

func docResource(typ, id string, contains ...string) event.Event {
	ev := event.Event{Source: "static", Kind: event.KindEntityUpsert, Entity: &event.Entity{
		Category: event.CategoryResource, Type: typ, ID: id, Name: id, State: "available"}}
	for _, c := range contains {
		typ, id, _ := strings.Cut(c, "/")
		ev.Entity.Relations = append(ev.Entity.Relations,
			event.Relation{Relationship: "contains", Type: typ, ID: id, Direction: event.Out})
	}
	return ev
}

func docAlarm(typ, id, name, severity, onType, onID string) event.Event {
	return event.Event{Source: typ, Kind: event.KindEntityUpsert, Entity: &event.Entity{
		Category: event.CategoryAlarm, Type: typ, ID: id, Name: name, Severity: severity,
		Relations: []event.Relation{{Relationship: "on", Type: onType, ID: onID, Direction: event.Out}}}}
}

func docDelete(category, typ, id string) event.Event {
	return event.Event{Source: typ, Kind: event.KindEntityDelete, Entity: &event.Entity{Category: category, Type: typ, ID: id}}
}

// deduced lists the raised deduced alarms as "name severity on <target>"
// (the severity normalised), each followed by the alarms with a live
// causes link to it.
func deduced(g *graph.Graph) []string {
	var out []string
	for _, v := range g.Alarms("", true, false) {
		if v.Type != graph.DeducedType {
			continue
		}
		s := v.Name + " " + v.AggregatedState
		for _, e := range g.Out(v.ID) {
			if !e.IsDeleted && e.Relationship == "on" {
				w, _ := g.Vertex(e.To)
				s += " on " + w.ExternalID
			}
		}
		var causes []string
		for _, e := range g.In(v.ID) {
			if !e.IsDeleted && e.Relationship == "causes" {
				w, _ := g.Vertex(e.From)
				causes = append(causes, w.ExternalID)
			}
		}
		slices.Sort(causes)
		if len(causes) > 0 {
			s += fmt.Sprintf(" caused by %v", causes)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func docVertex(t *testing.T, g *graph.Graph, typ, id string) graph.Vertex {
	t.Helper()
	vid, ok := g.Lookup(graph.CategoryResource, typ, id)
	if !ok {
		t.Fatalf("no %s %s", typ, id)
	}
	v, _ := g.Vertex(vid)
	return v
}

func checkDeduced(t *testing.T, step string, g *graph.Graph, want ...string) {
	t.Helper()
	if got := deduced(g); !slices.Equal(got, want) {
		t.Errorf("%s: deduced alarms %q, want %q", step, got, want)
	}
}

// TestVitrageDocExample1: a high CPU load on a host raises a deduced alarm
// on each of its instances, caused by the host's alarm (causing_alarm); an
// alarm of severity CRITICAL on an instance makes it SUBOPTIMAL.
func TestVitrageDocExample1(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(docTemplate(t, "v3_example1_rca.yaml"))
	l.must(docResource("nova.host", "h1", "nova.instance/i1", "nova.instance/i2"))
	l.must(docResource("nova.instance", "i1"))
	l.must(docResource("nova.instance", "i2"))
	g := l.e.Graph()
	checkDeduced(t, "no alarm", g)

	l.must(docAlarm("zabbix", "cpu", "host high cpu load", "WARNING", "nova.host", "h1"))
	checkDeduced(t, "host alarm", g,
		"instance cpu performance problem WARNING on i1 caused by [cpu]",
		"instance cpu performance problem WARNING on i2 caused by [cpu]")

	l.must(docAlarm("nagios", "disk", "disk full", "CRITICAL", "nova.instance", "i2"))
	if v := docVertex(t, g, "nova.instance", "i2"); v.AggregatedState != "SUBOPTIMAL" {
		t.Errorf("i2 with a critical alarm: state %q, want SUBOPTIMAL", v.AggregatedState)
	}
	if v := docVertex(t, g, "nova.instance", "i1"); v.AggregatedState == "SUBOPTIMAL" {
		t.Error("i1 SUBOPTIMAL: only its deduced WARNING alarm is on it")
	}

	l.must(docDelete(graph.CategoryAlarm, "zabbix", "cpu"))
	checkDeduced(t, "host alarm gone", g)
}

// TestVitrageDocExample4: an alarm on the instance's host, or on the zone
// holding that host, raises one deduced alarm on the instance, which stays
// while either holds.
func TestVitrageDocExample4(t *testing.T) {
	for _, file := range []string{"v3_example4_or.yaml", "v2_example4_or.yaml"} {
		t.Run(file, func(t *testing.T) {
			hostAlarm := docAlarm("zabbix", "ha", "host connectivity problem", "WARNING", "nova.host", "h1")
			zoneAlarm := docAlarm("nagios", "za", "zone connectivity problem", "WARNING", "nova.zone", "z1")
			name := "instance_connectivity_problem CRITICAL on i1"
			if strings.HasPrefix(file, "v2") {
				// The version 2 example filters its alarms by type.
				hostAlarm = docAlarm("host_connectivity_problem", "ha", "x", "WARNING", "nova.host", "h1")
				zoneAlarm = docAlarm("zone_connectivity_problem", "za", "x", "WARNING", "nova.zone", "z1")
			}
			l := &logger{t: t, e: New(Config{}, nil)}
			l.must(docTemplate(t, file))
			l.must(docResource("nova.zone", "z1", "nova.host/h1"))
			l.must(docResource("nova.host", "h1", "nova.instance/i1"))
			l.must(docResource("nova.instance", "i1"))
			g := l.e.Graph()
			checkDeduced(t, "no alarm", g)
			l.must(zoneAlarm)
			checkDeduced(t, "zone alarm", g, name)
			l.must(hostAlarm)
			checkDeduced(t, "zone and host alarms", g, name)
			l.must(docDelete(graph.CategoryAlarm, zoneAlarm.Entity.Type, "za"))
			checkDeduced(t, "host alarm", g, name)
			l.must(docDelete(graph.CategoryAlarm, hostAlarm.Entity.Type, "ha"))
			checkDeduced(t, "no alarm again", g)
		})
	}
}

// TestVitrageDocNotUseCase1: an instance on a host with no alarm on the
// instance gets the deduced state; an alarm on it takes the state away.
func TestVitrageDocNotUseCase1(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(docTemplate(t, "v3_not_use_cases.yaml"))
	l.must(docResource("nova.host", "h1", "nova.instance/i1"))
	l.must(docResource("nova.instance", "i1"))
	l.must(docResource("nova.instance", "i9")) // on no host
	g := l.e.Graph()
	if v := docVertex(t, g, "nova.instance", "i1"); v.DeducedState != "available" {
		t.Errorf("i1 without alarm: deduced state %q, want available", v.DeducedState)
	}
	if v := docVertex(t, g, "nova.instance", "i9"); v.DeducedState != "" {
		t.Errorf("i9 on no host: deduced state %q", v.DeducedState)
	}
	l.must(docAlarm("nagios", "mem", "instance_mem_performance_problem", "WARNING", "nova.instance", "i1"))
	if v := docVertex(t, g, "nova.instance", "i1"); v.DeducedState != "" {
		t.Errorf("i1 with the alarm: deduced state %q, want none", v.DeducedState)
	}
	l.must(docDelete(graph.CategoryAlarm, "nagios", "mem"))
	if v := docVertex(t, g, "nova.instance", "i1"); v.DeducedState != "available" {
		t.Errorf("i1 after the alarm: deduced state %q, want available", v.DeducedState)
	}
}

// TestCausesOnlyBetweenAlarms pins a divergence README states: a version 3
// add_causal_relationship or causing_alarm that binds a resource loads, and
// makes no causes link; between alarms it does.
func TestCausesOnlyBetweenAlarms(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(put("c", `
metadata: {version: 3, name: c, type: standard}
entities:
  host: {type: nova.host}
  instance: {type: nova.instance}
  host_alarm: {category: ALARM, type: zabbix}
scenarios:
  - condition: host_alarm [on] host AND host [contains] instance
    actions:
      - add_causal_relationship: {source: host, target: instance}
      - add_causal_relationship: {source: host_alarm, target: instance}
      - raise_alarm: {target: instance, alarm_name: by_host, severity: WARNING, causing_alarm: host}
      - raise_alarm: {target: instance, alarm_name: by_alarm, severity: WARNING, causing_alarm: host_alarm}
`))
	l.must(docResource("nova.host", "h1", "nova.instance/i1"))
	l.must(docResource("nova.instance", "i1"))
	l.must(docAlarm("zabbix", "ha", "x", "WARNING", "nova.host", "h1"))
	g := l.e.Graph()
	checkDeduced(t, "alarm on host", g, "by_alarm WARNING on i1 caused by [ha]", "by_host WARNING on i1")
	var causes int
	for _, id := range g.VertexIDs() {
		for _, e := range g.Out(id) {
			if !e.IsDeleted && e.Relationship == "causes" {
				causes++
			}
		}
	}
	if causes != 1 {
		t.Errorf("%d causes links, want the one from ha to by_alarm", causes)
	}
}
