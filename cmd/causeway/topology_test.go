package main

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
)

// serveLive serves g, as a node whose graph is at seq would, and returns
// the API's URL.
func serveLive(t *testing.T, g *apitest.Graph, seq int64) string {
	t.Helper()
	s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "rd", Role: api.RoleReader}}},
		&apitest.Backend{G: g, Seq: seq, Leader: "p1"}, api.Deps{NodeID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// tableBody is a table without its closing "(seq ...)" line, which says
// where the answer came from (a node, or the database).
func tableBody(t *testing.T, out string) string {
	t.Helper()
	i := strings.LastIndex(out, "\n(seq ")
	if i < 0 {
		t.Fatalf("no (seq ...) line in\n%s", out)
	}
	return out[:i]
}

// TestTopologyLiveAndAtAgree: at several moments of a log, `topology show`
// answered live by the API (over the graph the live engine had then) and
// `topology show --at` rebuilt from the database print the same tree or
// graph, as JSON and as a table, for graphs and trees, from a root or not,
// to a depth, across relationships (a tree from an alarm goes on to its
// host's instances), and refuse the same queries.
func TestTopologyLiveAndAtAgree(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 4, Start: t0}
	r := newLogRig(t, s, 4, 15)
	checked := 0
	for i, m := range r.moments {
		if i%3 != 0 && i != len(r.moments)-1 {
			continue
		}
		url := serveLive(t, m.live, m.seq)
		var host, alarm string
		for _, id := range m.live.VertexIDs() {
			v := m.live.Vertices[id]
			if v.Type == "nova.host" && host == "" {
				host = strconv.FormatInt(int64(id), 10)
			}
			if v.Category == graph.CategoryAlarm && !v.IsDeleted && alarm == "" {
				alarm = strconv.FormatInt(int64(id), 10)
			}
		}
		if host == "" {
			t.Fatalf("scenario: no host at seq %d", m.seq)
		}
		queries := [][]string{
			{},
			{"--category", "all", "--all"},
			{"--category", "ALARM", "--all"},
			{"--root", host, "--depth", "1", "--category", "all"},
			{"--graph-type", "tree", "--root", host},
			{"--graph-type", "tree", "--root", host, "--depth", "1", "--category", "all"},
		}
		if alarm != "" {
			queries = append(queries, []string{"--graph-type", "tree", "--root", alarm, "--category", "all"})
		}
		at := m.at.Format(time.RFC3339Nano)
		for _, q := range queries {
			liveArgs := append([]string{"topology", "show", "--url", url, "--token", "rd"}, q...)
			atArgs := append([]string{"topology", "show", "--dsn", r.dsn, "--at", at}, q...)
			liveJSON, err := runCausewayCLI(t, append(liveArgs, "-o", "json")...)
			if err != nil {
				t.Fatalf("%v: %v", liveArgs, err)
			}
			atJSON, err := runCausewayCLI(t, append(atArgs, "-o", "json")...)
			if err != nil {
				t.Fatalf("%v: %v", atArgs, err)
			}
			var live api.TopologyResponse
			var past historicalTopology
			if err := json.Unmarshal([]byte(liveJSON), &live); err != nil {
				t.Fatalf("%v: %v\n%s", liveArgs, err, liveJSON)
			}
			if err := json.Unmarshal([]byte(atJSON), &past); err != nil {
				t.Fatalf("%v: %v\n%s", atArgs, err, atJSON)
			}
			if live.Seq != m.seq || past.Seq != m.seq || !past.Historical {
				t.Errorf("%v at seq %d: live seq %d, --at seq %d (historical %v)", q, m.seq, live.Seq, past.Seq, past.Historical)
			}
			if diff := cmp.Diff(past.TopologyResponse.Graph, live.Graph); diff != "" {
				t.Errorf("%v at seq %d: graph differs (-at +live):\n%s", q, m.seq, diff)
			}
			if diff := cmp.Diff(past.TopologyResponse.Tree, live.Tree); diff != "" {
				t.Errorf("%v at seq %d: tree differs (-at +live):\n%s", q, m.seq, diff)
			}
			liveTable, err := runCausewayCLI(t, liveArgs...)
			if err != nil {
				t.Fatalf("%v: %v", liveArgs, err)
			}
			atTable, err := runCausewayCLI(t, atArgs...)
			if err != nil {
				t.Fatalf("%v: %v", atArgs, err)
			}
			if lb, ab := tableBody(t, liveTable), tableBody(t, atTable); lb != ab {
				t.Errorf("%v at seq %d: tables differ:\nlive\n%s\n--at\n%s", q, m.seq, lb, ab)
			}
			checked++
		}
		// No openstack.cluster here: a tree without a root is refused both
		// ways, saying so.
		_, lerr := runCausewayCLI(t, "topology", "show", "--url", url, "--token", "rd", "--graph-type", "tree")
		_, aerr := runCausewayCLI(t, "topology", "show", "--dsn", r.dsn, "--at", at, "--graph-type", "tree")
		for _, err := range []error{lerr, aerr} {
			if err == nil || !strings.Contains(err.Error(), "no openstack.cluster vertex") {
				t.Errorf("tree without a root or cluster at seq %d: %v", m.seq, err)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d comparisons", checked)
	}
}

// TestTopologyTreeJSONIsLinear: `topology show --graph-type tree -o json`
// prints a deep tree in a size that grows with its vertices (api.WriteJSON),
// not with the square of its depth: the CLI indented a level a nesting,
// 26 MB for a chain of 1000 switches (250 KB compact), and the server's
// answer of a chain of some 3300 was over apiclient.MaxAnswerBytes, refused.
func TestTopologyTreeJSONIsLinear(t *testing.T) {
	size := map[int]int{}
	for _, n := range []int{1000, 2000} {
		g := &apitest.Graph{Vertices: map[graph.VertexID]graph.Vertex{}}
		for i := range n {
			id := graph.VertexID(i)
			g.Vertices[id] = graph.Vertex{ID: id, Category: graph.CategoryResource, Type: "switch", ExternalID: "sw-" + strconv.Itoa(i), Name: "sw-" + strconv.Itoa(i)}
			if i > 0 {
				g.Edges = append(g.Edges, graph.Edge{From: id - 1, To: id, Relationship: "contains"})
			}
		}
		url := serveLive(t, g, 5)
		out, err := runCLI(t, newRootCmd(), "topology", "show", "--url", url, "--token", "rd", "--graph-type", "tree", "--root", "0", "-o", "json")
		if err != nil {
			t.Fatalf("topology show: %v\n%.300s", err, out)
		}
		var r api.TopologyResponse
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Tree == nil {
			t.Fatalf("the output is no tree: %v", err)
		}
		size[n] = len(out)
		// The table too: each row keeps its vertex.
		out, err = runCLI(t, newRootCmd(), "topology", "show", "--url", url, "--token", "rd", "--graph-type", "tree", "--root", "0")
		if err != nil || !strings.Contains(out, "(level 999) switch sw-999 ") {
			t.Errorf("topology show as a table: %v; the row of level 999 is not whole", err)
		}
		size[-n] = len(out)
	}
	if size[-2000] > 5*size[-1000]/2 {
		t.Errorf("a tree of 1000 levels printed as a table in %d bytes, of 2000 in %d", size[-1000], size[-2000])
	}
	if size[2000] > 5*size[1000]/2 {
		t.Errorf("a tree of 1000 levels printed in %d bytes, of 2000 in %d: its size grows with the square of its depth", size[1000], size[2000])
	}
}
