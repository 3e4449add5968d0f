package main

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
)

// paramsTemplateFile writes a template whose name and alarm name are
// parameters without defaults.
func paramsTemplateFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "params.yaml")
	body := `
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
    actions: [{raise_alarm: {target: host, alarm_name: "host, in trouble", severity: get_param(severity)}}]
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTemplatesParams: `templates validate` and `templates add` take the
// values of the template's parameters with --params key=value, repeated or
// as a comma-separated list (a CSV field in quotes holds a comma), as
// Vitrage's `template validate|add --params`. A template whose parameter
// has no default is refused without a value for it; add publishes the
// values with the template, under its resolved name.
func TestTemplatesParams(t *testing.T) {
	path := paramsTemplateFile(t)
	if _, err := runCLI(t, newRootCmd(), "templates", "validate", path); exitCode(err) != 1 {
		t.Fatalf("validate without params: %v; want exit 1", err)
	}
	for _, args := range [][]string{
		{"--params", "template_name=nic", "--params", "alarm_name=NIC_DOWN"},
		{"--params", "template_name=nic,alarm_name=NIC_DOWN"},
		{"--params", `template_name=nic,"alarm_name=NIC, DOWN"`, "--params", "severity=CRITICAL"},
	} {
		if out, err := runCLI(t, newRootCmd(), append([]string{"templates", "validate", path}, args...)...); err != nil || !strings.Contains(out, path+": OK") {
			t.Errorf("validate %q: %v\n%s", args, err, out)
		}
	}

	b, url := apiServer(t)
	out, err := runCLI(t, newRootCmd(), "templates", "add", path, "--params", "template_name=nic", "--url", url, "--token", "adm")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "alarm_name") || len(b.Published()) != 0 {
		t.Fatalf("add with a value missing: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	out, err = runCLI(t, newRootCmd(), "templates", "add", path, "--params", `template_name=nic,"alarm_name=NIC, DOWN"`, "--params", "severity=CRITICAL", "--url", url, "--token", "adm")
	if err != nil || len(b.Published()) != 1 {
		t.Fatalf("add with params: %v\n%s", err, out)
	}
	want := map[string]string{"template_name": "nic", "alarm_name": "NIC, DOWN", "severity": "CRITICAL"}
	if tp := b.Published()[0].Template; tp.Name != "nic" || !maps.Equal(tp.Params, want) {
		t.Fatalf("published %s with %v; want nic with %v", tp.Name, tp.Params, want)
	}
}

// TestTemplatesParamsUsage: a malformed --params is a usage error (exit
// 2), before anything is read or sent.
func TestTemplatesParamsUsage(t *testing.T) {
	path := paramsTemplateFile(t)
	for _, p := range []string{"template_name", "=nic", "a=1,b", "", `"a=1`, "a=1,a=2"} {
		for _, cmd := range []string{"validate", "add"} {
			args := []string{"templates", cmd, path, "--params", p}
			if cmd == "add" {
				args = append(args, "--url", "http://127.0.0.1:1") // nothing listens there
			}
			_, err := runCLI(t, newRootCmd(), args...)
			if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "--params") {
				t.Errorf("templates %s --params %q: %v (exit %d); want a usage error naming --params", cmd, p, err, exitCode(err))
			}
		}
	}
	_, err := runCLI(t, newRootCmd(), "templates", "validate", path, "--params", "a=1", "--params", "a=2")
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("a name given twice: %v (exit %d); want a usage error naming it", err, exitCode(err))
	}
}

// TestTemplatesShowParams: `templates show` in table mode prints the body
// as written and, after it, the values its parameters were added with
// (--params), sorted by name, under a label, as YAML comments so that the
// output is still the template (before it, when it does not end with a line
// break); a template added without params shows its body alone, as before.
func TestTemplatesShowParams(t *testing.T) {
	const body = "metadata: {version: 3, name: get_param(template_name)}\n"
	_, url := apiServer(t, func(b *apitest.Backend) {
		b.G.Tmpls = append(b.G.Tmpls,
			api.Template{Name: "nic", Body: body, Params: map[string]string{"template_name": "nic", "alarm_name": "NIC, DOWN", "severity": "CRITICAL"}},
			// No newline at the end of the body: the params come before
			// it (TestTemplatesShowUnterminatedBody); a value with a line
			// break is quoted, so that it stays in its comment.
			api.Template{Name: "cpu", Body: strings.TrimSuffix(body, "\n"), Params: map[string]string{"template_name": "cpu", "note": "two\nlines"}})
	})
	for _, tc := range []struct{ name, body, want string }{
		{"t1", "metadata:\n  name: t1\n", "metadata:\n  name: t1\n"},
		{"nic", body, body + "# params (templates add --params):\n#   alarm_name=NIC, DOWN\n#   severity=CRITICAL\n#   template_name=nic\n"},
		{"cpu", body, "# params (templates add --params):\n#   note=\"two\\nlines\"\n#   template_name=cpu\n" + strings.TrimSuffix(body, "\n")},
	} {
		out, err := runCLI(t, newRootCmd(), "templates", "show", tc.name, "--url", url, "--token", "adm")
		if err != nil {
			t.Errorf("templates show %s: %v\n%s", tc.name, err, out)
			continue
		}
		if out != tc.want {
			t.Errorf("templates show %s:\n%s\nwant:\n%s", tc.name, out, tc.want)
		}
		var got, want any
		if err := yaml.Unmarshal([]byte(out), &got); err != nil {
			t.Errorf("templates show %s: the output is no longer YAML: %v", tc.name, err)
		}
		if err := yaml.Unmarshal([]byte(tc.body), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("templates show %s: the output reads as %v, want the body's %v", tc.name, got, want)
		}
	}
}

