package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/causeway/causeway/processor"
)

// requiredDirectives are what every Causeway service unit must carry: the
// daemons speak sd_notify, are watched, restart on failure and run confined.
// A stop forced by a second SIGINT or SIGTERM exits 130 or 143, a clean
// stop like a death by those signals (cmd/causeway's
// TestSecondSignalForcesStop checks the binary against the units).
var requiredDirectives = []string{
	"Type=notify", "WatchdogSec=", "Restart=on-failure", "RestartPreventExitStatus=2 78", "RestartForceExitStatus=SIGPIPE", "SuccessExitStatus=130 143", "User=causeway",
	"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
	"StateDirectory=", "ExecStart=/usr/bin/causeway ", "PartOf=causeway.target",
}

// forbiddenDirectives promise what the daemons do not do. ExecReload: a
// daemon cannot reload its configuration (it logs a SIGHUP and keeps
// running), so `systemctl reload` must say so rather than succeed.
// LoadCredential, EnvironmentFile: no daemon reads $CREDENTIALS_DIRECTORY
// or a variable; *_file paths are read as written.
var forbiddenDirectives = []string{"ExecReload=", "LoadCredential=", "EnvironmentFile="}

func units(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("systemd/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no unit files under systemd/ (%v)", err)
	}
	return files
}

func TestUnitsCarryRequiredDirectives(t *testing.T) {
	for _, f := range units(t) {
		if !strings.HasSuffix(f, ".service") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range requiredDirectives {
			if !strings.Contains(string(b), "\n"+d) {
				t.Errorf("%s lacks %q", f, d)
			}
		}
		for _, d := range forbiddenDirectives {
			if strings.Contains(string(b), "\n"+d) {
				t.Errorf("%s has %q", f, d)
			}
		}
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on every unit, with
// ExecStart pointed at an executable that exists here (the analyzer checks
// that the binary is executable); any message it prints is a failure.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyzer, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is not installed (make services installs the systemd package)")
		}
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	var args []string
	for _, f := range units(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		body := strings.ReplaceAll(string(b), "/usr/bin/causeway", "/bin/true")
		name := filepath.Base(f)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// A template unit is verified through an instance of it.
		name = strings.Replace(name, "@.", "@1.", 1)
		args = append(args, filepath.Join(dir, name))
	}
	cmd := exec.Command(analyzer, append([]string{"verify", "--man=no"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestShippedPathsAreInStateDirectories: ProtectSystem=strict leaves a
// daemon nothing to write but its unit's StateDirectory (/var/lib/DIR), so
// every path the shipped configuration has a daemon write must lie in it,
// for the instance the shipped files start (the processor node of the
// example, which make install names its unit after).
func TestShippedPathsAreInStateDirectories(t *testing.T) {
	b, err := os.ReadFile("causeway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type spool struct {
		Publisher struct {
			SpoolPath string `yaml:"spool_path"`
		} `yaml:"publisher"`
	}
	var cfg struct {
		Processor struct {
			NodeID  string `yaml:"node_id"`
			DataDir string `yaml:"data_dir"`
		} `yaml:"processor"`
		Drivers  spool `yaml:"drivers"`
		Listener spool `yaml:"listener"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ unit, instance, path string }{
		{"causeway-processor@.service", cfg.Processor.NodeID, cfg.Processor.DataDir},
		{"causeway-driver.service", "", cfg.Drivers.Publisher.SpoolPath},
		{"causeway-listener.service", "", cfg.Listener.Publisher.SpoolPath},
	} {
		if tc.path == "" {
			t.Errorf("%s: the shipped configuration names no path", tc.unit)
			continue
		}
		unit, err := os.ReadFile(filepath.Join("systemd", tc.unit))
		if err != nil {
			t.Fatal(err)
		}
		var dir string
		for _, line := range strings.Split(string(unit), "\n") {
			if d, ok := strings.CutPrefix(line, "StateDirectory="); ok {
				dir = strings.ReplaceAll(d, "%i", tc.instance)
			}
		}
		if state := "/var/lib/" + dir; dir == "" || (tc.path != state && !strings.HasPrefix(tc.path, state+"/")) {
			t.Errorf("%s writes %s, outside its StateDirectory /var/lib/%s", tc.unit, tc.path, dir)
		}
	}
}

// TestProcessorStopFitsTimeoutStopSec: the processor unit gives a node's
// stop the time the node may take with the shipped configuration
// (processor.Config.StopBound: the API's grace twice, a leader write and
// the fence read after it, the hand-over), so that systemd does not kill
// a stopping leader, a database hanging, before it has handed leadership
// over.
func TestProcessorStopFitsTimeoutStopSec(t *testing.T) {
	b, err := os.ReadFile("causeway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Processor processor.Config `yaml:"processor"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Processor.SetDefaults()
	bound := cfg.Processor.StopBound()
	stop := timeoutStopSec(t, "systemd/causeway-processor@.service")
	if stop <= bound {
		t.Errorf("causeway-processor@.service: TimeoutStopSec=%s; a stop with the shipped configuration may take %s", stop, bound)
	}
}

// timeoutStopSec is the unit's TimeoutStopSec, written as a Go duration
// ("45s").
func timeoutStopSec(t *testing.T, unit string) time.Duration {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "TimeoutStopSec="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s: TimeoutStopSec=%s: %v", unit, v, err)
			}
			return d
		}
	}
	t.Fatalf("%s sets no TimeoutStopSec", unit)
	return 0
}
