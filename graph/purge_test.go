package graph

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
)

// tlog builds records with dense seqs at the log times it is given.
type tlog struct {
	seq int64
}

func (l *tlog) rec(at time.Time, ev event.Event) event.Record {
	l.seq++
	ev.V = event.Version
	ev.EventID = "p" + strconv.FormatInt(l.seq, 10)
	if ev.ObservedAt.IsZero() {
		ev.ObservedAt = at
	}
	return event.Record{Seq: l.seq, RecordedAt: at, Event: ev}
}

func (l *tlog) upsert(at time.Time, src string, e event.Entity) event.Record {
	return l.rec(at, event.Event{Source: src, Kind: event.KindEntityUpsert, Entity: &e})
}

func (l *tlog) del(at time.Time, src, cat, typ, id string) event.Record {
	return l.rec(at, event.Event{Source: src, Kind: event.KindEntityDelete, Entity: &event.Entity{Category: cat, Type: typ, ID: id}})
}

func (l *tlog) tick(at time.Time) event.Record {
	return l.rec(at, event.Event{Source: "clock", Kind: event.KindTick})
}

// hour0 is the start of an hour of log time.
var hour0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestPurgeRemovesWhatRetentionExpired(t *testing.T) {
	var l tlog
	g := New(nil)
	apply := func(r event.Record) { mustApply(t, g, r) }
	// At 10:00:xx: a host with an instance and an alarm on it, a second
	// host whose instance it stops naming, a host that will be deleted
	// while an instance still names it, and a delete of an entity the
	// graph does not know (a tombstone).
	apply(l.upsert(hour0, "nova", res("nova.host", "h1", "ok", out("contains", "nova.instance", "i1"))))
	apply(l.upsert(hour0.Add(time.Second), "nova", res("nova.instance", "i1", "ACTIVE")))
	apply(l.upsert(hour0.Add(2*time.Second), "prom", alarm("prometheus", "a1", "critical", out("on", "nova.instance", "i1"))))
	apply(l.upsert(hour0.Add(3*time.Second), "nova", res("nova.host", "h2", "ok", out("contains", "nova.instance", "i2"))))
	apply(l.upsert(hour0.Add(4*time.Second), "nova", res("nova.host", "hd", "ok")))
	apply(l.upsert(hour0.Add(5*time.Second), "nova", res("nova.instance", "id", "ACTIVE", in("contains", "nova.host", "hd"))))
	h1 := mustLookup(t, g, "", "nova.host", "h1").ID
	i1 := mustLookup(t, g, "", "nova.instance", "i1").ID
	a1 := mustLookup(t, g, CategoryAlarm, "prometheus", "a1").ID
	h2 := mustLookup(t, g, "", "nova.host", "h2").ID
	i2 := mustLookup(t, g, "", "nova.instance", "i2").ID
	hd := mustLookup(t, g, "", "nova.host", "hd").ID
	// Deleted at 10:00:1x: i1 (with its edges), the edge h2->i2
	// (retracted), hd (but id names it again: its edge is live), x.
	apply(l.del(hour0.Add(10*time.Second), "nova", "", "nova.instance", "i1"))
	apply(l.upsert(hour0.Add(11*time.Second), "nova", res("nova.host", "h2", "ok")))
	apply(l.del(hour0.Add(12*time.Second), "nova", "", "nova.host", "hd"))
	apply(l.upsert(hour0.Add(13*time.Second), "nova", res("nova.instance", "id", "ACTIVE", in("contains", "nova.host", "hd"))))
	apply(l.del(hour0.Add(14*time.Second), "nova", "", "nova.host", "x"))
	x := mustLookup(t, g, "", "nova.host", "x").ID
	// Three days later, h2 is deleted: within the retention at the end.
	apply(l.del(hour0.Add(72*time.Hour), "nova", "", "nova.host", "h2"))

	// Seven days and 12 s after the first record, in a new hour of log
	// time: what was deleted before 10:00:12 seven days earlier goes.
	week := hour0.Add(DeletedRetention)
	apply(l.tick(week.Add(12 * time.Second)))
	if _, ok := g.Vertex(i1); ok {
		t.Fatal("i1, deleted 7 days and 2 s ago, is still there")
	}
	if _, ok := g.Lookup("", "nova.instance", "i1"); ok {
		t.Fatal("the key of i1 still finds a vertex")
	}
	if _, ok := g.EdgeOf(h1, i1, "contains"); ok {
		t.Fatal("the edge h1->i1 of a purged vertex is still there")
	}
	if _, ok := g.EdgeOf(a1, i1, RelOn); ok {
		t.Fatal("the edge a1->i1 of a purged vertex is still there")
	}
	if _, ok := g.EdgeOf(h2, i2, "contains"); ok {
		t.Fatal("the retracted edge h2->i2, deleted 7 days and 1 s ago, is still there")
	}
	// Deleted 7 days less 2 s (x) and 4 days (h2) before: kept, as is
	// hd, which a live edge names.
	if v, ok := g.Vertex(x); !ok || !v.IsDeleted {
		t.Fatalf("x, deleted 7 days less 2 s ago, is gone or live: %+v", v)
	}
	if v, ok := g.Vertex(h2); !ok || !v.IsDeleted {
		t.Fatalf("h2, deleted 4 days ago, is gone or live: %+v", v)
	}
	if v, ok := g.Vertex(hd); !ok || !v.IsDeleted {
		t.Fatalf("hd, deleted but named by a live edge, is gone or live: %+v", v)
	}
	if err := checkInvariants(g); err != nil {
		t.Fatal(err)
	}

	// Later in the same hour, x is past the retention too: it stays until
	// a record starts the next hour.
	apply(l.tick(week.Add(30 * time.Minute)))
	if _, ok := g.Vertex(x); !ok {
		t.Fatal("x was purged by a record of the hour of the last purge")
	}
	apply(l.tick(week.Add(time.Hour)))
	if _, ok := g.Vertex(x); ok {
		t.Fatal("x is still there after a record of the next hour")
	}
	// i2, a placeholder that only the purged edge h2->i2 named, went
	// with it.
	if got := g.VertexIDs(); !slices.Equal(got, []VertexID{h1, a1, h2, hd, hd + 1}) {
		t.Fatalf("vertices after the purge %v; want %v", got, []VertexID{h1, a1, h2, hd, hd + 1})
	}
	if _, ok := g.Lookup("", "nova.instance", "i2"); ok {
		t.Fatal("the key of the placeholder i2, which nothing names, still finds a vertex")
	}
	if g.Len() != int(x) {
		t.Fatalf("Len %d; want the highest id given, %d", g.Len(), x)
	}
	if err := checkInvariants(g); err != nil {
		t.Fatal(err)
	}

	// Reported again, i1 is a new vertex with a new id: ids are not
	// reused. h1 names it again, and the alarm is on it again.
	apply(l.upsert(week.Add(time.Hour+time.Second), "nova", res("nova.instance", "i1", "ACTIVE")))
	apply(l.upsert(week.Add(time.Hour+2*time.Second), "nova", res("nova.host", "h1", "ok", out("contains", "nova.instance", "i1"))))
	apply(l.upsert(week.Add(time.Hour+3*time.Second), "prom", alarm("prometheus", "a1", "critical", out("on", "nova.instance", "i1"))))
	ni1 := mustLookup(t, g, "", "nova.instance", "i1")
	if ni1.ID <= x || ni1.IsDeleted || ni1.IsPlaceholder {
		t.Fatalf("i1 reported again: %+v; want a new live vertex past id %d", ni1, x)
	}
	if e := mustEdge(t, g, h1, ni1.ID, "contains"); e.IsDeleted {
		t.Fatal("h1->i1 is deleted")
	}
	if r, ok := g.AlarmResource(a1); !ok || r.ID != ni1.ID {
		t.Fatalf("a1 is on %+v; want the new i1", r)
	}
	if err := checkInvariants(g); err != nil {
		t.Fatal(err)
	}
}

