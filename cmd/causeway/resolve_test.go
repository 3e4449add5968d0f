package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

// TestResolveAlarmNumbers: a number is a vitrage id unless an alarm has it
// as its own id too: then it is ambiguous, and vitrage:N picks the vitrage
// id while --resource can pick the other.
func TestResolveAlarmNumbers(t *testing.T) {
	g := graph.New(nil)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	apply := func(seq int64, e *event.Entity) {
		t.Helper()
		rec := event.Record{Seq: seq, RecordedAt: at, Event: event.Event{V: event.Version, EventID: e.ID, Source: "zabbix",
			Kind: event.KindEntityUpsert, ObservedAt: at.Add(time.Duration(seq)), Entity: e}}
		if _, err := g.Apply(rec); err != nil {
			t.Fatal(err)
		}
	}
	on := func(host string) []event.Relation {
		return []event.Relation{{Relationship: "on", Type: "nova.host", ID: host, Direction: event.Out}}
	}
	apply(1, &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: "h1", Name: "h1", State: "available"})
	apply(2, &event.Entity{Category: event.CategoryAlarm, Type: "zabbix", ID: "1001", Name: "cpu", Severity: "WARNING", Relations: on("h1")})
	first, _ := g.Lookup(event.CategoryAlarm, "zabbix", "1001")
	num := func(id graph.VertexID) string { return strconv.FormatInt(int64(id), 10) }
	// An alarm whose own id is the first alarm's vitrage id.
	apply(3, &event.Entity{Category: event.CategoryAlarm, Type: "zabbix", ID: num(first), Name: "disk", Severity: "WARNING", Relations: on("h1")})
	second, _ := g.Lookup(event.CategoryAlarm, "zabbix", num(first))

	if id, err := resolveAlarm(g, "1001", "", "now"); err != nil || id != first {
		t.Errorf("by alarm id: %d, %v", id, err)
	}
	var ee *exitError
	if _, err := resolveAlarm(g, num(first), "", "now"); !errors.As(err, &ee) || ee.code != exitBadInput || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("a number that is both: %v; want it ambiguous", err)
	}
	if id, err := resolveAlarm(g, "vitrage:"+num(first), "", "now"); err != nil || id != first {
		t.Errorf("vitrage:%d: %d, %v", first, id, err)
	}
	if id, err := resolveAlarm(g, num(second), "", "now"); err != nil || id != second {
		t.Errorf("a vitrage id no alarm has as its id: %d, %v", id, err)
	}
	// --resource settles it: the other alarm is on h2.
	apply(4, &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: "h2", Name: "h2", State: "available"})
	apply(5, &event.Entity{Category: event.CategoryAlarm, Type: "zabbix", ID: num(first), Name: "disk", Severity: "WARNING", Relations: on("h2")})
	if id, err := resolveAlarm(g, num(first), "h2", "now"); err != nil || id != second {
		t.Errorf("%s on h2: %d, %v; want the alarm whose id it is (%d)", num(first), id, err, second)
	}
	if id, err := resolveAlarm(g, num(first), "h1", "now"); err != nil || id != first {
		t.Errorf("%s on h1: %d, %v; want the vitrage id's alarm (%d)", num(first), id, err, first)
	}
}
