package graph

import (
	"errors"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/google/go-cmp/cmp"
)

func isBenign(err error) bool { return errors.Is(err, ErrSyncNotOpen) }

func TestUpsertTimestampRule(t *testing.T) {
	for _, tc := range []struct {
		name      string
		secondObs int
		wantState string
		wantObs   int
		wantOps   []string
	}{
		{"newer applies", 20, "ERROR", 20, []string{"VertexUpdated 1"}},
		{"equal applies", 10, "ERROR", 10, []string{"VertexUpdated 1"}},
		{"older is ignored", 9, "ACTIVE", 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(nil)
			var l logb
			ch := mustApply(t, g, l.upsert("nova", 10, res("nova.instance", "i1", "ACTIVE")))
			if got := opsOf(ch); !cmp.Equal(got, []string{"VertexAdded 1"}) {
				t.Fatalf("first upsert changes = %v", got)
			}
			ch = mustApply(t, g, l.upsert("nova", tc.secondObs, res("nova.instance", "i1", "ERROR")))
			if got := opsOf(ch); !cmp.Equal(got, tc.wantOps) {
				t.Errorf("changes = %v, want %v", got, tc.wantOps)
			}
			v := mustLookup(t, g, "RESOURCE", "nova.instance", "i1")
			if v.State != tc.wantState || !v.SampleTimestamp.Equal(at(tc.wantObs)) {
				t.Errorf("state %q sample %v, want %q %v", v.State, v.SampleTimestamp, tc.wantState, at(tc.wantObs))
			}
		})
	}
}

func TestUpsertFields(t *testing.T) {
	g := New(nil)
	var l logb
	e := res("nova.instance", "i1", "active")
	e.ProjectID = "p1"
	e.Properties = map[string]string{"b": "2", "a": "1"}
	r := l.upsert("nova", 7, e)
	mustApply(t, g, r)
	got := mustLookup(t, g, "RESOURCE", "nova.instance", "i1")
	want := Vertex{
		ID: 1, Category: "RESOURCE", Type: "nova.instance", ExternalID: "i1", Name: "i1",
		State: "active", AggregatedState: "ACTIVE", OperationalState: "OK", ProjectID: "p1", Source: "nova",
		SampleTimestamp: at(7), UpdateTimestamp: r.RecordedAt, Properties: map[string]string{"a": "1", "b": "2"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("vertex (-want +got):\n%s", d)
	}
	if !g.Now().Equal(r.RecordedAt) {
		t.Errorf("Now = %v, want %v", g.Now(), r.RecordedAt)
	}
	// A second identical report changes only timestamps: no change reported.
	r2 := l.upsert("nova", 8, e)
	if ch := mustApply(t, g, r2); len(ch) != 0 {
		t.Errorf("identical upsert changes = %v", opsOf(ch))
	}
	got = mustLookup(t, g, "RESOURCE", "nova.instance", "i1")
	if !got.UpdateTimestamp.Equal(r2.RecordedAt) || !got.SampleTimestamp.Equal(at(8)) {
		t.Errorf("timestamps not advanced: %v %v", got.UpdateTimestamp, got.SampleTimestamp)
	}
}

func TestPlaceholders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rel     event.Relation
		wantCat string
		from    string // "entity" or "target": the edge's source
	}{
		{"out to resource", out("attached", "cinder.volume", "v1"), "RESOURCE", "entity"},
		{"in from resource", in("contains", "nova.host", "h1"), "RESOURCE", "target"},
		{"alarm category from relation", event.Relation{Relationship: "causes", Category: "ALARM", Type: "prometheus", ID: "a1", Direction: event.In}, "ALARM", "target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(nil)
			var l logb
			ch := mustApply(t, g, l.upsert("nova", 1, res("nova.instance", "i1", "ACTIVE", tc.rel)))
			ent := mustLookup(t, g, "RESOURCE", "nova.instance", "i1")
			ph := mustLookup(t, g, tc.wantCat, tc.rel.Type, tc.rel.ID)
			if !ph.IsPlaceholder || ph.IsDeleted || ph.Source != "" {
				t.Errorf("placeholder = %+v", ph)
			}
			from, to := ent.ID, ph.ID
			if tc.from == "target" {
				from, to = ph.ID, ent.ID
			}
			e := mustEdge(t, g, from, to, tc.rel.Relationship)
			if e.IsDeleted {
				t.Errorf("edge deleted")
			}
			wantOps := []string{"VertexAdded 1", "VertexAdded 2", "EdgeAdded " + itoa(from) + "-" + tc.rel.Relationship + "->" + itoa(to)}
			if got := opsOf(ch); !cmp.Equal(got, wantOps) {
				t.Errorf("changes = %v, want %v", got, wantOps)
			}
			// The placeholder's own source reports it, at any sample time.
			e2 := event.Entity{Category: tc.wantCat, Type: tc.rel.Type, ID: tc.rel.ID, Name: "real", State: "OK", Severity: "WARNING"}
			ch = mustApply(t, g, l.upsert("other", 0, e2))
			if got := opsOf(ch); !cmp.Equal(got, []string{"VertexUpdated 2"}) {
				t.Errorf("report changes = %v", got)
			}
			v := mustLookup(t, g, tc.wantCat, tc.rel.Type, tc.rel.ID)
			if v.IsPlaceholder || v.Name != "real" || v.ID != ph.ID || v.Source != "other" {
				t.Errorf("reported vertex = %+v", v)
			}
			if e := mustEdge(t, g, from, to, tc.rel.Relationship); e.IsDeleted {
				t.Errorf("edge deleted after target reported")
			}
		})
	}
}

