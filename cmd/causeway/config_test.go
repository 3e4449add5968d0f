package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExampleConfigIsValid loads deploy/causeway.yaml through the same path
// as the daemons and check-config.
func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := loadConfig("../../deploy/causeway.yaml", needBoth)
	if err != nil {
		t.Fatalf("load the example config: %v", err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("the example config does not validate:\n%v", err)
	}
	if cfg.Processor.DatabaseDSN != cfg.Database.DSN || cfg.Notifier.AMQPURL != cfg.Bus.URL {
		t.Error("the shared database and bus settings were not inherited by the processor and notifier sections")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty", "", "empty"},
		{"unknown top-level key", "database: {dsn: x}\nbus: {url: amqp://x}\ncolour: red\n", "field colour not found"},
		{"unknown nested key", "database: {dsn: x, size: 3}\nbus: {url: amqp://x}\n", "field size not found"},
		{"missing shared settings", "persister: {batch_size: 10}\n", "database.dsn: is required"},
		{"value and file", "database: {dsn: x, dsn_file: /nonexistent}\nbus: {url: amqp://x}\n", "not both"},
		// A section after a document separator was never read: its
		// typos, and its settings, went unseen.
		{"second document", "database: {dsn: x}\nbus: {url: amqp://x}\n---\nprocessor: {node_idd: p1}\n", "line 3: a second YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.yaml), needBoth)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseConfig error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigSecretFile(t *testing.T) {
	f := t.TempDir() + "/dsn"
	if err := os.WriteFile(f, []byte("u:p@tcp(h:3306)/db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]byte("database: {dsn_file: "+f+"}\nbus: {url: amqp://x}\n"), needBoth)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.DSN != "u:p@tcp(h:3306)/db" {
		t.Errorf("dsn = %q", cfg.Database.DSN)
	}
}

// FuzzParseConfig: the loader never panics on any input.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("../../deploy/causeway.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("database: {dsn: x}\nbus: {url: y}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg, err := parseConfig(in, needBoth)
		if err == nil {
			_ = cfg.validate()
		}
	})
}

// TestNotifierInheritsSharedSettings: the webhooks commands and the notifier
// accept a file whose notifier section relies on the shared sections, as
// deploy/causeway.yaml documents.
func TestNotifierInheritsSharedSettings(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	body := "database: {dsn: \"u@tcp(h:3306)/db\"}\nbus: {url: \"amqp://h/\"}\nnotifier: {}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := loadNotifierConfig(path, nil)
	if err != nil {
		t.Fatalf("loadNotifierConfig: %v", err)
	}
	if nc.DSN != "u@tcp(h:3306)/db" || nc.AMQPURL != "amqp://h/" {
		t.Errorf("inherited dsn %q, amqp_url %q", nc.DSN, nc.AMQPURL)
	}
}

// TestProcessorInheritsBusReconnect: bus.reconnect_min/max, documented as
// shared, reach the processor's broker connection.
func TestProcessorInheritsBusReconnect(t *testing.T) {
	cfg, err := parseConfig([]byte("database: {dsn: x}\nbus: {url: amqp://h/, reconnect_min: 250ms, reconnect_max: 4s}\n"), needBoth)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Processor.AMQPReconnectMin != 250*time.Millisecond || cfg.Processor.AMQPReconnectMax != 4*time.Second {
		t.Errorf("processor reconnect bounds %v, %v; want 250ms, 4s", cfg.Processor.AMQPReconnectMin, cfg.Processor.AMQPReconnectMax)
	}
}

// TestCheckConfigNamesEverySection: every problem check-config lists is
// named by its section, not only the first of each section (a component's
// Validate joins several).
func TestCheckConfigNamesEverySection(t *testing.T) {
	cfg, err := parseConfig([]byte("database: {dsn: x}\nbus: {url: \"amqp://h/\"}\npersister: {batch_size: 20000, retention: 1h}\nprocessor: {node_id: p1}\nnotifier: {batch_size: -1, lease_ttl: 10ms}\n"), needBoth)
	if err != nil {
		t.Fatal(err)
	}
	verr := cfg.validate()
	if verr == nil {
		t.Fatal("validate accepted a persister with batch_size 20000 and retention 1h")
	}
	lines := strings.Split(verr.Error(), "\n")
	for _, want := range []string{"persister: batch_size: ", "persister: retention: ", "processor: data_dir: ", "processor: raft: bind_addr: ", "processor: api: listen: ", "notifier.batch_size: ", "notifier.lease_ttl: "} {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, want)
		}
		if !found {
			t.Errorf("no line starts with %q in:\n%v", want, verr)
		}
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "persister: ") && !strings.HasPrefix(l, "processor: ") && !strings.HasPrefix(l, "notifier.") {
			t.Errorf("line %q does not name its section", l)
		}
	}
}

// TestCheckConfigWithoutProcessorSection: a file for the other components
// (a persister's host, or the one deploy/dev/cluster.sh writes) has no
// processor section; those daemons load it, so check-config accepts it,
// and still validates a processor section that is there.
func TestCheckConfigWithoutProcessorSection(t *testing.T) {
	shared := "database: {dsn: x}\nbus: {url: \"amqp://h/\"}\npersister: {batch_wait: 10ms}\n"
	cfg, err := parseConfig([]byte(shared), needBoth)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Errorf("a file without a processor section does not validate:\n%v", err)
	}
	cfg, err = parseConfig([]byte(shared+"processor: {node_id: p1}\n"), needBoth)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "processor: data_dir: is required") {
		t.Errorf("an incomplete processor section: validate = %v, want processor: data_dir: is required", err)
	}
}

