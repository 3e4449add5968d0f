package api

import (
	"fmt"
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/graphtest"
	"github.com/causeway/causeway/internal/event"
)

// TestRCAOfTheGraphIsBounded answers from a real graph.Graph (the
// production path, graph.RCA): alarms in fully linked layers have 8^3
// shortest paths to the last one; the answer lists MaxRCAPaths of them and
// says it left some out.
func TestRCAOfTheGraphIsBounded(t *testing.T) {
	log := graphtest.New(t0)
	upsert := func(category, typ, id string, rels ...event.Relation) graph.VertexID {
		t.Helper()
		log.Apply(t, event.Event{V: event.Version, EventID: typ + "/" + id, Source: "s", Kind: event.KindEntityUpsert, ObservedAt: t0,
			Entity: &event.Entity{Category: category, Type: typ, ID: id, Name: id, State: "OK", Severity: "warning", Relations: rels}})
		v, _ := log.G.Lookup(category, typ, id)
		return v
	}
	upsert(graph.CategoryResource, "nova.host", "h1")
	alarm := func(name string) graph.VertexID {
		return upsert(graph.CategoryAlarm, "prometheus", name, event.Relation{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out})
	}
	root, last := alarm("root"), alarm("last")
	prev := []graph.VertexID{root}
	for layer := 0; layer < 3; layer++ {
		var cur []graph.VertexID
		for i := 0; i < 8; i++ {
			cur = append(cur, alarm(fmt.Sprintf("l%d-%d", layer, i)))
		}
		for _, a := range prev {
			for _, b := range cur {
				log.G.SetCausal(a, b, true)
			}
		}
		prev = cur
	}
	for _, a := range prev {
		log.G.SetCausal(a, last, true)
	}
	var resp RCAResponse
	if !ComputeRCA(log.G, last, &resp) {
		t.Fatal("no RCA")
	}
	if len(resp.Paths) != MaxRCAPaths || !resp.PathsTruncated || len(resp.RootCauses) != 1 || len(resp.Graph.Nodes) != 2+3*8 {
		t.Errorf("%d paths, truncated %v, roots %v, %d alarms; want %d, true, [root], %d", len(resp.Paths), resp.PathsTruncated,
			resp.RootCauses, len(resp.Graph.Nodes), MaxRCAPaths, 2+3*8)
	}
}