func itoa(id VertexID) string { return string(rune('0' + id)) }

func TestRelationsPerSource(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"), out("contains", "nova.instance", "i2"))))
	mustApply(t, g, l.upsert("static", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i2"), out("attached", "switch", "s1"))))
	h := mustLookup(t, g, "", "nova.host", "h1").ID
	i1 := mustLookup(t, g, "", "nova.instance", "i1").ID
	i2 := mustLookup(t, g, "", "nova.instance", "i2").ID
	s1 := mustLookup(t, g, "", "switch", "s1").ID

	// nova drops i2 and i1: i1's edge is deleted, i2's stays (static asserts it).
	r := l.upsert("nova", 2, res("nova.host", "h1", "OK"))
	ch := mustApply(t, g, r)
	// The source that reported last owns the vertex: nova takes it back from static.
	if got, want := opsOf(ch), []string{"VertexUpdated 1", "EdgeDeleted 1-contains->2"}; !cmp.Equal(got, want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		to      VertexID
		rel     string
		deleted bool
	}{{i1, "contains", true}, {i2, "contains", false}, {s1, "attached", false}} {
		e := mustEdge(t, g, h, tc.to, tc.rel)
		if e.IsDeleted != tc.deleted {
			t.Errorf("edge to %d %s deleted=%v, want %v", tc.to, tc.rel, e.IsDeleted, tc.deleted)
		}
		if tc.deleted && !e.UpdateTimestamp.Equal(r.RecordedAt) {
			t.Errorf("deleted edge update_timestamp %v, want %v", e.UpdateTimestamp, r.RecordedAt)
		}
	}
	// nova asserts i1 again: undeleted.
	ch = mustApply(t, g, l.upsert("nova", 3, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))))
	if got, want := opsOf(ch), []string{"EdgeUpdated 1-contains->2"}; !cmp.Equal(got, want) {
		t.Errorf("re-assert changes = %v, want %v", got, want)
	}
	if mustEdge(t, g, h, i1, "contains").IsDeleted {
		t.Error("re-asserted edge still deleted")
	}
	// static drops everything: i2 (no longer asserted by nova either) and s1 go.
	mustApply(t, g, l.upsert("static", 4, res("nova.host", "h1", "OK")))
	if !mustEdge(t, g, h, i2, "contains").IsDeleted || !mustEdge(t, g, h, s1, "attached").IsDeleted {
		t.Error("static's edges not deleted")
	}
	if mustEdge(t, g, h, i1, "contains").IsDeleted {
		t.Error("nova's edge deleted by static")
	}
	// An ignored (older) upsert does not touch relations.
	if ch := mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK"))); len(ch) != 0 {
		t.Errorf("older upsert changed %v", opsOf(ch))
	}
	if mustEdge(t, g, h, i1, "contains").IsDeleted {
		t.Error("older upsert deleted an edge")
	}
}

