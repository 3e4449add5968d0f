package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/event"
	"github.com/google/go-cmp/cmp"
)

// fakeGraph is a hand-written graph for the handlers.
type fakeGraph struct {
	vs    map[graph.VertexID]graph.Vertex
	edges []graph.Edge
	tmpls []Template
}

func (g *fakeGraph) VertexIDs() []graph.VertexID {
	var ids []graph.VertexID
	for id := range g.vs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
func (g *fakeGraph) Vertex(id graph.VertexID) (graph.Vertex, bool) { v, ok := g.vs[id]; return v, ok }
func (g *fakeGraph) Out(id graph.VertexID) []graph.Edge {
	var out []graph.Edge
	for _, e := range g.edges {
		if e.From == id {
			out = append(out, e)
		}
	}
	return out
}
func (g *fakeGraph) In(id graph.VertexID) []graph.Edge {
	var out []graph.Edge
	for _, e := range g.edges {
		if e.To == id {
			out = append(out, e)
		}
	}
	return out
}
func (g *fakeGraph) Templates() []Template { return g.tmpls }
func (g *fakeGraph) Subscriptions() []Subscription {
	return []Subscription{{ID: "ops", Seq: 4, Spec: json.RawMessage(`{"url":"http://hooks.example/ops"}`), Following: 3}}
}
func (g *fakeGraph) Following(id string) []string {
	if id != "ops" {
		return nil
	}
	return []string{"ALARM/prometheus/a", "ALARM/prometheus/b", "ALARM/prometheus/c"}
}

type fakeBackend struct {
	g         *fakeGraph
	seq       int64
	mu        sync.Mutex
	published []event.Event
	pubErr    error
	ready     bool
	recon     map[int64]*fakeGraph
	members   []Member
	leader    bool
	viewErr   error
	// dumpPart and dumpErr: the dump writes dumpPart, then fails with
	// dumpErr (nil: the dump is whole).
	dumpPart string
	dumpErr  error
	// dumpEntered, when set, is told as a dump begins to be written,
	// which then waits for dumpRelease.
	dumpEntered, dumpRelease chan struct{}
}

func (b *fakeBackend) View(fn func(View, int64) error) error {
	if b.viewErr != nil {
		return b.viewErr
	}
	return fn(b.g, b.seq)
}
func (b *fakeBackend) Status(context.Context) Status {
	return Status{NodeID: "n1", Role: "Follower", Leader: "n2", AppliedSeq: b.seq, Ready: b.ready}
}
func (b *fakeBackend) Dump() (func(io.Writer) error, int64, error) {
	return func(w io.Writer) error {
		if b.dumpEntered != nil {
			b.dumpEntered <- struct{}{}
			<-b.dumpRelease
		}
		if b.dumpErr != nil {
			if _, err := io.WriteString(w, b.dumpPart); err != nil {
				return err
			}
			return b.dumpErr
		}
		_, err := io.WriteString(w, `{"dump":true}`)
		return err
	}, b.seq, nil
}
func (b *fakeBackend) Reconstruct(_ context.Context, seq int64, at time.Time) (Past, error) {
	if !at.IsZero() {
		seq = 5
	}
	if seq == 88 {
		return Past{}, fmt.Errorf("%w: 2 historical queries are running", ErrBusy)
	}
	g, ok := b.recon[seq]
	if !ok {
		return Past{}, ErrNotFound
	}
	return Past{Graph: g, Seq: seq, RecordedAt: t0.Add(time.Duration(seq) * time.Second), StaleSemantics: seq == 5}, nil
}
func (b *fakeBackend) Publish(_ context.Context, evs ...event.Event) error {
	if b.pubErr != nil {
		return b.pubErr
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, evs...)
	return nil
}
func (b *fakeBackend) Cluster() ([]Member, error) { return b.members, nil }
func (b *fakeBackend) Join(id, addr string) error {
	if !b.leader {
		return ErrNotLeader
	}
	b.members = append(b.members, Member{ID: id, Address: addr, Suffrage: "Voter"})
	return nil
}
func (b *fakeBackend) Remove(id string) error {
	if !b.leader {
		return ErrNotLeader
	}
	b.members = slices.DeleteFunc(b.members, func(m Member) bool { return m.ID == id })
	return nil
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// sample: cluster(0) contains host(1) contains vm(2); alarm 3 on host,
// alarm 4 (deduced) on vm, 3 causes 4; alarm 5 deleted; 6 causes 3.
func sampleGraph() *fakeGraph {
	res := func(id graph.VertexID, typ, ext string) graph.Vertex {
		return graph.Vertex{ID: id, Category: graph.CategoryResource, Type: typ, ExternalID: ext, Name: ext, OperationalState: "OK", UpdateTimestamp: t0}
	}
	alarm := func(id graph.VertexID, typ, name, sev string, deleted bool) graph.Vertex {
		return graph.Vertex{ID: id, Category: graph.CategoryAlarm, Type: typ, ExternalID: name, Name: name, Severity: sev, OperationalState: sev, IsDeleted: deleted}
	}
	return &fakeGraph{
		vs: map[graph.VertexID]graph.Vertex{
			0: res(0, "openstack.cluster", "cluster"),
			1: res(1, "nova.host", "host-1"),
			2: res(2, "nova.instance", "vm-1"),
			3: alarm(3, "prometheus", "nic down", "CRITICAL", false),
			4: alarm(4, "vitrage", "instance down", "WARNING", false),
			5: alarm(5, "prometheus", "old", "WARNING", true),
			6: alarm(6, "prometheus", "switch down", "CRITICAL", false),
		},
		edges: []graph.Edge{
			{From: 0, To: 1, Relationship: "contains"},
			{From: 1, To: 2, Relationship: "contains"},
			{From: 3, To: 1, Relationship: "on"},
			{From: 4, To: 2, Relationship: "on"},
			{From: 3, To: 4, Relationship: "causes"},
			{From: 5, To: 1, Relationship: "on", IsDeleted: true},
			{From: 6, To: 3, Relationship: "causes"},
		},
		tmpls: []Template{{Name: "host_nic", Body: "metadata:\n  name: host_nic\n"}},
	}
}

func newTestServer(t *testing.T, b *fakeBackend) *httptest.Server {
	t.Helper()
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{
		{Name: "r", Token: "read-token", Role: RoleReader},
		{Name: "a", Token: "admin-token", Role: RoleAdmin},
	}}, b, Deps{NodeID: "n1", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func do(t *testing.T, ts *httptest.Server, method, path, token, ctype, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestAuth(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 7})
	tests := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/v1/status", "", 401},
		{"GET", "/v1/status", "wrong", 401},
		{"GET", "/v1/status", "read-token", 200},
		{"GET", "/v1/status", "admin-token", 200},
		{"GET", "/v1/debug/dump", "read-token", 403},
		{"GET", "/v1/debug/dump", "admin-token", 200},
		{"DELETE", "/v1/templates/host_nic", "read-token", 403},
		{"GET", "/healthz", "", 200},
		{"GET", "/metrics", "", 200},
	}
	for _, tt := range tests {
		resp, body := do(t, ts, tt.method, tt.path, tt.token, "", "")
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s token %q: status %d, want %d (%s)", tt.method, tt.path, tt.token, resp.StatusCode, tt.want, body)
		}
	}
}

// TestHealthzSaysStuck: /healthz answers 503 while the node says it is
// stuck, as the systemd watchdog is told, and 200 again after.
func TestHealthzSaysStuck(t *testing.T) {
	var alive atomic.Bool
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}},
		&fakeBackend{g: sampleGraph(), seq: 7}, Deps{NodeID: "n1", Alive: alive.Load})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, want := range []int{503, 200} {
		if resp, body := do(t, ts, "GET", "/healthz", "", "", ""); resp.StatusCode != want {
			t.Errorf("alive %v: /healthz %d, want %d (%s)", alive.Load(), resp.StatusCode, want, body)
		}
		alive.Store(true)
	}
}