// TestDriverNamesChecked: a driver named on the command line must exist
// and be configured; a typo is refused before anything starts instead of
// leaving the driver meant not running.
func TestDriverNamesChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "causeway.yaml")
	cfg := "database: {dsn: x}\nbus: {url: \"amqp://127.0.0.1:1/\"}\ndrivers:\n  static: {directory: " + t.TempDir() + "}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, want string }{
		{"statc", `unknown driver "statc"`},
		{"alertmanager", `driver "alertmanager" is not configured`},
	} {
		_, err := runCLI(t, newRootCmd(), "driver", "static", tc.name, "--config", path)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("driver static %s: %v (exit %d), want exit %d saying %s", tc.name, err, exitCode(err), exitBadInput, tc.want)
		}
	}
}

// TestSharedSettingsByComponent: a listener's or a driver's host needs no
// database credentials and a notifier's no broker; check-config requires
// what the file's sections need, and the shared sections alone need both.
func TestSharedSettingsByComponent(t *testing.T) {
	listenerOnly := "bus: {url: amqp://x}\nlistener: {events: {}}\n"
	if _, err := parseConfig([]byte(listenerOnly), needBus); err != nil {
		t.Errorf("a listener's file without a database section: %v", err)
	}
	if _, err := parseConfig([]byte(listenerOnly), needBoth); err == nil || !strings.Contains(err.Error(), "database.dsn: is required") {
		t.Errorf("a persister on the listener's file: err = %v, want database.dsn: is required", err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"listener", listenerOnly, ""},
		{"drivers", "bus: {url: amqp://x}\ndrivers: {metrics_listen: 127.0.0.1:0}\n", ""},
		{"notifier", "database: {dsn: x}\nnotifier: {}\n", ""},
		{"listener without bus", "database: {dsn: x}\nlistener: {events: {}}\n", "bus.url: is required"},
		{"persister", "bus: {url: amqp://x}\npersister: {}\n", "database.dsn: is required"},
		{"shared only", "bus: {url: amqp://x}\n", "database.dsn: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig([]byte(tc.yaml), 0)
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.require(cfg.sectionNeeds())
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("require = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCheckConfigOfOneHost: check-config accepts the file of a host that
// runs listeners or drivers only, without the database's credentials
// (what those components need is there), as the README says; the
// notifier's section, like the processor's, is checked when it is there.
// A listener or drivers section with nothing to run is refused, as the
// daemon refuses it.
func TestCheckConfigOfOneHost(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, yaml, want string }{
		{"listener", "bus: {url: \"amqp://h/\"}\nlistener: {server: {auth: {insecure_no_auth: true}}, publisher: {spool_path: " + dir + "/l.db}, events: {}}\n", ""},
		{"drivers", "bus: {url: \"amqp://h/\"}\ndrivers: {publisher: {spool_path: " + dir + "/d.db}, static: {directory: " + dir + "}}\n", ""},
		{"notifier", "database: {dsn: x}\nnotifier: {batch_size: -1}\n", "notifier.batch_size: "},
		{"listener without endpoints", "bus: {url: \"amqp://h/\"}\nlistener: {metrics_listen: 127.0.0.1:0}\n", "listener: no endpoint configured"},
		{"drivers without a driver", "bus: {url: \"amqp://h/\"}\ndrivers: {metrics_listen: 127.0.0.1:0}\n", "drivers: no driver configured"},
		{"listener and notifier", "bus: {url: \"amqp://h/\"}\nlistener: {events: {}, server: {auth: {insecure_no_auth: true}}, publisher: {spool_path: " + dir + "/l.db}}\nnotifier: {}\n", "notifier.dsn: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "causeway.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := runCLI(t, newRootCmd(), "check-config", "--config", path)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("check-config: %v, want it valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("check-config: %v (%s), want an error naming %s", err, out, tc.want)
			}
		})
	}
}

// TestStaticSettleUnderPullTimeout: every pull of the static driver waits
// settle at least once (twice for a file being written), and pull_timeout
// ends it: a settle over half of pull_timeout is refused rather than make
// pulls time out.
func TestStaticSettleUnderPullTimeout(t *testing.T) {
	for _, tc := range []struct {
		name, section string
		ok            bool
	}{
		{"defaults", "{directory: /d}", true},
		{"settle within", "{directory: /d, settle: 5s, pull_timeout: 10s}", true},
		{"settle over the default timeout", "{directory: /d, settle: 20s}", false},
		{"timeout under the default settle", "{directory: /d, pull_timeout: 1500ms}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig([]byte("database: {dsn: x}\nbus: {url: \"amqp://h/\"}\ndrivers:\n  publisher: {spool_path: /s}\n  static: "+tc.section+"\n"), needBoth)
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.validate()
			if got := err == nil || !strings.Contains(err.Error(), "drivers.static: settle: "); got != tc.ok {
				t.Errorf("validate: %v; want ok %t", err, tc.ok)
			}
		})
	}
}
