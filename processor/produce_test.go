package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/emit"
	"github.com/causeway/causeway/snapshot"
)

// The leader's rows of a subscription fed critical alarms only follow an
// alarm it was told was raised critical to its drop and its resolve, and
// a node that regenerates them from a snapshot taken in between (the
// regeneration of a gap, a cold start) derives the same rows.
func TestProduceNodeFollowsToldAlarms(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	alarm := func(sev string) *event.Entity {
		return &event.Entity{Category: "ALARM", Type: "prometheus", ID: "a", Name: "disk_full", Severity: sev,
			Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out}}}
	}
	evs := []event.Event{
		{Kind: event.KindSubscriptionPut, Subscription: &event.Subscription{ID: "pager",
			Spec: []byte(`{"url":"http://p.example/","format":"alertmanager","filter":{"severities":["critical"]}}`)}},
		{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: "RESOURCE", Type: "nova.host", ID: "h1", Name: "host-1"}},
		{Kind: event.KindEntityUpsert, Entity: alarm("critical")},
		{Kind: event.KindEntityUpsert, Entity: alarm("warning")},
		{Kind: event.KindEntityDelete, Entity: alarm("")},
	}
	var recs []event.Record
	for i, ev := range evs {
		seq := int64(i) + 1
		ev.V, ev.EventID, ev.Source, ev.ObservedAt = event.Version, "e"+string(rune('a'+i)), "test", at.Add(time.Duration(seq)*time.Second)
		recs = append(recs, event.Record{Seq: seq, RecordedAt: ev.ObservedAt, Event: ev})
	}
	f := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}
	produce := func(m Machine, recs []event.Record) []string {
		t.Helper()
		var got []string
		for _, rec := range recs {
			out, err := ProduceNode(m, rec)
			if err != nil {
				t.Fatalf("seq %d: %v", rec.Seq, err)
			}
			for _, r := range out.Rows {
				var msg emit.AMMessage
				if err := json.Unmarshal(r.Payload, &msg); err != nil {
					t.Fatal(err)
				}
				got = append(got, r.SubscriptionID+" "+msg.Status+" "+msg.Alerts[0].Labels["severity"]+" "+r.WebhookID)
			}
		}
		return got
	}
	whole, _ := f.New()
	got := produce(whole, recs)
	want := []string{"pager firing critical", "pager firing warning", "pager resolved warning"}
	if len(got) != len(want) {
		t.Fatalf("rows %q, want %q (and their ids)", got, want)
	}
	for i := range want {
		if got[i][:len(want[i])] != want[i] {
			t.Fatalf("rows %q, want %q (and their ids)", got, want)
		}
	}

	half, _ := f.New()
	produce(half, recs[:3])
	c, err := CaptureEngine(half, 3, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var payload bytes.Buffer
	if err := c.Encode(&payload); err != nil {
		t.Fatal(err)
	}
	restored, err := f.Restore(context.Background(), c.Encoding, &payload)
	if err != nil {
		t.Fatal(err)
	}
	if again := produce(restored, recs[3:]); !slices.Equal(again, got[1:]) {
		t.Fatalf("rows regenerated from a snapshot %q, want %q", again, got[1:])
	}
}