func TestRelationsFromBothEnds(t *testing.T) {
	// The host asserts host->instance and the instance asserts the same edge
	// with In: one edge, two owners; it lives while either asserts it.
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))))
	mustApply(t, g, l.upsert("nova", 1, res("nova.instance", "i1", "ACTIVE", in("contains", "nova.host", "h1"))))
	h, i := mustLookup(t, g, "", "nova.host", "h1").ID, mustLookup(t, g, "", "nova.instance", "i1").ID
	if got := len(g.Out(h)); got != 1 {
		t.Fatalf("host has %d out edges, want 1", got)
	}
	mustApply(t, g, l.upsert("nova", 2, res("nova.host", "h1", "OK")))
	if mustEdge(t, g, h, i, "contains").IsDeleted {
		t.Error("edge deleted while the instance still asserts it")
	}
	mustApply(t, g, l.upsert("nova", 2, res("nova.instance", "i1", "ACTIVE")))
	if !mustEdge(t, g, h, i, "contains").IsDeleted {
		t.Error("edge alive with no owner")
	}
	if got := g.In(i); len(got) != 1 || got[0].From != h {
		t.Errorf("In(instance) = %+v", got)
	}
}

func TestAlarmOnResource(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK")))
	mustApply(t, g, l.upsert("prometheus", 2, alarm("prometheus", "a1", "critical", out("on", "nova.host", "h1"))))
	a := mustLookup(t, g, "ALARM", "prometheus", "a1")
	if a.AggregatedState != "CRITICAL" || a.OperationalState != "CRITICAL" {
		t.Errorf("alarm normalised to %q/%q", a.AggregatedState, a.OperationalState)
	}
	h := mustLookup(t, g, "", "nova.host", "h1")
	if e := mustEdge(t, g, a.ID, h.ID, "on"); e.IsDeleted {
		t.Error("on edge deleted")
	}
	if got := g.Out(a.ID); len(got) != 1 || got[0].To != h.ID || got[0].Relationship != RelOn {
		t.Errorf("Out(alarm) = %+v", got)
	}
}