// TestPurgeRoundTrip checks that a graph with holes in its ids goes
// through State and FromState, and a replay across a purge, unchanged.
func TestPurgeRoundTrip(t *testing.T) {
	var l tlog
	var recs []event.Record
	recs = append(recs,
		l.upsert(hour0, "nova", res("nova.host", "h1", "ok", out("contains", "nova.instance", "i1"))),
		l.upsert(hour0.Add(time.Second), "nova", res("nova.instance", "i1", "ACTIVE", out("attached", "cinder.volume", "v1"))),
		l.upsert(hour0.Add(2*time.Second), "prom", alarm("prometheus", "a1", "critical", out("on", "nova.instance", "i1"))),
		l.del(hour0.Add(3*time.Second), "nova", "", "nova.instance", "i1"),
		l.del(hour0.Add(4*time.Second), "prom", CategoryAlarm, "prometheus", "a1"),
		l.tick(hour0.Add(DeletedRetention+time.Hour)),
		l.upsert(hour0.Add(DeletedRetention+time.Hour+time.Second), "nova", res("nova.instance", "i1", "ACTIVE")),
		l.upsert(hour0.Add(DeletedRetention+2*time.Hour), "nova", res("nova.host", "h2", "ok")),
	)
	full := New(nil)
	for _, r := range recs {
		mustApply(t, full, r)
	}
	if n, want := len(full.VertexIDs()), full.Len()-3; n != want {
		t.Fatalf("%d vertices of %d ids; want the deleted i1 and a1 purged, and the placeholder v1 only i1 named", n, full.Len())
	}
	want := dump(t, full)
	for cut := range len(recs) + 1 {
		g := New(nil)
		for _, r := range recs[:cut] {
			mustApply(t, g, r)
		}
		restored, err := FromState(g.State(), nil)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if got, d := dump(t, restored), dump(t, g); got != d {
			t.Fatalf("cut %d: FromState(State()) dumps\n%s\nwant\n%s", cut, got, d)
		}
		for _, r := range recs[cut:] {
			mustApply(t, restored, r)
		}
		if got := dump(t, restored); got != want {
			t.Fatalf("cut %d: restored then replayed dumps\n%s\nwant\n%s", cut, got, want)
		}
		if err := checkInvariants(restored); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
	}
	// A state whose next id is past its vertices (the holes of purged
	// ones) is accepted; one past MaxStateID is not.
	s := full.State()
	s.NextID += 10
	if _, err := FromState(s, nil); err != nil {
		t.Fatalf("a state with holes past its last vertex: %v", err)
	}
	s.NextID = MaxStateID + 2
	if _, err := FromState(s, nil); err == nil {
		t.Fatal("a state with a next id past MaxStateID was accepted")
	}
}

