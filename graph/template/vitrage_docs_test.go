package template

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVitrageDocTemplates loads the templates Vitrage's documentation shows
// (testdata/vitrage_docs, each naming its page) and checks each scenario's
// condition compiles to the clauses the page describes.
func TestVitrageDocTemplates(t *testing.T) {
	tests := []struct {
		file   string
		params map[string]string
		name   string
		// dnf lists, per scenario, its clauses, terms joined by " & ".
		dnf [][]string
	}{
		{file: "v3_example1_rca.yaml", name: "EXAMPLE 1 - host high CPU load to instance CPU suboptimal", dnf: [][]string{
			{"host_alarm [on] host & host [contains] instance"},
			{"instance_alarm [on] instance"},
		}},
		{file: "v3_example2_state.yaml", name: "EXAMPLE 3 - deduced state for instances with critical alarm", dnf: [][]string{
			{"instance_alarm [on] instance"},
		}},
		{file: "v3_example3_alarm.yaml", name: "EXAMPLE 3 - deduced alarm for all hosts in error", dnf: [][]string{
			{"host_in_error"},
		}},
		{file: "v3_example4_or.yaml", name: "EXAMPLE 4 - deduced alarm two possible triggers", dnf: [][]string{{
			"host_alarm [on] host & host [contains] instance",
			"zone_alarm [on] zone & zone [contains] host & host [contains] instance",
		}}},
		{file: "v3_example5_params.yaml", name: "cpu_template", params: map[string]string{
			"template_name": "cpu_template", "host_alarm_name": "High CPU on host",
			"instance_alarm_name": "CPU performance degradation on the instance",
		}, dnf: [][]string{
			{"host_alarm [on] host & host [contains] instance"},
		}},
		{file: "v3_actions.yaml", name: "Entities for action examples", dnf: [][]string{
			{"host_alarm [on] host"},
			{"host_alarm [on] host & host [contains] instance"},
			{"host_alarm [on] host & host [contains] instance & instance_alarm [on] instance"},
			{"host_alarm [on] host"},
			{"host_alarm [on] host"},
			{"host_alarm [on] host"},
			{"host [contains] instance & NOT host_alarm [on] host"},
			{"host [contains] instance & NOT host_alarm [on] host & NOT instance_alarm [on] instance"},
			{"host_alarm [on] host & NOT host_alarm [on] host"},
		}},
		{file: "v3_not_use_cases.yaml", name: "no_alarm_on_instance_that_contained_in_host", dnf: [][]string{
			{"host [contains] instance & NOT instance_alarm [on] instance"},
			{"host [contains] instance & switch [connected] host & switch [has] network & port [attached] network & NOT instance [connected] port"},
		}},
		{file: "v2_example1_rca.yaml", name: "host_high_mem_load_to_instance_mem_suboptimal", dnf: [][]string{
			{"host_alarm [on] host & host [contains] instance"},
			{"host_alarm [on] host & instance_alarm [on] instance & host [contains] instance"},
		}},
		{file: "v2_example3_state.yaml", name: "deduced_alarm_for_all_host_in_error", dnf: [][]string{
			{"host_in_error"},
		}},
		{file: "v2_example4_or.yaml", name: "deduced_alarm_two_possible_triggers", dnf: [][]string{{
			"host_alarm [on] host & host [contains] instance",
			"zone_alarm [on] zone & zone [contains] host & host [contains] instance",
		}}},
		{file: "v2_regex.yaml", name: "zabbix_regex", dnf: [][]string{
			{"zabbix_alarm [on] host"},
		}},
	}
	files, _ := filepath.Glob("testdata/vitrage_docs/*.yaml")
	if len(files) != len(tests) {
		t.Errorf("%d files in testdata/vitrage_docs, %d tests", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata/vitrage_docs", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			tpl, err := Parse(body, Options{Params: tt.params})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tpl.Name != tt.name {
				t.Errorf("name %q, want %q", tpl.Name, tt.name)
			}
			var got [][]string
			for _, sc := range tpl.Scenarios {
				var clauses []string
				for _, c := range sc.Clauses {
					var terms []string
					for _, term := range c.Terms {
						terms = append(terms, term.String())
					}
					clauses = append(clauses, strings.Join(terms, " & "))
				}
				got = append(got, clauses)
			}
			if diff := cmp.Diff(got, tt.dnf); diff != "" {
				t.Errorf("clauses (-got +want):\n%s", diff)
			}
		})
	}
}