func TestDelete(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))))
	mustApply(t, g, l.upsert("prometheus", 1, alarm("prometheus", "a1", "warning", out("on", "nova.host", "h1"))))
	h := mustLookup(t, g, "", "nova.host", "h1").ID

	// Unknown entity: a tombstone (TestTombstone), no error.
	if ch := mustApply(t, g, l.del("nova", 2, "RESOURCE", "nova.host", "nope")); !cmp.Equal(opsOf(ch), []string{"VertexAdded 4"}) {
		t.Errorf("unknown delete changes = %v", opsOf(ch))
	}
	// Stale delete: ignored.
	if ch := mustApply(t, g, l.del("nova", 0, "RESOURCE", "nova.host", "h1")); len(ch) != 0 {
		t.Errorf("stale delete changes = %v", opsOf(ch))
	}
	r := l.del("nova", 3, "RESOURCE", "nova.host", "h1")
	ch := mustApply(t, g, r)
	want := []string{"EdgeDeleted 1-contains->2", "EdgeDeleted 3-on->1", "VertexDeleted 1"}
	if got := opsOf(ch); !cmp.Equal(got, want) {
		t.Errorf("delete changes = %v, want %v", got, want)
	}
	v, _ := g.Vertex(h)
	if !v.IsDeleted || !v.UpdateTimestamp.Equal(r.RecordedAt) {
		t.Errorf("deleted vertex = %+v", v)
	}
	for _, e := range append(g.Out(h), g.In(h)...) {
		if !e.IsDeleted || !e.UpdateTimestamp.Equal(r.RecordedAt) {
			t.Errorf("edge %+v not deleted at %v", e, r.RecordedAt)
		}
	}
	// Deleted elements are still there for RCA and dumps.
	if len(g.VertexIDs()) != 4 {
		t.Errorf("vertices = %v", g.VertexIDs())
	}
	// Deleting again: no-op.
	if ch := mustApply(t, g, l.del("nova", 4, "RESOURCE", "nova.host", "h1")); len(ch) != 0 {
		t.Errorf("second delete changes = %v", opsOf(ch))
	}
	// An older upsert than the delete is ignored; a newer one revives with its relations.
	if ch := mustApply(t, g, l.upsert("nova", 2, res("nova.host", "h1", "OK"))); len(ch) != 0 {
		t.Errorf("upsert older than the delete changed %v", opsOf(ch))
	}
	ch = mustApply(t, g, l.upsert("nova", 5, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"))))
	want = []string{"VertexUpdated 1", "EdgeUpdated 1-contains->2"}
	if got := opsOf(ch); !cmp.Equal(got, want) {
		t.Errorf("revive changes = %v, want %v", got, want)
	}
	if ch[0].Prev == nil || !ch[0].Prev.IsDeleted || ch[0].Vertex.IsDeleted {
		t.Errorf("revive change prev/after = %+v / %+v", ch[0].Prev, ch[0].Vertex)
	}
	// The alarm's on edge stays deleted until the alarm's source asserts it again.
	if !mustEdge(t, g, 3, h, "on").IsDeleted {
		t.Error("on edge revived without its source")
	}
}

// TestDeleteOutOfOrder covers deletes recorded before an older upsert of
// the same entity (two services reporting one entity, a listener's retry):
// the upsert is older than the delete and must not bring the entity back.
func TestDeleteOutOfOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before are applied first; the delete at 10 and the stale
		// upsert at 9 then follow.
		before []func(l *logb) event.Record
		cat    string
		entity event.Entity
	}{
		{name: "unknown resource", cat: "RESOURCE", entity: res("nova.instance", "i1", "ACTIVE")},
		{name: "unknown alarm", cat: "ALARM", entity: alarm("prometheus", "i1", "critical")},
		{name: "placeholder", cat: "RESOURCE", entity: res("nova.instance", "i1", "ACTIVE"),
			before: []func(l *logb) event.Record{func(l *logb) event.Record {
				return l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1")))
			}}},
		{name: "deleted again, later", cat: "RESOURCE", entity: res("nova.instance", "i1", "ACTIVE"),
			before: []func(l *logb) event.Record{
				func(l *logb) event.Record { return l.upsert("nova", 1, res("nova.instance", "i1", "ACTIVE")) },
				func(l *logb) event.Record { return l.del("nova", 5, "RESOURCE", "nova.instance", "i1") },
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(nil)
			var l logb
			for _, b := range tc.before {
				mustApply(t, g, b(&l))
			}
			typ := tc.entity.Type
			del := l.del("nova", 10, tc.cat, typ, "i1")
			ch := mustApply(t, g, del)
			v := mustLookup(t, g, tc.cat, typ, "i1")
			if !v.IsDeleted || !v.SampleTimestamp.Equal(at(10)) {
				t.Fatalf("after the delete: deleted=%v sample %v, want deleted at %v", v.IsDeleted, v.SampleTimestamp, at(10))
			}
			for _, c := range ch {
				if c.Vertex != nil && c.Vertex.ID == v.ID && !c.Vertex.IsDeleted {
					t.Errorf("delete reported %s of a live vertex", c.Op)
				}
			}
			if ch := mustApply(t, g, l.upsert("nova", 9, tc.entity)); len(ch) != 0 {
				t.Errorf("upsert older than the delete changed %v", opsOf(ch))
			}
			if v := mustLookup(t, g, tc.cat, typ, "i1"); !v.IsDeleted || !v.SampleTimestamp.Equal(at(10)) {
				t.Errorf("upsert older than the delete: deleted=%v sample %v, want deleted at %v", v.IsDeleted, v.SampleTimestamp, at(10))
			}
			// A newer upsert revives it, reported as a revive.
			ch = mustApply(t, g, l.upsert("nova", 11, tc.entity))
			if len(ch) == 0 || ch[0].Op != VertexUpdated || ch[0].Prev == nil || !ch[0].Prev.IsDeleted || ch[0].Vertex.IsDeleted || ch[0].Vertex.IsPlaceholder {
				t.Fatalf("newer upsert changes = %v, want a revive first", opsOf(ch))
			}
			if v := mustLookup(t, g, tc.cat, typ, "i1"); v.IsDeleted || v.IsPlaceholder || !v.SampleTimestamp.Equal(at(11)) {
				t.Errorf("after the newer upsert: %+v", v)
			}
		})
	}
}