func TestPurgeDue(t *testing.T) {
	h := int64(time.Hour)
	for _, c := range []struct {
		prev, now int64
		want      bool
	}{
		{0, 1, false},
		{0, h - 1, false},
		{h - 1, h, true},
		{h, 2*h - 1, false},
		{h, 5 * h, true},
		{-1, 0, true},
		{-h, -1, false},
		{5 * h, h, false}, // a record recorded before the previous one
	} {
		if got := purgeDue(c.prev, c.now); got != c.want {
			t.Errorf("purgeDue(%d, %d) = %v; want %v", c.prev, c.now, got, c.want)
		}
	}
}

// TestPurgeRemovesOrphanPlaceholders: a placeholder (a vertex a relation
// named, that no datasource reported) that nothing names any more once
// the deleted edges to it are purged is removed with them. It held
// nothing but its key: kept, every alarm ever raised on a resource no
// datasource reports (an Alertmanager alert on a short-lived pod) left a
// vertex behind for good, and the graph grew without bound however short
// the retention. A placeholder that a live edge, or a deleted one still
// within the retention, names stays; so does one reported since.
func TestPurgeRemovesOrphanPlaceholders(t *testing.T) {
	var l tlog
	g := New(nil)
	apply := func(r event.Record) { mustApply(t, g, r) }
	apply(l.upsert(hour0, "prom", alarm("prometheus", "a1", "critical", out("on", "k8s.pod", "p1"))))
	apply(l.upsert(hour0.Add(time.Second), "prom", alarm("prometheus", "a2", "critical", out("on", "k8s.pod", "p2"))))
	apply(l.upsert(hour0.Add(2*time.Second), "prom", alarm("prometheus", "a3", "critical", out("on", "k8s.pod", "p3"))))
	apply(l.upsert(hour0.Add(3*time.Second), "nova", res("nova.instance", "i1", "ACTIVE", in("contains", "nova.host", "h9"))))
	p1 := mustLookup(t, g, "", "k8s.pod", "p1").ID
	p2 := mustLookup(t, g, "", "k8s.pod", "p2").ID
	p3 := mustLookup(t, g, "", "k8s.pod", "p3").ID
	h9 := mustLookup(t, g, "", "nova.host", "h9").ID
	// a1 clears and p3 is reported by a datasource; i1 goes, and with it
	// the edge from the placeholder h9 (an edge of h9's own list).
	apply(l.del(hour0.Add(10*time.Second), "prom", CategoryAlarm, "prometheus", "a1"))
	apply(l.upsert(hour0.Add(11*time.Second), "k8s", res("k8s.pod", "p3", "Running")))
	apply(l.del(hour0.Add(12*time.Second), "prom", CategoryAlarm, "prometheus", "a3"))
	apply(l.del(hour0.Add(13*time.Second), "nova", "", "nova.instance", "i1"))
	// Three days later a2 clears: its edge to p2 is within the retention
	// at the end.
	apply(l.del(hour0.Add(72*time.Hour), "prom", CategoryAlarm, "prometheus", "a2"))
	apply(l.tick(hour0.Add(DeletedRetention + time.Hour)))

	for _, k := range []struct {
		typ, id string
		v       VertexID
	}{{"k8s.pod", "p1", p1}, {"nova.host", "h9", h9}} {
		if v, ok := g.Vertex(k.v); ok {
			t.Errorf("placeholder %s/%s, which nothing names since the purge, is still there: %+v", k.typ, k.id, v)
		}
		if _, ok := g.Lookup("", k.typ, k.id); ok {
			t.Errorf("the key of placeholder %s/%s still finds a vertex", k.typ, k.id)
		}
	}
	if v, ok := g.Vertex(p2); !ok || !v.IsPlaceholder {
		t.Errorf("placeholder p2, named by an edge deleted 4 days ago, is gone or no placeholder: %+v", v)
	}
	if v, ok := g.Vertex(p3); !ok || v.IsPlaceholder || v.IsDeleted {
		t.Errorf("p3, reported by a datasource, is gone or not live: %+v", v)
	}
	if got := g.Purged(); !slices.Contains(got, p1) || !slices.Contains(got, h9) || !slices.IsSorted(got) {
		t.Errorf("Purged() = %v; want p1 %d and h9 %d among them, sorted", got, p1, h9)
	}
	if err := checkInvariants(g); err != nil {
		t.Fatal(err)
	}

	// Named again, p1 is a new placeholder with a new id.
	apply(l.upsert(hour0.Add(DeletedRetention+time.Hour+time.Second), "prom", alarm("prometheus", "a1", "critical", out("on", "k8s.pod", "p1"))))
	if v := mustLookup(t, g, "", "k8s.pod", "p1"); v.ID <= h9 || !v.IsPlaceholder {
		t.Fatalf("p1 named again: %+v; want a new placeholder past id %d", v, h9)
	}
}

