package apiclient_test

import (
	"context"
	"errors"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
	"github.com/causeway/causeway/processor/apiclient"
)

func server(t *testing.T, b *apitest.Backend) string {
	t.Helper()
	s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "adm", Role: api.RoleAdmin}, {Token: "rd", Role: api.RoleReader}}}, b, api.Deps{NodeID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

func sample() *apitest.Backend {
	return &apitest.Backend{
		Seq: 12, Leader: "p1",
		G: &apitest.Graph{
			Vertices: map[graph.VertexID]graph.Vertex{
				0: {ID: 0, Category: graph.CategoryResource, Type: "nova.host", ExternalID: "h1"},
				1: {ID: 1, Category: graph.CategoryAlarm, Type: "prometheus", ExternalID: "a1", Name: "nic", OperationalState: "CRITICAL"},
				2: {ID: 2, Category: graph.CategoryAlarm, Type: "vitrage", ExternalID: "a2", Name: "vm", OperationalState: "WARNING"},
			},
			Edges: []graph.Edge{{From: 1, To: 0, Relationship: "on"}, {From: 1, To: 2, Relationship: "causes"}},
			Tmpls: []api.Template{{Name: "t1", Body: "metadata: {name: t1}\n"}},
		},
		Members: []api.Member{{ID: "p1", Address: "a:1", Leader: true}},
	}
}

func TestClient(t *testing.T) {
	b := sample()
	url := server(t, b)
	ctx := context.Background()
	c, err := apiclient.New(url, "rd", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Status.AppliedSeq != 12 || st.Leader != "p1" {
		t.Fatalf("status %+v %v", st, err)
	}
	al, err := c.Alarms(ctx, apiclient.ListQuery{})
	if err != nil || len(al.Items) != 2 {
		t.Fatalf("alarms %+v %v", al, err)
	}
	a, err := c.Alarm(ctx, "2")
	if err != nil || a.Item.Name != "vm" {
		t.Fatalf("alarm %+v %v", a, err)
	}
	r, err := c.RCA(ctx, "2", 0, time.Time{})
	if err != nil || len(r.RootCauses) != 1 || r.RootCauses[0] != "1" {
		t.Fatalf("rca %+v %v", r, err)
	}
	if _, err := c.RCA(ctx, "2", 5, time.Time{}); err == nil {
		t.Fatal("rca at an unknown seq: no error")
	}
	top, err := c.Topology(ctx, apiclient.TopologyQuery{Category: "all"})
	if err != nil || len(top.Graph.Nodes) != 3 {
		t.Fatalf("topology %+v %v", top, err)
	}
	// A negative depth is sent, for the server to refuse, not dropped
	// (which answered the whole graph); so is a graph's depth without a root.
	for _, q := range []apiclient.TopologyQuery{{Depth: -1, Root: "1"}, {Depth: 1}} {
		if _, err := c.Topology(ctx, q); !errors.As(err, new(*apiclient.Error)) || err.(*apiclient.Error).Status != 400 {
			t.Errorf("topology %+v: %v, want a 400", q, err)
		}
	}
	ts, err := c.Templates(ctx)
	if err != nil || len(ts.Items) != 1 {
		t.Fatalf("templates %+v %v", ts, err)
	}
	// A reader may not delete; the error carries the status.
	_, err = c.DeleteTemplate(ctx, "t1")
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("delete as reader: %v", err)
	}
	adm, _ := apiclient.New(url, "adm", time.Second)
	if _, err := adm.DeleteTemplate(ctx, "t1"); err != nil || len(b.Published()) != 1 {
		t.Fatalf("delete as admin: %v, published %d", err, len(b.Published()))
	}
	if _, err := adm.Join(ctx, "p9", "b:2"); !apiclient.IsNotLeader(err) {
		t.Fatalf("join on a follower: %v", err)
	}
	b.IsLeader = true
	cl, err := adm.Join(ctx, "p9", "b:2")
	if err != nil || len(cl.Servers) != 2 {
		t.Fatalf("join: %+v %v", cl, err)
	}
	dump, err := adm.Dump(ctx)
	if err != nil || string(dump) != "{}" {
		t.Fatalf("dump %q %v", dump, err)
	}
	if _, err := apiclient.New("ftp://x", "", 0); err == nil {
		t.Fatal("New accepted an ftp URL")
	}
}

// TestNamesNeedingEscapes: a template name with a space, a slash or a
// percent sign reaches the server as that name (escaped once, not twice).
func TestNamesNeedingEscapes(t *testing.T) {
	b := sample()
	name := "host nic/v2 100%"
	b.G.Tmpls = append(b.G.Tmpls, api.Template{Name: name, Body: "metadata: {name: x}\n"})
	c, err := apiclient.New(server(t, b), "adm", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Template(context.Background(), name)
	if err != nil || got.Item.Name != name {
		t.Fatalf("template %q: %+v, %v", name, got, err)
	}
	if _, err := c.DeleteTemplate(context.Background(), name); err != nil {
		t.Errorf("delete %q: %v", name, err)
	}
}

// TestDotNames: a name or id that is a dot segment ("." or "..")
// reaches the server as that name; sent as is, the server's mux cleaned it
// away and redirected: templates show .. answered with GET /v1 (404 "GET
// /v1: not found"), templates show . with the template list (decoded as an
// empty template, no error), rca show .. with a 404 for /v1 rather than a
// 400 for the id.
func TestDotNames(t *testing.T) {
	b := sample()
	for _, name := range []string{".", ".."} {
		b.G.Tmpls = append(b.G.Tmpls, api.Template{Name: name, Body: "metadata: {name: x}\n"})
	}
	c, err := apiclient.New(server(t, b), "adm", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{".", ".."} {
		got, err := c.Template(ctx, name)
		if err != nil || got.Item.Name != name {
			t.Errorf("template %q: %+v, %v", name, got, err)
		}
		if _, err := c.DeleteTemplate(ctx, name); err != nil {
			t.Errorf("delete %q: %v", name, err)
		}
		var e *apiclient.Error
		if _, err := c.RCA(ctx, name, 0, time.Time{}); !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, "is not a vitrage_id") {
			t.Errorf("rca %q: %v; want 400, not a vitrage_id", name, err)
		}
	}
}

// TestRefusedTemplateProblems: a refused template's error carries its
// problems, and says them one a line, not as the API's JSON document.
func TestRefusedTemplateProblems(t *testing.T) {
	c, err := apiclient.New(server(t, sample()), "adm", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AddTemplate(context.Background(), []byte("metadata: {version: 3}\n"), nil)
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 400 || len(ae.Problems) == 0 || strings.Contains(ae.Message, `"seq"`) ||
		!strings.Contains(ae.Message, "\n  metadata.name: ") {
		t.Fatalf("add of an invalid template: %#v", err)
	}
}

// TestAddTemplateParams: AddTemplate sends the values of the template's
// parameters, and the API publishes them with it.
func TestAddTemplateParams(t *testing.T) {
	b := sample()
	c, err := apiclient.New(server(t, b), "adm", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	body := "metadata: {version: 3, name: get_param(tname), type: standard}\nparameters: {tname: {}, alarm: {}}\n" +
		"entities:\n  alarm: {category: ALARM, name: get_param(alarm)}\n  host: {type: nova.host}\n" +
		"scenarios:\n  - condition: alarm [on] host\n    actions: [{mark_down: {target: host}}]\n"
	if _, err := c.AddTemplate(context.Background(), []byte(body), nil); err == nil {
		t.Fatal("added without values for its parameters")
	}
	params := map[string]string{"tname": "nic", "alarm": "NIC_DOWN"}
	if _, err := c.AddTemplate(context.Background(), []byte(body), params); err != nil {
		t.Fatal(err)
	}
	if p := b.Published(); len(p) != 1 || p[0].Template.Name != "nic" || p[0].Template.Body != body || !maps.Equal(p[0].Template.Params, params) {
		t.Fatalf("published %+v", p)
	}
}