// TestTombstone checks what a delete of an entity the graph does not know
// leaves: a deleted placeholder that holds the delete's sample time, and a
// VertexAdded change of a vertex that is not live, which the consumers of
// changes ignore.
func TestTombstone(t *testing.T) {
	g := New(nil)
	var l logb
	r := l.del("alertmanager", 10, "ALARM", "prometheus", "a1")
	ch := mustApply(t, g, r)
	want := Vertex{
		ID: 1, Category: "ALARM", Type: "prometheus", ExternalID: "a1", IsDeleted: true, IsPlaceholder: true,
		SampleTimestamp: at(10), UpdateTimestamp: r.RecordedAt,
	}
	got := mustLookup(t, g, "ALARM", "prometheus", "a1")
	want.AggregatedState, want.OperationalState = got.AggregatedState, got.OperationalState // the normaliser's, as any vertex's
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tombstone (-want +got):\n%s", d)
	}
	if len(ch) != 1 || ch[0].Op != VertexAdded || ch[0].Prev != nil || cmp.Diff(want, *ch[0].Vertex) != "" {
		t.Errorf("changes = %v, want VertexAdded of the tombstone", opsOf(ch))
	}
	if ids := g.Alarms("", true, false); len(ids) != 0 {
		t.Errorf("live alarms = %v, want none", ids)
	}
	if n := g.View(false).Nodes().Len(); n != 0 {
		t.Errorf("the live view has %d nodes, want none", n)
	}
	// RCA analyses it as any cleared alarm: alone, its own root.
	if r, err := g.RCA(got.ID); err != nil || !cmp.Equal(r.Alarms, []VertexID{got.ID}) || !cmp.Equal(r.Roots, []VertexID{got.ID}) {
		t.Errorf("RCA of the tombstone = %+v, %v", r, err)
	}
	// Deleting it again, earlier or later, makes no change; a later delete
	// moves its sample time and renews its deletion (update_timestamp,
	// from which the purge counts: TestPurgeCountsFromTheLastDelete).
	if ch := mustApply(t, g, l.del("alertmanager", 8, "ALARM", "prometheus", "a1")); len(ch) != 0 {
		t.Errorf("older delete changes = %v", opsOf(ch))
	}
	newer := l.del("alertmanager", 12, "ALARM", "prometheus", "a1")
	if ch := mustApply(t, g, newer); len(ch) != 0 {
		t.Errorf("newer delete changes = %v", opsOf(ch))
	}
	got = mustLookup(t, g, "ALARM", "prometheus", "a1")
	if !got.SampleTimestamp.Equal(at(12)) || !got.UpdateTimestamp.Equal(newer.RecordedAt) {
		t.Errorf("after a newer delete: sample %v update %v, want %v %v", got.SampleTimestamp, got.UpdateTimestamp, at(12), newer.RecordedAt)
	}
	// A snapshot keeps it.
	restored, err := FromState(g.State(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := dump(t, g), dump(t, restored); a != b {
		t.Errorf("FromState dump differs:\n%s\n%s", a, b)
	}
	// A relation to it names the deleted vertex; an upsert of a resource
	// does not revive it.
	mustApply(t, g, l.upsert("nova", 13, res("nova.host", "h1", "OK", in("on", "prometheus", "a1"))))
	if got := mustLookup(t, g, "ALARM", "prometheus", "a1"); !got.IsDeleted {
		t.Errorf("a relation revived the tombstone: %+v", got)
	}
}

func TestSync(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"), out("contains", "nova.instance", "i9"))))
	mustApply(t, g, l.upsert("nova", 1, res("nova.instance", "i1", "ACTIVE")))
	mustApply(t, g, l.upsert("nova", 1, res("nova.instance", "i2", "ACTIVE")))
	mustApply(t, g, l.upsert("static", 1, res("switch", "s1", "OK")))
	mustApply(t, g, l.upsert("nova", 1, res("nova.instance", "i3", "ACTIVE")))
	mustApply(t, g, l.del("nova", 2, "RESOURCE", "nova.instance", "i3"))

	// An unmatched sync.end: error wrapping ErrSyncNotOpen, nothing deleted.
	_, err := g.Apply(l.sync(event.KindSyncEnd, "nova", "s0"))
	if !errors.Is(err, ErrSyncNotOpen) {
		t.Fatalf("unmatched sync.end err = %v", err)
	}
	mustApply(t, g, l.sync(event.KindSyncBegin, "nova", "s1"))
	mustApply(t, g, l.upsert("nova", 3, res("nova.host", "h1", "OK", out("contains", "nova.instance", "i1"), out("contains", "nova.instance", "i9"))))
	// An older report still counts as seen: the entity exists at the source.
	mustApply(t, g, l.upsert("nova", 0, res("nova.instance", "i1", "ACTIVE")))
	// A sync.end of another id does not close s1.
	if _, err := g.Apply(l.sync(event.KindSyncEnd, "nova", "other")); !errors.Is(err, ErrSyncNotOpen) {
		t.Fatalf("sync.end of other id err = %v", err)
	}
	r := l.sync(event.KindSyncEnd, "nova", "s1")
	ch := mustApply(t, g, r)
	if got, want := opsOf(ch), []string{"VertexDeleted 4"}; !cmp.Equal(got, want) {
		t.Errorf("sync.end changes = %v, want %v (i2 only)", got, want)
	}
	for _, tc := range []struct {
		typ, id string
		deleted bool
	}{
		{"nova.host", "h1", false}, {"nova.instance", "i1", false}, {"nova.instance", "i2", true},
		{"nova.instance", "i9", false}, // placeholder: not owned by nova
		{"switch", "s1", false},        // another source
		{"nova.instance", "i3", true},
	} {
		if v := mustLookup(t, g, "", tc.typ, tc.id); v.IsDeleted != tc.deleted {
			t.Errorf("%s deleted=%v, want %v", tc.id, v.IsDeleted, tc.deleted)
		}
	}
	if v := mustLookup(t, g, "", "nova.instance", "i2"); !v.UpdateTimestamp.Equal(r.RecordedAt) {
		t.Errorf("i2 update_timestamp = %v, want %v", v.UpdateTimestamp, r.RecordedAt)
	}
	// The sync is closed: ending it again is unmatched.
	if _, err := g.Apply(l.sync(event.KindSyncEnd, "nova", "s1")); !errors.Is(err, ErrSyncNotOpen) {
		t.Errorf("second sync.end err = %v", err)
	}

	// A begin supersedes its source's open syncs (a pull that never
	// ended), not another source's: their ends are unmatched, and
	// nothing stays open for ever.
	mustApply(t, g, l.sync(event.KindSyncBegin, "nova", "s2"))
	mustApply(t, g, l.sync(event.KindSyncBegin, "static", "t1"))
	mustApply(t, g, l.sync(event.KindSyncBegin, "nova", "s3"))
	if _, err := g.Apply(l.sync(event.KindSyncEnd, "nova", "s2")); !errors.Is(err, ErrSyncNotOpen) {
		t.Errorf("sync.end of a superseded sync: err = %v, want ErrSyncNotOpen", err)
	}
	mustApply(t, g, l.sync(event.KindSyncEnd, "static", "t1"))
	mustApply(t, g, l.sync(event.KindSyncEnd, "nova", "s3"))
	if n := len(g.State().Syncs); n != 0 {
		t.Errorf("%d syncs still open; want none", n)
	}
}

func TestTickAndIgnoredKinds(t *testing.T) {
	g := New(nil)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.host", "h1", "OK")))
	before := dump(t, g)
	r := l.tick()
	if ch := mustApply(t, g, r); len(ch) != 0 {
		t.Errorf("tick changes = %v", opsOf(ch))
	}
	if !g.Now().Equal(r.RecordedAt) {
		t.Errorf("Now = %v, want %v", g.Now(), r.RecordedAt)
	}
	if v := mustLookup(t, g, "", "nova.host", "h1"); v.UpdateTimestamp.Equal(r.RecordedAt) {
		t.Error("tick touched a vertex")
	}
	if dump(t, g) == before {
		t.Error("tick did not advance the dumped clock")
	}
	for _, ev := range []event.Event{
		{Source: "api", Kind: event.KindTemplatePut, ObservedAt: at(1), Template: &event.Template{Name: "t", Body: "x"}},
		{Source: "api", Kind: event.KindTemplateDelete, ObservedAt: at(1), Template: &event.Template{Name: "t"}},
		{Source: "api", Kind: event.KindSubscriptionPut, ObservedAt: at(1), Subscription: &event.Subscription{ID: "s", Spec: []byte("{}")}},
		{Source: "api", Kind: event.KindSubscriptionDelete, ObservedAt: at(1), Subscription: &event.Subscription{ID: "s"}},
	} {
		vs := everyVertex(g)
		r := l.add(ev)
		if ch, err := g.Apply(r); err != nil || len(ch) != 0 {
			t.Errorf("%s: changes %v err %v", ev.Kind, opsOf(ch), err)
		}
		if !g.Now().Equal(r.RecordedAt) {
			t.Errorf("%s: Now = %v, want %v", ev.Kind, g.Now(), r.RecordedAt)
		}
		if d := cmp.Diff(vs, everyVertex(g)); d != "" {
			t.Errorf("%s changed vertices:\n%s", ev.Kind, d)
		}
	}
}

func TestApplyInvalidRecord(t *testing.T) {
	g := New(nil)
	for _, ev := range []event.Event{
		{Source: "x", Kind: event.KindEntityUpsert},
		{Source: "x", Kind: event.KindEntityDelete},
		{Source: "x", Kind: event.KindSyncBegin},
		{Source: "x", Kind: event.KindSyncEnd},
	} {
		before := dump(t, g)
		if _, err := g.Apply(event.Record{Seq: 1, RecordedAt: at(1), Event: ev}); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s without payload: err = %v", ev.Kind, err)
		}
		if dump(t, g) != before {
			t.Errorf("%s: invalid record changed the graph", ev.Kind)
		}
	}
}

