package graph

import (
	"math"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/internal/event"
)

// TestDeducedExternalIDDigits checks that the stack-formatted target gives
// the ids the deduced alarms of every stored state have.
func TestDeducedExternalIDDigits(t *testing.T) {
	for _, id := range []VertexID{0, 1, 9, 10, 99, 100, 12345, -7, math.MaxInt64, math.MinInt64} {
		for _, name := range []string{"", "instance_connectivity_lost", "ü"} {
			if got, want := DeducedExternalID(id, name), event.DeriveID("deduced", strconv.FormatInt(int64(id), 10), name); got != want {
				t.Errorf("DeducedExternalID(%d, %q) = %s, want %s", id, name, got, want)
			}
		}
	}
}

func TestDeducedAlarms(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))))
	hostAlarm := l.upsert("prom", 1, alarm("prometheus", "nic", "critical", out("on", "nova.host", "h1")))
	mustApply(t, g, hostAlarm)
	host := mustLookup(t, g, "", "nova.host", "h1")
	inst := mustLookup(t, g, "", "nova.instance", "i1")
	nic := mustLookup(t, g, "ALARM", "prometheus", "nic")

	id, ch := g.RaiseDeducedAlarm(DeducedAlarm{Target: inst.ID, Name: "instance down", Severity: "warning", Properties: map[string]string{"k": "v"}})
	if got, want := opsOf(ch), []string{"VertexAdded 4", "EdgeAdded 4-on->2"}; !cmp.Equal(got, want) {
		t.Errorf("raise changes = %v, want %v", got, want)
	}
	a, _ := g.Vertex(id)
	want := Vertex{
		ID: 4, Category: "ALARM", Type: DeducedType, ExternalID: DeducedExternalID(inst.ID, "instance down"),
		Name: "instance down", State: "Active", Severity: "warning", AggregatedState: "WARNING", OperationalState: "WARNING",
		Source: EvaluatorSource, SampleTimestamp: g.Now(), UpdateTimestamp: g.Now(), Properties: map[string]string{"k": "v"},
	}
	if d := cmp.Diff(want, a); d != "" {
		t.Errorf("deduced alarm (-want +got):\n%s", d)
	}
	if got, ok := g.Lookup("ALARM", DeducedType, a.ExternalID); !ok || got != id {
		t.Errorf("lookup deduced alarm = %d %v", got, ok)
	}
	// Raising again with the same content: same vertex, no change.
	id2, ch := g.RaiseDeducedAlarm(DeducedAlarm{Target: inst.ID, Name: "instance down", Severity: "warning", Properties: map[string]string{"k": "v"}})
	if id2 != id || len(ch) != 0 {
		t.Errorf("re-raise = %d %v", id2, opsOf(ch))
	}
	// A new severity is an update.
	_, ch = g.RaiseDeducedAlarm(DeducedAlarm{Target: inst.ID, Name: "instance down", Severity: "critical"})
	if got := opsOf(ch); !cmp.Equal(got, []string{"VertexUpdated 4"}) {
		t.Errorf("severity change = %v", got)
	}
	// Causal edges.
	ch = g.SetCausal(nic.ID, id, true)
	if got := opsOf(ch); !cmp.Equal(got, []string{"EdgeAdded 3-causes->4"}) {
		t.Errorf("SetCausal = %v", got)
	}
	if ch := g.SetCausal(nic.ID, id, true); len(ch) != 0 {
		t.Errorf("SetCausal twice = %v", opsOf(ch))
	}
	// Clear: vertex and edges deleted, kept for RCA.
	ch = g.ClearDeducedAlarm(id)
	if got, want := opsOf(ch), []string{"EdgeDeleted 4-on->2", "EdgeDeleted 3-causes->4", "VertexDeleted 4"}; !cmp.Equal(got, want) {
		t.Errorf("clear = %v, want %v", got, want)
	}
	if ch := g.ClearDeducedAlarm(id); len(ch) != 0 {
		t.Errorf("clear twice = %v", opsOf(ch))
	}
	// Re-raise undeletes the alarm and its on edge, not the causes edge.
	_, ch = g.RaiseDeducedAlarm(DeducedAlarm{Target: inst.ID, Name: "instance down", Severity: "critical"})
	if got, want := opsOf(ch), []string{"VertexUpdated 4", "EdgeUpdated 4-on->2"}; !cmp.Equal(got, want) {
		t.Errorf("re-raise after clear = %v, want %v", got, want)
	}
	if !mustEdge(t, g, nic.ID, id, RelCauses).IsDeleted {
		t.Error("causes edge revived by raise")
	}
	g.SetCausal(nic.ID, id, true)
	ch = g.SetCausal(nic.ID, id, false)
	if got := opsOf(ch); !cmp.Equal(got, []string{"EdgeDeleted 3-causes->4"}) {
		t.Errorf("SetCausal false = %v", got)
	}
	// Unknown targets.
	if id, ch := g.RaiseDeducedAlarm(DeducedAlarm{Target: 99, Name: "x"}); id != 0 || ch != nil {
		t.Errorf("raise on unknown target = %d %v", id, ch)
	}
	if ch := g.SetCausal(99, id, true); ch != nil {
		t.Errorf("SetCausal unknown = %v", ch)
	}
	// A datasource sync of another source does not touch deduced alarms; an
	// upsert of the host by nova does not remove the evaluator's edges.
	mustApply(t, g, l.upsert("nova", 2, res("nova.instance", "i1", "ACTIVE")))
	if mustEdge(t, g, id, inst.ID, RelOn).IsDeleted {
		t.Error("nova's upsert deleted the evaluator's on edge")
	}
	_ = host
	checkRoundTrip(t, g)
}