// TestTemplatesShowParamsStayComments: whatever the body's end and the
// values, the params `templates show` prints after the body stay YAML
// comments that change nothing of the template: a value with a line
// separator YAML breaks lines at (U+2028, U+2029) does not start a line
// of the template (nor does a name), one with a character YAML refuses
// (U+FFFE) does not make the output unreadable, and a body whose last value is a block
// scalar that keeps its trailing line breaks (|+) does not gain one.
func TestTemplatesShowParamsStayComments(t *testing.T) {
	const plain = "metadata: {version: 3, name: get_param(template_name)}\n"
	const keep = "metadata: {version: 3, name: get_param(template_name)}\ndescription: |+\n  two\n  lines\n"
	_, url := apiServer(t, func(b *apitest.Backend) {
		b.G.Tmpls = append(b.G.Tmpls,
			api.Template{Name: "ls", Body: plain, Params: map[string]string{"template_name": "ls", "note": "x\u2028severity: LOW"}},
			api.Template{Name: "ps", Body: plain, Params: map[string]string{"template_name": "ps", "note": "x\u2029severity: LOW"}},
			api.Template{Name: "nonchar", Body: plain, Params: map[string]string{"template_name": "nonchar", "note": "x\ufffe"}},
			api.Template{Name: "keep", Body: keep, Params: map[string]string{"template_name": "keep"}},
			// Over HTTP, names the template does not declare are kept too.
			api.Template{Name: "key", Body: plain, Params: map[string]string{"template_name": "key", "x\u2028severity: LOW": "v"}})
	})
	for _, tc := range []struct{ name, body string }{{"ls", plain}, {"ps", plain}, {"nonchar", plain}, {"keep", keep}, {"key", plain}} {
		out, err := runCLI(t, newRootCmd(), "templates", "show", tc.name, "--url", url, "--token", "adm")
		if err != nil {
			t.Errorf("templates show %s: %v\n%s", tc.name, err, out)
			continue
		}
		if !strings.HasPrefix(out, tc.body) || !strings.Contains(out, "# params (templates add --params):\n") {
			t.Errorf("templates show %s: %q; want the body, then the params", tc.name, out)
		}
		var got, want any
		if err := yaml.Unmarshal([]byte(out), &got); err != nil {
			t.Errorf("templates show %s: the output is no longer YAML: %v\n%q", tc.name, err, out)
			continue
		}
		if err := yaml.Unmarshal([]byte(tc.body), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("templates show %s: the output reads as %#v, want the body's %#v\n%q", tc.name, got, want, out)
		}
	}
}

// TestTemplatesShowUnterminatedBody: a body that does not end with a line
// break reads back as the same template with its params as without them.
// A line after a block scalar that clips (|) or keeps (|+) its line
// breaks gives that scalar the break the body did not have, so the params
// cannot follow such a body; nor can they come before a byte order mark,
// which YAML reads only at the start.
func TestTemplatesShowUnterminatedBody(t *testing.T) {
	const head = "metadata: {version: 3, name: get_param(template_name)}\n"
	bodies := map[string]string{
		"clip":  head + "description: |\n  text",
		"keep":  head + "description: |+\n  two\n  lines",
		"strip": head + "description: |-\n  text",
		"plain": head + "description: text",
		"cr":    head + "description: |+\n  text\r",
		"bom":   "\ufeff" + head + "description: |\n  text",
	}
	_, url := apiServer(t, func(b *apitest.Backend) {
		for _, name := range slices.Sorted(maps.Keys(bodies)) {
			b.G.Tmpls = append(b.G.Tmpls,
				api.Template{Name: name, Body: bodies[name], Params: map[string]string{"template_name": name}},
				api.Template{Name: name + "-bare", Body: bodies[name]})
		}
	})
	for _, name := range slices.Sorted(maps.Keys(bodies)) {
		var want any
		if err := yaml.Unmarshal([]byte(bodies[name]), &want); err != nil {
			t.Fatal(err)
		}
		for _, shown := range []string{name, name + "-bare"} {
			out, err := runCLI(t, newRootCmd(), "templates", "show", shown, "--url", url, "--token", "adm")
			if err != nil {
				t.Errorf("templates show %s: %v\n%s", shown, err, out)
				continue
			}
			if !strings.Contains(out, strings.TrimPrefix(bodies[name], "\ufeff")) {
				t.Errorf("templates show %s: %q; want the body as written in it", shown, out)
			}
			if shown == name && !strings.Contains(out, "# params (templates add --params):\n#   template_name="+name+"\n") {
				t.Errorf("templates show %s: %q; want its params", shown, out)
			}
			var got any
			if err := yaml.Unmarshal([]byte(out), &got); err != nil {
				t.Errorf("templates show %s: the output is no longer YAML: %v\n%q", shown, err, out)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("templates show %s: the output reads as %#v, want the body's %#v\n%q", shown, got, want, out)
			}
		}
	}
}

// TestTemplatesAddTooLarge: `templates add` of a file larger than a
// template may be is refused as bad input (exit 2), as the processor
// refuses a template over template.MaxSize, reading no more of it than
// that: it read the whole file (/dev/zero: without end) and sent it, and
// the processor's 413 for a body over its limit exited 1, as a failure.
func TestTemplatesAddTooLarge(t *testing.T) {
	b, url := apiServer(t)
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, bytes.Repeat([]byte("# padding\n"), 300_000), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, newRootCmd(), "templates", "add", path, "--url", url, "--token", "adm")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitBadInput || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("templates add of a 3 MB file: %v\n%s; want exit 2, larger than the limit", err, out)
	}
	if n := len(b.Published()); n != 0 {
		t.Errorf("%d events published", n)
	}
}
