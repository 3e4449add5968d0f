package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
)

// pagedGraph is n resources and n alarms, interleaved by vitrage_id
// (resource 0, alarm 1, resource 2, ...), every fifth alarm cleared.
func pagedGraph(n int) *fakeGraph {
	g := &fakeGraph{vs: map[graph.VertexID]graph.Vertex{}}
	for i := range n {
		r, a := graph.VertexID(2*i), graph.VertexID(2*i+1)
		g.vs[r] = graph.Vertex{ID: r, Category: graph.CategoryResource, Type: "nova.host", ExternalID: fmt.Sprint("host-", i)}
		g.vs[a] = graph.Vertex{ID: a, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: fmt.Sprint("alarm-", i), IsDeleted: i%5 == 4}
	}
	return g
}

func pagingServer(t *testing.T, b *fakeBackend, maxPage int) *httptest.Server {
	t.Helper()
	s, err := New(Config{Listen: "127.0.0.1:0", MaxPageSize: maxPage, Tokens: []Token{{Token: "read-token", Role: RoleReader}}},
		b, Deps{NodeID: "n1", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func getPage(t *testing.T, ts *httptest.Server, path string) ResourcesResponse {
	t.Helper()
	resp, body := do(t, ts, "GET", path, "read-token", "", "")
	var page ResourcesResponse
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s (%v)", path, resp.StatusCode, body, err)
	}
	return page
}

// TestListPages: a list of n entities read with limit k, each page from
// the marker the one before gave, is each entity once, ascending by
// vitrage_id, every page saying the seq it reflects; the last says no
// next marker. An unpaged request is the first page of max_page_size.
func TestListPages(t *testing.T) {
	const n = 23
	ts := pagingServer(t, &fakeBackend{g: pagedGraph(n), seq: 41}, 1000)
	for _, tc := range []struct {
		path string
		want []string // vitrage_ids, in order
	}{
		{"/v1/resources", evens(n)},
		{"/v1/alarms", openAlarms(n)},
		{"/v1/alarms?all=true", odds(n)},
	} {
		for _, k := range []int{1, 4, 5, n, 3 * n} {
			var got []string
			marker, pages := "", 0
			for {
				sep := "?"
				if strings.Contains(tc.path, "?") {
					sep = "&"
				}
				path := tc.path + sep + "limit=" + strconv.Itoa(k)
				if marker != "" {
					path += "&marker=" + marker
				}
				page := getPage(t, ts, path)
				pages++
				if page.Seq != 41 {
					t.Errorf("%s: seq %d; want 41", path, page.Seq)
				}
				if len(page.Items) > k {
					t.Fatalf("%s: %d items over the limit %d", path, len(page.Items), k)
				}
				for _, it := range page.Items {
					got = append(got, it.VitrageID)
				}
				if page.Next == "" {
					break
				}
				if page.Next != page.Items[len(page.Items)-1].VitrageID {
					t.Fatalf("%s: next %q is not the page's last id %q", path, page.Next, page.Items[len(page.Items)-1].VitrageID)
				}
				if pages > 3*n {
					t.Fatalf("%s: paging does not end", tc.path)
				}
				marker = page.Next
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("%s by %d: got %v; want %v", tc.path, k, got, tc.want)
			}
			if wantPages := max(1, (len(tc.want)+k-1)/k); pages != wantPages {
				t.Errorf("%s by %d: %d pages; want %d", tc.path, k, pages, wantPages)
			}
		}
	}

	// Unpaged, and a limit over the bound: a page of max_page_size, and
	// its next marker.
	ts = pagingServer(t, &fakeBackend{g: pagedGraph(n), seq: 41}, 4)
	for _, path := range []string{"/v1/resources", "/v1/resources?limit=100"} {
		page := getPage(t, ts, path)
		if ids := vitrageIDs(page); ids != "0,2,4,6" || page.Next != "6" {
			t.Errorf("%s with max_page_size 4: %s, next %q; want 0,2,4,6, next \"6\"", path, ids, page.Next)
		}
	}
}

// TestListMarkerOfAVanishedEntity: the marker of an entity gone between
// pages (purged, or now filtered out) still pages on, after its place in
// the order of vitrage_ids.
func TestListMarkerOfAVanishedEntity(t *testing.T) {
	g := pagedGraph(10)
	ts := pagingServer(t, &fakeBackend{g: g, seq: 7}, 1000)
	first := getPage(t, ts, "/v1/resources?limit=3")
	if ids := vitrageIDs(first); ids != "0,2,4" || first.Next != "4" {
		t.Fatalf("first page %s, next %q", ids, first.Next)
	}
	// The graph moves on: resource 4 is purged, 6 deleted.
	moved := &fakeGraph{vs: maps.Clone(g.vs)}
	delete(moved.vs, 4)
	v := moved.vs[6]
	v.IsDeleted = true
	moved.vs[6] = v
	ts2 := pagingServer(t, &fakeBackend{g: moved, seq: 9}, 1000)
	second := getPage(t, ts2, "/v1/resources?limit=3&marker="+first.Next)
	if ids := vitrageIDs(second); ids != "8,10,12" || second.Next != "12" || second.Seq != 9 {
		t.Errorf("after the vanished marker: %s, next %q, seq %d; want 8,10,12, next \"12\", seq 9", ids, second.Next, second.Seq)
	}
	// A marker past every id: an empty last page.
	for _, marker := range []string{"1000", "9223372036854775807"} {
		last := getPage(t, ts2, "/v1/resources?marker="+marker)
		if len(last.Items) != 0 || last.Next != "" {
			t.Errorf("marker %s, past the end: %s, next %q; want nothing", marker, vitrageIDs(last), last.Next)
		}
	}
}

// TestListBadPaging: a limit or marker that is not one is a 400 naming
// it, not a list.
func TestListBadPaging(t *testing.T) {
	ts := pagingServer(t, &fakeBackend{g: pagedGraph(3), seq: 7}, 1000)
	for _, tc := range []struct{ query, want string }{
		{"limit=0", "limit"}, {"limit=-2", "limit"}, {"limit=x", "limit"}, {"limit=", "limit"}, {"limit=1.5", "limit"},
		{"marker=x", "marker"}, {"marker=-1", "marker"}, {"marker=", "marker"}, {"marker=host-1", "marker"},
	} {
		for _, path := range []string{"/v1/resources?", "/v1/alarms?"} {
			resp, body := do(t, ts, "GET", path+tc.query, "read-token", "", "")
			var e ErrorResponse
			if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || !strings.HasPrefix(e.Error, tc.want+":") {
				t.Errorf("%s%s: %d %s; want 400 saying %s", path, tc.query, resp.StatusCode, body, tc.want)
			}
		}
	}
}

func TestConfigRefusesANegativePageSize(t *testing.T) {
	c := Config{Listen: "127.0.0.1:0", MaxPageSize: -1, Tokens: []Token{{Token: "t", Role: RoleReader}}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_page_size") {
		t.Errorf("max_page_size -1: %v; want an error naming it", err)
	}
}

func vitrageIDs(p ResourcesResponse) string {
	ids := make([]string, len(p.Items))
	for i, it := range p.Items {
		ids[i] = it.VitrageID
	}
	return strings.Join(ids, ",")
}

func evens(n int) []string {
	var s []string
	for i := range n {
		s = append(s, strconv.Itoa(2*i))
	}
	return s
}

func odds(n int) []string {
	var s []string
	for i := range n {
		s = append(s, strconv.Itoa(2*i+1))
	}
	return s
}

func openAlarms(n int) []string {
	var s []string
	for i := range n {
		if i%5 != 4 {
			s = append(s, strconv.Itoa(2*i+1))
		}
	}
	return s
}
