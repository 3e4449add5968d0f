package emit

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)

func upsert(seq int64, e event.Entity) event.Record {
	return event.Record{Seq: seq, RecordedAt: t0.Add(time.Duration(seq) * time.Second), Event: event.Event{
		V: 1, EventID: fmt.Sprintf("e%d", seq), Source: "test", Kind: event.KindEntityUpsert, ObservedAt: t0.Add(time.Duration(seq) * time.Second), Entity: &e,
	}}
}

func subRec(seq int64, id, spec string) event.Record {
	return event.Record{Seq: seq, Event: event.Event{Kind: event.KindSubscriptionPut, Subscription: &event.Subscription{ID: id, Spec: json.RawMessage(spec)}}}
}

type step struct {
	rec     event.Record
	changes []graph.Change
}

// scenario builds a host with an instance, a NIC alarm on the host, a
// deduced alarm on the instance caused by it, a severity change and a
// clear, returning each record with its changes.
func scenario(t *testing.T, g *graph.Graph) []step {
	t.Helper()
	var steps []step
	apply := func(rec event.Record) {
		ch, err := g.Apply(rec)
		if err != nil {
			t.Fatalf("apply seq %d: %v", rec.Seq, err)
		}
		steps = append(steps, step{rec, ch})
	}
	apply(upsert(1, event.Entity{Category: "RESOURCE", Type: "nova.host", ID: "h1", Name: "host-1", State: "available"}))
	apply(upsert(2, event.Entity{Category: "RESOURCE", Type: "nova.instance", ID: "i1", Name: "vm-1", State: "ACTIVE", ProjectID: "p1",
		Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: "h1", Direction: event.In}}}))
	apply(upsert(3, event.Entity{Category: "ALARM", Type: "prometheus", ID: "a1", Name: "nic_down", Severity: "critical",
		Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out}}}))
	// Record 4: the evaluator's deduction (a tick stands in for its trigger).
	tick := event.Record{Seq: 4, RecordedAt: t0.Add(4 * time.Second), Event: event.Event{V: 1, EventID: "e4", Source: "test", Kind: event.KindTick, ObservedAt: t0.Add(4 * time.Second)}}
	ch, err := g.Apply(tick)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := g.Lookup("ALARM", "prometheus", "a1")
	inst, _ := g.Lookup("RESOURCE", "nova.instance", "i1")
	dedID, c2 := g.RaiseDeducedAlarm(graph.DeducedAlarm{Target: inst, Name: "instance_down", Severity: "warning"})
	ch = append(ch, c2...)
	ch = append(ch, g.SetCausal(host, dedID, true)...)
	steps = append(steps, step{tick, ch})
	apply(upsert(5, event.Entity{Category: "ALARM", Type: "prometheus", ID: "a1", Name: "nic_down", Severity: "warning",
		Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out}}}))
	del := upsert(6, event.Entity{Category: "ALARM", Type: "prometheus", ID: "a1"})
	del.Event.Kind = event.KindEntityDelete
	apply(del)
	return steps
}

func TestTransitions(t *testing.T) {
	g := graph.New(nil)
	steps := scenario(t, g)
	type tr struct {
		Seq        int64
		Kind, Name string
	}
	var got []tr
	for _, s := range steps {
		for _, x := range Transitions(s.changes) {
			got = append(got, tr{s.rec.Seq, x.Kind, x.Alarm.Name})
		}
	}
	want := []tr{
		{3, subscription.Raised, "nic_down"},
		{4, subscription.Raised, "instance_down"},
		{5, subscription.SeverityChanged, "nic_down"},
		{6, subscription.Cleared, "nic_down"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("transitions (-got +want):\n%s", diff)
	}
}

func TestTransitionsCoalesce(t *testing.T) {
	a := graph.Vertex{ID: 7, Category: "ALARM", Name: "x", Severity: "warning"}
	b := a
	b.Severity = "critical"
	c := b
	c.IsDeleted = true
	cases := []struct {
		name    string
		changes []graph.Change
		want    []string
	}{
		{"raised then re-severitied is one raise", []graph.Change{{Op: graph.VertexAdded, Vertex: &a}, {Op: graph.VertexUpdated, Prev: &a, Vertex: &b}}, []string{subscription.Raised}},
		{"raised then cleared is nothing", []graph.Change{{Op: graph.VertexAdded, Vertex: &a}, {Op: graph.VertexUpdated, Prev: &a, Vertex: &c}}, nil},
		{"revived", []graph.Change{{Op: graph.VertexUpdated, Prev: &c, Vertex: &b}}, []string{subscription.Raised}},
		{"same severity is nothing", []graph.Change{{Op: graph.VertexUpdated, Prev: &a, Vertex: &a}}, nil},
		{"resources are ignored", []graph.Change{{Op: graph.VertexAdded, Vertex: &graph.Vertex{ID: 1, Category: "RESOURCE"}}}, nil},
		{"placeholder is not raised", []graph.Change{{Op: graph.VertexAdded, Vertex: &graph.Vertex{ID: 2, Category: "ALARM", IsPlaceholder: true}}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, x := range Transitions(c.changes) {
				got = append(got, x.Kind)
			}
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Fatalf("(-got +want):\n%s", diff)
			}
		})
	}
}