func TestSetDeducedState(t *testing.T) {
	for _, tc := range []struct {
		name, reported, deduced string
		wantAgg, wantOp         string
	}{
		{"deduced worse wins", "ACTIVE", "ERROR", "ERROR", "ERROR"},
		{"reported worse wins", "ERROR", "SUBOPTIMAL", "ERROR", "ERROR"},
		{"tie keeps reported", "SHUTOFF", "ERROR", "SHUTOFF", "ERROR"},
		{"unknown deduced loses", "ACTIVE", "WHATEVER", "ACTIVE", "OK"},
		{"unknown reported loses", "WHATEVER", "SUBOPTIMAL", "SUBOPTIMAL", "SUBOPTIMAL"},
		{"removed", "ACTIVE", "", "ACTIVE", "OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(nil)
			var l logb
			mustApply(t, g, l.upsert("nova", 1, res("nova.instance", "i1", tc.reported)))
			g.SetDeducedState(1, "ERROR")
			ch := g.SetDeducedState(1, tc.deduced)
			v, _ := g.Vertex(1)
			if v.AggregatedState != tc.wantAgg || v.OperationalState != tc.wantOp || v.DeducedState != tc.deduced {
				t.Errorf("got %q/%q deduced %q, want %q/%q", v.AggregatedState, v.OperationalState, v.DeducedState, tc.wantAgg, tc.wantOp)
			}
			if tc.deduced == "ERROR" && len(ch) != 0 {
				t.Errorf("setting the same state changed %v", opsOf(ch))
			}
			// The deduced state survives a datasource update.
			mustApply(t, g, l.upsert("nova", 2, res("nova.instance", "i1", tc.reported)))
			if v2, _ := g.Vertex(1); v2.DeducedState != tc.deduced || v2.AggregatedState != tc.wantAgg {
				t.Errorf("after upsert: %+v", v2)
			}
		})
	}
}

func TestSetMarkedDown(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK")))
	if ch := g.SetMarkedDown(1, true); !cmp.Equal(opsOf(ch), []string{"VertexUpdated 1"}) || ch[0].Prev.IsMarkedDown || !ch[0].Vertex.IsMarkedDown {
		t.Errorf("mark down = %+v", ch)
	}
	if ch := g.SetMarkedDown(1, true); len(ch) != 0 {
		t.Errorf("mark down twice = %v", opsOf(ch))
	}
	if ch := g.SetMarkedDown(7, true); ch != nil {
		t.Errorf("unknown = %v", ch)
	}
	g.SetMarkedDown(1, false)
	if v, _ := g.Vertex(1); v.IsMarkedDown {
		t.Error("still marked down")
	}
}