// TestVitrageDocActions: the actions of the version 3 page's examples
// load with the fields the page gives them.
func TestVitrageDocActions(t *testing.T) {
	body, err := os.ReadFile("testdata/vitrage_docs/v3_actions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := Parse(body, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []Action
	for _, sc := range tpl.Scenarios[:6] {
		got = append(got, sc.Actions...)
	}
	want := []Action{
		{Type: ActionSetState, Target: "host", State: "ERROR"},
		{Type: ActionRaiseAlarm, Target: "instance", AlarmName: "affected by host problem", Severity: "WARNING", CausingAlarm: "host_alarm"},
		{Type: ActionAddCausal, Source: "host_alarm", Target: "instance_alarm"},
		{Type: ActionMarkDown, Target: "host"},
		{Type: ActionExecuteMistral, Workflow: "work_1", Input: map[string]string{"some_property": "5", "another_property": "hello"}},
		{Type: ActionExecuteMistral, Workflow: "demo_workflow", Input: map[string]string{"host_name": "get_attr(host, name)", "retries": "5"}},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("actions (-got +want):\n%s", diff)
	}
	// Example 5 of the page: the parameters with a default may be left out.
	body, err = os.ReadFile("testdata/vitrage_docs/v3_example5_params.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err = Parse(body, Options{Params: map[string]string{
		"template_name": "cpu_template", "host_alarm_name": "High CPU on host",
		"instance_alarm_name": "CPU performance degradation on the instance",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if e := tpl.Entities["host_alarm"]; e.Props["type"] != "zabbix" || e.Props["name"] != "High CPU on host" {
		t.Errorf("host_alarm filter %v", e.Props)
	}
	if a := tpl.Scenarios[0].Actions[0]; a.AlarmName != "CPU performance degradation on the instance" || a.Severity != "WARNING" {
		t.Errorf("raise_alarm %+v", a)
	}
	// Without the parameters that have no default, the page's template
	// is refused, naming each.
	ps := Validate(body, Options{})
	var codes []string
	for _, p := range ps {
		codes = append(codes, p.String())
	}
	if len(ps) != 3 {
		t.Errorf("problems without params:\n%s", strings.Join(codes, "\n"))
	}
	for _, p := range ps {
		if p.Code != 163 {
			t.Errorf("problem %s, want code 163", p)
		}
	}
}

// TestVitrageReadingDivergences pins two divergences README states: only
// the lowercase ".regex" suffix makes a regular expression, and a mapping
// that repeats a key is refused.
func TestVitrageReadingDivergences(t *testing.T) {
	tpl, err := Parse([]byte(`
metadata: {version: 3, name: t, type: standard}
entities:
  host: {type: nova.host, name.REGEX: "compute-.*"}
scenarios:
  - condition: host
    actions: [{mark_down: {target: host}}]
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e := tpl.Entities["host"]; len(e.Regex) != 0 || e.Props["name.REGEX"] != "compute-.*" {
		t.Errorf("name.REGEX read as props %v, regex %v", e.Props, e.Regex)
	}
	ps := Validate([]byte(`
metadata: {version: 3, name: t, type: standard}
entities:
  host: {type: nova.host}
  host: {type: nova.instance}
scenarios:
  - condition: host
    actions: [{mark_down: {target: host}}]
`), Options{})
	if len(ps) != 1 || ps[0].Code != 5 || !strings.Contains(ps[0].Message, `"host" already defined`) {
		t.Errorf("a repeated key: %v", ps)
	}
}
