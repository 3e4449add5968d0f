package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/graph"
)

// cloud: cluster(0) contains zone(1) contains host(2) and host(3); host 2
// contains vm(4), host 3 contains vm(5) and vm(4) (a second parent);
// switch(6) attached to host 2; alarm(7) on host 2; vm(8) in host 3 by a
// deleted edge.
func cloud() *fakeGraph {
	res := func(id graph.VertexID, typ, ext string) graph.Vertex {
		return graph.Vertex{ID: id, Category: graph.CategoryResource, Type: typ, ExternalID: ext}
	}
	return &fakeGraph{
		vs: map[graph.VertexID]graph.Vertex{
			0: res(0, graph.ClusterType, "cluster"), 1: res(1, "nova.zone", "zone"),
			2: res(2, "nova.host", "h2"), 3: res(3, "nova.host", "h3"),
			4: res(4, "nova.instance", "vm4"), 5: res(5, "nova.instance", "vm5"),
			6: res(6, "switch", "sw"),
			7: {ID: 7, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: "a7"},
			8: res(8, "nova.instance", "vm8"),
		},
		edges: []graph.Edge{
			{From: 0, To: 1, Relationship: "contains"},
			{From: 1, To: 3, Relationship: "contains"},
			{From: 1, To: 2, Relationship: "contains"},
			{From: 3, To: 5, Relationship: "contains"},
			{From: 3, To: 4, Relationship: "contains"},
			{From: 2, To: 4, Relationship: "contains"},
			{From: 6, To: 2, Relationship: "attached"},
			{From: 7, To: 2, Relationship: "on"},
			{From: 3, To: 8, Relationship: "contains", IsDeleted: true},
		},
	}
}

// flat lists a tree as "parent>child" pairs, depth first.
func flat(t Tree) []string {
	var out []string
	for _, c := range t.Children {
		out = append(out, t.ID+">"+c.ID)
		out = append(out, flat(c)...)
	}
	return out
}

// TestComputeTopologyTree pins the tree semantics of Vitrage (every
// relationship, outgoing, each vertex once) that the live API and
// `topology show --at` share: the old live tree followed `contains` only,
// so a tree from a switch or an alarm stopped at its root.
func TestComputeTopologyTree(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    TopologyQuery
		want []string
	}{
		{"from the cluster", TopologyQuery{GraphType: "tree"},
			[]string{"cluster>zone", "zone>h2", "h2>vm4", "zone>h3", "h3>vm5"}},
		{"depth 2", TopologyQuery{GraphType: "tree", Depth: 2},
			[]string{"cluster>zone", "zone>h2", "zone>h3"}},
		{"from a switch, across attached", TopologyQuery{GraphType: "tree", Root: "6"},
			[]string{"sw>h2", "h2>vm4"}},
		{"from an alarm, across on", TopologyQuery{GraphType: "tree", Root: "7", Category: "all"},
			[]string{"a7>h2", "h2>vm4"}},
		{"alarms are not under their resource", TopologyQuery{GraphType: "tree", Root: "2", Category: "all"},
			[]string{"h2>vm4"}},
		{"deleted edges with all", TopologyQuery{GraphType: "tree", Root: "3", All: true},
			[]string{"h3>vm4", "h3>vm5", "h3>vm8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r TopologyResponse
			if err := ComputeTopology(cloud(), tc.q, &r); err != nil {
				t.Fatal(err)
			}
			if r.Tree == nil || r.Graph != nil {
				t.Fatalf("tree %v, graph %v", r.Tree, r.Graph)
			}
			if diff := cmp.Diff(flat(*r.Tree), tc.want); diff != "" {
				t.Errorf("tree (-got +want):\n%s", diff)
			}
		})
	}
}

func TestComputeTopologyRefuses(t *testing.T) {
	for _, tc := range []struct {
		q    TopologyQuery
		want error
	}{
		{TopologyQuery{Depth: 1}, ErrBadQuery}, // Vitrage: a graph's depth needs a root
		{TopologyQuery{Depth: -1, Root: "0"}, ErrBadQuery},
		{TopologyQuery{GraphType: "forest"}, ErrBadQuery},
		{TopologyQuery{Category: "x"}, ErrBadQuery},
		{TopologyQuery{Root: "x"}, ErrBadQuery},
		{TopologyQuery{Root: "99"}, ErrNotFound},
		{TopologyQuery{Root: "7"}, ErrNotFound}, // an alarm, filtered out of RESOURCE
		{TopologyQuery{GraphType: "tree", Category: "ALARM"}, ErrNotFound},
	} {
		var r TopologyResponse
		if err := ComputeTopology(cloud(), tc.q, &r); !errors.Is(err, tc.want) {
			t.Errorf("%+v: err = %v, want %v", tc.q, err, tc.want)
		}
	}
	// A tree takes a depth without a root (from the cluster).
	var r TopologyResponse
	if err := ComputeTopology(cloud(), TopologyQuery{GraphType: "tree", Depth: 1}, &r); err != nil || r.Tree == nil {
		t.Errorf("tree of depth 1: %v", err)
	}
}