func TestSelfLoopAndDuplicateRelations(t *testing.T) {
	g := New(nil)
	var l logb
	ch := mustApply(t, g, l.upsert("s", 1, res("t", "x", "OK", out("r", "t", "x"), out("r", "t", "x"), in("r", "t", "x"))))
	if got, want := opsOf(ch), []string{"VertexAdded 1", "EdgeAdded 1-r->1"}; !cmp.Equal(got, want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
	if len(g.Out(1)) != 1 || len(g.In(1)) != 1 {
		t.Errorf("out %v in %v", g.Out(1), g.In(1))
	}
	mustApply(t, g, l.upsert("s", 2, res("t", "x", "OK")))
	if !mustEdge(t, g, 1, 1, "r").IsDeleted {
		t.Error("self loop not deleted")
	}
	mustApply(t, g, l.upsert("s", 3, res("t", "x", "OK", out("r", "t", "x"))))
	mustApply(t, g, l.del("s", 4, "", "t", "x"))
	if !mustEdge(t, g, 1, 1, "r").IsDeleted {
		t.Error("self loop not deleted with its vertex")
	}
	checkRoundTrip(t, g)
}

func TestExtremeTimestamps(t *testing.T) {
	g := New(nil)
	var l logb
	r := l.upsert("s", 0, res("t", "x", "OK"))
	r.Event.ObservedAt = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	mustApply(t, g, r)
	r2 := l.upsert("s", 0, res("t", "x", "ERROR"))
	r2.Event.ObservedAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	// Both clamp to the same instant: equal applies.
	mustApply(t, g, r2)
	r3 := l.upsert("s", 0, res("t", "x", "ACTIVE"))
	r3.Event.ObservedAt = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	if ch := mustApply(t, g, r3); len(ch) != 0 {
		t.Errorf("older than a clamped future time applied: %v", opsOf(ch))
	}
	if v := mustLookup(t, g, "", "t", "x"); v.State != "ERROR" || v.SampleTimestamp.Year() != 2262 {
		t.Errorf("vertex %+v", v)
	}
	checkRoundTrip(t, g)
}

// everyVertex lists every vertex of g, deleted ones too, by id.
func everyVertex(g *Graph) []Vertex {
	var out []Vertex
	for _, id := range g.VertexIDs() {
		v, _ := g.Vertex(id)
		out = append(out, v)
	}
	return out
}
