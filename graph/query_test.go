package graph

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (-want +got):\n%s", name, cmp.Diff(string(want), string(got)))
	}
}

// fixture builds a small cloud: a cluster, a zone, two hosts, three
// instances in two projects, a volume, a switch; a NIC alarm on host h1
// that causes deduced alarms on its instances, which cause an alarm on the
// volume; a cleared alarm on h2 that caused one on i3.
func fixture(t *testing.T) (*Graph, map[string]VertexID) {
	t.Helper()
	g := New(nil)
	var l logb
	cl := res("openstack.cluster", "c1", "OK", out("contains", "nova.zone", "z1"))
	z := res("nova.zone", "z1", "available", out("contains", "nova.host", "h1"), out("contains", "nova.host", "h2"))
	h1 := res("nova.host", "h1", "available", out("contains", "nova.instance", "i1"), out("contains", "nova.instance", "i2"))
	h1.Properties = map[string]string{"rack": "r7"}
	h2 := res("nova.host", "h2", "available", out("contains", "nova.instance", "i3"))
	i1 := res("nova.instance", "i1", "ACTIVE", in("attached", "cinder.volume", "v1"))
	i1.ProjectID = "p1"
	i2 := res("nova.instance", "i2", "ACTIVE")
	i2.ProjectID = "p2"
	i3 := res("nova.instance", "i3", "SHUTOFF")
	i3.ProjectID = "p1"
	v1 := res("cinder.volume", "v1", "in-use")
	v1.ProjectID = "p1"
	sw := res("switch", "s1", "UP", out("attached", "nova.host", "h1"))
	mustApply(t, g, l.upsert("static", 1, cl))
	mustApply(t, g, l.upsert("nova", 1, z))
	mustApply(t, g, l.upsert("nova", 1, h1))
	mustApply(t, g, l.upsert("nova", 1, h2))
	mustApply(t, g, l.upsert("nova", 1, i1))
	mustApply(t, g, l.upsert("nova", 1, i2))
	mustApply(t, g, l.upsert("nova", 1, i3))
	mustApply(t, g, l.upsert("cinder", 1, v1))
	mustApply(t, g, l.upsert("static", 1, sw))
	mustApply(t, g, l.upsert("prometheus", 2, alarm("prometheus", "nic-h1", "critical", out("on", "nova.host", "h1"))))
	mustApply(t, g, l.upsert("prometheus", 2, alarm("prometheus", "nic-h2", "warning", out("on", "nova.host", "h2"))))
	mustApply(t, g, l.upsert("prometheus", 2, alarm("prometheus", "vol-v1", "warning", out("on", "cinder.volume", "v1"))))
	ids := map[string]VertexID{}
	for _, k := range []struct{ name, cat, typ, id string }{
		{"c1", "", "openstack.cluster", "c1"}, {"z1", "", "nova.zone", "z1"},
		{"h1", "", "nova.host", "h1"}, {"h2", "", "nova.host", "h2"},
		{"i1", "", "nova.instance", "i1"}, {"i2", "", "nova.instance", "i2"}, {"i3", "", "nova.instance", "i3"},
		{"v1", "", "cinder.volume", "v1"}, {"s1", "", "switch", "s1"},
		{"nic-h1", "ALARM", "prometheus", "nic-h1"}, {"nic-h2", "ALARM", "prometheus", "nic-h2"}, {"vol-v1", "ALARM", "prometheus", "vol-v1"},
	} {
		ids[k.name] = mustLookup(t, g, k.cat, k.typ, k.id).ID
	}
	mustApply(t, g, l.tick())
	d1, _ := g.RaiseDeducedAlarm(DeducedAlarm{Target: ids["i1"], Name: "instance degraded", Severity: "SEVERE"})
	d2, _ := g.RaiseDeducedAlarm(DeducedAlarm{Target: ids["i2"], Name: "instance degraded", Severity: "SEVERE"})
	d3, _ := g.RaiseDeducedAlarm(DeducedAlarm{Target: ids["i3"], Name: "instance degraded", Severity: "WARNING"})
	ids["d-i1"], ids["d-i2"], ids["d-i3"] = d1, d2, d3
	g.SetCausal(ids["nic-h1"], d1, true)
	g.SetCausal(ids["nic-h1"], d2, true)
	g.SetCausal(d1, ids["vol-v1"], true)
	g.SetCausal(ids["nic-h2"], d3, true)
	g.SetDeducedState(ids["h1"], "ERROR")
	// nic-h2 clears: its causes edge goes with it, and the evaluator clears d3.
	mustApply(t, g, l.del("prometheus", 3, "ALARM", "prometheus", "nic-h2"))
	g.ClearDeducedAlarm(d3)
	// A retracted causal link between two live alarms does not count in RCA.
	g.SetCausal(d2, ids["vol-v1"], true)
	mustApply(t, g, l.tick())
	g.SetCausal(d2, ids["vol-v1"], false)
	return g, ids
}

func TestAlarms(t *testing.T) {
	g, ids := fixture(t)
	idsOf := func(vs []Vertex) []VertexID {
		var out []VertexID
		for _, v := range vs {
			out = append(out, v.ID)
		}
		return out
	}
	for _, tc := range []struct {
		project string
		all     bool
		deleted bool
		want    []VertexID
	}{
		{"p1", false, false, []VertexID{ids["vol-v1"], ids["d-i1"]}},
		{"p1", false, true, []VertexID{ids["vol-v1"], ids["d-i1"], ids["d-i3"]}},
		{"p2", false, false, []VertexID{ids["d-i2"]}},
		{"", true, false, []VertexID{ids["nic-h1"], ids["vol-v1"], ids["d-i1"], ids["d-i2"]}},
	} {
		if got := idsOf(g.Alarms(tc.project, tc.all, tc.deleted)); !cmp.Equal(got, tc.want) {
			t.Errorf("Alarms(%q, %v, %v) = %v, want %v", tc.project, tc.all, tc.deleted, got, tc.want)
		}
	}
}
