package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestOverlayConfig(t *testing.T) {
	base := `database: {dsn: "u@tcp(h:3306)/db"}
bus: {url: "amqp://h/"}
processor:
  node_id: p1
  poll_interval: 2s
  raft:
    bind_addr: "127.0.0.1:7101"
    peers:
      - {id: p1, address: "127.0.0.1:7101"}
      - {id: p2, address: "127.0.0.1:7102"}
`
	over := `base: causeway.yaml
processor:
  node_id: p2
  raft:
    bind_addr: "127.0.0.1:7102"
    peers:
      - {id: p2, address: "127.0.0.1:7102"}
`
	got, err := overlayConfig([]byte(base), []byte(over))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	p := m["processor"].(map[string]any)
	raft := p["raft"].(map[string]any)
	switch {
	case m["base"] != nil:
		t.Errorf("the overlay's base key is left in:\n%s", got)
	case p["node_id"] != "p2" || raft["bind_addr"] != "127.0.0.1:7102":
		t.Errorf("the overlay's values did not win:\n%s", got)
	case p["poll_interval"] != "2s":
		t.Errorf("a base value the overlay does not set is lost:\n%s", got)
	case len(raft["peers"].([]any)) != 1:
		t.Errorf("a list of the overlay does not replace the base's whole:\n%s", got)
	case m["database"] == nil || m["bus"] == nil:
		t.Errorf("the base's other sections are lost:\n%s", got)
	}

	for _, tc := range []struct{ name, base, over, want string }{
		{"base is an overlay", "base: other.yaml\n", "base: x\n", "only one level"},
		{"base not a mapping", "- a\n", "base: x\n", "base: the top level must be a mapping"},
		{"overlay not a mapping", "a: 1\n", "7\n", "overlay: the top level must be a mapping"},
		{"overlay of two documents", "a: 1\n", "base: x\n---\nb: 2\n", "overlay: line 2: a second YAML document"},
		{"base of two documents", "a: 1\n---\nb: 2\n", "base: x\n", "base: line 2: a second YAML document"},
	} {
		if _, err := overlayConfig([]byte(tc.base), []byte(tc.over)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v; want %q", tc.name, err, tc.want)
		}
	}
}

// TestLoadConfigThroughAnOverlay: a processor node's file names the shared
// file as its base, relative to itself; an edit of the shared file reaches
// the node, and a key unknown to either is still refused.
func TestLoadConfigThroughAnOverlay(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("causeway.yaml", "database: {dsn: \"u@tcp(h:3306)/db\"}\nbus: {url: \"amqp://old/\"}\nprocessor: {node_id: p1, data_dir: /tmp/x}\n")
	node := write("processor-p2.yaml", "base: causeway.yaml\nprocessor: {node_id: p2}\n")
	cfg, err := loadConfig(node, needBoth)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Processor.NodeID != "p2" || cfg.Processor.DataDir != "/tmp/x" || cfg.Processor.AMQPURL != "amqp://old/" {
		t.Fatalf("node p2: node_id %q, data_dir %q, bus %q", cfg.Processor.NodeID, cfg.Processor.DataDir, cfg.Processor.AMQPURL)
	}
	write("causeway.yaml", "database: {dsn: \"u@tcp(h:3306)/db\"}\nbus: {url: \"amqp://new/\"}\nprocessor: {node_id: p1}\n")
	if cfg, err := loadConfig(node, needBoth); err != nil || cfg.Processor.AMQPURL != "amqp://new/" {
		t.Fatalf("after an edit of the shared file: %v, bus %q; want amqp://new/", err, cfg.Processor.AMQPURL)
	}
	bad := write("processor-p3.yaml", "base: causeway.yaml\nprocessor: {node_idd: p3}\n")
	if _, err := loadConfig(bad, needBoth); err == nil || !strings.Contains(err.Error(), "node_idd") {
		t.Fatalf("an unknown key in an overlay: %v; want it refused", err)
	}
	missing := write("processor-p4.yaml", "base: nowhere.yaml\n")
	if _, err := loadConfig(missing, needBoth); err == nil || !strings.Contains(err.Error(), "read the base of") {
		t.Fatalf("a missing base: %v", err)
	}
}

// FuzzOverlayConfig: laying any document over any other never panics, and
// what it gives decodes without panicking.
func FuzzOverlayConfig(f *testing.F) {
	if b, err := os.ReadFile("../../deploy/causeway.yaml"); err == nil {
		f.Add(b, []byte("base: causeway.yaml\nprocessor: {node_id: p2, raft: {peers: []}}\n"))
	}
	f.Add([]byte("a: {b: 1}\n"), []byte("a: {c: [1, 2]}\nbase: x\n"))
	f.Fuzz(func(t *testing.T, base, over []byte) {
		if _, err := overlayBase(over); err != nil {
			return
		}
		if merged, err := overlayConfig(base, over); err == nil {
			_, _ = parseConfig(merged, needBoth)
		}
	})
}

// TestOverlayErrorsNameTheirFileAndLine: a wrong key or value of an
// overlay or of its base is reported with the file it is in and its line
// there. The merged document is one neither file is: its line numbers sent
// the operator to a line of the overlay that does not exist, or to an
// unrelated one of the base.
func TestOverlayErrorsNameTheirFileAndLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shared := "database: {dsn: \"u@tcp(h:3306)/db\"}\nbus: {url: \"amqp://h/\"}\n\n\n\n\n\n\nprocessor:\n  node_id: p1\n  data_dir: /tmp/x\n"
	for _, tc := range []struct{ name, base, over, want, wrong string }{
		{"unknown key of the overlay", "", "base: causeway.yaml\n# p3\nprocessor:\n  node_idd: p3\n",
			"processor-p3.yaml: yaml: unmarshal errors:\n  line 4: field node_idd not found", "line 6"},
		{"bad value of the overlay", "", "base: causeway.yaml\nprocessor:\n  poll_interval: soon\n",
			"processor-p3.yaml: yaml: unmarshal errors:\n  line 3: cannot unmarshal", "line 5"},
		{"unknown key of the base", "database: {dsn: \"u@tcp(h:3306)/db\"}\nbus: {url: \"amqp://h/\"}\ncolour: red\nprocessor: {node_id: p1}\n",
			"base: causeway.yaml\nprocessor:\n  node_id: p3\n", "causeway.yaml: yaml: unmarshal errors:\n  line 3: field colour not found", "processor-p3.yaml: yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.base == "" {
				tc.base = shared
			}
			write("causeway.yaml", tc.base)
			node := write("processor-p3.yaml", tc.over)
			_, err := loadConfig(node, needBoth)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.wrong) {
				t.Fatalf("error %v; want one with %q (not %q)", err, tc.want, tc.wrong)
			}
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a configuration error (exit 78)", err)
			}
		})
	}
}
