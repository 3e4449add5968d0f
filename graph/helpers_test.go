package graph

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// logb builds records with dense seqs; RecordedAt is t0 + seq seconds.
type logb struct {
	seq  int64
	recs []event.Record
}

func (l *logb) add(ev event.Event) event.Record {
	l.seq++
	ev.V = event.Version
	ev.EventID = fmt.Sprintf("e%d", l.seq)
	r := event.Record{Seq: l.seq, RecordedAt: at(int(l.seq)), Event: ev}
	l.recs = append(l.recs, r)
	return r
}

func (l *logb) upsert(src string, obs int, e event.Entity) event.Record {
	return l.add(event.Event{Source: src, Kind: event.KindEntityUpsert, ObservedAt: at(obs), Entity: &e})
}

func (l *logb) del(src string, obs int, cat, typ, id string) event.Record {
	return l.add(event.Event{Source: src, Kind: event.KindEntityDelete, ObservedAt: at(obs),
		Entity: &event.Entity{Category: cat, Type: typ, ID: id}})
}

func (l *logb) sync(kind event.Kind, src, id string) event.Record {
	return l.add(event.Event{Source: src, Kind: kind, ObservedAt: at(int(l.seq + 1)), Sync: &event.Sync{ID: id}})
}

func (l *logb) tick() event.Record {
	return l.add(event.Event{Source: "clock", Kind: event.KindTick, ObservedAt: at(int(l.seq + 1))})
}

func res(typ, id, state string, rels ...event.Relation) event.Entity {
	return event.Entity{Category: event.CategoryResource, Type: typ, ID: id, Name: id, State: state, Relations: rels}
}

func alarm(typ, id, sev string, rels ...event.Relation) event.Entity {
	return event.Entity{Category: event.CategoryAlarm, Type: typ, ID: id, Name: id, Severity: sev, Relations: rels}
}

func out(rel, typ, id string) event.Relation {
	return event.Relation{Relationship: rel, Type: typ, ID: id, Direction: event.Out}
}

func in(rel, typ, id string) event.Relation {
	return event.Relation{Relationship: rel, Type: typ, ID: id, Direction: event.In}
}

func mustApply(t testing.TB, g *Graph, r event.Record) []Change {
	t.Helper()
	ch, err := g.Apply(r)
	if err != nil {
		t.Fatalf("apply seq %d: %v", r.Seq, err)
	}
	return ch
}

func mustLookup(t testing.TB, g *Graph, cat, typ, id string) Vertex {
	t.Helper()
	vid, ok := g.Lookup(cat, typ, id)
	if !ok {
		t.Fatalf("no vertex %s/%s/%s", cat, typ, id)
	}
	v, _ := g.Vertex(vid)
	return v
}

func mustEdge(t testing.TB, g *Graph, from, to VertexID, rel string) Edge {
	t.Helper()
	e, ok := g.EdgeOf(from, to, rel)
	if !ok {
		t.Fatalf("no edge %d -%s-> %d", from, rel, to)
	}
	return e
}

func dump(t testing.TB, g *Graph) string {
	t.Helper()
	var b bytes.Buffer
	if err := g.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func opsOf(ch []Change) []string {
	var s []string
	for _, c := range ch {
		switch {
		case c.Vertex != nil:
			s = append(s, fmt.Sprintf("%s %d", c.Op, c.Vertex.ID))
		case c.Edge != nil:
			s = append(s, fmt.Sprintf("%s %d-%s->%d", c.Op, c.Edge.From, c.Edge.Relationship, c.Edge.To))
		}
	}
	return s
}
