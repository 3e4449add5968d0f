package api

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/event"
)

// paramsTemplate's name and alarm name are parameters without a default;
// its severity has one.
const paramsTemplate = `
metadata: {version: 3, name: get_param(template_name), type: standard}
parameters:
  template_name: {}
  alarm_name: {}
  severity: {default: WARNING}
entities:
  alarm: {category: ALARM, name: get_param(alarm_name)}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions: [{raise_alarm: {target: host, alarm_name: host in trouble, severity: get_param(severity)}}]
`

func paramsBody(t *testing.T, params map[string]string) string {
	t.Helper()
	b, err := json.Marshal(Template{Body: paramsTemplate, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTemplateParams: validate and add take the values of a template's
// parameters in a JSON body ({"body": ..., "params": {...}}), as Vitrage's
// `template validate|add --params`: without a value for a parameter that
// has no default the template is refused (code 163), with them it is valid
// and published under its resolved name, its params in the event; show
// says them.
func TestTemplateParams(t *testing.T) {
	g := sampleGraph()
	b := &fakeBackend{g: g, seq: 3}
	ts := newTestServer(t, b)

	var v ValidateResponse
	resp, body := do(t, ts, "POST", "/v1/templates/validate", "read-token", "application/yaml", paramsTemplate)
	if err := json.Unmarshal(body, &v); err != nil || v.Valid || len(v.Problems) == 0 || v.Problems[0].Code != 163 {
		t.Fatalf("validate without params: %d %s; want invalid, code 163", resp.StatusCode, body)
	}
	resp, body = do(t, ts, "POST", "/v1/templates", "admin-token", "application/json", paramsBody(t, map[string]string{"template_name": "cpu"}))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "alarm_name") || len(b.published) != 0 {
		t.Fatalf("add with a value missing: %d %s; want 400 naming alarm_name", resp.StatusCode, body)
	}

	params := map[string]string{"template_name": "cpu", "alarm_name": "CPU_HIGH"}
	v = ValidateResponse{}
	resp, body = do(t, ts, "POST", "/v1/templates/validate", "read-token", "application/json", paramsBody(t, params))
	if err := json.Unmarshal(body, &v); err != nil || !v.Valid || v.Name != "cpu" {
		t.Fatalf("validate with params: %d %s; want valid, named cpu", resp.StatusCode, body)
	}
	resp, body = do(t, ts, "POST", "/v1/templates", "admin-token", "application/json", paramsBody(t, params))
	if resp.StatusCode != 202 || len(b.published) != 1 {
		t.Fatalf("add with params: %d %s", resp.StatusCode, body)
	}
	if tp := b.published[0].Template; tp.Name != "cpu" || tp.Body != paramsTemplate || !maps.Equal(tp.Params, params) {
		t.Fatalf("published %+v; want the body, named cpu, with its params", tp)
	}

	g.tmpls = append(g.tmpls, Template{Name: "cpu", Body: paramsTemplate, Params: params})
	resp, body = do(t, ts, "GET", "/v1/templates/cpu", "read-token", "", "")
	var tr TemplateResponse
	if err := json.Unmarshal(body, &tr); err != nil || resp.StatusCode != 200 || !maps.Equal(tr.Item.Params, params) {
		t.Fatalf("show: %d %s; want its params", resp.StatusCode, body)
	}
}

// TestTemplateNameDefault: a name that is a parameter with a default is
// resolved without params too.
func TestTemplateNameDefault(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 3}
	ts := newTestServer(t, b)
	body := strings.Replace(paramsTemplate, "template_name: {}", "template_name: {default: cpu}", 1)
	body = strings.Replace(body, "alarm_name: {}", "alarm_name: {default: CPU_HIGH}", 1)
	resp, out := do(t, ts, "POST", "/v1/templates", "admin-token", "application/yaml", body)
	if resp.StatusCode != 202 || len(b.published) != 1 || b.published[0].Template.Name != "cpu" || b.published[0].Template.Params != nil {
		t.Fatalf("add: %d %s; want it published as cpu, without params", resp.StatusCode, out)
	}
}

// TestTemplateParamsOfDefinitions: a template including a definition
// that was loaded with params is validated against the definition as it
// was loaded, with its values.
func TestTemplateParamsOfDefinitions(t *testing.T) {
	def := `
metadata: {version: 2, type: definition, name: nic_defs}
parameters:
  alarm_name: {}
definitions:
  entities:
    - entity: {category: ALARM, name: get_param(alarm_name), template_id: alarm}
    - entity: {category: RESOURCE, type: nova.host, template_id: host}
  relationships:
    - relationship: {source: alarm, target: host, relationship_type: on, template_id: alarm_on_host}
`
	uses := `
metadata: {version: 2, type: standard, name: uses_nic_defs}
includes: [{name: nic_defs}]
scenarios:
  - scenario:
      condition: alarm_on_host
      actions:
        - action: {action_type: mark_down, action_target: {target: host}}
`
	g := sampleGraph()
	g.tmpls = append(g.tmpls, Template{Name: "defs", Body: def, Params: map[string]string{"alarm_name": "NIC_DOWN"}})
	b := &fakeBackend{g: g, seq: 3}
	ts := newTestServer(t, b)
	resp, body := do(t, ts, "POST", "/v1/templates", "admin-token", "application/yaml", uses)
	if resp.StatusCode != 202 || len(b.published) != 1 {
		t.Fatalf("add including a definition loaded with params: %d %s", resp.StatusCode, body)
	}
}

// TestDefinitionsParsedOnce: the loaded templates are parsed once for a
// validation, not again for every include: each include parsed every
// loaded template, so that a reader's POST /v1/templates/validate of a
// template listing its includes many times (measured: 5000 of them
// against 20 loaded definitions, 18.7 s of CPU; a 1 MiB body holds some
// 80000) took the node's cores for minutes.
func TestDefinitionsParsedOnce(t *testing.T) {
	def := "metadata: {version: 2, type: definition, name: defs}\ndefinitions:\n  entities:\n    - entity: {category: RESOURCE, type: nova.host, template_id: host}\n"
	defs := definitions([]Template{{Name: "a", Body: def}, {Name: "b", Body: "metadata: {name: b}\n"}})
	if d, ok := defs("defs"); !ok || d.Name != "defs" {
		t.Fatalf("defs: %v, %v; want the definition", d, ok)
	}
	if _, ok := defs("nope"); ok {
		t.Fatal("nope: found")
	}
	if n := testing.AllocsPerRun(10, func() { defs("defs"); defs("nope") }); n != 0 {
		t.Errorf("resolving includes again allocates %v times a run; want 0 (the loaded templates parsed once)", n)
	}
}

// TestTemplateJSONBodyIsStrict: a JSON template body with a field the API
// does not know ("parameters" for "params", a typo) had it dropped: the
// template was added with its defaults, silently, which is not what was
// asked. It is refused, naming the field, and nothing is published; and a
// media type is matched whatever its case (RFC 9110), not read as YAML.
func TestTemplateJSONBodyIsStrict(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 3}
	ts := newTestServer(t, b)
	misnamed := `{"body": ` + strconv.Quote(paramsTemplate) + `, "parameters": {"template_name": "cpu", "alarm_name": "CPU_HIGH", "severity": "CRITICAL"}}`
	named := `{"body": ` + strconv.Quote(strings.Replace(paramsTemplate, "template_name: {}", "template_name: {default: cpu}", 1)) +
		`, "params": {"alarm_name": "CPU_HIGH"}, "severity": "CRITICAL"}`
	for _, path := range []string{"/v1/templates/validate", "/v1/templates"} {
		for _, body := range []string{misnamed, named, `{"body": "metadata: {name: x}"} trailing`} {
			resp, got := do(t, ts, "POST", path, "admin-token", "application/json", body)
			if resp.StatusCode != 400 || !strings.Contains(string(got), "decode request body") {
				t.Errorf("POST %s %s: %d %s; want 400, the body refused", path, body, resp.StatusCode, got)
			}
		}
	}
	if len(b.published) != 0 {
		t.Fatalf("published %+v; want nothing", b.published)
	}
	params := map[string]string{"template_name": "cpu", "alarm_name": "CPU_HIGH"}
	resp, got := do(t, ts, "POST", "/v1/templates", "admin-token", "Application/JSON; charset=utf-8", paramsBody(t, params))
	if resp.StatusCode != 202 || len(b.published) != 1 || !maps.Equal(b.published[0].Template.Params, params) {
		t.Fatalf("add as Application/JSON: %d %s; want it read as JSON, with its params", resp.StatusCode, got)
	}
}

