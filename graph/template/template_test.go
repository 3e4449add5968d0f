package template

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func loadDefs(t *testing.T) func(string) (*Template, bool) {
	t.Helper()
	body, err := os.ReadFile("testdata/valid/v2_definition.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def, err := Parse(body, Options{})
	if err != nil {
		t.Fatalf("definition template: %v", err)
	}
	return func(name string) (*Template, bool) {
		if name == def.Name {
			return def, true
		}
		return nil, false
	}
}

func TestValidTemplates(t *testing.T) {
	defs := loadDefs(t)
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no valid templates")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			tpl, err := Parse(body, Options{Definitions: defs})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tpl.Name == "" {
				t.Error("no name")
			}
		})
	}
}

func TestInvalidTemplates(t *testing.T) {
	defs := loadDefs(t)
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no invalid templates")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wantRaw, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Split(strings.TrimSpace(string(wantRaw)), "\n")
			_, err = Parse(body, Options{Definitions: defs})
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error = %v, want a *ValidationError", err)
			}
			var got []string
			for _, p := range ve.Problems {
				got = append(got, p.String())
			}
			if len(got) != len(want) {
				t.Fatalf("got %d problems, want %d:\n got: %s\nwant: %s", len(got), len(want),
					strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
			for i := range want {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Errorf("problem %d:\n got: %s\nwant: %s", i, got[i], want[i])
				}
			}
		})
	}
}