// TestAppendPrimitives checks that each Append primitive appends to the
// changes it is given what its plain form returns, on two graphs taken
// through the same steps.
func TestAppendPrimitives(t *testing.T) {
	build := func() (*Graph, VertexID, VertexID) {
		g := New(nil)
		var l logb
		mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))))
		mustApply(t, g, l.upsert("prom", 1, alarm("prometheus", "nic", "critical", out("on", "nova.host", "h1"))))
		return g, mustLookup(t, g, "", "nova.instance", "i1").ID, mustLookup(t, g, "ALARM", "prometheus", "nic").ID
	}
	plain, inst, nic := build()
	apnd, _, _ := build()
	head := Change{Op: EdgeAdded, Edge: &Edge{From: 99, To: 98, Relationship: "sentinel"}}
	check := func(step string, want, got []Change) {
		t.Helper()
		if len(got) == 0 || got[0] != head {
			t.Fatalf("%s: the given changes were not kept: %v", step, opsOf(got))
		}
		if d := cmp.Diff(opsOf(want), opsOf(got[1:])); d != "" {
			t.Fatalf("%s: appended changes (-plain +append):\n%s", step, d)
		}
		if d := cmp.Diff(dump(t, plain), dump(t, apnd)); d != "" {
			t.Fatalf("%s: graphs differ (-plain +append):\n%s", step, d)
		}
	}
	steps := []struct {
		name  string
		plain func() []Change
		apnd  func([]Change) []Change
	}{
		{"raise", func() []Change {
			_, ch := plain.RaiseDeducedAlarm(DeducedAlarm{Target: inst, Name: "down", Severity: "warning"})
			return ch
		}, func(c []Change) []Change {
			_, ch := apnd.AppendRaiseDeducedAlarm(c, DeducedAlarm{Target: inst, Name: "down", Severity: "warning"})
			return ch
		}},
		{"raise unknown target", func() []Change {
			_, ch := plain.RaiseDeducedAlarm(DeducedAlarm{Target: 1000, Name: "down"})
			return ch
		}, func(c []Change) []Change {
			_, ch := apnd.AppendRaiseDeducedAlarm(c, DeducedAlarm{Target: 1000, Name: "down"})
			return ch
		}},
		{"causal", func() []Change { return plain.SetCausal(nic, 4, true) }, func(c []Change) []Change { return apnd.AppendSetCausal(c, nic, 4, true) }},
		{"state", func() []Change { return plain.SetDeducedState(inst, "ERROR") }, func(c []Change) []Change { return apnd.AppendSetDeducedState(c, inst, "ERROR") }},
		{"state again", func() []Change { return plain.SetDeducedState(inst, "ERROR") }, func(c []Change) []Change { return apnd.AppendSetDeducedState(c, inst, "ERROR") }},
		{"down", func() []Change { return plain.SetMarkedDown(inst, true) }, func(c []Change) []Change { return apnd.AppendSetMarkedDown(c, inst, true) }},
		{"uncausal", func() []Change { return plain.SetCausal(nic, 4, false) }, func(c []Change) []Change { return apnd.AppendSetCausal(c, nic, 4, false) }},
		{"causal again", func() []Change { return plain.SetCausal(nic, 4, true) }, func(c []Change) []Change { return apnd.AppendSetCausal(c, nic, 4, true) }},
		{"clear", func() []Change { return plain.ClearDeducedAlarm(4) }, func(c []Change) []Change { return apnd.AppendClearDeducedAlarm(c, 4) }},
		{"clear again", func() []Change { return plain.ClearDeducedAlarm(4) }, func(c []Change) []Change { return apnd.AppendClearDeducedAlarm(c, 4) }},
		{"raise again", func() []Change {
			_, ch := plain.RaiseDeducedAlarm(DeducedAlarm{Target: inst, Name: "down", Severity: "critical"})
			return ch
		}, func(c []Change) []Change {
			_, ch := apnd.AppendRaiseDeducedAlarm(c, DeducedAlarm{Target: inst, Name: "down", Severity: "critical"})
			return ch
		}},
	}
	for _, s := range steps {
		check(s.name, s.plain(), s.apnd([]Change{head}))
	}
}
