package evaluator

import (
	"bytes"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

const nicTemplate = `
metadata: {version: 3, name: nic, type: standard}
entities:
  nic_alarm: {category: ALARM, name: NIC_DOWN}
  host: {type: nova.host}
scenarios:
  - condition: nic_alarm [on] host
    actions:
      - raise_alarm: {target: host, alarm_name: host_nic, severity: WARNING, causing_alarm: nic_alarm}
      - set_state: {target: host, state: ERROR}
`

// timedLog makes records at the log times it is given.
type timedLog struct {
	recs []event.Record
}

func (l *timedLog) add(at time.Time, ev event.Event) event.Record {
	ev.V = event.Version
	ev.EventID = "p" + strconv.Itoa(len(l.recs)+1)
	if ev.ObservedAt.IsZero() {
		ev.ObservedAt = at
	}
	r := event.Record{Seq: int64(len(l.recs) + 1), RecordedAt: at, Event: ev}
	l.recs = append(l.recs, r)
	return r
}

func clearAlarm(id string) event.Event {
	return event.Event{Source: "nagios", Kind: event.KindEntityDelete, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: id}}
}

func tick() event.Event { return event.Event{Source: "clock", Kind: event.KindTick} }

// TestPurgedAlarmRaisedAgain: an alarm and the deduced alarm it caused,
// cleared more than graph.DeletedRetention ago, are purged; raised again,
// each is a new vertex, the template raises its deduced alarm and RCA
// links them, and a snapshot at any record then the rest is the replay.
func TestPurgedAlarmRaisedAgain(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	later := t0.Add(graph.DeletedRetention + time.Hour)
	var l timedLog
	l.add(t0, host("h1", "available"))
	l.add(t0.Add(time.Second), put("nic", nicTemplate))
	l.add(t0.Add(2*time.Second), alarmOn("nic", "NIC_DOWN", "h1"))
	l.add(t0.Add(3*time.Second), clearAlarm("nic"))
	l.add(later, tick())
	l.add(later.Add(time.Second), alarmOn("nic", "NIC_DOWN", "h1"))

	e := New(Config{}, nil)
	applyAll(t, e, l.recs[:4])
	g := e.Graph()
	oldNic, _ := g.Lookup(graph.CategoryAlarm, "nagios", "nic")
	if got, cleared := deducedRCA(t, g, "host_nic"); got != "roots=[nic] paths=[[nic host_nic]]" || !cleared {
		t.Fatalf("before the purge: %s (cleared %v)", got, cleared)
	}
	h1, _ := g.Lookup("", "nova.host", "h1")
	oldDeduced, _ := g.Lookup(graph.CategoryAlarm, graph.DeducedType, graph.DeducedExternalID(h1, "host_nic"))

	applyAll(t, e, l.recs[4:5])
	if _, ok := g.Vertex(oldNic); ok {
		t.Fatal("the alarm cleared 7 days ago is still there")
	}
	if _, ok := g.Vertex(oldDeduced); ok {
		t.Fatal("the deduced alarm cleared 7 days ago is still there")
	}
	if len(g.Alarms("", true, true)) != 0 {
		t.Fatalf("alarms after the purge: %v", g.Alarms("", true, true))
	}

	applyAll(t, e, l.recs[5:])
	nic, _ := g.Lookup(graph.CategoryAlarm, "nagios", "nic")
	if nic <= oldDeduced {
		t.Fatalf("the alarm raised again has id %d; want a new one past %d", nic, oldDeduced)
	}
	if got, cleared := deducedRCA(t, g, "host_nic"); got != "roots=[nic] paths=[[nic host_nic]]" || cleared {
		t.Fatalf("raised again: %s (cleared %v)", got, cleared)
	}
	if v, _ := g.Vertex(h1); v.DeducedState != "ERROR" {
		t.Fatalf("h1's deduced state %q; want ERROR", v.DeducedState)
	}
	want := dump(t, e)
	for cut := range len(l.recs) + 1 {
		c := New(Config{}, nil)
		applyAll(t, c, l.recs[:cut])
		r, err := Restore(c.State(), Config{}, nil)
		if err != nil {
			t.Fatalf("restore at %d: %v", cut, err)
		}
		applyAll(t, r, l.recs[cut:])
		if got := dump(t, r); !bytes.Equal(got, want) {
			t.Fatalf("restore at %d + rest differs from a full replay:\n%s", cut, firstDiff(want, got))
		}
	}
}

// TestPurgeForgetsMatchesOfPurgedVertices: in a state whose match still
// binds an alarm deleted long ago (one left half evaluated, or an older
// build's), the purge of the alarm undoes the match: its deduced alarm
// clears, and nothing of the engine names the purged vertex.
func TestPurgeForgetsMatchesOfPurgedVertices(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var l timedLog
	l.add(t0, host("h1", "available"))
	l.add(t0.Add(time.Second), put("nic", nicTemplate))
	l.add(t0.Add(2*time.Second), alarmOn("nic", "NIC_DOWN", "h1"))
	e := New(Config{}, nil)
	applyAll(t, e, l.recs)
	nic, _ := e.Graph().Lookup(graph.CategoryAlarm, "nagios", "nic")
	h1, _ := e.Graph().Lookup("", "nova.host", "h1")

	// Delete the alarm behind the evaluator's back.
	s := e.State()
	for i := range s.Graph.Vertices {
		v := &s.Graph.Vertices[i]
		for j := range v.Out {
			if es := &v.Out[j]; v.ID == nic || es.To == nic {
				es.IsDeleted, es.DeletedWithVertex, es.Owners, es.UpdateTimestamp = true, true, nil, t0
			}
		}
		if v.ID == nic {
			v.IsDeleted, v.UpdateTimestamp = true, t0
		}
	}
	r, err := Restore(s, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.State().Matches) != 1 {
		t.Fatalf("restored %d matches; want the one binding the deleted alarm", len(r.State().Matches))
	}
	res, err := r.ApplyResult(l.add(t0.Add(graph.DeletedRetention+time.Hour), tick()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Graph().Vertex(nic); ok {
		t.Fatal("the alarm deleted 7 days ago was not purged")
	}
	after := r.State()
	if len(after.Matches) != 0 || len(after.Effects) != 0 {
		t.Fatalf("after the purge: matches %+v, effects %+v; want none", after.Matches, after.Effects)
	}
	var cleared []graph.VertexID
	for _, ch := range res.Changes {
		if ch.Op == graph.VertexDeleted {
			cleared = append(cleared, ch.Vertex.ID)
		}
	}
	deduced, _ := r.Graph().Lookup(graph.CategoryAlarm, graph.DeducedType, graph.DeducedExternalID(h1, "host_nic"))
	if !slices.Equal(cleared, []graph.VertexID{deduced}) {
		t.Fatalf("the purge deleted %v; want the deduced alarm %d", cleared, deduced)
	}
	if v, _ := r.Graph().Vertex(h1); v.DeducedState != "" {
		t.Fatalf("h1 keeps the deduced state %q", v.DeducedState)
	}
	if _, err := Restore(after, Config{}, nil); err != nil {
		t.Fatalf("restore after the purge: %v", err)
	}
}