func TestV2AndV3Agree(t *testing.T) {
	read := func(p string) *Template {
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := Parse(body, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return tpl
	}
	v2 := read("testdata/valid/v2_host_nic_down.yaml")
	v3 := read("testdata/valid/v3_host_nic_down.yaml")
	if diff := cmp.Diff(v2.Scenarios[0].Clauses, v3.Scenarios[0].Clauses); diff != "" {
		t.Errorf("first scenario clauses differ (-v2 +v3):\n%s", diff)
	}
	a := v3.Scenarios[0].Actions[0]
	if a.Severity != "WARNING" || a.CausingAlarm != "nic_alarm" || a.Target != "instance" {
		t.Errorf("raise_alarm = %+v", a)
	}
	mistral := v3.Scenarios[1].Actions[1]
	if mistral.Workflow != "evacuate_host" || mistral.Input["host_name"] != "get_attr(host, name)" || mistral.Input["retries"] != "3" {
		t.Errorf("execute_mistral = %+v", mistral)
	}
}

func TestConditionDNF(t *testing.T) {
	tests := []struct {
		cond string
		want []string
	}{
		{"a [on] b", []string{"a [on] b"}},
		{"a", []string{"a"}},
		{"a [on] b AND b [contains] c", []string{"a [on] b & b [contains] c"}},
		{"(a [on] b OR c [on] b) AND b [contains] d", []string{"a [on] b & b [contains] d", "c [on] b & b [contains] d"}},
		{"b [contains] d and not (a [on] b or c [on] b)", []string{"b [contains] d & NOT a [on] b & NOT c [on] b"}},
		{"b [contains] d AND NOT (a [on] b AND c [on] b)", []string{"b [contains] d & NOT a [on] b", "b [contains] d & NOT c [on] b"}},
		{"not not a [x] b", []string{"a [x] b"}},
	}
	for _, tt := range tests {
		clauses, _, err := parseCondition(tt.cond, true, nil, limits{})
		if err != nil {
			t.Errorf("%q: %v", tt.cond, err)
			continue
		}
		var got []string
		for _, c := range clauses {
			var parts []string
			for _, term := range c.Terms {
				parts = append(parts, term.String())
			}
			got = append(got, strings.Join(parts, " & "))
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("%q (-got +want):\n%s", tt.cond, diff)
		}
	}
	for _, bad := range []string{"", "a [on]", "a AND", "(a", "a)", "a [on b", "a ] b", "AND a", strings.Repeat("(", 100) + "a" + strings.Repeat(")", 100)} {
		if _, _, err := parseCondition(bad, true, nil, limits{}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// 2^9 clauses is over the bound.
	big := strings.Repeat("(a [x] b OR c [x] d) AND ", 8) + "(a [x] b OR c [x] d)"
	if _, _, err := parseCondition(big, true, nil, limits{}); err == nil {
		t.Error("no error for an exploding condition")
	}
}

func TestEntityMatches(t *testing.T) {
	body := []byte(`
metadata: {version: 3, name: m, type: standard}
entities:
  alarm: {category: ALARM, name.regex: "NIC.*", severity: critical}
scenarios:
  - condition: alarm
    actions: [{set_state: {target: alarm, state: ERROR}}]
`)
	tpl, err := Parse(body, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := tpl.Entities["alarm"]
	props := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	tests := []struct {
		v    map[string]string
		want bool
	}{
		{map[string]string{"category": "ALARM", "name": "NIC_DOWN", "severity": "CRITICAL"}, true},
		{map[string]string{"category": "ALARM", "name": "xNIC_DOWN", "severity": "CRITICAL"}, false},
		{map[string]string{"category": "ALARM", "name": "NIC_DOWN", "severity": "warning"}, false},
		{map[string]string{"category": "RESOURCE", "name": "NIC_DOWN", "severity": "critical"}, false},
		{map[string]string{"category": "ALARM", "severity": "critical"}, false},
	}
	for i, tt := range tests {
		if got := e.Matches(props(tt.v)); got != tt.want {
			t.Errorf("%d: Matches(%v) = %v, want %v", i, tt.v, got, tt.want)
		}
	}
}

func TestParams(t *testing.T) {
	body := []byte(`
metadata: {version: 3, name: get_param(tname), type: standard}
parameters:
  tname: {}
  sev: {default: WARNING}
entities:
  host: {type: nova.host}
scenarios:
  - condition: host
    actions: [{raise_alarm: {target: host, alarm_name: x, severity: get_param(sev)}}]
`)
	if _, err := Parse(body, Options{}); err == nil || !strings.Contains(err.Error(), "code 163") {
		t.Fatalf("missing parameter value: err = %v", err)
	}
	tpl, err := Parse(body, Options{Params: map[string]string{"tname": "cpu", "sev": "CRITICAL"}})
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Name != "cpu" || tpl.Scenarios[0].Actions[0].Severity != "CRITICAL" {
		t.Errorf("name %q severity %q", tpl.Name, tpl.Scenarios[0].Actions[0].Severity)
	}
}

// TestV2Params: Vitrage's version 2 has parameters too: defaults apply and
// given values win.
func TestV2Params(t *testing.T) {
	body, err := os.ReadFile("testdata/valid/v2_with_params.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		params           map[string]string
		alarmType, state string
	}{
		{nil, "zabbix", "ERROR"},
		{map[string]string{"alarm_type": "nagios", "new_state": "SUBOPTIMAL"}, "nagios", "SUBOPTIMAL"},
	} {
		tpl, err := Parse(body, Options{Params: tc.params})
		if err != nil {
			t.Fatal(err)
		}
		if got := tpl.Entities["alarm"].Props["type"]; got != tc.alarmType {
			t.Errorf("params %v: alarm type %q; want %q", tc.params, got, tc.alarmType)
		}
		if got := tpl.Scenarios[0].Actions[0].State; got != tc.state {
			t.Errorf("params %v: set_state %q; want %q", tc.params, got, tc.state)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("metadata: {version: 3, name: x, type: standard}\nentities: {a: {}}\nscenarios: [{condition: 'NOT (a [x] a OR a)', actions: [{mark_down: {target: a}}]}]"))
	f.Add([]byte("metadata: {version: 03, name: x, type: standard}\nparameters: {p: {default: ''}}\nentities: {a: {name: get_param(p), type: get_param (p)}}\nscenarios: [{condition: a, actions: [{execute_mistral: {workflow: w, input: {x: 'a,b'}}}]}]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		tpl, err := Parse(body, Options{})
		problems := Validate(body, Options{})
		if (err == nil) != (len(problems) == 0) {
			t.Fatalf("Parse err %v but Validate gives %d problems", err, len(problems))
		}
		if err != nil {
			return
		}
		// What a new template may be, the log's may be too, read alike:
		// Options.Stored only skips refusals.
		stored, err := Parse(body, Options{Stored: true})
		if err != nil {
			t.Fatalf("valid as a new template, refused as a stored one: %v", err)
		}
		if diff := cmp.Diff(tpl, stored, cmp.AllowUnexported(Entity{}), cmp.Comparer(func(a, b *regexp.Regexp) bool { return a.String() == b.String() })); diff != "" {
			t.Fatalf("a stored template reads otherwise (-new +stored):\n%s", diff)
		}
		// A loaded template is internally consistent.
		for _, sc := range tpl.Scenarios {
			for _, c := range sc.Clauses {
				if len(c.Positive) == 0 {
					t.Fatalf("clause without a positive term loaded: %+v", c)
				}
				for _, term := range c.Terms {
					if _, ok := tpl.Entities[term.Source]; !ok {
						t.Fatalf("unknown entity %q loaded", term.Source)
					}
				}
			}
			for _, a := range sc.Actions {
				if a.Target != "" {
					if _, ok := tpl.Entities[a.Target]; !ok {
						t.Fatalf("unknown action target %q loaded", a.Target)
					}
				}
			}
		}
	})
}

// TestRegexStandsAlone: a pattern is checked alone before it is anchored,
// so one that only compiles inside the anchor's group ("prod)|(.*" makes
// ^(?:prod)|(.*), which matches anything) is refused with Vitrage's code
// for a bad regular expression. Lenient parsing (a state of older
// semantics) still loads it as older builds did.
func TestRegexStandsAlone(t *testing.T) {
	body := func(re string) []byte {
		return []byte("metadata: {version: 3, name: t, type: standard}\nentities:\n  h: {type: nova.host, name.regex: '" + re +
			"'}\nscenarios:\n  - condition: h\n    actions: [{mark_down: {target: h}}]\n")
	}
	name := func(n string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == "type" {
				return "nova.host", true
			}
			return n, true
		}
	}
	for _, tc := range []struct {
		re      string
		refused bool
		// matches: what the pattern matches, leniently parsed when refused.
		matches map[string]bool
	}{
		{re: "prod)|(.*", refused: true, matches: map[string]bool{"staging-7": true}},
		{re: "a)(b", refused: true, matches: map[string]bool{"ab": true, "a": false}},
		{re: "prod.*", matches: map[string]bool{"prod-1": true, "staging-7": false, "x-prod": false}},
		{re: "(?i)prod|dev", matches: map[string]bool{"PROD-1": true, "dev": true, "staging": false}},
	} {
		_, err := Parse(body(tc.re), Options{})
		var ve *ValidationError
		switch {
		case tc.refused && (!errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Code != 47):
			t.Errorf("%q: err = %v; want one problem of code 47", tc.re, err)
		case !tc.refused && err != nil:
			t.Errorf("%q: %v", tc.re, err)
		}
		tpl, err := Parse(body(tc.re), Options{Lenient: true})
		if err != nil {
			t.Errorf("%q, lenient: %v", tc.re, err)
			continue
		}
		for n, want := range tc.matches {
			if got := tpl.Entities["h"].Matches(name(n)); got != want {
				t.Errorf("%q matches %q: %v; want %v", tc.re, n, got, want)
			}
		}
	}
}

// TestClauseMustBeConnected: every clause's positive terms must connect
// all its positive entities (negated terms do not connect them), in every
// template version; lenient parsing skips the check.
func TestClauseMustBeConnected(t *testing.T) {
	v3 := func(cond string) []byte {
		return []byte(`metadata: {version: 3, name: t, type: standard}
entities:
  alarm: {category: ALARM}
  host: {type: nova.host}
  instance: {type: nova.instance}
  zone: {type: nova.zone}
scenarios:
  - condition: ` + cond + `
    actions: [{mark_down: {target: host}}]
`)
	}
	v2 := func(cond string) []byte {
		return []byte(`metadata: {version: 2, name: t, type: standard}
definitions:
  entities:
    - entity: {category: ALARM, template_id: alarm}
    - entity: {category: RESOURCE, type: nova.host, template_id: host}
    - entity: {category: RESOURCE, type: nova.instance, template_id: instance}
  relationships:
    - relationship: {source: alarm, target: host, relationship_type: on, template_id: alarm_on_host}
    - relationship: {source: host, target: instance, relationship_type: contains, template_id: host_contains_instance}
scenarios:
  - scenario:
      condition: ` + cond + `
      actions:
        - action: {action_type: mark_down, action_target: {target: host}}
`)
	}
	for _, tc := range []struct {
		body []byte
		want string // the detail of code 10203, "" when accepted
	}{
		{v3("host AND instance"), "host | instance"},
		{v3("alarm [on] host AND instance"), "alarm, host | instance"},
		{v3("host [contains] instance AND zone AND NOT zone [contains] host"), "host, instance | zone"},
		{v3("(alarm [on] host OR host) AND instance"), "alarm, host | instance"},
		{v3("alarm [on] host AND host [contains] instance"), ""},
		{v3("host AND alarm [on] host AND NOT zone [contains] host"), ""},
		{v3("alarm [on] host OR host [contains] instance"), ""},
		{v2("alarm_on_host and instance"), "alarm, host | instance"},
		{v2("alarm_on_host and host_contains_instance"), ""},
	} {
		_, err := Parse(tc.body, Options{})
		var got string
		var ve *ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				if p.Code == 10203 {
					got = strings.TrimPrefix(p.Message, statusMessages[10203])
				}
			}
			if got == "" {
				t.Errorf("%s: unexpected problems %v", tc.body, ve.Problems)
				continue
			}
		} else if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: code 10203 says %q; want %q", tc.body, got, tc.want)
		}
		if _, err := Parse(tc.body, Options{Lenient: true}); err != nil {
			t.Errorf("%s, lenient: %v", tc.body, err)
		}
	}
}
