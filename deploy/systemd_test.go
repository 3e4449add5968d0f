package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requiredDirectives are what every Causeway service unit must carry: the
// daemons speak sd_notify, are watched, restart on failure and run confined.
var requiredDirectives = []string{
	"Type=notify", "WatchdogSec=", "Restart=on-failure", "User=causeway",
	"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
	"StateDirectory=", "ExecStart=/usr/bin/causeway ", "LoadCredential=",
}

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
