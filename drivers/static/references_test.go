package static

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/drivers/pull"
	"github.com/causeway/causeway/graph/graphtest"
	"github.com/causeway/causeway/internal/event"
)

const referencing = `metadata: {name: tor}
definitions:
  entities:
    - {static_id: sw, type: switch, id: tor-1, name: tor-switch-1, state: active, vendor: acme}
    - {static_id: h1, type: nova.host, id: compute-1}
    - {static_id: h2, type: nova.host, id: compute-2}
  relationships:
    - {source: sw, target: h1, relationship_type: attached}
    - {source: h2, target: sw, relationship_type: uses}
`

// TestResolveReferences: entries of a referenced type are not reported;
// their relationships are carried by the static source's own end.
func TestResolveReferences(t *testing.T) {
	top, err := Parse([]byte(referencing))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Resolve([]string{"nova.host"}, top)
	if err != nil {
		t.Fatal(err)
	}
	want := []event.Entity{{Category: event.CategoryResource, Type: "switch", ID: "tor-1", Name: "tor-switch-1", State: "active",
		Properties: map[string]string{"vendor": "acme"},
		Relations: []event.Relation{
			{Relationship: "attached", Category: event.CategoryResource, Type: "nova.host", ID: "compute-1", Direction: event.Out},
			{Relationship: "uses", Category: event.CategoryResource, Type: "nova.host", ID: "compute-2", Direction: event.In},
		}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entities (-want +got):\n%s", diff)
	}
	// Without references the static source owns the hosts too.
	if n := len(Entities(top)); n != 3 {
		t.Errorf("without references: %d entities; want 3", n)
	}

	for name, doc := range map[string]string{
		"attributes on a reference": `metadata: {name: x}
definitions:
  entities:
    - {static_id: h1, type: nova.host, id: compute-1, state: available}
`,
		"two references linked": `metadata: {name: x}
definitions:
  entities:
    - {static_id: h1, type: nova.host, id: compute-1}
    - {static_id: i1, type: nova.instance, id: vm-1}
  relationships:
    - {source: h1, target: i1, relationship_type: contains}
`,
	} {
		top, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := Resolve([]string{"nova.host", "nova.instance"}, top); !errors.Is(err, ErrReference) {
			t.Errorf("%s: err %v; want ErrReference", name, err)
		}
	}
}

// TestReferencedHostKeepsItsDatasource applies, on the graph, a host that
// nova reports and static pulls that link a switch to it: the host keeps
// nova's name, state and source, the switch's links reach it, and when
// the file no longer lists the switch the next pull deletes the switch
// and its links but not the host.
func TestReferencedHostKeepsItsDatasource(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	log := graphtest.New(t0)
	g := log.G
	apply := func(evs ...event.Event) { t.Helper(); log.Apply(t, evs...) }
	pull := func(doc string, slot int) {
		t.Helper()
		top, err := Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		ents, err := Resolve([]string{"nova.host"}, top)
		if err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Duration(slot) * time.Minute)
		evs, err := pull.Events("static", at, at, ents)
		if err != nil {
			t.Fatal(err)
		}
		apply(evs...)
	}
	apply(event.Event{V: event.Version, EventID: "nova-h1", Source: "nova", Kind: event.KindEntityUpsert, ObservedAt: t0,
		Entity: &event.Entity{Type: "nova.host", ID: "compute-1", Name: "compute-1.example", State: "available",
			Properties: map[string]string{"aggregate": "gold"}}})
	pull(referencing, 1)

	host, _ := g.Lookup("", "nova.host", "compute-1")
	sw, _ := g.Lookup("", "switch", "tor-1")
	v, _ := g.Vertex(host)
	if v.Name != "compute-1.example" || v.State != "available" || v.Source != "nova" || v.Properties["aggregate"] != "gold" {
		t.Fatalf("host after the static pull: %+v; want nova's", v)
	}
	if e, ok := g.EdgeOf(sw, host, "attached"); !ok || e.IsDeleted {
		t.Fatalf("switch -attached-> host: %+v, %v; want a live edge", e, ok)
	}
	h2, _ := g.Lookup("", "nova.host", "compute-2")
	if v, _ := g.Vertex(h2); !v.IsPlaceholder {
		t.Errorf("compute-2, not reported by nova yet: %+v; want a placeholder", v)
	}
	if e, ok := g.EdgeOf(h2, sw, "uses"); !ok || e.IsDeleted {
		t.Errorf("compute-2 -uses-> switch: %+v, %v; want a live edge", e, ok)
	}

	pull(`metadata: {name: tor}
definitions:
  entities:
    - {static_id: other, type: switch, id: tor-9, name: tor-switch-9, state: active}
`, 2)
	if v, _ := g.Vertex(sw); !v.IsDeleted {
		t.Error("the switch the file no longer lists is not deleted")
	}
	if e, _ := g.EdgeOf(sw, host, "attached"); !e.IsDeleted {
		t.Error("the removed switch's link to the host is not deleted")
	}
	if v, _ := g.Vertex(host); v.IsDeleted || v.Source != "nova" || v.Name != "compute-1.example" {
		t.Errorf("host after the switch was removed: %+v; want nova's host, live", v)
	}
}