func TestMetaHeaders(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 42})
	resp, body := do(t, ts, "GET", "/v1/resources", "read-token", "", "")
	if got := resp.Header.Get(HeaderSeq); got != "42" {
		t.Errorf("%s = %q, want 42", HeaderSeq, got)
	}
	if got := resp.Header.Get(HeaderLeader); got != "n2" {
		t.Errorf("%s = %q, want n2", HeaderLeader, got)
	}
	var r ResourcesResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 42 || r.Leader != "n2" || r.Node != "n1" {
		t.Errorf("meta = %+v", r.Meta)
	}
	var names []string
	for _, it := range r.Items {
		names = append(names, it.ID)
	}
	if diff := cmp.Diff(names, []string{"cluster", "host-1", "vm-1"}); diff != "" {
		t.Errorf("resources (-got +want):\n%s", diff)
	}
}

func TestAlarms(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 1})
	ids := func(path string) []string {
		_, body := do(t, ts, "GET", path, "read-token", "", "")
		var r ResourcesResponse
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s: %v (%s)", path, err, body)
		}
		var out []string
		for _, it := range r.Items {
			out = append(out, it.VitrageID)
		}
		return out
	}
	if diff := cmp.Diff(ids("/v1/alarms"), []string{"3", "4", "6"}); diff != "" {
		t.Errorf("active alarms:\n%s", diff)
	}
	if diff := cmp.Diff(ids("/v1/alarms?all=true"), []string{"3", "4", "5", "6"}); diff != "" {
		t.Errorf("all alarms:\n%s", diff)
	}
	if diff := cmp.Diff(ids("/v1/alarms?resource=1"), []string{"3"}); diff != "" {
		t.Errorf("alarms on host:\n%s", diff)
	}
	// Cleared alarms on a resource: those on it when they last cleared
	// (their `on` edge deleted with them, the latest so deleted), not one
	// moved off it before (even in the same record), nor an earlier
	// occurrence's; the resource deleted before the alarm cleared counts.
	g := sampleGraph()
	cleared := func(id graph.VertexID, name string) graph.Vertex {
		return graph.Vertex{ID: id, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: name, IsDeleted: true, UpdateTimestamp: t0}
	}
	g.vs[7], g.vs[8], g.vs[9] = cleared(7, "moved"), cleared(8, "resource gone first"), cleared(9, "raised again")
	for i := range g.edges {
		if g.edges[i].From == 5 {
			g.edges[i].DeletedWithVertex = true
		}
	}
	g.edges = append(g.edges,
		graph.Edge{From: 7, To: 1, Relationship: "on", IsDeleted: true, UpdateTimestamp: t0},
		graph.Edge{From: 7, To: 2, Relationship: "on", IsDeleted: true, DeletedWithVertex: true, UpdateTimestamp: t0},
		graph.Edge{From: 8, To: 2, Relationship: "on", IsDeleted: true, DeletedWithVertex: true, UpdateTimestamp: t0.Add(-time.Hour)},
		graph.Edge{From: 9, To: 1, Relationship: "on", IsDeleted: true, DeletedWithVertex: true, UpdateTimestamp: t0.Add(-2 * time.Hour)},
		graph.Edge{From: 9, To: 2, Relationship: "on", IsDeleted: true, DeletedWithVertex: true, UpdateTimestamp: t0})
	ts2 := newTestServer(t, &fakeBackend{g: g, seq: 1})
	idsOn := func(path string) []string {
		_, body := do(t, ts2, "GET", path, "read-token", "", "")
		var r ResourcesResponse
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s: %v (%s)", path, err, body)
		}
		out := []string{}
		for _, it := range r.Items {
			out = append(out, it.VitrageID)
		}
		return out
	}
	for path, want := range map[string][]string{
		"/v1/alarms?all=true&resource=1": {"3", "5"},
		"/v1/alarms?all=true&resource=2": {"4", "7", "8", "9"},
		"/v1/alarms?resource=2":          {"4"},
	} {
		if diff := cmp.Diff(idsOn(path), want); diff != "" {
			t.Errorf("%s:\n%s", path, diff)
		}
	}
	_, body := do(t, ts, "GET", "/v1/alarms/count", "read-token", "", "")
	var c CountResponse
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c.Counts, map[string]int{"CRITICAL": 2, "WARNING": 1}); diff != "" || c.Total != 3 {
		t.Errorf("alarm count %d:\n%s", c.Total, diff)
	}
	resp, _ := do(t, ts, "GET", "/v1/alarms/1", "read-token", "", "")
	if resp.StatusCode != 404 {
		t.Errorf("show of a resource as alarm: %d, want 404", resp.StatusCode)
	}
	resp, body = do(t, ts, "GET", "/v1/alarms/3", "read-token", "", "")
	var one ResourceResponse
	if err := json.Unmarshal(body, &one); err != nil || resp.StatusCode != 200 || one.Item.Name != "nic down" {
		t.Errorf("alarm show: %d %v %+v", resp.StatusCode, err, one.Item)
	}
	resp, _ = do(t, ts, "GET", "/v1/alarms/x", "read-token", "", "")
	if resp.StatusCode != 400 {
		t.Errorf("bad id: %d", resp.StatusCode)
	}
}

func TestTopology(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 1})
	_, body := do(t, ts, "GET", "/v1/topology", "read-token", "", "")
	var r TopologyResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Graph.Nodes) != 3 || len(r.Graph.Links) != 2 {
		t.Fatalf("topology graph = %+v", r.Graph)
	}
	// Depth 1 from the host, every category: host, cluster, vm, alarm 3.
	_, body = do(t, ts, "POST", "/v1/topology", "read-token", "application/json", `{"root":"1","depth":1,"category":"all"}`)
	r = TopologyResponse{}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range r.Graph.Nodes {
		got = append(got, n.VitrageID)
	}
	if diff := cmp.Diff(got, []string{"0", "1", "2", "3"}); diff != "" {
		t.Errorf("depth-1 nodes:\n%s", diff)
	}
	_, body = do(t, ts, "GET", "/v1/topology?graph_type=tree", "read-token", "", "")
	r = TopologyResponse{}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Tree == nil || r.Tree.ID != "cluster" || len(r.Tree.Children) != 1 || r.Tree.Children[0].Children[0].ID != "vm-1" {
		t.Errorf("tree = %+v", r.Tree)
	}
	for _, q := range []string{"?graph_type=x", "?depth=-1", "?root=99", "?category=foo"} {
		resp, _ := do(t, ts, "GET", "/v1/topology"+q, "read-token", "", "")
		if resp.StatusCode/100 != 4 {
			t.Errorf("topology%s: %d, want 4xx", q, resp.StatusCode)
		}
	}
}