// TestPurgeCountsFromTheLastDelete: a delete of a deleted entity (a
// source that reports the clear again, a second service) renews its
// deletion, and the purge counts DeletedRetention from that one. It
// counted from the first (its update_timestamp stayed), so the vertex
// went 7 days after the first clear however recent the last, and an
// upsert observed before the last clear, recorded after the purge, raised
// the alarm again: its latest observation was a delete, within the
// retention.
func TestPurgeCountsFromTheLastDelete(t *testing.T) {
	var l tlog
	g := New(nil)
	apply := func(r event.Record) { mustApply(t, g, r) }
	apply(l.upsert(hour0, "prom", alarm("prometheus", "a1", "critical")))
	apply(l.del(hour0.Add(10*time.Second), "prom", CategoryAlarm, "prometheus", "a1"))
	a1 := mustLookup(t, g, CategoryAlarm, "prometheus", "a1").ID
	again := l.del(hour0.Add(5*24*time.Hour), "prom", CategoryAlarm, "prometheus", "a1")
	apply(again)
	if v, _ := g.Vertex(a1); !v.UpdateTimestamp.Equal(again.RecordedAt) {
		t.Errorf("after a second delete, update_timestamp %v; want the second delete's %v", v.UpdateTimestamp, again.RecordedAt)
	}
	// Eight days after the first clear, three after the second, a raise
	// observed a second before the second clear is recorded.
	stale := alarm("prometheus", "a1", "critical")
	r := l.upsert(hour0.Add(DeletedRetention+24*time.Hour), "prom", stale)
	r.Event.ObservedAt = again.Event.ObservedAt.Add(-time.Second)
	apply(r)
	v := mustLookup(t, g, CategoryAlarm, "prometheus", "a1")
	if v.ID != a1 || !v.IsDeleted {
		t.Fatalf("a raise observed before a clear 3 days old brought the alarm back: %+v (was vertex %d)", v, a1)
	}
	// Seven days after the second clear, it goes.
	apply(l.tick(again.RecordedAt.Add(DeletedRetention + time.Hour)))
	if _, ok := g.Vertex(a1); ok {
		t.Fatal("a1, deleted again 7 days and an hour ago, is still there")
	}
}