func registry(t *testing.T) *subscription.Registry {
	t.Helper()
	r := subscription.NewRegistry()
	for i, s := range []struct{ id, spec string }{
		{"all", `{"url":"http://all/"}`},
		{"crit", `{"url":"http://crit/","filter":{"severities":["critical"],"transitions":["raised"]}}`},
		{"am", `{"url":"http://am/","format":"alertmanager","filter":{"alarm_types":["vitrage"]}}`},
	} {
		if _, _, err := r.Apply(subRec(int64(100+i), s.id, s.spec)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestRows(t *testing.T) {
	build := func() []outbox.Row {
		// Each record's rows are built against the graph right after it.
		var rows []outbox.Row
		reg := registry(t)
		for n := 1; n <= 6; n++ {
			g := graph.New(nil)
			steps := scenarioUpTo(t, g, n)
			s := steps[n-1]
			r, err := Rows(s.rec, s.changes, g, reg)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, r...)
		}
		return rows
	}
	rows := build()
	type key struct {
		Sub  string
		Seq  int64
		Ord  int
		Type string
	}
	var got []key
	for _, r := range rows {
		var doc struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(r.Payload, &doc); err != nil {
			t.Fatal(err)
		}
		typ := doc.Type
		if typ == "" {
			typ = "am:" + doc.Status
		}
		got = append(got, key{r.SubscriptionID, r.Seq, r.Ord, typ})
	}
	want := []key{
		{"all", 3, 0, "alarm.raised"},
		{"crit", 3, 0, "alarm.raised"},
		{"all", 4, 0, "alarm.raised"},
		{"am", 4, 0, "am:firing"},
		{"all", 5, 0, "alarm.severity_changed"},
		{"all", 6, 0, "alarm.cleared"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("rows (-got +want):\n%s", diff)
	}
	// Webhook ids are unique and derived from the log: the same input gives
	// the same rows, byte for byte.
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.WebhookID] {
			t.Fatalf("duplicate webhook id %s", r.WebhookID)
		}
		seen[r.WebhookID] = true
	}
	if diff := cmp.Diff(build(), rows); diff != "" {
		t.Fatalf("rows differ between two runs (-got +want):\n%s", diff)
	}
}

// The deduced alarm's payload names its resource and its root cause; the
// cleared host alarm's payload still names its resource.
func TestPayloadCausalChain(t *testing.T) {
	reg := subscription.NewRegistry()
	if _, _, err := reg.Apply(subRec(1, "all", `{"url":"http://all/"}`)); err != nil {
		t.Fatal(err)
	}
	g := graph.New(nil)
	s4 := scenarioUpTo(t, g, 4)[3]
	rows, err := Rows(s4.rec, s4.changes, g, reg)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	var doc Notification
	if err := json.Unmarshal(rows[0].Payload, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Alarm.Name != "instance_down" || doc.Resource == nil || doc.Resource.ID != "i1" {
		t.Fatalf("alarm %+v resource %+v", doc.Alarm, doc.Resource)
	}
	if len(doc.RootCauses) != 1 || doc.RootCauses[0].Name != "nic_down" {
		t.Fatalf("root causes %+v", doc.RootCauses)
	}
	if diff := cmp.Diff(doc.CausalChain, []Link{{From: "ALARM/prometheus/a1", To: "ALARM/vitrage/" + doc.Alarm.ID}}); diff != "" {
		t.Fatalf("chain (-got +want):\n%s", diff)
	}
	if doc.ID != rows[0].WebhookID || doc.Seq != 4 || doc.SubscriptionID != "all" {
		t.Fatalf("envelope %+v", doc)
	}

	g6 := graph.New(nil)
	s6 := scenarioUpTo(t, g6, 6)[5]
	rows, err = Rows(s6.rec, s6.changes, g6, reg)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	doc = Notification{}
	if err := json.Unmarshal(rows[0].Payload, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Type != "alarm.cleared" || !doc.Alarm.IsDeleted || doc.Resource == nil || doc.Resource.ID != "h1" {
		t.Fatalf("cleared payload %+v", doc)
	}
}

func TestAlertmanagerFormat(t *testing.T) {
	reg := subscription.NewRegistry()
	if _, _, err := reg.Apply(subRec(1, "am", `{"url":"http://am/","format":"alertmanager"}`)); err != nil {
		t.Fatal(err)
	}
	g := graph.New(nil)
	s := scenarioUpTo(t, g, 6)[5]
	rows, err := Rows(s.rec, s.changes, g, reg)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	var m AMMessage
	if err := json.Unmarshal(rows[0].Payload, &m); err != nil {
		t.Fatal(err)
	}
	if m.Version != "4" || m.Status != "resolved" || m.Receiver != "am" || len(m.Alerts) != 1 {
		t.Fatalf("message %+v", m)
	}
	a := m.Alerts[0]
	if a.Labels["alertname"] != "nic_down" || a.Labels["resource_id"] != "h1" || !a.EndsAt.Equal(s.rec.RecordedAt) || a.Annotations["webhook_id"] != rows[0].WebhookID {
		t.Fatalf("alert %+v", a)
	}
}

// scenarioUpTo applies the first n steps of scenario to g.
func scenarioUpTo(t *testing.T, g *graph.Graph, n int) []step {
	t.Helper()
	var steps []step
	full := scenario(t, graph.New(nil))
	for i, s := range full[:n] {
		ch, err := g.Apply(s.rec)
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			host, _ := g.Lookup("ALARM", "prometheus", "a1")
			inst, _ := g.Lookup("RESOURCE", "nova.instance", "i1")
			ded, c2 := g.RaiseDeducedAlarm(graph.DeducedAlarm{Target: inst, Name: "instance_down", Severity: "warning"})
			ch = append(ch, c2...)
			ch = append(ch, g.SetCausal(host, ded, true)...)
		}
		steps = append(steps, step{s.rec, ch})
	}
	return steps
}