func TestRCA(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 9, recon: map[int64]*fakeGraph{}}
	old := sampleGraph()
	old.edges = old.edges[:len(old.edges)-1] // at seq 5, nothing caused alarm 3
	b.recon[5] = old
	ts := newTestServer(t, b)

	get := func(path string) (int, RCAResponse) {
		resp, body := do(t, ts, "GET", path, "read-token", "", "")
		var r RCAResponse
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, r
	}
	code, r := get("/v1/rca/4")
	if code != 200 {
		t.Fatalf("rca: %d", code)
	}
	if diff := cmp.Diff(r.RootCauses, []string{"6"}); diff != "" {
		t.Errorf("roots:\n%s", diff)
	}
	if diff := cmp.Diff(r.Paths, [][]string{{"6", "3", "4"}}); diff != "" {
		t.Errorf("paths:\n%s", diff)
	}
	if r.Historical || r.Seq != 9 || len(r.Graph.Nodes) != 3 || *r.Graph.InspectedIndex != 1 {
		t.Errorf("rca = %+v", r)
	}
	code, r = get("/v1/rca/4?seq=5")
	if code != 200 || !r.Historical || r.Seq != 5 {
		t.Fatalf("historical rca: %d %+v", code, r)
	}
	if diff := cmp.Diff(r.Paths, [][]string{{"3", "4"}}); diff != "" {
		t.Errorf("historical paths:\n%s", diff)
	}
	code, r = get("/v1/rca/4?at=2026-01-01T00:00:00Z")
	if code != 200 || r.Seq != 5 || !r.RecordedAt.Equal(t0.Add(5*time.Second)) || !r.StaleSemantics {
		t.Errorf("rca at: %d %+v, recorded_at %v, stale %v", code, r.Meta, r.RecordedAt, r.StaleSemantics)
	}
	// As the CLI and /v1/history read times; a clock a little ahead of the
	// server's is tolerated.
	for _, at := range []string{"-2h", "now", "2026-01-02T03:04:09Z"} {
		if code, r = get("/v1/rca/4?at=" + at); code != 200 || !r.Historical {
			t.Errorf("rca at %s: %d", at, code)
		}
	}
	if resp, _ := do(t, ts, "GET", "/v1/rca/4?seq=88", "read-token", "", ""); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("historical rca while busy: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for path, want := range map[string]int{"/v1/rca/1": 404, "/v1/rca/4?seq=77": 404, "/v1/rca/4?seq=1&at=2026-01-01T00:00:00Z": 400, "/v1/rca/4?at=yesterday": 400,
		"/v1/rca/4?at=2026-01-02T03:04:11Z": 400, "/v1/rca/4?at=%2B1m": 400,
		// An empty point (a client's unset variable) asks about the past
		// all the same: refused, not answered with the present.
		"/v1/rca/4?seq=": 400, "/v1/rca/4?at=": 400, "/v1/rca/4?seq=&at=": 400} {
		if code, _ := get(path); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
}

const validTemplate = `metadata:
  version: 3
  name: host_nic
  type: standard
entities:
  host:
    type: nova.host
  alarm:
    type: prometheus
    name: nic down
scenarios:
  - condition: alarm [on] host
    actions:
      - set_state:
          state: ERROR
          target: host
`