// TestValidateRefusesWhatAddRefuses: a template that the event log cannot
// take (its resolved name or a parameter's value over the event's limits,
// or a body whose event, escaped in JSON, is over event.MaxEventBytes) was
// valid to validate, and add refused it at publish (400, 413) with another
// error. Both refuse it now, with the same problems, and nothing is
// published.
func TestValidateRefusesWhatAddRefuses(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 3}
	ts := newTestServer(t, b)
	longName := paramsBody(t, map[string]string{"template_name": strings.Repeat("n", event.MaxIDLen+1), "alarm_name": "CPU_HIGH"})
	longValue := paramsBody(t, map[string]string{"template_name": "cpu", "alarm_name": strings.Repeat("a", event.MaxParamValueLen+1)})
	// Well under template.MaxSize, but each quote and line break is two
	// bytes in the event: it encodes to about twice that.
	var big strings.Builder
	big.WriteString(validTemplate)
	for big.Len() < event.MaxEventBytes*6/10 {
		big.WriteString("# \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\n")
	}
	for name, c := range map[string]struct{ ctype, body, want string }{
		"long name":  {"application/json", longName, "template.name"},
		"long value": {"application/json", longValue, "template.params"},
		"big event":  {"application/yaml", big.String(), "event"},
	} {
		var v ValidateResponse
		resp, body := do(t, ts, "POST", "/v1/templates/validate", "read-token", c.ctype, c.body)
		if err := json.Unmarshal(body, &v); err != nil || v.Valid || len(v.Problems) == 0 || !strings.Contains(v.Problems[0].Path+v.Problems[0].Message, c.want) {
			t.Errorf("%s: validate: %d %.400s; want invalid, naming %s", name, resp.StatusCode, body, c.want)
		}
		var a ValidateResponse
		resp, body = do(t, ts, "POST", "/v1/templates", "admin-token", c.ctype, c.body)
		if err := json.Unmarshal(body, &a); err != nil || resp.StatusCode != 400 || !slices.Equal(a.Problems, v.Problems) {
			t.Errorf("%s: add: %d %.400s; want 400 with validate's problems %+v", name, resp.StatusCode, body, v.Problems)
		}
	}
	if len(b.published) != 0 {
		t.Fatalf("published %d events; want none", len(b.published))
	}
}