// TestPastRefusedWhereLiveOnly: ?at= and ?seq= were ignored everywhere
// but /v1/rca, answering a question about the past with the live graph.
func TestPastRefusedWhereLiveOnly(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 1})
	for _, path := range []string{"/v1/topology", "/v1/resources", "/v1/resources/count", "/v1/resources/1",
		"/v1/alarms", "/v1/alarms/count", "/v1/alarms/3"} {
		for _, p := range []string{"at=-1h", "seq=1"} {
			resp, body := do(t, ts, "GET", path+"?"+p, "read-token", "", "")
			name := p[:strings.Index(p, "=")]
			if resp.StatusCode != 400 || !strings.Contains(string(body), name+": ") || !strings.Contains(string(body), "/v1/rca/{id}?"+name+"=") {
				t.Errorf("GET %s?%s: %d %s; want 400 naming %s and where it is answered", path, p, resp.StatusCode, body, name)
			}
		}
	}
	resp, body := do(t, ts, "POST", "/v1/topology?at=-1h", "read-token", "application/json", `{}`)
	if resp.StatusCode != 400 {
		t.Errorf("POST /v1/topology?at=: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, ts, "GET", "/v1/rca/4?seq=1", "read-token", "", ""); resp.StatusCode == 400 {
		t.Errorf("/v1/rca?seq= refused")
	}
}

// TestPlaceholdersLeftOut: a vertex referenced before its datasource
// reported it was listed and counted as a resource and shown in the
// topology; Vitrage's queries leave vitrage_is_placeholder out. all=true
// shows it.
func TestPlaceholdersLeftOut(t *testing.T) {
	g := sampleGraph()
	g.vs[7] = graph.Vertex{ID: 7, Category: graph.CategoryResource, Type: "nova.host", ExternalID: "ghost", IsPlaceholder: true}
	g.edges = append(g.edges, graph.Edge{From: 7, To: 2, Relationship: "contains"})
	ts := newTestServer(t, &fakeBackend{g: g, seq: 1})
	has := func(path string) (bool, int) {
		resp, body := do(t, ts, "GET", path, "read-token", "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		var v struct {
			Items []Resource     `json:"items"`
			Total int            `json:"total"`
			Graph *Graph         `json:"graph"`
			Tree  *Tree          `json:"tree"`
			Count map[string]int `json:"counts"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		nodes := v.Items
		if v.Graph != nil {
			nodes = v.Graph.Nodes
		}
		for _, n := range nodes {
			if n.ID == "ghost" {
				return true, v.Total
			}
		}
		return false, v.Total
	}
	for _, path := range []string{"/v1/resources", "/v1/topology", "/v1/topology?root=2&depth=1"} {
		if got, _ := has(path); got {
			t.Errorf("%s lists the placeholder", path)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		if got, _ := has(path + sep + "all=true"); !got {
			t.Errorf("%s%sall=true leaves the placeholder out", path, sep)
		}
	}
	if _, n := has("/v1/resources/count"); n != 3 {
		t.Errorf("resource count %d, want 3 (the placeholder left out)", n)
	}
	if _, n := has("/v1/resources/count?all=true"); n != 4 {
		t.Errorf("resource count with all=true %d, want 4", n)
	}
}

// chain is n switches, each containing the next: a tree of n levels.
func chain(n int) *fakeGraph {
	g := &fakeGraph{vs: map[graph.VertexID]graph.Vertex{}}
	for i := range n {
		id := graph.VertexID(i)
		g.vs[id] = graph.Vertex{ID: id, Category: graph.CategoryResource, Type: "switch", ExternalID: fmt.Sprint("sw-", i), Name: fmt.Sprint("sw-", i), OperationalState: "OK", UpdateTimestamp: t0}
		if i > 0 {
			g.edges = append(g.edges, graph.Edge{From: id - 1, To: id, Relationship: "contains"})
		}
	}
	return g
}

// TestDeepTreeAnswerIsLinear: the answer of a deep tree grows with its
// vertices, not with their square. Indented a level a nesting, a chain of
// 1000 switches was answered in 26 MB (250 KB compact), 3000 in 235 MB
// (760 KB) with 1.9 GB allocated: a reader's request made the node
// allocate in the square of the graph's depth. The indentation stops
// growing past MaxIndentDepth nestings.
func TestDeepTreeAnswerIsLinear(t *testing.T) {
	size := map[int]int{}
	for _, n := range []int{1000, 2000} {
		ts := newTestServer(t, &fakeBackend{g: chain(n), seq: 7})
		resp, body := do(t, ts, "GET", "/v1/topology?graph_type=tree&root=0", "read-token", "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("tree: %d %s", resp.StatusCode, body[:min(len(body), 300)])
		}
		var r TopologyResponse
		if err := json.Unmarshal(body, &r); err != nil || r.Tree == nil {
			t.Fatalf("decode the tree: %v", err)
		}
		depth := 0
		for n := r.Tree; len(n.Children) > 0; n = &n.Children[0] {
			depth++
		}
		if depth != n-1 {
			t.Errorf("the tree answered is %d deep; want %d", depth, n-1)
		}
		size[n] = len(body)
	}
	if size[2000] > 5*size[1000]/2 {
		t.Errorf("a tree of 1000 levels answered in %d bytes, of 2000 in %d: its size grows with the square of its depth", size[1000], size[2000])
	}
}
