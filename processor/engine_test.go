package processor

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
	"github.com/causeway/causeway/snapshot"
)

// engineBackend serves a real Machine (an evaluator engine, a
// snapshot.Node) through the API.
type engineBackend struct {
	apitest.Backend
	e Machine
}

func (b *engineBackend) View(fn func(api.View, int64) error) error {
	v, err := InspectEngine(b.e)
	if err != nil {
		return err
	}
	return fn(v, b.Seq)
}

const causalTemplate = `metadata:
  version: 3
  name: host_causes_vm
  type: standard
entities:
  host_alarm:
    category: ALARM
    type: prometheus
    name: nic down
  host:
    category: RESOURCE
    type: nova.host
  vm:
    category: RESOURCE
    type: nova.instance
scenarios:
  - condition: host_alarm [on] host AND host [contains] vm
    actions:
      - raise_alarm:
          target: vm
          alarm_name: instance down
          severity: WARNING
          causing_alarm: host_alarm
`

func TestAPIOverRealEngine(t *testing.T) {
	e := evaluator.New(evaluator.Config{}, graph.DefaultNormalizer())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := []event.Event{
		{Kind: event.KindTemplatePut, Template: &event.Template{Name: "host_causes_vm", Body: causalTemplate}},
		{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: "h1", Name: "h1", State: "available"}},
		{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: "vm1", Name: "vm1", State: "ACTIVE",
			Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: "h1", Direction: event.In}}}},
		{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: "a1", Name: "nic down", Severity: "critical",
			Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out}}}},
	}
	for i, ev := range evs {
		ev.V, ev.EventID, ev.Source, ev.ObservedAt = event.Version, "e"+string(rune('a'+i)), "test", t0
		if err := e.Apply(event.Record{Seq: int64(i + 1), RecordedAt: t0, Event: ev}); err != nil {
			t.Fatalf("apply %d: %v", i+1, err)
		}
	}
	// The capture of the same engine encodes without error.
	c, err := CaptureEngine(e, 4, time.Time{})
	if err != nil || c.Seq != 4 || !c.RecordedAt.Equal(t0) {
		t.Fatalf("capture %+v %v", c, err)
	}
	var buf bytes.Buffer
	if err := c.Encode(&buf); err != nil || buf.Len() == 0 {
		t.Fatalf("encode capture: %v", err)
	}
	// A config asking for gob (before a rollback to a release that reads
	// only gob) captures in gob, and the payload restores.
	for _, tc := range []struct{ cfg, want string }{{"", snapshot.EngineBin}, {"gob", snapshot.EngineGob}} {
		cfg := snapshot.Config{Encoding: tc.cfg}.WithDefaults()
		c, err := CaptureIn(cfg)(e, 4, time.Time{})
		if err != nil || c.Encoding != tc.want {
			t.Fatalf("capture with encoding %q: %q, %v; want %q", tc.cfg, c.Encoding, err, tc.want)
		}
		var p bytes.Buffer
		if err := c.Encode(&p); err != nil {
			t.Fatal(err)
		}
		m, err := snapshot.EngineFactory{Normalizer: graph.DefaultNormalizer()}.Restore(context.Background(), c.Encoding, &p)
		if err != nil {
			t.Fatalf("restore %s: %v", c.Encoding, err)
		}
		if m.(*evaluator.Engine).Graph().Len() != e.Graph().Len() {
			t.Fatalf("restored %s graph has %d vertices, want %d", c.Encoding, m.(*evaluator.Engine).Graph().Len(), e.Graph().Len())
		}
	}

	b := &engineBackend{Backend: apitest.Backend{Seq: 4, Leader: "p1"}, e: e}
	s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "t", Role: api.RoleReader}}}, b, api.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	get := func(path string, out any) {
		t.Helper()
		getJSON(t, ts, path, out)
	}
	var alarms api.ResourcesResponse
	get("/v1/alarms", &alarms)
	var deduced string
	for _, a := range alarms.Items {
		if a.Type == graph.DeducedType {
			deduced = a.VitrageID
		}
	}
	if len(alarms.Items) != 2 || deduced == "" {
		t.Fatalf("alarms = %+v", alarms.Items)
	}
	var rca api.RCAResponse
	get("/v1/rca/"+deduced, &rca)
	if len(rca.RootCauses) != 1 || len(rca.Paths) != 1 || len(rca.Paths[0]) != 2 || rca.Paths[0][1] != deduced {
		t.Fatalf("rca = %+v", rca)
	}
	root, _ := e.Graph().Vertex(mustID(t, rca.RootCauses[0]))
	if root.Name != "nic down" {
		t.Errorf("root cause = %+v", root)
	}
	var tl api.TemplatesResponse
	get("/v1/templates", &tl)
	if len(tl.Items) != 1 || tl.Items[0].Name != "host_causes_vm" {
		t.Errorf("templates = %+v", tl.Items)
	}
}

func mustID(t *testing.T, s string) graph.VertexID {
	t.Helper()
	var n int64
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatal(err)
	}
	return graph.VertexID(n)
}

// TestViewTemplateParams: the API's view of the engine says the params a
// template was put with.
func TestViewTemplateParams(t *testing.T) {
	e := evaluator.New(evaluator.Config{}, graph.DefaultNormalizer())
	body := strings.Replace(causalTemplate, "name: nic down", "name: get_param(alarm_name)", 1) + "parameters:\n  alarm_name: {}\n"
	params := map[string]string{"alarm_name": "nic down"}
	ev := event.Event{V: event.Version, EventID: "p", Source: "test", Kind: event.KindTemplatePut, ObservedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Template: &event.Template{Name: "host_causes_vm", Body: body, Params: params}}
	if err := e.Apply(event.Record{Seq: 1, RecordedAt: ev.ObservedAt, Event: ev}); err != nil {
		t.Fatal(err)
	}
	v, err := InspectEngine(e)
	if err != nil {
		t.Fatal(err)
	}
	if ts := v.Templates(); len(ts) != 1 || !maps.Equal(ts[0].Params, params) {
		t.Fatalf("templates = %+v; want its params", ts)
	}
}

// getJSON GETs path from ts with token t, wants 200 and decodes the
// answer into out.
func getJSON(t *testing.T, ts *httptest.Server, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer t")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
