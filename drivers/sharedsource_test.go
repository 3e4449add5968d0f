package drivers

import (
	"testing"
	"time"

	"github.com/causeway/causeway/drivers/pull"
	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/graphtest"
	"github.com/causeway/causeway/internal/event"
)

// TestPullAndWebhookShareASource applies, on the graph, a pull published
// as the Runner publishes it (the begin before the read) and alerts that a
// webhook listener reports under the same source: an alert the webhook
// reported before the pull began and the pull no longer lists (its resolve
// was lost) is deleted by the pull's end, while one the webhook reported
// after the begin (it fired after the read started) survives it.
func TestPullAndWebhookShareASource(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	log := graphtest.New(t0)
	g := log.G
	apply := func(evs ...event.Event) { t.Helper(); log.Apply(t, evs...) }
	alert := func(id string) event.Entity {
		return event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: id, Name: "NodeDown", Severity: "critical",
			Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out}}}
	}
	webhook := func(id string) event.Event {
		e := alert(id)
		return event.Event{V: event.Version, EventID: "wh-" + id, Source: "alertmanager", Kind: event.KindEntityUpsert, ObservedAt: t0, Entity: &e}
	}
	deleted := func(id string) bool {
		t.Helper()
		v, ok := g.Lookup(graph.CategoryAlarm, "prometheus", id)
		if !ok {
			t.Fatalf("alert %s not in the graph", id)
		}
		x, _ := g.Vertex(v)
		return x.IsDeleted
	}

	slot := t0.Add(time.Minute)
	apply(webhook("lost-resolve"), webhook("listed"))
	apply(pull.Begin("alertmanager", slot, slot))
	apply(webhook("fired-after-read"))
	body, err := pull.Body("alertmanager", slot, slot, []event.Entity{alert("listed")})
	if err != nil {
		t.Fatal(err)
	}
	apply(body...)
	if !deleted("lost-resolve") {
		t.Error("an alert reported before the pull began and not listed by it survived the pull")
	}
	if deleted("listed") {
		t.Error("an alert the pull listed was deleted")
	}
	if deleted("fired-after-read") {
		t.Error("an alert reported after the pull began was deleted by its end")
	}
}
