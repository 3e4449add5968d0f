package api

import (
	"bytes"
	"testing"

	"github.com/causeway/causeway/graph"
)

// TestGraphJSONStreamsWriteJSON: a graph answer written a node and a link
// at a time is WriteJSON's of the whole answer, byte for byte (HTML
// escaping, empty lists, an RCA's inspected index included).
func TestGraphJSONStreamsWriteJSON(t *testing.T) {
	g := sampleGraph()
	v := g.vs[3]
	v.Name, v.Properties = "nic <down> & \"out\"", map[string]string{"a<b": "\u2028x"}
	g.vs[3] = v
	full := nodeLink(g, g.VertexIDs(), func(graph.Edge) bool { return true })
	two := 2
	for name, gr := range map[string]Graph{
		"full":      full,
		"empty":     {Directed: true, Multigraph: true, Nodes: []Resource{}, Links: []Link{}},
		"inspected": {Directed: true, Multigraph: true, Nodes: full.Nodes, Links: full.Links, InspectedIndex: &two},
	} {
		resp := TopologyResponse{Meta: Meta{Seq: 7, Leader: "n<2>", Node: "n1"}, Graph: &gr}
		var want, got bytes.Buffer
		if err := WriteJSON(&want, resp); err != nil {
			t.Fatal(err)
		}
		if err := writeGraphJSON(&got, resp.Meta, &gr); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: streamed\n%s\nwant\n%s", name, got.String(), want.String())
		}
	}
}
