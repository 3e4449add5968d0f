package graph

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDefaultsLoad(t *testing.T) {
	n, err := NewNormalizer(nil)
	if err != nil {
		t.Fatalf("built-in values: %v", err)
	}
	want := []string{
		"aodh", "alertmanager", "cinder.volume", "default", "default_alarm", "doctor", "nagios",
		"neutron.network", "neutron.port", "nova.host", "nova.instance", "nova.zone",
		"openstack.cluster", "prometheus", "static", "switch", "vitrage", "zabbix",
	}
	got := n.Types()
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("no defaults for %s (have %v)", w, got)
		}
	}
	if len(DefaultNormalizer().Types()) != len(got) {
		t.Error("DefaultNormalizer and NewNormalizer(nil) differ")
	}
}

func TestResolve(t *testing.T) {
	n := DefaultNormalizer()
	for _, tc := range []struct {
		cat, typ, reported, deduced string
		agg, op                     string
	}{
		{"RESOURCE", "nova.instance", "active", "", "ACTIVE", "OK"},
		{"RESOURCE", "nova.instance", "building", "", "BUILDING", "TRANSIENT"},
		{"RESOURCE", "nova.instance", "paused", "", "PAUSED", "SUBOPTIMAL"},
		{"RESOURCE", "nova.instance", "error", "", "ERROR", "ERROR"},
		{"RESOURCE", "nova.instance", "deleted", "error", "DELETED", "DELETED"},
		{"RESOURCE", "nova.instance", "", "", "", "N/A"},
		{"RESOURCE", "nova.instance", "bogus", "", "BOGUS", "N/A"},
		{"RESOURCE", "nova.instance", "active", "SUBOPTIMAL", "SUBOPTIMAL", "SUBOPTIMAL"},
		{"RESOURCE", "nova.host", "available", "ERROR", "ERROR", "ERROR"},
		{"RESOURCE", "cinder.volume", "in-use", "", "IN-USE", "OK"},
		{"RESOURCE", "neutron.port", "DOWN", "", "DOWN", "ERROR"},
		{"RESOURCE", "unknown.type", "ok", "", "OK", "OK"}, // default.yaml
		{"RESOURCE", "unknown.type", "available", "", "AVAILABLE", "OK"},
		{"ALARM", "prometheus", "critical", "", "CRITICAL", "CRITICAL"},
		{"ALARM", "prometheus", "warning", "", "WARNING", "WARNING"},
		{"ALARM", "prometheus", "info", "", "INFO", "OK"},
		{"ALARM", "zabbix", "disaster", "", "DISASTER", "CRITICAL"},
		// Vitrage's zabbix.yaml: HIGH is CRITICAL, AVERAGE SEVERE, NOT
		// CLASSIFIED N/A (ranked above OK and INFORMATION).
		{"ALARM", "zabbix", "high", "", "HIGH", "CRITICAL"},
		{"ALARM", "zabbix", "average", "", "AVERAGE", "SEVERE"},
		{"ALARM", "zabbix", "not classified", "", "NOT CLASSIFIED", "N/A"},
		{"ALARM", "zabbix", "information", "not classified", "NOT CLASSIFIED", "N/A"},
		// Vitrage's vitrage.yaml ranks UNKNOWN between WARNING and OK.
		{"ALARM", "vitrage", "ok", "unknown", "UNKNOWN", "N/A"},
		{"ALARM", "vitrage", "unknown", "warning", "WARNING", "WARNING"},
		{"ALARM", "vitrage", "major", "", "MAJOR", "SEVERE"},
		{"ALARM", "some.alarm", "minor", "", "MINOR", "WARNING"},       // default_alarm.yaml
		{"ALARM", "nova.host", "critical", "", "CRITICAL", "CRITICAL"}, // type's file is of another category
		{"ALARM", "prometheus", "", "", "", "N/A"},
	} {
		agg, op := n.Resolve(tc.cat, tc.typ, tc.reported, tc.deduced)
		if agg != tc.agg || op != tc.op {
			t.Errorf("Resolve(%s, %s, %q, %q) = %q/%q, want %q/%q", tc.cat, tc.typ, tc.reported, tc.deduced, agg, op, tc.agg, tc.op)
		}
	}
}

const customInstance = `
category: RESOURCE
values:
  - aggregated values:
      priority: 90
      original values:
        - name: ACTIVE
          operational_value: ERROR
`

