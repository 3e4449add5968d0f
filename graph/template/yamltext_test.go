package template

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestScalarsAreTheirText: Vitrage reads a template with PyYAML's
// BaseLoader, every scalar as the text written. A value YAML would type
// as a number or a date filters on that text, in version 2 and 3 alike,
// and a version 3 template with such values loads.
func TestScalarsAreTheirText(t *testing.T) {
	v3 := `
metadata: {version: 3, name: numbers, type: standard}
entities:
  trigger: {category: ALARM, type: zabbix, trigger_id: 013491, since: 2024-01-01}
  host: {type: nova.host, name: 1.10}
scenarios:
  - condition: trigger [on] host
    actions:
      - raise_alarm: {target: host, alarm_name: 404, severity: WARNING}
`
	v2 := `
metadata: {version: 2, type: standard, name: numbers}
definitions:
  entities:
    - entity: {category: ALARM, type: zabbix, trigger_id: 013491, since: 2024-01-01, template_id: trigger}
    - entity: {category: RESOURCE, type: nova.host, name: 1.10, template_id: host}
  relationships:
    - relationship: {source: trigger, target: host, relationship_type: on, template_id: trigger_on_host}
scenarios:
  - scenario:
      condition: trigger_on_host
      actions:
        - action: {action_type: raise_alarm, action_target: {target: host}, properties: {alarm_name: 404, severity: WARNING}}
`
	for name, body := range map[string]string{"v3": v3, "v2": v2} {
		t.Run(name, func(t *testing.T) {
			tpl, err := Parse([]byte(body), Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got, want := tpl.Entities["trigger"].Props, map[string]string{"category": "ALARM", "type": "zabbix", "trigger_id": "013491", "since": "2024-01-01"}; !cmp.Equal(got, want) {
				t.Errorf("trigger filters %v; want %v", got, want)
			}
			if got := tpl.Entities["host"].Props["name"]; got != "1.10" {
				t.Errorf("host name filter %q; want 1.10", got)
			}
			if got := tpl.Scenarios[0].Actions[0].AlarmName; got != "404" {
				t.Errorf("alarm name %q; want 404", got)
			}
		})
	}
}

// TestTypedScalarsReadsAsBefore: Options.TypedScalars decodes as builds
// of apply semantics below 4 did, so that a state computed under them
// rebuilds the rules its matches were found by.
func TestTypedScalarsReadsAsBefore(t *testing.T) {
	v2 := `
metadata: {version: 2, type: standard, name: numbers}
definitions:
  entities:
    - entity: {category: RESOURCE, type: nova.host, name: 1.10, id: 0123, template_id: host}
scenarios:
  - scenario:
      condition: host
      actions:
        - action: {action_type: mark_down, action_target: {target: host}}
`
	tpl, err := Parse([]byte(v2), Options{TypedScalars: true})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := tpl.Entities["host"].Props, map[string]string{"category": "RESOURCE", "type": "nova.host", "name": "1.1", "id": "83"}; !cmp.Equal(got, want) {
		t.Errorf("typed filters %v; want %v", got, want)
	}
	v3 := `
metadata: {version: 3, name: numbers, type: standard}
entities:
  host: {type: nova.host, name: 1.10}
scenarios:
  - condition: host
    actions: [{mark_down: {target: host}}]
`
	if _, err := Parse([]byte(v3), Options{TypedScalars: true}); err == nil || !strings.Contains(err.Error(), "entity property must be a string") {
		t.Errorf("typed v3 with a number: err = %v; want it refused as before", err)
	}
}

// TestDecodeTextMappings: booleans read as typed decoding rendered them,
// nulls are missing values, merge keys apply (written keys win) and a key
// written twice is refused, as yaml.v3 does.
func TestDecodeTextMappings(t *testing.T) {
	doc, err := decodeText([]byte(`
base: &base {a: 1, b: 2}
other: &other {b: 3, c: 4}
m:
  <<: [*base, *other]
  a: 0
flags: [True, FALSE, yes, ~, "", null]
`))
	if err != nil {
		t.Fatal(err)
	}
	top := doc.(map[string]any)
	if got, want := top["m"], map[string]any{"a": "0", "b": "2", "c": "4"}; !cmp.Equal(got, want) {
		t.Errorf("merged %v; want %v", got, want)
	}
	if got, want := top["flags"], []any{"true", "false", "yes", nil, "", nil}; !cmp.Equal(got, want) {
		t.Errorf("flags %v; want %v", got, want)
	}
	if _, err := decodeText([]byte("a: 1\na: 2\n")); err == nil || !strings.Contains(err.Error(), `mapping key "a" already defined at line 1`) {
		t.Errorf("duplicate key: err = %v", err)
	}
}

// TestDecodeTextBoundsAliases: aliases of aliases cannot blow a small body
// up into an exponential document.
func TestDecodeTextBoundsAliases(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		prev := fmt.Sprintf("*a%d", i-1)
		fmt.Fprintf(&b, "a%d: &a%d [%s%s]\n", i, i, strings.Repeat(prev+", ", 7), prev)
	}
	if _, err := decodeText([]byte(b.String())); err != errAliasExpansion {
		t.Fatalf("err = %v; want errAliasExpansion", err)
	}
	if ps := Validate([]byte(b.String()), Options{}); len(ps) != 1 || ps[0].Code != 5 {
		t.Errorf("Validate = %v; want one code 5", ps)
	}
}
