package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
)

// movingBackend is a Backend whose graph moves on a seq at each read.
type movingBackend struct {
	*apitest.Backend
	seq atomic.Int64
}

func (b *movingBackend) View(fn func(api.View, int64) error) error {
	return fn(b.G, b.seq.Add(1))
}

// pagedAPI serves n resources and n alarms (interleaved by vitrage_id)
// with pages of at most maxPage, and counts the list requests by path.
func pagedAPI(t *testing.T, n, maxPage int, moving ...bool) (string, func(path string) int) {
	t.Helper()
	g := &apitest.Graph{Vertices: map[graph.VertexID]graph.Vertex{}}
	for i := range n {
		r, a := graph.VertexID(2*i), graph.VertexID(2*i+1)
		g.Vertices[r] = graph.Vertex{ID: r, Category: graph.CategoryResource, Type: "nova.host", ExternalID: fmt.Sprint("host-", i)}
		g.Vertices[a] = graph.Vertex{ID: a, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: fmt.Sprint("alarm-", i), Name: fmt.Sprint("alarm <", i, ">")}
	}
	var b api.Backend = &apitest.Backend{G: g, Seq: 12, Leader: "p1"}
	if len(moving) > 0 && moving[0] {
		b = &movingBackend{Backend: b.(*apitest.Backend)}
	}
	s, err := api.New(api.Config{Listen: "127.0.0.1:0", MaxPageSize: maxPage, Tokens: []api.Token{{Token: "rd", Role: api.RoleReader}}}, b, api.Deps{NodeID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	requests := map[string]int{}
	h := s.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.URL.Path]++
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return requests[path]
	}
}

// TestListsFollowPages: `resources list` and `alarms list` read a list
// of many pages page by page and print it whole, each entity once, in
// order: the table, and the JSON the unpaged answer of one page would be.
func TestListsFollowPages(t *testing.T) {
	const n = 10
	url, requests := pagedAPI(t, n, 3)
	whole, _ := pagedAPI(t, n, 1000)
	for _, tc := range []struct {
		cmd, path, id string
		step          int
	}{
		{"resources", "/v1/resources", "host-", 0},
		{"alarms", "/v1/alarms", "alarm <", 1},
	} {
		before := requests(tc.path)
		out, err := runCLI(t, newRootCmd(), tc.cmd, "list", "--url", url, "--token", "rd")
		if err != nil {
			t.Fatalf("%s list: %v\n%s", tc.cmd, err, out)
		}
		if got, want := requests(tc.path)-before, (n+2)/3; got != want {
			t.Errorf("%s list: %d requests; want %d pages", tc.cmd, got, want)
		}
		var ids []string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 && regexp.MustCompile(`^[0-9]+$`).MatchString(f[0]) {
				ids = append(ids, f[0])
			}
		}
		var want []string
		for i := range n {
			want = append(want, fmt.Sprint(2*i+tc.step))
		}
		if strings.Join(ids, ",") != strings.Join(want, ",") {
			t.Errorf("%s list table: rows %v; want %v\n%s", tc.cmd, ids, want, out)
		}
		if strings.Count(out, "VITRAGE_ID") != 1 || !strings.HasSuffix(out, "(seq 12 on node p1; leader p1)\n") {
			t.Errorf("%s list table: not one header and the seq at the end:\n%s", tc.cmd, out)
		}

		paged, err := runCLI(t, newRootCmd(), tc.cmd, "list", "-o", "json", "--url", url, "--token", "rd")
		if err != nil {
			t.Fatal(err)
		}
		one, err := runCLI(t, newRootCmd(), tc.cmd, "list", "-o", "json", "--url", whole, "--token", "rd")
		if err != nil {
			t.Fatal(err)
		}
		if paged != one || !strings.Contains(one, `"vitrage_id": "`+want[n-1]+`"`) || strings.Contains(one, `"next"`) {
			t.Errorf("%s list -o json by pages of 3:\n%s\nwant, as one page:\n%s", tc.cmd, paged, one)
		}
	}
}

// TestListJSONOfNothing: an empty list prints an empty items array, as
// the API answers it.
func TestListJSONOfNothing(t *testing.T) {
	url, _ := pagedAPI(t, 0, 3)
	out, err := runCLI(t, newRootCmd(), "alarms", "list", "-o", "json", "--url", url, "--token", "rd")
	var want bytes.Buffer
	_ = api.WriteJSON(&want, api.ResourcesResponse{Meta: api.Meta{Seq: 12, Leader: "p1", Node: "p1"}, Items: []api.Resource{}})
	if err != nil || out != want.String() {
		t.Errorf("alarms list -o json of none: %v\n%s\nwant\n%s", err, out, want.String())
	}
}

// TestListSaysTheGraphMovedBetweenPages: when the pages of a list reflect
// different seqs, the table says from which to which, and so does a
// warning (with -o json, whose seq is the first page's).
func TestListSaysTheGraphMovedBetweenPages(t *testing.T) {
	url, _ := pagedAPI(t, 7, 3, true)
	out, err := runCLI(t, newRootCmd(), "resources", "list", "--url", url, "--token", "rd")
	if err != nil || !strings.Contains(out, "warning: the graph moved from seq 1 to 3") || !strings.HasSuffix(out, "(seq 1 to 3 on node p1; leader p1: the graph moved from seq 1 to 3 while the list was read, a page at a time: an entity is listed as of its page's seq)\n") {
		t.Errorf("resources list over a moving graph: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	root := newRootCmd()
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"alarms", "list", "-o", "json", "--url", url, "--token", "rd"})
	if err := root.Execute(); err != nil || !strings.Contains(stdout.String(), `"seq": 4,`) || !strings.Contains(stderr.String(), "moved from seq 4 to 6") {
		t.Errorf("alarms list -o json over a moving graph: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	var v api.ResourcesResponse
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil || len(v.Items) != 7 {
		t.Errorf("alarms list -o json over a moving graph: %v, %d items; want 7", err, len(v.Items))
	}
}
