package emit

import (
	"encoding/json"
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/google/go-cmp/cmp"
)

// alarmRec upserts (or, with sev "", deletes) the prometheus alarm id on
// host h1.
func alarmRec(seq int64, id, sev string) event.Record {
	rec := upsert(seq, event.Entity{Category: "ALARM", Type: "prometheus", ID: id, Name: "alarm_" + id, Severity: sev,
		Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out}}})
	if sev == "" {
		rec.Event.Kind = event.KindEntityDelete
	}
	return rec
}

// told is what one subscription was sent: seq, transition, alarm and the
// alertmanager status.
type told struct {
	Seq              int64
	Kind, ID, Status string
}

// sent applies recs to one graph and one registry, in order, as the
// processor does, and returns what each subscription was sent.
func sent(t *testing.T, recs []event.Record) map[string][]told {
	t.Helper()
	g := graph.New(nil)
	reg := subscription.NewRegistry()
	got := map[string][]told{}
	for _, rec := range recs {
		changes, err := g.Apply(rec)
		if err != nil {
			t.Fatalf("apply seq %d: %v", rec.Seq, err)
		}
		if _, _, err := reg.Apply(rec); err != nil {
			t.Fatalf("registry seq %d: %v", rec.Seq, err)
		}
		rows, err := Rows(rec, changes, g, reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			var m AMMessage
			if err := json.Unmarshal(r.Payload, &m); err != nil || len(m.Alerts) != 1 {
				t.Fatalf("payload %s: %v", r.Payload, err)
			}
			a := m.Alerts[0]
			got[r.SubscriptionID] = append(got[r.SubscriptionID], told{r.Seq, a.Annotations["transition"], a.Labels["alarm_id"], a.Status})
		}
	}
	return got
}

// A subscription told of an alarm is told of its later transitions, even
// once its filter no longer matches the alarm: a pager fed only critical
// alarms gets the drop to warning and the resolve of an alarm it was told
// fired, and an alarm that escalated into the filter is resolved too. A
// transitions filter still holds.
func TestToldAlarmsFollowedPastTheFilter(t *testing.T) {
	recs := []event.Record{
		subRec(1, "crit", `{"url":"http://crit/","format":"alertmanager","filter":{"severities":["critical"]}}`),
		subRec(2, "raised-only", `{"url":"http://r/","format":"alertmanager","filter":{"severities":["critical"],"transitions":["raised"]}}`),
		upsert(3, event.Entity{Category: "RESOURCE", Type: "nova.host", ID: "h1", Name: "host-1", State: "available"}),
		alarmRec(4, "a", "critical"), // raised critical: told
		alarmRec(5, "b", "warning"),  // raised warning: not told
		alarmRec(6, "a", "warning"),  // a drops out of the filter
		alarmRec(7, "b", "critical"), // b escalates into it: told
		alarmRec(8, "a", ""),         // a clears
		alarmRec(9, "b", "warning"),
		alarmRec(10, "b", ""),
		alarmRec(11, "c", "warning"), // never told, never sent
		alarmRec(12, "c", ""),
		alarmRec(13, "a", "warning"), // a new occurrence of a, not told
		alarmRec(14, "a", ""),
	}
	got := sent(t, recs)
	want := map[string][]told{
		"crit": {
			{4, subscription.Raised, "a", "firing"},
			{6, subscription.SeverityChanged, "a", "firing"},
			{7, subscription.SeverityChanged, "b", "firing"},
			{8, subscription.Cleared, "a", "resolved"},
			{9, subscription.SeverityChanged, "b", "firing"},
			{10, subscription.Cleared, "b", "resolved"},
		},
		"raised-only": {
			{4, subscription.Raised, "a", "firing"},
		},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("sent (-got +want):\n%s", diff)
	}
}

// A subscription follows an alarm whose raise or severity change matched
// the rest of its filter (all but transitions) to its clear, even when
// its transitions filter left that raise or change unsent: one fed only
// the clears of critical alarms is sent the clear of an alarm raised
// critical that dropped to warning before clearing (it was not: never
// told of it, the subscription did not follow it), and of one that
// escalated to critical; never of one that was never critical.
func TestAlarmsMatchingWhileOpenFollowedToTheirClear(t *testing.T) {
	recs := []event.Record{
		subRec(1, "clears", `{"url":"http://c/","format":"alertmanager","filter":{"severities":["critical"],"transitions":["cleared"]}}`),
		subRec(2, "changes", `{"url":"http://s/","format":"alertmanager","filter":{"severities":["critical"],"transitions":["severity_changed","cleared"]}}`),
		upsert(3, event.Entity{Category: "RESOURCE", Type: "nova.host", ID: "h1", Name: "host-1", State: "available"}),
		alarmRec(4, "a", "critical"), // raised critical: followed, not sent
		alarmRec(5, "b", "warning"),  // raised warning: not followed
		alarmRec(6, "a", "warning"),  // a drops out of the filter
		alarmRec(7, "b", "critical"), // b escalates into it: followed
		alarmRec(8, "a", ""),         // a clears
		alarmRec(9, "b", "warning"),
		alarmRec(10, "b", ""),
		alarmRec(11, "c", "warning"), // never critical: never sent
		alarmRec(12, "c", ""),
	}
	got := sent(t, recs)
	want := map[string][]told{
		"clears": {
			{8, subscription.Cleared, "a", "resolved"},
			{10, subscription.Cleared, "b", "resolved"},
		},
		"changes": {
			{6, subscription.SeverityChanged, "a", "firing"},
			{7, subscription.SeverityChanged, "b", "firing"},
			{8, subscription.Cleared, "a", "resolved"},
			{9, subscription.SeverityChanged, "b", "firing"},
			{10, subscription.Cleared, "b", "resolved"},
		},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("sent (-got +want):\n%s", diff)
	}
}
