package evaluator

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

// paramsTemplate has a parameter without a default (alarm_name), one with
// (severity), and its name is a parameter too, as Vitrage's examples have.
const paramsTemplate = `
metadata: {version: 3, name: get_param(template_name), type: standard}
parameters:
  template_name: {description: the name the template is loaded under}
  alarm_name: {description: the host alarm that raises the deduced one}
  severity: {default: WARNING}
entities:
  alarm: {category: ALARM, name: get_param(alarm_name)}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions: [{raise_alarm: {target: host, alarm_name: host in trouble, severity: get_param(severity)}}]
`

// paramsDefinition is a version 2 definition template with a parameter,
// and paramsUses a template that includes it: a restore rebuilds the
// include with the values it was put with.
const (
	paramsDefinition = `
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
	paramsUses = `
metadata: {version: 2, type: standard, name: uses_nic_defs}
includes: [{name: nic_defs}]
scenarios:
  - scenario:
      condition: alarm_on_host
      actions:
        - action: {action_type: mark_down, action_target: {target: host}}
`
)

func putParams(name, body string, params map[string]string) event.Event {
	ev := put(name, body)
	ev.Template.Params = params
	return ev
}

// deducedSeverity is the severity of the deduced alarm on host h1 ("" if
// none is raised).
func deducedSeverity(t *testing.T, e *Engine) string {
	t.Helper()
	g := e.Graph()
	for _, id := range g.VertexIDs() {
		v, _ := g.Vertex(id)
		if v.Category == graph.CategoryAlarm && v.Type == graph.DeducedType && !v.IsDeleted {
			return v.Severity
		}
	}
	return ""
}

// TestTemplateParams: as Vitrage's `template add --params`, a template
// whose parameter has no default is refused without a value for it and
// loads with one; a default applies unless a value is given; the values
// are applied when the template is put, and putting the same body with
// other values replaces it.
func TestTemplateParams(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(host("h1", "available"))
	l.must(alarmOn("a1", "NIC_DOWN", "h1"))

	_, err := l.apply(put("nic", paramsTemplate))
	if !errors.Is(err, ErrInvalidTemplate) || !strings.Contains(err.Error(), "alarm_name") {
		t.Fatalf("put without params: %v; want ErrInvalidTemplate naming alarm_name", err)
	}
	_, err = l.apply(putParams("nic", paramsTemplate, map[string]string{"template_name": "nic"}))
	if !errors.Is(err, ErrInvalidTemplate) || len(l.e.Templates()) != 0 {
		t.Fatalf("put with a value for template_name alone: %v; want ErrInvalidTemplate", err)
	}

	// An unknown name is left alone, as Vitrage leaves it.
	params := map[string]string{"template_name": "nic", "alarm_name": "NIC_DOWN", "unused": "x"}
	l.must(putParams("nic", paramsTemplate, params))
	if got := l.e.Templates(); len(got) != 1 || !maps.Equal(got[0].Params, params) || got[0].Body != paramsTemplate {
		t.Fatalf("templates = %+v", got)
	}
	if got := deducedSeverity(t, l.e); got != "WARNING" {
		t.Fatalf("deduced severity %q; want the default WARNING", got)
	}

	// The same body with other values is another template.
	params = map[string]string{"template_name": "nic", "alarm_name": "NIC_DOWN", "severity": "CRITICAL"}
	l.must(putParams("nic", paramsTemplate, params))
	if got := deducedSeverity(t, l.e); got != "CRITICAL" {
		t.Fatalf("deduced severity %q after a put with severity CRITICAL", got)
	}
	// Other values that match nothing: the deduced alarm clears.
	l.must(putParams("nic", paramsTemplate, map[string]string{"template_name": "nic", "alarm_name": "DISK_FULL"}))
	if got := deducedSeverity(t, l.e); got != "" {
		t.Fatalf("deduced alarm %q still raised with alarm_name DISK_FULL", got)
	}
}

// TestTemplateParamsRestore: the params are part of the state: State
// holds them, with those of the included definitions, and a restore from
// it, through gob and JSON as the snapshots encode it, dumps as the live
// engine does and goes on as it does.
func TestTemplateParamsRestore(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(host("h1", "available"))
	l.must(host("h2", "available"))
	l.must(alarmOn("a1", "NIC_DOWN", "h1"))
	l.must(putParams("defs", paramsDefinition, map[string]string{"alarm_name": "NIC_DOWN"}))
	l.must(put("uses", paramsUses))
	l.must(putParams("nic", paramsTemplate, map[string]string{"template_name": "nic", "alarm_name": "NIC_DOWN", "severity": "CRITICAL"}))
	// The definition is put again with another value: the template that
	// included it keeps what it included.
	l.must(putParams("defs", paramsDefinition, map[string]string{"alarm_name": "DISK_FULL"}))
	if deducedSeverity(t, l.e) != "CRITICAL" {
		t.Fatal("no deduced alarm")
	}
	id, _ := l.e.Graph().Lookup(graph.CategoryResource, "nova.host", "h1")
	if v, _ := l.e.Graph().Vertex(id); !v.IsMarkedDown {
		t.Fatal("the template including the definition did not mark h1 down")
	}

	s := l.e.State()
	if s.Version != StateVersion {
		t.Errorf("state version %d; want %d for a state with params", s.Version, StateVersion)
	}
	var uses TemplateState
	for _, ts := range s.Templates {
		if ts.Name == "uses" {
			uses = ts
		}
	}
	if len(uses.Includes) != 1 || uses.Includes[0].Params["alarm_name"] != "NIC_DOWN" {
		t.Fatalf("the include of uses: %+v; want the definition with the values it was included with", uses.Includes)
	}

	var gb bytes.Buffer
	if err := gob.NewEncoder(&gb).Encode(s); err != nil {
		t.Fatal(err)
	}
	var fromGob State
	if err := gob.NewDecoder(&gb).Decode(&fromGob); err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON State
	if err := json.Unmarshal(jb, &fromJSON); err != nil {
		t.Fatal(err)
	}
	want := dump(t, l.e)
	for _, tc := range []struct {
		name string
		s    State
	}{{"state", s}, {"gob", fromGob}, {"json", fromJSON}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Restore(tc.s, Config{}, nil)
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := dump(t, r); !bytes.Equal(got, want) {
				t.Fatalf("restored dump differs:\n%s\nwant\n%s", got, want)
			}
			// Both go on alike: an alarm on h2 raises the deduced alarm
			// there (the params' alarm name) and marks it down (the
			// include's).
			rl := &logger{t: t, e: r, seq: l.seq}
			ll := &logger{t: t, e: mustRestore(t, s), seq: l.seq}
			rl.must(alarmOn("a2", "NIC_DOWN", "h2"))
			ll.must(alarmOn("a2", "NIC_DOWN", "h2"))
			if !bytes.Equal(dump(t, r), dump(t, ll.e)) {
				t.Fatal("the restored engine goes on differently")
			}
			id, _ := r.Graph().Lookup(graph.CategoryResource, "nova.host", "h2")
			if v, _ := r.Graph().Vertex(id); !v.IsMarkedDown {
				t.Fatal("h2 not marked down after the restore")
			}
		})
	}
}

func mustRestore(t *testing.T, s State) *Engine {
	t.Helper()
	r, err := Restore(s, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStateVersionWithoutParams: a state none of whose templates has
// params is written as version 1, as the builds before params wrote it
// (they restore it), and its dump says no params; a version 1 state
// with params is refused, as a build before params would have dropped them.
func TestStateVersionWithoutParams(t *testing.T) {
	l := &logger{t: t, e: New(Config{}, nil)}
	l.must(putParams("defs", paramsDefinition, map[string]string{"alarm_name": "NIC_DOWN"}))
	l.must(put("uses", paramsUses))
	l.must(put("plain", `
metadata: {version: 3, name: plain, type: standard}
entities:
  alarm: {category: ALARM, name: NIC_DOWN}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions: [{mark_down: {target: host}}]
`))
	if v := l.e.State().Version; v != StateVersion {
		t.Fatalf("state version %d with a template with params; want %d", v, StateVersion)
	}
	l.must(event.Event{Source: "api", Kind: event.KindTemplateDelete, Template: &event.Template{Name: "uses"}})
	l.must(event.Event{Source: "api", Kind: event.KindTemplateDelete, Template: &event.Template{Name: "defs"}})
	s := l.e.State()
	if s.Version != 1 {
		t.Fatalf("state version %d without params; want 1", s.Version)
	}
	if d := dump(t, l.e); bytes.Contains(d, []byte(`"params"`)) {
		t.Fatalf("a dump without params says params: %s", d)
	}
	s.Templates[0].Params = map[string]string{"a": "b"}
	if _, err := Restore(s, Config{}, nil); err == nil {
		t.Fatal("restored a version 1 state with params")
	}
}
