package template

import (
	"fmt"
	"strings"
	"testing"
)

// Vitrage refuses these templates (or, for an empty parameter value,
// reads them otherwise); Causeway loaded them with a meaning of its own.
// New templates (validate, add) are refused with the problem named; a
// template read from the event log (Options.Stored) loads as it did when
// it was added, so a replay of an older log is unchanged.
func TestAddTimeRefusals(t *testing.T) {
	v3 := func(entities, action string) string {
		return fmt.Sprintf(`
metadata: {version: 3, name: t, type: standard}
parameters:
  p: {default: nova.host}
  q: {}
  e: {default: ""}
entities:
  host: {%s}
scenarios:
  - condition: host
    actions:
      - %s
`, entities, action)
	}
	const markDown = "mark_down: {target: host}"
	tests := []struct {
		name, body string
		params     map[string]string
		path       string
		code       int
	}{
		// functions.get_param: a malformed call is code 162.
		{"get_param with a space", v3("type: get_param (p)", markDown), nil, "entities.host.type", 162},
		{"get_param without a name", v3("type: get_param()", markDown), nil, "entities.host.type", 162},
		{"get_param with text after", v3("type: get_param(p)x", markDown), nil, "entities.host.type", 162},
		{"get_param of two words", v3("type: get_param(p q)", markDown), nil, "entities.host.type", 162},
		{"get_param alone", v3("type: get_param", markDown), nil, "entities.host.type", 162},
		// functions.get_param: "if not param_value" takes an empty value
		// given as none given, and an empty default as no default.
		{"empty value given", v3("type: get_param(q)", markDown), map[string]string{"q": ""}, "entities.host.type", 163},
		{"empty value over a default", v3("type: get_param(p)", markDown), map[string]string{"p": ""}, "entities.host.type", 163},
		{"empty default", v3("type: get_param(e)", markDown), nil, "entities.host.type", 163},
		// The version is one of the strings "1", "2", "3".
		{"version 03", strings.Replace(v3("type: nova.host", markDown), "version: 3", "version: 03", 1), nil, "metadata.version", 63},
		{"version +3", strings.Replace(v3("type: nova.host", markDown), "version: 3", "version: +3", 1), nil, "metadata.version", 63},
		// A version 3 Mistral input with a comma but no function call.
		{"mistral input comma", v3("type: nova.host", "execute_mistral: {workflow: wf, input: {hosts: 'a,b'}}"), nil,
			"scenarios[0].actions[0].execute_mistral.input.hosts", 138},
		// Version 1 has no functions.
		{"v1 get_param", `
metadata: {name: t}
parameters: {p: {default: nova.host}}
definitions:
  entities:
    - entity: {category: RESOURCE, type: get_param(p), template_id: host}
scenarios:
  - scenario:
      condition: host
      actions:
        - action: {action_type: mark_down, action_target: {target: host}}
`, nil, "definitions.entities[0].entity.type", 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range Validate([]byte(tt.body), Options{Params: tt.params}) {
				got = append(got, p.String())
				if p.Code == tt.code && p.Path == tt.path {
					return
				}
			}
			t.Errorf("problems %q, want code %d at %s", got, tt.code, tt.path)
		})
		t.Run(tt.name+"/stored", func(t *testing.T) {
			if _, err := Parse([]byte(tt.body), Options{Params: tt.params, Stored: true}); err != nil {
				t.Errorf("a stored template no longer loads: %v", err)
			}
		})
	}
}

// A well-formed call, a value given and the versions as Vitrage writes
// them stay valid.
func TestAddTimeAccepts(t *testing.T) {
	body := `
metadata: {version: "3", name: t, type: standard}
parameters:
  p: {default: nova.host}
entities:
  host: {type: get_param( p ), name: get_paramless}
scenarios:
  - condition: host
    actions:
      - execute_mistral: {workflow: wf, input: {h: "get_attr(host, name)", n: plain}}
`
	tpl, err := Parse([]byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tpl.Entities["host"].Props["type"]; got != "nova.host" {
		t.Errorf("type %q, want nova.host", got)
	}
}