func TestOperatorOverrides(t *testing.T) {
	dir := fstest.MapFS{
		"nova.instance.yaml": {Data: []byte(customInstance)},
		"my.thing.yaml":      {Data: []byte(strings.Replace(customInstance, "ACTIVE", "WOBBLY", 1))},
		"README.txt":         {Data: []byte("not a values file")},
	}
	n, err := NewNormalizer(dir)
	if err != nil {
		t.Fatal(err)
	}
	if agg, op := n.Resolve("RESOURCE", "nova.instance", "active", ""); agg != "ACTIVE" || op != "ERROR" {
		t.Errorf("override not used: %s/%s", agg, op)
	}
	// The whole file is replaced: values only the default listed are unknown now.
	if _, op := n.Resolve("RESOURCE", "nova.instance", "paused", ""); op != "N/A" {
		t.Errorf("paused = %s, want N/A after the override", op)
	}
	if _, op := n.Resolve("RESOURCE", "my.thing", "wobbly", ""); op != "ERROR" {
		t.Errorf("new type not used: %s", op)
	}
	if _, op := n.Resolve("RESOURCE", "nova.host", "available", ""); op != "OK" {
		t.Errorf("other defaults lost: %s", op)
	}
	// The graph normalises with it.
	g := New(n)
	var l logb
	mustApply(t, g, l.upsert("nova", 1, res("nova.instance", "i1", "ACTIVE")))
	if v := mustLookup(t, g, "", "nova.instance", "i1"); v.OperationalState != "ERROR" {
		t.Errorf("graph normalised with the defaults: %+v", v)
	}
}

func TestParseValuesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"empty", "", []string{"empty"}},
		{"not yaml", "{", []string{"decode values file"}},
		{"unknown key", "category: RESOURCE\nvalue: []\n", []string{"field value not found"}},
		{"unknown nested key", "category: RESOURCE\nvalues:\n  - aggregated values:\n      priority: 1\n      prio: 2\n", []string{"field prio not found"}},
		{"bad category", "category: THING\nvalues:\n  - aggregated values:\n      priority: 1\n      original values:\n        - name: A\n          operational_value: OK\n", []string{`category: must be RESOURCE or ALARM, not "THING"`}},
		{"no values", "category: ALARM\n", []string{"values: at least one"}},
		{"every problem at once", `category: ALARM
values:
  - aggregated values:
      original values:
        - name: A
          operational_value: ERROR
        - name: ""
          operational_value: OK
  - aggregated values:
      priority: 0
      original values:
        - name: a
          operational_value: OK
  - aggregated values:
      priority: 3
`, []string{
			"values[0].aggregated values.priority: is required",
			`values[0].aggregated values.original values[0].operational_value: "ERROR" is not one of CRITICAL, SEVERE, WARNING, OK, N/A`,
			"values[0].aggregated values.original values[1].name: is required",
			"values[1].aggregated values.priority: must be at least 1",
			`values[1].aggregated values.original values[0].name: "A" is listed twice`,
			"values[2].aggregated values.original values: at least one is required",
		}},
		{"two documents", customInstance + "---\n" + customInstance, []string{"more than one YAML document"}},
		{"too large", strings.Repeat("#", MaxValuesFileBytes+1), []string{"exceeds the limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseValues([]byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestNewNormalizerReportsEveryBadFile(t *testing.T) {
	dir := fstest.MapFS{
		"a.yaml": {Data: []byte("category: X\n")},
		"b.yaml": {Data: []byte(customInstance)},
		"c.yaml": {Data: []byte("nope: 1\n")},
	}
	_, err := NewNormalizer(dir)
	if err == nil || !strings.Contains(err.Error(), "a.yaml") || !strings.Contains(err.Error(), "c.yaml") || strings.Contains(err.Error(), "b.yaml") {
		t.Errorf("err = %v", err)
	}
}

func FuzzParseValues(f *testing.F) {
	entries, err := defaultStates.ReadDir("states")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := defaultStates.ReadFile("states/" + e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(customInstance))
	f.Add([]byte("category: ALARM\nvalues: [{aggregated values: {priority: 1, original values: [{name: x, operational_value: OK}]}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tv, err := ParseValues(data)
		if err != nil {
			return
		}
		allowed := operationalValues[tv.Category]
		if allowed == nil {
			t.Fatalf("accepted category %q", tv.Category)
		}
		if len(tv.Values) == 0 {
			t.Fatal("accepted a file without values")
		}
		n := &Normalizer{types: map[string]*TypeValues{"x": tv}}
		for raw, v := range tv.Values {
			if raw == "" || raw != strings.ToUpper(raw) || v.Priority < 1 {
				t.Fatalf("accepted value %q: %+v", raw, v)
			}
			if agg, op := n.Resolve(tv.Category, "x", raw, ""); agg != raw || op != v.Operational || !slices.Contains(allowed, op) {
				t.Fatalf("Resolve(%q) = %q/%q, want %q/%q", raw, agg, op, raw, v.Operational)
			}
		}
	})
}