func TestTemplates(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 3}
	ts := newTestServer(t, b)
	_, body := do(t, ts, "GET", "/v1/templates", "read-token", "", "")
	var list TemplatesResponse
	if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v %s", err, body)
	}
	resp, body := do(t, ts, "GET", "/v1/templates/host_nic", "read-token", "", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "host_nic") {
		t.Errorf("show: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, ts, "GET", "/v1/templates/nope", "read-token", "", "")
	if resp.StatusCode != 404 {
		t.Errorf("show unknown: %d", resp.StatusCode)
	}

	resp, body = do(t, ts, "POST", "/v1/templates/validate", "read-token", "application/yaml", validTemplate)
	var v ValidateResponse
	if err := json.Unmarshal(body, &v); err != nil || resp.StatusCode != 200 || !v.Valid || v.Name != "host_nic" {
		t.Errorf("validate valid: %d %v %s", resp.StatusCode, err, body)
	}
	resp, body = do(t, ts, "POST", "/v1/templates/validate", "read-token", "application/yaml", "metadata: {version: 3}\n")
	v = ValidateResponse{}
	if err := json.Unmarshal(body, &v); err != nil || v.Valid || len(v.Problems) == 0 {
		t.Errorf("validate invalid: %d %v %s", resp.StatusCode, err, body)
	}

	resp, body = do(t, ts, "POST", "/v1/templates", "admin-token", "application/yaml", "not: [a template")
	if resp.StatusCode != 400 || len(b.published) != 0 {
		t.Errorf("add invalid: %d %s, published %d", resp.StatusCode, body, len(b.published))
	}
	resp, body = do(t, ts, "POST", "/v1/templates", "admin-token", "application/yaml", validTemplate)
	if resp.StatusCode != 202 || len(b.published) != 1 {
		t.Fatalf("add: %d %s", resp.StatusCode, body)
	}
	ev := b.published[0]
	if ev.Kind != event.KindTemplatePut || ev.Template.Name != "host_nic" || ev.Template.Body != validTemplate || ev.Source != "api" || !ev.ObservedAt.Equal(t0) {
		t.Errorf("published %+v", ev)
	}
	if err := ev.Validate(); err != nil {
		t.Errorf("published event is invalid: %v", err)
	}
	resp, _ = do(t, ts, "DELETE", "/v1/templates/host_nic", "admin-token", "", "")
	if resp.StatusCode != 202 || len(b.published) != 2 || b.published[1].Kind != event.KindTemplateDelete {
		t.Errorf("delete: %d %+v", resp.StatusCode, b.published)
	}
	resp, _ = do(t, ts, "DELETE", "/v1/templates/nope", "admin-token", "", "")
	if resp.StatusCode != 404 {
		t.Errorf("delete unknown: %d", resp.StatusCode)
	}
	b.pubErr = errors.New("spool full")
	resp, _ = do(t, ts, "DELETE", "/v1/templates/host_nic", "admin-token", "", "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("delete with a failing bus: %d", resp.StatusCode)
	}
	// What the publisher refuses for good is not worth a retry.
	for err, want := range map[error]int{
		fmt.Errorf("publish event x: %w", event.ErrTooLarge): 413,
		fmt.Errorf("publish event x: %w", event.ErrInvalid):  400,
	} {
		b.pubErr = err
		if resp, _ := do(t, ts, "DELETE", "/v1/templates/host_nic", "admin-token", "", ""); resp.StatusCode != want {
			t.Errorf("publish failing with %v: %d; want %d", err, resp.StatusCode, want)
		}
	}
}

// TestTemplateIncludesLoadedDefinitions: a template that includes a
// definition template is validated, and added, against the definitions the
// live view has loaded, as the engine will load it.
func TestTemplateIncludesLoadedDefinitions(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "graph", "template", "testdata", "valid", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	def, uses := read("v2_definition.yaml"), read("v2_uses_definition.yaml")
	g := sampleGraph()
	b := &fakeBackend{g: g, seq: 3}
	ts := newTestServer(t, b)
	resp, body := do(t, ts, "POST", "/v1/templates", "admin-token", "application/yaml", uses)
	if resp.StatusCode != 409 || !strings.Contains(string(body), "basic_definitions") || len(b.published) != 0 {
		t.Fatalf("add without its definition loaded: %d %s; want 409 naming the missing include", resp.StatusCode, body)
	}
	g.tmpls = append(g.tmpls, Template{Name: "defs.yaml", Body: def})
	resp, body = do(t, ts, "POST", "/v1/templates/validate", "read-token", "application/yaml", uses)
	var v ValidateResponse
	if err := json.Unmarshal(body, &v); err != nil || !v.Valid || v.Name != "uses_basic_definitions" {
		t.Errorf("validate with its definition loaded: %d %v %s", resp.StatusCode, err, body)
	}
	resp, body = do(t, ts, "POST", "/v1/templates", "admin-token", "application/yaml", uses)
	if resp.StatusCode != 202 || len(b.published) != 1 || b.published[0].Template.Name != "uses_basic_definitions" {
		t.Fatalf("add with its definition loaded: %d %s", resp.StatusCode, body)
	}
}

func TestEvents(t *testing.T) {
	b := &fakeBackend{g: sampleGraph()}
	ts := newTestServer(t, b)
	good := `{"v":1,"event_id":"e1","source":"test","kind":"tick","observed_at":"2026-01-01T00:00:00Z"}`
	resp, body := do(t, ts, "POST", "/v1/events", "admin-token", "application/json", "["+good+","+strings.Replace(good, "e1", "e2", 1)+"]")
	if resp.StatusCode != 202 || len(b.published) != 2 {
		t.Fatalf("events: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, ts, "POST", "/v1/events", "admin-token", "application/json", `{"v":1}`)
	if resp.StatusCode != 400 || len(b.published) != 2 {
		t.Errorf("bad event: %d", resp.StatusCode)
	}
}

func TestReadyzAndCluster(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), members: []Member{{ID: "n1", Address: "a:1"}}}
	ts := newTestServer(t, b)
	if resp, _ := do(t, ts, "GET", "/readyz", "", "", ""); resp.StatusCode != 503 {
		t.Errorf("readyz not ready: %d", resp.StatusCode)
	}
	b.ready = true
	resp, body := do(t, ts, "GET", "/readyz", "", "", "")
	if resp.StatusCode != 200 {
		t.Errorf("readyz ready: %d", resp.StatusCode)
	}
	// Open to anyone, it says whether the node is ready, not its status.
	if strings.Contains(string(body), `"status"`) || !strings.Contains(string(body), `"ready": true`) {
		t.Errorf("readyz body %s; want the answer without the node's status", body)
	}
	// A body over the limit is 413, not 400.
	big := `{"id":"n4","address":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	if resp, _ := do(t, ts, "POST", "/v1/cluster/join", "admin-token", "application/json", big); resp.StatusCode != 413 {
		t.Errorf("join with a body over the limit: %d; want 413", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "POST", "/v1/templates", "admin-token", "application/yaml", strings.Repeat("x", MaxBodyBytes+1)); resp.StatusCode != 413 {
		t.Errorf("template over the limit: %d; want 413", resp.StatusCode)
	}
	resp, _ = do(t, ts, "POST", "/v1/cluster/join", "admin-token", "application/json", `{"id":"n4","address":"b:2"}`)
	if resp.StatusCode != 409 {
		t.Errorf("join on follower: %d", resp.StatusCode)
	}
	b.leader = true
	resp, body = do(t, ts, "POST", "/v1/cluster/join", "admin-token", "application/json", `{"id":"n4","address":"b:2"}`)
	var c ClusterResponse
	if err := json.Unmarshal(body, &c); err != nil || resp.StatusCode != 200 || len(c.Servers) != 2 {
		t.Errorf("join: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, ts, "POST", "/v1/cluster/remove", "admin-token", "application/json", `{"id":"n4","bogus":1}`)
	if resp.StatusCode != 400 {
		t.Errorf("remove with unknown field: %d", resp.StatusCode)
	}
	resp, _ = do(t, ts, "POST", "/v1/cluster/remove", "admin-token", "application/json", `{"id":"n4"}`)
	if resp.StatusCode != 200 || len(b.members) != 1 {
		t.Errorf("remove: %d %v", resp.StatusCode, b.members)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Listen: "nope", Tokens: []Token{{Role: "root"}, {Token: "x", TokenFile: "y", Role: RoleAdmin}}}.Validate()
	for _, want := range []string{"listen", "tokens[0]: set exactly one", "tokens[0].role", "tokens[1]: set exactly one"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, missing %q", err, want)
		}
	}
	if s := (Token{Token: "secret"}).String(); strings.Contains(s, "secret") {
		t.Errorf("Token.String leaks the secret: %s", s)
	}
}

func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(`[{"v":1,"event_id":"e1","source":"test","kind":"tick","observed_at":"2026-01-01T00:00:00Z"}]`))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		evs, err := decodeEvents(raw)
		if err != nil {
			return
		}
		for _, ev := range evs {
			if err := ev.Validate(); err != nil {
				t.Fatalf("decoded an invalid event: %v", err)
			}
		}
	})
}

func TestSubscriptions(t *testing.T) {
	b := &fakeBackend{g: sampleGraph()}
	ts := newTestServer(t, b)
	resp, body := do(t, ts, "PUT", "/v1/subscriptions/ops", "read-token", "application/json", `{"url":"http://127.0.0.1:9/hook"}`)
	if resp.StatusCode != 403 || len(b.published) != 0 {
		t.Errorf("put as reader: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, ts, "PUT", "/v1/subscriptions/ops", "admin-token", "application/json", `{"url":"http://127.0.0.1:9/hook","colour":"red"}`)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "colour") || len(b.published) != 0 {
		t.Errorf("put with an unknown field: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, ts, "PUT", "/v1/subscriptions/ops", "admin-token", "application/json", `{"url":"http://127.0.0.1:9/hook"}`)
	if resp.StatusCode != 202 || len(b.published) != 1 {
		t.Fatalf("put: %d %s", resp.StatusCode, body)
	}
	ev := b.published[0]
	if ev.Kind != event.KindSubscriptionPut || ev.Subscription.ID != "ops" || !strings.Contains(string(ev.Subscription.Spec), "http://127.0.0.1:9/hook") {
		t.Errorf("published %+v", ev)
	}
	if err := ev.Validate(); err != nil {
		t.Errorf("published event is invalid: %v", err)
	}
	resp, body = do(t, ts, "DELETE", "/v1/subscriptions/ops", "admin-token", "", "")
	if resp.StatusCode != 202 || len(b.published) != 2 || b.published[1].Kind != event.KindSubscriptionDelete {
		t.Errorf("delete: %d %s", resp.StatusCode, body)
	}
}

// TestHistoryNeedsAReader: a backend without the alarm history answers
// 501 on every history endpoint, after authentication.
func TestHistoryNeedsAReader(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 1})
	for _, path := range []string{"/v1/history/alarms", "/v1/history/stats", "/v1/history/links?alarm=x"} {
		if resp, body := do(t, ts, "GET", path, "", "", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d (%s)", path, resp.StatusCode, body)
		}
		if resp, body := do(t, ts, "GET", path, "read-token", "", ""); resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("%s: %d (%s); want 501", path, resp.StatusCode, body)
		}
	}
}

// TestSubscriptionsNeedAdmin: the subscriptions' specs may carry receiver
// credentials, so only admins list or show them.
func TestSubscriptionsNeedAdmin(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 9})
	if resp, body := do(t, ts, "GET", "/v1/subscriptions", "read-token", "", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("reader lists subscriptions: %d (%s)", resp.StatusCode, body)
	}
	resp, body := do(t, ts, "GET", "/v1/subscriptions", "admin-token", "", "")
	var list SubscriptionsResponse
	if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != http.StatusOK || len(list.Items) != 1 || list.Items[0].ID != "ops" || list.Seq != 9 {
		t.Errorf("list: %d %+v (%v)", resp.StatusCode, list, err)
	}
	resp, body = do(t, ts, "GET", "/v1/subscriptions/ops", "admin-token", "", "")
	var one SubscriptionResponse
	var spec struct{ URL string }
	if err := json.Unmarshal(body, &one); err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(one.Item.Spec, &spec) != nil || spec.URL != "http://hooks.example/ops" {
		t.Errorf("show: %d %s (%v)", resp.StatusCode, body, err)
	}
	if resp, body := do(t, ts, "GET", "/v1/subscriptions/nope", "admin-token", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("show of an unknown id: %d (%s)", resp.StatusCode, body)
	}
}

// TestSubscriptionFollowingPages: the show endpoint pages the alarms a
// subscription follows, and refuses a page size out of 1..10000.
func TestSubscriptionFollowingPages(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 9})
	for _, tc := range []struct {
		query string
		want  FollowingPage
	}{
		{"", FollowingPage{Alarms: []string{"ALARM/prometheus/a", "ALARM/prometheus/b", "ALARM/prometheus/c"}}},
		{"?following_limit=1", FollowingPage{Alarms: []string{"ALARM/prometheus/a"}, Next: "ALARM/prometheus/a"}},
		{"?following_limit=1&following_after=ALARM/prometheus/a", FollowingPage{Alarms: []string{"ALARM/prometheus/b"}, Next: "ALARM/prometheus/b"}},
		{"?following_limit=2&following_after=ALARM/prometheus/b", FollowingPage{Alarms: []string{"ALARM/prometheus/c"}}},
		// A key no longer followed (the alarm cleared) still pages on.
		{"?following_after=ALARM/prometheus/aa", FollowingPage{Alarms: []string{"ALARM/prometheus/b", "ALARM/prometheus/c"}}},
		{"?following_after=ALARM/prometheus/c", FollowingPage{Alarms: []string{}}},
	} {
		resp, body := do(t, ts, "GET", "/v1/subscriptions/ops"+tc.query, "admin-token", "", "")
		var one SubscriptionResponse
		if err := json.Unmarshal(body, &one); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s (%v)", tc.query, resp.StatusCode, body, err)
		}
		if one.Item.Following != 3 || !cmp.Equal(one.Following, tc.want) {
			t.Errorf("%s: count %d, page %s", tc.query, one.Item.Following, cmp.Diff(tc.want, one.Following))
		}
	}
	for _, q := range []string{"0", "-1", "10001", "x"} {
		if resp, body := do(t, ts, "GET", "/v1/subscriptions/ops?following_limit="+q, "admin-token", "", ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("following_limit=%s: %d (%s); want 400", q, resp.StatusCode, body)
		}
	}
}

// fakeHistory is a HistoryReader written up to head.
type fakeHistory struct{ head int64 }

func (h fakeHistory) Head(context.Context) (int64, error) { return h.head, nil }
func (fakeHistory) AlarmHistory(context.Context, history.Query) (history.Page, error) {
	return history.Page{}, nil
}
func (fakeHistory) AlarmStats(context.Context, history.StatsQuery) ([]history.Bucket, error) {
	return nil, nil
}
func (fakeHistory) AlarmLinks(context.Context, history.LinksQuery) (history.LinksPage, error) {
	return history.LinksPage{}, nil
}
func (fakeHistory) Coverage(context.Context, time.Time, time.Time) (history.Coverage, error) {
	return history.Coverage{}, nil
}

// TestHistoryReflectsItsHead: history answers carry the seq the history
// is written up to, not the live graph's.
func TestHistoryReflectsItsHead(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}},
		&fakeBackend{g: sampleGraph(), seq: 100}, Deps{NodeID: "n1", Now: func() time.Time { return t0 }, History: fakeHistory{head: 42}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, path := range []string{"/v1/history/alarms", "/v1/history/stats", "/v1/history/links?alarm=x"} {
		resp, body := do(t, ts, "GET", path, "read-token", "", "")
		var m Meta
		if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != 200 || m.Seq != 42 || resp.Header.Get(HeaderSeq) != "42" {
			t.Errorf("%s: %d, seq %d (header %q), %v; want 200 at the history's head 42", path, resp.StatusCode, m.Seq, resp.Header.Get(HeaderSeq), err)
		}
	}
}

type failingBody struct{}

func (failingBody) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestRequestChecks: a negative depth in a POSTed topology query is a 400
// as in the GET form; a body that fails to read (not one over the limit)
// is a 400, not a 413; one secret given two roles is refused.
func TestRequestChecks(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 1})
	if resp, body := do(t, ts, "POST", "/v1/topology", "read-token", "application/json", `{"depth":-1}`); resp.StatusCode != 400 {
		t.Errorf("POST topology with depth -1: %d (%s); want 400", resp.StatusCode, body)
	}
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Name: "a", Token: "admin-token", Role: RoleAdmin}}},
		&fakeBackend{g: sampleGraph(), seq: 1}, Deps{NodeID: "n1", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/events", "/v1/subscriptions/x"} {
		method := "POST"
		if path != "/v1/events" {
			method = "PUT"
		}
		req := httptest.NewRequest(method, path, failingBody{})
		req.Header.Set("Authorization", "Bearer admin-token")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != 400 {
			t.Errorf("%s %s with a body that fails to read: %d; want 400", method, path, rec.Code)
		}
	}
	_, err = New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Name: "r", Token: "same", Role: RoleReader}, {Name: "a", Token: "same", Role: RoleAdmin}}},
		&fakeBackend{g: sampleGraph(), seq: 1}, Deps{NodeID: "n1"})
	if err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("one secret with two roles: %v; want refused", err)
	}
}

// TestCountsFilterAsListsDo: /v1/alarms/count takes the filters of
// /v1/alarms, resource= included (the count of the alarms that the list
// shows), and refuses a malformed one; resource= filters alarms only, so
// the resource endpoints refuse it rather than answer an empty list.
func TestCountsFilterAsListsDo(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 1})
	for path, want := range map[string]int{"/v1/alarms/count?resource=1": 1, "/v1/alarms/count?resource=2": 1, "/v1/alarms/count?resource=0": 0} {
		resp, body := do(t, ts, "GET", path, "read-token", "", "")
		var c CountResponse
		if err := json.Unmarshal(body, &c); err != nil || resp.StatusCode != 200 || c.Total != want {
			t.Errorf("%s: %d, total %d (%s); want %d", path, resp.StatusCode, c.Total, body, want)
		}
	}
	for _, path := range []string{"/v1/alarms/count?resource=x", "/v1/resources?resource=1", "/v1/resources/count?resource=1"} {
		if resp, body := do(t, ts, "GET", path, "read-token", "", ""); resp.StatusCode != 400 || !strings.Contains(string(body), "resource") {
			t.Errorf("%s: %d (%s); want 400 naming resource", path, resp.StatusCode, body)
		}
	}
	// A category other than the endpoint's, and a resource's severity,
	// are refused rather than ignored.
	for path, want := range map[string]string{
		"/v1/alarms?category=RESOURCE": "category", "/v1/resources/count?category=alarm": "category",
		"/v1/resources/count?group_by=severity": "group_by",
	} {
		if resp, body := do(t, ts, "GET", path, "read-token", "", ""); resp.StatusCode != 400 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d (%s); want 400 naming %s", path, resp.StatusCode, body, want)
		}
	}
	for _, path := range []string{"/v1/alarms?category=alarm", "/v1/resources?category=RESOURCE", "/v1/alarms/count?group_by=severity"} {
		if resp, body := do(t, ts, "GET", path, "read-token", "", ""); resp.StatusCode != 200 {
			t.Errorf("%s: %d (%s); want 200", path, resp.StatusCode, body)
		}
	}
}

// TestTombstonesHidden: a delete of an entity the graph does not know, then
// an upsert of it observed before the delete, leave a tombstone that lists
// and counts show only with all=true, as any deleted vertex.
func TestTombstonesHidden(t *testing.T) {
	g := graph.New(nil)
	evs := []event.Event{
		{Source: "nova", Kind: event.KindEntityUpsert, ObservedAt: t0, Entity: &event.Entity{Category: graph.CategoryResource, Type: "nova.host", ID: "h1"}},
		{Source: "nagios", Kind: event.KindEntityDelete, ObservedAt: t0.Add(time.Minute), Entity: &event.Entity{Category: graph.CategoryAlarm, Type: "nagios", ID: "a1"}},
		{Source: "nagios", Kind: event.KindEntityUpsert, ObservedAt: t0.Add(time.Second), Entity: &event.Entity{Category: graph.CategoryAlarm, Type: "nagios", ID: "a1",
			Severity: "CRITICAL", Relations: []event.Relation{{Relationship: graph.RelOn, Type: "nova.host", ID: "h1", Direction: event.Out}}}},
		{Source: "nova", Kind: event.KindEntityDelete, ObservedAt: t0.Add(time.Minute), Entity: &event.Entity{Category: graph.CategoryResource, Type: "nova.instance", ID: "i1"}},
		{Source: "nova", Kind: event.KindEntityUpsert, ObservedAt: t0.Add(time.Second), Entity: &event.Entity{Category: graph.CategoryResource, Type: "nova.instance", ID: "i1",
			Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: "h1", Direction: event.In}}}},
	}
	for i, ev := range evs {
		ev.V, ev.EventID = event.Version, fmt.Sprint(i)
		if _, err := g.Apply(event.Record{Seq: int64(i + 1), RecordedAt: t0.Add(time.Hour), Event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	fg := &fakeGraph{vs: map[graph.VertexID]graph.Vertex{}}
	for _, id := range g.VertexIDs() {
		fg.vs[id], _ = g.Vertex(id)
		fg.edges = append(fg.edges, g.Out(id)...)
	}
	ts := newTestServer(t, &fakeBackend{g: fg, seq: int64(len(evs))})
	for path, want := range map[string]int{
		"/v1/alarms": 0, "/v1/alarms?all=true": 1, "/v1/resources": 1, "/v1/resources?all=true": 2,
		"/v1/alarms/count": 0, "/v1/alarms/count?all=true": 1, "/v1/resources/count": 1, "/v1/resources/count?all=true": 2,
	} {
		resp, body := do(t, ts, "GET", path, "read-token", "", "")
		var r struct {
			Items []Resource `json:"items"`
			Total *int       `json:"total"`
		}
		if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v (%s)", path, resp.StatusCode, err, body)
		}
		got := len(r.Items)
		if r.Total != nil {
			got = *r.Total
		}
		if got != want {
			t.Errorf("%s: %d, want %d (%s)", path, got, want, body)
		}
	}
}

// TestUnroutedAnswersSayTheMeta: a path the API does not serve, or a
// method a path does not take, is answered like every error: a JSON body
// with the seq and leader, and the headers (405 keeps its Allow).
func TestUnroutedAnswersSayTheMeta(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 7})
	for _, tc := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/v1/alarm", 404, ""},
		{"GET", "/v1/templates/", 404, ""},
		{"PUT", "/v1/status", 405, "GET, HEAD"},
		{"DELETE", "/v1/templates", 405, "GET, HEAD, POST"},
	} {
		resp, body := do(t, ts, tc.method, tc.path, "read-token", "", "")
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != tc.want || e.Error == "" || e.Seq != 7 || e.Leader != "n2" ||
			resp.Header.Get(HeaderSeq) != "7" || resp.Header.Get(HeaderLeader) != "n2" || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d, Allow %q, %s: %q (%v); want %d, Allow %q, a JSON error at seq 7 with leader n2",
				tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), HeaderSeq, resp.Header.Get(HeaderSeq), err, tc.want, tc.allow)
		}
		// Without a token, 401 as on a path served: which paths exist is
		// not told to anyone.
		if resp, _ := do(t, ts, tc.method, tc.path, "", "", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d; want 401", tc.method, tc.path, resp.StatusCode)
		}
	}
}

// TestUncleanPathsAnswerAsUnrouted: a path the mux would clean (double
// slashes, dot segments) is answered as a path not served is: 401 without
// a reader's token, so that a redirect does not tell anyone which paths
// exist (//v1/debug/dump was redirected to /v1/debug/dump without a token,
// //v1/nope answered 401), and with one, the redirect to the clean path in
// JSON with the seq and leader (it was the mux's text/html, without them).
// The open endpoints are redirected as before.
func TestUncleanPathsAnswerAsUnrouted(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 7})
	c := ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path, token string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	for path, clean := range map[string]string{
		"//v1/debug/dump": "/v1/debug/dump", "/v1/./status": "/v1/status", "/v1//alarms": "/v1/alarms",
		"/v1/x/../templates/host_nic": "/v1/templates/host_nic", "//v1/nope": "/v1/nope",
	} {
		if resp, _ := get(path, ""); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Errorf("GET %s without a token: %d, Location %q; want 401 and no Location", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, body := get(path, "read-token")
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != clean ||
			e.Error == "" || e.Seq != 7 || e.Leader != "n2" || resp.Header.Get(HeaderSeq) != "7" || resp.Header.Get(HeaderLeader) != "n2" {
			t.Errorf("GET %s: %d, Location %q, %s %q, body %s (%v); want 307 to %s, a JSON error at seq 7 with leader n2",
				path, resp.StatusCode, resp.Header.Get("Location"), HeaderSeq, resp.Header.Get(HeaderSeq), body, err, clean)
		}
	}
	if resp, _ := get("//healthz", ""); resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "/healthz" {
		t.Errorf("GET //healthz: %d, Location %q; want the redirect to /healthz, without a token", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestAuthSchemeIsCaseInsensitive: the scheme of an Authorization header
// is case-insensitive (RFC 9110, 11.1): "bearer" and "BEARER" pass as
// "Bearer" does; another scheme, or none, does not.
func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 1})
	for h, want := range map[string]int{
		"Bearer read-token": 200, "bearer read-token": 200, "BEARER read-token": 200, "Bearer  read-token": 200,
		"Basic read-token": 401, "read-token": 401, "Bearer": 401, "Bearerread-token": 401,
	} {
		req, err := http.NewRequest("GET", ts.URL+"/v1/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", h)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization %q: %d, want %d", h, resp.StatusCode, want)
		}
	}
}

// TestStateEndpointsRefuseThePast: the templates and subscriptions are
// state at a seq as the graph is; their endpoints answer live only and
// refuse ?at= and ?seq= as the topology and lists do, rather than answer a
// question about the past with the present.
func TestStateEndpointsRefuseThePast(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 9})
	for _, path := range []string{"/v1/templates?seq=3", "/v1/templates/host_nic?at=-1h", "/v1/subscriptions?at=-1h", "/v1/subscriptions/ops?seq=3"} {
		if resp, body := do(t, ts, "GET", path, "admin-token", "", ""); resp.StatusCode != 400 || !strings.Contains(string(body), "live state only") {
			t.Errorf("%s: %d (%s); want 400: live state only", path, resp.StatusCode, body)
		}
	}
	if resp, body := do(t, ts, "GET", "/v1/templates", "admin-token", "", ""); resp.StatusCode != 200 {
		t.Errorf("templates: %d (%s)", resp.StatusCode, body)
	}
}

// TestUnavailableSaysWhenToRetry: a node whose state cannot be read yet
// (loading at start) answers 503 with Retry-After, as its other 503s do.
func TestUnavailableSaysWhenToRetry(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 1, viewErr: errors.New("state not loaded yet")})
	for _, path := range []string{"/v1/alarms", "/v1/resources/count", "/v1/topology", "/v1/rca/4", "/v1/templates"} {
		if resp, body := do(t, ts, "GET", path, "read-token", "", ""); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: %d, Retry-After %q (%s); want 503 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
}

// TestDrainRefusesWork: once Drain is called, /readyz says stopping (503),
// /healthz says the process is alive (200, though its follow loop has
// ended), /metrics answers, and every /v1 route answers 503 "stopping" with
// Retry-After and Connection: close, after the token check; nothing is
// published.
func TestDrainRefusesWork(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 7, ready: true, leader: true}
	var alive atomic.Bool
	alive.Store(true)
	s, err := New(Config{Listen: "127.0.0.1:0", ShutdownGrace: time.Minute, Tokens: []Token{
		{Name: "r", Token: "read-token", Role: RoleReader},
		{Name: "a", Token: "admin-token", Role: RoleAdmin},
	}}, b, Deps{NodeID: "n1", Now: func() time.Time { return t0 }, Alive: alive.Load})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	good := `{"v":1,"event_id":"e1","source":"test","kind":"tick","observed_at":"2026-01-01T00:00:00Z"}`
	if resp, body := do(t, ts, "GET", "/readyz", "", "", ""); resp.StatusCode != 200 {
		t.Fatalf("/readyz before the stop: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, ts, "POST", "/v1/events", "admin-token", "application/json", good); resp.StatusCode != 202 {
		t.Fatalf("POST /v1/events before the stop: %d %s", resp.StatusCode, body)
	}

	s.Drain()
	alive.Store(false) // the follow loop has ended: no longer turning
	resp, body := do(t, ts, "GET", "/readyz", "", "", "")
	var ready ReadyResponse
	if err := json.Unmarshal(body, &ready); err != nil || resp.StatusCode != 503 || ready.Ready || !ready.Stopping || ready.Seq != 7 {
		t.Errorf("/readyz while stopping: %d %s; want 503, not ready, stopping", resp.StatusCode, body)
	}
	if resp, body := do(t, ts, "GET", "/healthz", "", "", ""); resp.StatusCode != 200 || string(body) != "stopping\n" {
		t.Errorf("/healthz while stopping: %d %q; want 200 stopping", resp.StatusCode, body)
	}
	if resp, body := do(t, ts, "GET", "/metrics", "", "", ""); resp.StatusCode != 200 {
		t.Errorf("/metrics while stopping: %d %s", resp.StatusCode, body)
	}
	for _, r := range []struct{ method, path, token, body string }{
		{"GET", "/v1/status", "read-token", ""},
		{"GET", "/v1/topology", "read-token", ""},
		{"GET", "/v1/resources", "read-token", ""},
		{"GET", "/v1/alarms/3", "read-token", ""},
		{"GET", "/v1/rca/4", "read-token", ""},
		{"GET", "/v1/rca/4?seq=5", "read-token", ""},
		{"GET", "/v1/history/alarms", "read-token", ""},
		{"GET", "/v1/templates", "read-token", ""},
		{"POST", "/v1/templates/validate", "read-token", "metadata:\n  name: x\n"},
		{"GET", "/v1/cluster", "read-token", ""},
		{"POST", "/v1/events", "admin-token", good},
		{"PUT", "/v1/subscriptions/ops", "admin-token", `{"url":"http://hooks.example/ops"}`},
		{"DELETE", "/v1/templates/host_nic", "admin-token", ""},
		{"POST", "/v1/cluster/join", "admin-token", `{"id":"n9","address":"a:9"}`},
		{"GET", "/v1/debug/dump", "admin-token", ""},
	} {
		resp, body := do(t, ts, r.method, r.path, r.token, "", r.body)
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 503 || !strings.HasPrefix(e.Error, "stopping:") ||
			resp.Header.Get("Retry-After") == "" || !resp.Close || e.Node != "n1" || e.Seq != 7 {
			t.Errorf("%s %s while stopping: %d %v %s; want 503 stopping, Retry-After, Connection: close",
				r.method, r.path, resp.StatusCode, resp.Header, body)
		}
	}
	if len(b.published) != 1 {
		t.Errorf("%d events published; want only the one sent before the stop", len(b.published))
	}
	if len(b.members) != 0 {
		t.Errorf("members changed while stopping: %v", b.members)
	}
	// Who may ask is checked first, as ever.
	if resp, body := do(t, ts, "GET", "/v1/alarms", "", "", ""); resp.StatusCode != 401 {
		t.Errorf("/v1/alarms without a token while stopping: %d %s; want 401", resp.StatusCode, body)
	}
	if resp, body := do(t, ts, "GET", "/v1/debug/dump", "read-token", "", ""); resp.StatusCode != 403 {
		t.Errorf("/v1/debug/dump with a reader's token while stopping: %d %s; want 403", resp.StatusCode, body)
	}
}

// TestDrainWaitsForRequestsInFlight: Drain returns once the requests in
// flight when it began have ended, and they are served to the end; past
// the shutdown grace it cancels their contexts and returns.
func TestDrainWaitsForRequestsInFlight(t *testing.T) {
	for _, cut := range []bool{false, true} {
		t.Run(fmt.Sprintf("cut=%v", cut), func(t *testing.T) {
			b := &blockingBackend{fakeBackend: fakeBackend{g: sampleGraph(), seq: 7}, entered: make(chan struct{}), release: make(chan struct{})}
			grace := time.Minute
			if cut {
				grace = 50 * time.Millisecond
			}
			s, err := New(Config{Listen: "127.0.0.1:0", ShutdownGrace: grace, Tokens: []Token{{Name: "a", Token: "admin-token", Role: RoleAdmin}}},
				b, Deps{NodeID: "n1"})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			answered := make(chan int, 1)
			go func() {
				req, _ := http.NewRequest("POST", ts.URL+"/v1/events",
					strings.NewReader(`{"v":1,"event_id":"e1","source":"test","kind":"tick","observed_at":"2026-01-01T00:00:00Z"}`))
				req.Header.Set("Authorization", "Bearer admin-token")
				resp, err := ts.Client().Do(req)
				if err != nil {
					answered <- 0
					return
				}
				resp.Body.Close()
				answered <- resp.StatusCode
			}()
			<-b.entered
			drained := make(chan struct{})
			go func() { s.Drain(); close(drained) }()
			if !cut {
				select {
				case <-drained:
					t.Fatal("Drain returned while a request was in flight")
				case <-time.After(100 * time.Millisecond):
				}
				close(b.release)
			}
			<-drained
			want := 202
			if cut {
				want = 503 // its publish was cancelled
			}
			if code := <-answered; code != want {
				t.Errorf("the request in flight was answered %d; want %d", code, want)
			}
		})
	}
}

// blockingBackend's Publish waits for release (or its context's end).
type blockingBackend struct {
	fakeBackend
	entered, release chan struct{}
}

func (b *blockingBackend) Publish(ctx context.Context, evs ...event.Event) error {
	close(b.entered)
	select {
	case <-b.release:
		return b.fakeBackend.Publish(ctx, evs...)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestClusterJoinRefusesABadAddress: a join whose address is not
// host:port (a typo, the API's address without the raft port) is refused,
// 400, before the leader adds a voter no one can reach, which would count
// toward the quorum (a one-node cluster would lose its leader).
func TestClusterJoinRefusesABadAddress(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), members: []Member{{ID: "n1", Address: "a:1"}}, leader: true}
	ts := newTestServer(t, b)
	for _, addr := range []string{"10.0.0.2", "10.0.0.2:", ":7001", "10.0.0.2:raft", "10.0.0.2:0", "10.0.0.2:70001", "http://10.0.0.2:7001", "a b:7001"} {
		body, _ := json.Marshal(map[string]string{"id": "n4", "address": addr})
		resp, got := do(t, ts, "POST", "/v1/cluster/join", "admin-token", "application/json", string(body))
		if resp.StatusCode != 400 || !strings.Contains(string(got), "address") {
			t.Errorf("join at %q: %d %s; want 400 naming the address", addr, resp.StatusCode, got)
		}
	}
	if len(b.members) != 1 {
		t.Errorf("members %v; want n1 alone", b.members)
	}
	for _, addr := range []string{"10.0.0.2:7001", "p2.example:7001", "[::1]:7001"} {
		body, _ := json.Marshal(map[string]string{"id": "n-" + addr, "address": addr})
		if resp, got := do(t, ts, "POST", "/v1/cluster/join", "admin-token", "application/json", string(body)); resp.StatusCode != 200 {
			t.Errorf("join at %q: %d %s; want 200", addr, resp.StatusCode, got)
		}
	}
}

// viewHolder holds views until release is closed, telling entered of
// each, while fewer than hold are held; the others answer at once.
type viewHolder struct {
	*fakeBackend
	hold    atomic.Int32
	inside  atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (b *viewHolder) View(fn func(View, int64) error) error {
	n := b.inside.Add(1)
	defer b.inside.Add(-1)
	if n <= b.hold.Load() {
		b.entered <- struct{}{}
		<-b.release
	}
	return b.fakeBackend.View(fn)
}

// TestGraphReadsAreBounded: the reads whose work grows with the whole live
// graph (lists, counts, topology) run at most MaxGraphReads at once; one
// more waits for a slot and gets 503 busy with Retry-After when none frees
// (here at once). Each holds the processor's lock for reading for the
// whole walk (measured: 86-220 ms for the 100k resources of /v1/resources,
// and some 100 MB with its JSON), and a waiting apply holds back every
// read after it: without a bound, a reader's burst of them stalled event
// processing for as long as all of them took together on the node's cores,
// and took memory without limit. Reads of one vertex, the cheap ones,
// are not held back.
func TestGraphReadsAreBounded(t *testing.T) {
	b := &viewHolder{fakeBackend: &fakeBackend{g: sampleGraph(), seq: 7}, entered: make(chan struct{}), release: make(chan struct{})}
	b.hold.Store(2)
	s, err := New(Config{Listen: "127.0.0.1:0", MaxGraphReads: 2, Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}}, b, Deps{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	s.slotWait = 0
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, path := range []string{"/v1/resources", "/v1/topology"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := do(t, ts, "GET", path, "read-token", "", "")
			codes[i] = resp.StatusCode
		}()
	}
	<-b.entered
	<-b.entered
	for _, path := range []string{"/v1/alarms", "/v1/alarms/count", "/v1/topology?graph_type=tree"} {
		resp, body := do(t, ts, "GET", path, "read-token", "", "")
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(e.Error, "busy") || e.Seq != 7 {
			t.Errorf("%s with 2 reads of the graph running: %d, Retry-After %q, %s; want 503 busy with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if resp, body := do(t, ts, "GET", "/v1/alarms/3", "read-token", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/v1/alarms/3 with 2 reads of the graph running: %d %s; want 200", resp.StatusCode, body)
	}
	b.hold.Store(0)
	close(b.release)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("the reads held: %v; want 200s", codes)
	}
	if resp, body := do(t, ts, "GET", "/v1/alarms", "read-token", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/v1/alarms once the slots are free: %d %s", resp.StatusCode, body)
	}
}

// historyHolder is a HistoryReader whose Head waits for release, telling
// entered, while fewer than hold wait.
type historyHolder struct {
	fakeHistory
	hold, inside atomic.Int32
	entered      chan struct{}
	release      chan struct{}
}

func (h *historyHolder) Head(ctx context.Context) (int64, error) {
	n := h.inside.Add(1)
	defer h.inside.Add(-1)
	if n <= h.hold.Load() {
		h.entered <- struct{}{}
		<-h.release
	}
	return h.fakeHistory.Head(ctx)
}

// TestHistoryQueriesAreBounded: the history's queries run at most
// MaxHistoryQueries at once; one more waits for a slot and gets 503 busy
// with Retry-After when none frees (here at once). They read the database
// through the processor's pool of connections, which the follower's
// catch-up, the leader's fenced writes, the snapshots and the presence row
// share: without a bound a reader's burst of slow ones (a long range with
// a severity filter, stats of many buckets) took every connection, and
// event processing and the leader's duties waited for one.
func TestHistoryQueriesAreBounded(t *testing.T) {
	h := &historyHolder{fakeHistory: fakeHistory{head: 42}, entered: make(chan struct{}), release: make(chan struct{})}
	h.hold.Store(3)
	s, err := New(Config{Listen: "127.0.0.1:0", MaxHistoryQueries: 3, Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}},
		&fakeBackend{g: sampleGraph(), seq: 100}, Deps{NodeID: "n1", Now: func() time.Time { return t0 }, History: h})
	if err != nil {
		t.Fatal(err)
	}
	s.slotWait = 0
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	paths := []string{"/v1/history/alarms", "/v1/history/stats", "/v1/history/links?alarm=x"}
	var wg sync.WaitGroup
	codes := make([]int, len(paths))
	for i, path := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := do(t, ts, "GET", path, "read-token", "", "")
			codes[i] = resp.StatusCode
		}()
	}
	for range paths {
		<-h.entered
	}
	for _, path := range paths {
		resp, body := do(t, ts, "GET", path, "read-token", "", "")
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(e.Error, "busy") {
			t.Errorf("%s with 3 history queries running: %d, Retry-After %q, %s; want 503 busy with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if resp, body := do(t, ts, "GET", "/v1/alarms", "read-token", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/v1/alarms with 3 history queries running: %d %s; want 200", resp.StatusCode, body)
	}
	h.hold.Store(0)
	close(h.release)
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("%s held: %d; want 200", paths[i], code)
		}
	}
	if resp, body := do(t, ts, "GET", "/v1/history/alarms", "read-token", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/v1/history/alarms once the slots are free: %d %s", resp.StatusCode, body)
	}
}

// stalledBody is a request body whose first Read tells reading and waits
// for release; then it reads as body.
type stalledBody struct {
	reading, release chan struct{}
	body             *strings.Reader
	once             sync.Once
}

func (b *stalledBody) Read(p []byte) (int, error) {
	b.once.Do(func() {
		close(b.reading)
		<-b.release
	})
	return b.body.Read(p)
}

// TestSlowBodyHoldsNoGraphSlot: a POSTed topology query's body is read
// before the read takes its slot: a body trickled in (the server waits for
// it up to its read timeout) held a slot meanwhile, so that a reader's
// two slow requests held back every list, count and topology.
func TestSlowBodyHoldsNoGraphSlot(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", MaxGraphReads: 1, Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}},
		&fakeBackend{g: sampleGraph(), seq: 7}, Deps{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	s.slotWait = 0
	h := s.Handler()
	body := &stalledBody{reading: make(chan struct{}), release: make(chan struct{}), body: strings.NewReader(`{"graph_type":"tree"}`)}
	post := httptest.NewRequest("POST", "/v1/topology", body)
	post.Header.Set("Authorization", "Bearer read-token")
	post.Header.Set("Content-Type", "application/json")
	posted := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(posted, post)
	}()
	<-body.reading
	get := httptest.NewRequest("GET", "/v1/resources", nil)
	get.Header.Set("Authorization", "Bearer read-token")
	got := httptest.NewRecorder()
	h.ServeHTTP(got, get)
	if got.Code != http.StatusOK {
		t.Errorf("/v1/resources while a POSTed query's body is on its way: %d %s; want 200", got.Code, got.Body)
	}
	close(body.release)
	<-done
	if posted.Code != http.StatusOK {
		t.Errorf("the POSTed query: %d %s; want 200", posted.Code, posted.Body)
	}
}

// TestDumpFailing: a dump that fails before any of it is written is a
// 500; one that fails once part of it is sent (it is written to the
// response as rendered) breaks the answer, rather than end a cut dump
// that would pass for whole.
func TestDumpFailing(t *testing.T) {
	ts := newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 7, dumpErr: errors.New("render: boom")})
	if resp, body := do(t, ts, "GET", "/v1/debug/dump", "admin-token", "", ""); resp.StatusCode != 500 || strings.Contains(string(body), "boom") {
		t.Errorf("dump failing before writing: %d %s; want 500 without the cause", resp.StatusCode, body)
	}
	ts = newTestServer(t, &fakeBackend{g: sampleGraph(), seq: 7, dumpPart: strings.Repeat("x", 100<<10), dumpErr: errors.New("render: boom")})
	req, _ := http.NewRequest("GET", ts.URL+"/v1/debug/dump", nil)
	req.Header.Set("Authorization", "Bearer admin-token")
	resp, err := ts.Client().Do(req)
	if err != nil {
		return // broken before the headers: as good
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("dump failing midway: %d, %d bytes read whole; want the answer broken", resp.StatusCode, len(b))
	}
}

// TestDumpsAreBounded: one dump is written at a time; another gets 503
// busy with Retry-After when it finds none free (here at once). Each
// takes the follower's lock for its copy of the state (184 ms at 100k
// entities) and holds the copy (39 MB) for as long as its client takes
// the dump, up to the write timeout: any number of them ran at once.
func TestDumpsAreBounded(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 7, dumpEntered: make(chan struct{}), dumpRelease: make(chan struct{})}
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Name: "a", Token: "admin-token", Role: RoleAdmin}}}, b, Deps{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	s.slotWait = 0
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	first := make(chan int, 1)
	go func() {
		resp, _ := do(t, ts, "GET", "/v1/debug/dump", "admin-token", "", "")
		first <- resp.StatusCode
	}()
	<-b.dumpEntered
	second := make(chan *http.Response, 1)
	go func() {
		resp, _ := do(t, ts, "GET", "/v1/debug/dump", "admin-token", "", "")
		second <- resp
	}()
	select {
	case resp := <-second:
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("a dump while one is written: %d, Retry-After %q; want 503 busy", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	case <-b.dumpEntered:
		t.Error("a second dump was written while one was")
		b.dumpRelease <- struct{}{}
		b.dumpRelease <- struct{}{}
		<-second
		<-first
		return
	}
	b.dumpRelease <- struct{}{}
	if code := <-first; code != 200 {
		t.Errorf("the first dump: %d", code)
	}
	// Free again.
	go func() { <-b.dumpEntered; b.dumpRelease <- struct{}{} }()
	if resp, body := do(t, ts, "GET", "/v1/debug/dump", "admin-token", "", ""); resp.StatusCode != 200 {
		t.Errorf("a dump once the first is written: %d %s", resp.StatusCode, body)
	}
}
