// Package historytest builds a deterministic event log for tests of alarm
// history, historical RCA and replay: hosts with instances, a template
// that turns a host's NIC alarm into deduced alarms on its instances
// (caused by the NIC alarm), and NIC alarms that are raised, change
// severity and clear over time.
package historytest

import (
	_ "embed"
	"fmt"
	"time"

	"github.com/causeway/causeway/internal/event"
)

// Template is the Vitrage template of the scenario (name "host_nic").
//
//go:embed host_nic.yaml
var Template string

// Scenario sizes the log.
type Scenario struct {
	// Hosts and InstancesPerHost make the topology.
	Hosts, InstancesPerHost int
	// Rounds of alarms: in each round, every host with (round+host)%3 == 0
	// raises its NIC alarm (warning), the next round raises it to critical,
	// and the one after clears it.
	Rounds int
	// Tail is a number of host updates after the rounds that change no
	// alarm, so that the last cleared alarms are long cleared at the end.
	Tail int
	// Start is the ObservedAt of the first event; each event is a second
	// later than the one before.
	Start time.Time
}

// NICAlarmID is the external id of host h's NIC alarm.
func NICAlarmID(h int) string { return fmt.Sprintf("nic-h%d", h) }

// HostID is the external id of host h.
func HostID(h int) string { return fmt.Sprintf("h%d", h) }

// Events returns the scenario's events in log order, with unique ids.
func (s Scenario) Events() []event.Event {
	var out []event.Event
	add := func(ev event.Event) {
		ev.V = event.Version
		ev.EventID = fmt.Sprintf("historytest-%d", len(out)+1)
		ev.ObservedAt = s.Start.Add(time.Duration(len(out)) * time.Second).UTC()
		if ev.Source == "" {
			ev.Source = "historytest"
		}
		out = append(out, ev)
	}
	add(event.Event{Kind: event.KindTemplatePut, Source: "cli", Template: &event.Template{Name: "host_nic", Body: Template}})
	for h := 0; h < s.Hosts; h++ {
		add(event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: HostID(h), Name: fmt.Sprintf("host-%d", h), State: "available"}})
		for i := 0; i < s.InstancesPerHost; i++ {
			id := fmt.Sprintf("i%d-%d", h, i)
			add(event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: id, Name: id, State: "ACTIVE",
				Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: HostID(h), Direction: event.In}}}})
		}
	}
	nic := func(h int, sev string) *event.Entity {
		return &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: NICAlarmID(h), Name: "NIC_DOWN", Severity: sev,
			Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: HostID(h), Direction: event.Out}}}
	}
	for r := 0; r < s.Rounds; r++ {
		for h := 0; h < s.Hosts; h++ {
			switch (r + h) % 3 {
			case 0:
				add(event.Event{Kind: event.KindEntityUpsert, Entity: nic(h, "warning")})
			case 1:
				if r > 0 {
					add(event.Event{Kind: event.KindEntityUpsert, Entity: nic(h, "critical")})
				}
			case 2:
				if r > 1 {
					add(event.Event{Kind: event.KindEntityDelete, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: NICAlarmID(h)}})
				}
			}
		}
	}
	for i := 0; i < s.Tail && s.Hosts > 0; i++ {
		h := i % s.Hosts
		add(event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: HostID(h), Name: fmt.Sprintf("host-%d", h), State: "available",
			Properties: map[string]string{"tail": fmt.Sprint(i)}}})
	}
	return out
}

// The records of LostRangeEvents' story.
const (
	// LostRangeHead is the last record whose history the old leader
	// wrote.
	LostRangeHead = 9
	// LostRangeBase is the last record past retention when a new leader
	// comes, the seq of the oldest snapshot the retained log follows: the
	// salvage base.
	LostRangeBase = 12
	// LostRangeLast is the last record.
	LostRangeLast = 14
)

// LostRangeEvents is a log for tests of a history whose records
// LostRangeHead+1..LostRangeBase are past retention: hosts h0, h1, h2 with
// an instance each (i0, i1, i2); the scenario's template; NIC alarms on
// h0 and h2 raised before the head (8, 9), with their deduced alarms on
// the instances and the causal links. In the lost range h0's alarm clears
// (10), h1's is raised (11) and h2's made critical (12); after the base
// h1's is made critical (13) and h2's cleared (14). The first event is
// observed at start, each next one a second later.
func LostRangeEvents(start time.Time) []event.Event {
	var out []event.Event
	add := func(ev event.Event) {
		ev.V = event.Version
		ev.EventID = fmt.Sprintf("lostrange-%d", len(out)+1)
		ev.ObservedAt = start.Add(time.Duration(len(out)) * time.Second).UTC()
		if ev.Source == "" {
			ev.Source = "historytest"
		}
		out = append(out, ev)
	}
	add(event.Event{Kind: event.KindTemplatePut, Source: "cli", Template: &event.Template{Name: "host_nic", Body: Template}})
	for h := 0; h < 3; h++ {
		add(event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: HostID(h), Name: fmt.Sprintf("host-%d", h), State: "available"}})
		id := fmt.Sprintf("i%d", h)
		add(event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: id, Name: id, State: "ACTIVE",
			Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: HostID(h), Direction: event.In}}}})
	}
	nic := func(h int, sev string) {
		add(event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: NICAlarmID(h), Name: "NIC_DOWN", Severity: sev,
			Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: HostID(h), Direction: event.Out}}}})
	}
	clear := func(h int) {
		add(event.Event{Kind: event.KindEntityDelete, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: NICAlarmID(h)}})
	}
	nic(0, "warning")  // 8
	nic(2, "warning")  // 9: the head
	clear(0)           // 10: lost
	nic(1, "warning")  // 11: lost
	nic(2, "critical") // 12: lost; the base
	nic(1, "critical") // 13
	clear(2)           // 14
	return out
}
