package emit

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/subscription"
)

// With the real evaluator and a Vitrage template: a host NIC alarm raises
// deduced alarms on the host's instances, each notified with the NIC alarm
// as its root cause; clearing the NIC alarm clears them all.
func TestRowsWithEvaluator(t *testing.T) {
	body, err := os.ReadFile("testdata/host_nic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng := evaluator.New(evaluator.Config{}, nil)
	reg := subscription.NewRegistry()
	seq := int64(0)
	type note struct {
		Seq       int64
		Type      string
		Alarm     string
		Resource  string
		RootCause string
	}
	var got []note
	apply := func(ev event.Event) {
		t.Helper()
		seq++
		ev.V, ev.EventID, ev.ObservedAt = 1, "e"+string(rune('a'+seq)), t0.Add(time.Duration(seq)*time.Second)
		if ev.Source == "" {
			ev.Source = "test"
		}
		rec := event.Record{Seq: seq, RecordedAt: ev.ObservedAt, Event: ev}
		res, err := eng.ApplyResult(rec)
		if err != nil {
			t.Fatalf("apply seq %d: %v", seq, err)
		}
		if _, _, err := reg.Apply(rec); err != nil {
			t.Fatal(err)
		}
		rows, err := Rows(rec, res.Changes, eng.Graph(), reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			var doc Notification
			if err := json.Unmarshal(r.Payload, &doc); err != nil {
				t.Fatal(err)
			}
			n := note{Seq: doc.Seq, Type: doc.Type, Alarm: doc.Alarm.Name}
			if doc.Resource != nil {
				n.Resource = doc.Resource.ID
			}
			for _, rc := range doc.RootCauses {
				n.RootCause += rc.Name
			}
			got = append(got, n)
		}
	}
	apply(event.Event{Kind: event.KindSubscriptionPut, Source: "cli", Subscription: &event.Subscription{ID: "ops", Spec: json.RawMessage(`{"url":"http://ops/"}`)}})
	apply(event.Event{Kind: event.KindTemplatePut, Source: "cli", Template: &event.Template{Name: "host_nic", Body: string(body)}})
	apply(event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: "RESOURCE", Type: "nova.host", ID: "h1", Name: "host-1", State: "available"}})
	for _, id := range []string{"i1", "i2"} {
		apply(event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: "RESOURCE", Type: "nova.instance", ID: id, Name: id, State: "ACTIVE",
			Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: "h1", Direction: event.In}}}})
	}
	nic := event.Entity{Category: "ALARM", Type: "prometheus", ID: "nic-h1", Name: "NIC_DOWN", Severity: "critical",
		Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out}}}
	apply(event.Event{Kind: event.KindEntityUpsert, Entity: &nic})
	apply(event.Event{Kind: event.KindEntityDelete, Entity: &event.Entity{Category: "ALARM", Type: "prometheus", ID: "nic-h1"}})

	want := []note{
		{6, "alarm.raised", "NIC_DOWN", "h1", ""},
		{6, "alarm.raised", "instance_nic_degraded", "i1", "NIC_DOWN"},
		{6, "alarm.raised", "instance_nic_degraded", "i2", "NIC_DOWN"},
		{7, "alarm.cleared", "NIC_DOWN", "h1", ""},
		{7, "alarm.cleared", "instance_nic_degraded", "i1", "NIC_DOWN"},
		{7, "alarm.cleared", "instance_nic_degraded", "i2", "NIC_DOWN"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("notifications (-got +want):\n%s", diff)
	}
}