// TestTemplateNameInTheBody: a JSON body's "name" that is not the
// template's own was dropped: the template was added under its
// metadata.name, and a show or delete by the name given found nothing. It
// is refused; the template's own name (as show answers it) is accepted.
func TestTemplateNameInTheBody(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 3}
	ts := newTestServer(t, b)
	body := func(name string) string {
		raw, err := json.Marshal(Template{Name: name, Body: validTemplate})
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	var v ValidateResponse
	resp, got := do(t, ts, "POST", "/v1/templates/validate", "read-token", "application/json", body("other"))
	if err := json.Unmarshal(got, &v); err != nil || v.Valid || len(v.Problems) != 1 || v.Problems[0].Path != "name" {
		t.Errorf("validate named other: %d %s; want invalid, naming name", resp.StatusCode, got)
	}
	resp, got = do(t, ts, "POST", "/v1/templates", "admin-token", "application/json", body("other"))
	if resp.StatusCode != 400 || len(b.published) != 0 {
		t.Fatalf("add named other: %d %s; want 400, nothing published", resp.StatusCode, got)
	}
	resp, got = do(t, ts, "POST", "/v1/templates", "admin-token", "application/json", body("host_nic"))
	if resp.StatusCode != 202 || len(b.published) != 1 || b.published[0].Template.Name != "host_nic" {
		t.Fatalf("add named host_nic: %d %s; want 202", resp.StatusCode, got)
	}
}

// TestAddRefusesMalformedGetParam: a get_param call Vitrage cannot read
// (code 162) was validated and added, and its text taken as the filter's
// value, which matches nothing; and an empty parameter value, which
// Vitrage takes as none given, was read as "". Both are refused, named by
// their field, and nothing is published.
func TestAddRefusesMalformedGetParam(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 3}
	ts := newTestServer(t, b)
	for _, tc := range []struct {
		body   string
		params map[string]string
		code   int
	}{
		{strings.Replace(paramsTemplate, "get_param(alarm_name)", "get_param (alarm_name)", 1), map[string]string{"template_name": "cpu", "alarm_name": "x"}, 162},
		{paramsTemplate, map[string]string{"template_name": "cpu", "alarm_name": ""}, 163},
	} {
		raw, err := json.Marshal(Template{Body: tc.body, Params: tc.params})
		if err != nil {
			t.Fatal(err)
		}
		var v ValidateResponse
		resp, body := do(t, ts, "POST", "/v1/templates/validate", "read-token", "application/json", string(raw))
		if err := json.Unmarshal(body, &v); err != nil || v.Valid || len(v.Problems) != 1 || v.Problems[0].Code != tc.code || v.Problems[0].Path != "entities.alarm.name" {
			t.Errorf("validate: %d %s; want invalid, code %d at entities.alarm.name", resp.StatusCode, body, tc.code)
		}
		resp, body = do(t, ts, "POST", "/v1/templates", "admin-token", "application/json", string(raw))
		if resp.StatusCode != 400 || len(b.published) != 0 {
			t.Errorf("add: %d %s; want 400 and nothing published", resp.StatusCode, body)
		}
	}
}
