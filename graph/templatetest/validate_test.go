package templatetest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateFiles(t *testing.T) {
	valid, _ := filepath.Glob("../../deploy/templates/*.yaml")
	tplValid, _ := filepath.Glob("../template/testdata/valid/*.yaml")
	if len(valid) == 0 || len(tplValid) == 0 {
		t.Fatalf("%d shipped and %d valid test templates found; want some of each", len(valid), len(tplValid))
	}
	var out bytes.Buffer
	refused, err := ValidateFiles(append(valid, tplValid...), nil, &out)
	if err != nil || refused != 0 {
		t.Fatalf("refused %d, err %v:\n%s", refused, err, out.String())
	}
	invalid, _ := filepath.Glob("../template/testdata/invalid/*.yaml")
	out.Reset()
	refused, err = ValidateFiles(invalid, nil, &out)
	if err != nil || refused != len(invalid) {
		t.Fatalf("refused %d of %d, err %v:\n%s", refused, len(invalid), err, out.String())
	}
	if !strings.Contains(out.String(), "condition can not contain only 'not' clauses (code 134)") {
		t.Errorf("report lacks the code 134 problem:\n%s", out.String())
	}
}

func TestRunReportsMismatch(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(t.Context(), []string{"testdata/wrong_expectation.yaml"}, &out)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.OK() || res.Failures != 1 {
		t.Fatalf("failures = %d, want 1:\n%s", res.Failures, out.String())
	}
	for _, want := range []string{
		"- instance_nic_degraded on nova.instance/vm-1 severity CRITICAL   (expected, missing)",
		"+ instance_nic_degraded on nova.instance/vm-1 severity WARNING   (present, not expected)",
		"FAIL: 1 spec(s)",
		"events/s",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunnerFollowsSampleTimes: the runner builds each update on what the
// graph kept, by the graph's rule on observed times.
func TestRunnerFollowsSampleTimes(t *testing.T) {
	for _, spec := range []string{"testdata/dated_update.yaml", "testdata/delete_sample.yaml"} {
		var out bytes.Buffer
		res, err := Run(t.Context(), []string{spec}, &out)
		if err != nil || !res.OK() {
			t.Errorf("Run %s: %v:\n%s", spec, err, out.String())
		}
	}
}

func TestSpecReferences(t *testing.T) {
	for _, tc := range []struct{ refs, want string }{
		{`[nova.host, ""]`, "empty type"},
		{`[nova.host, nova.host]`, "listed twice"},
		{`[static.rack]`, "source static"},
	} {
		_, err := ParseSpec([]byte("references: " + tc.refs + "\nsteps: []\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("references %s: %v; want an error saying %q", tc.refs, err, tc.want)
		}
	}
	if _, err := ParseSpec([]byte("references: [nova.host, switch]\nsteps: []\n")); err != nil {
		t.Errorf("valid references refused: %v", err)
	}
}

// TestValidateFilesParams: the values of --params apply to every file, as
// Vitrage's `template validate --params` applies them: a parameter without
// a default is refused without one (code 163) and valid with it.
func TestValidateFilesParams(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "params.yaml")
	body := `
metadata: {version: 3, name: get_param(template_name), type: standard}
parameters:
  template_name: {}
  alarm_name: {}
entities:
  alarm: {category: ALARM, name: get_param(alarm_name)}
  host: {type: nova.host}
scenarios:
  - condition: alarm [on] host
    actions: [{mark_down: {target: host}}]
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	refused, err := ValidateFiles([]string{path}, nil, &out)
	if err != nil || refused != 1 || !strings.Contains(out.String(), "(code 163)") {
		t.Fatalf("without params: refused %d, %v:\n%s", refused, err, out.String())
	}
	out.Reset()
	refused, err = ValidateFiles([]string{path}, map[string]string{"template_name": "nic", "alarm_name": "NIC_DOWN"}, &out)
	if err != nil || refused != 0 {
		t.Fatalf("with params: refused %d, %v:\n%s", refused, err, out.String())
	}
}

// TestRunParams: a spec gives a template's parameters where it loads it
// and where a step adds it; the template is named with them, as the API
// names it.
func TestRunParams(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(t.Context(), []string{"testdata/params.yaml"}, &out)
	if err != nil || !res.OK() {
		t.Fatalf("Run: %v:\n%s", err, out.String())
	}
	for _, bad := range []string{
		"templates: [{path: params_template.yaml, param: {a: b}}]\nsteps: []\n",
		"templates: [{params: {a: b}}]\nsteps: []\n",
		"templates: [[params_template.yaml]]\nsteps: []\n",
	} {
		if _, err := ParseSpec([]byte(bad)); err == nil {
			t.Errorf("ParseSpec accepted %q", bad)
		}
	}
}

// TestRunRefusesWhatAddRefuses: a template the API refuses to add only as
// a new template (template.Options.Stored: here an empty parameter value)
// is refused by a spec too; the engine, which reads the log's templates,
// loaded it and the test ran what the cluster never would.
func TestRunRefusesWhatAddRefuses(t *testing.T) {
	dir := t.TempDir()
	const tpl = `
metadata: {version: 3, name: t, type: standard}
parameters: {p: {default: nova.host}}
entities:
  host: {type: get_param(p)}
scenarios:
  - condition: host
    actions: [{mark_down: {target: host}}]
`
	spec := "templates: [{path: t.yaml, params: {p: ''}}]\nsteps: []\n"
	for name, body := range map[string]string{"t.yaml": tpl, "spec.yaml": spec} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	res, err := Run(t.Context(), []string{filepath.Join(dir, "spec.yaml")}, &out)
	if err == nil && res.OK() {
		t.Fatalf("Run accepted a template add refuses:\n%s", out.String())
	}
	if msg := fmt.Sprint(err) + out.String(); !strings.Contains(msg, "code 163") {
		t.Errorf("the refusal does not say why: %v\n%s", err, out.String())
	}
}
