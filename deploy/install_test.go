package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestInstallStagesAPackage runs install.sh into a staging directory with
// a freshly built binary and checks the layout a package would have: every
// unit's ExecStart names the installed binary and a configuration file that
// was installed and that the binary itself finds valid; a second run keeps
// an operator's edited configuration and puts the shipped one beside it.
func TestInstallStagesAPackage(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("go is not on PATH (CI is set, so this test must run)")
		}
		t.Skip("go is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "causeway")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/causeway").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stage := t.TempDir()
	install := func() string {
		t.Helper()
		out, err := exec.Command("./install.sh", "--destdir", stage, "--bin", bin, "--nodes", "a,b,c").CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	install()

	for path, mode := range map[string]os.FileMode{
		"usr/bin/causeway":                     0o755,
		"lib/systemd/system/causeway.target":   0o644,
		"usr/lib/sysusers.d/causeway.conf":     0o644,
		"usr/lib/tmpfiles.d/causeway.conf":     0o644,
		"etc/causeway/causeway.yaml":           0o640,
		"etc/causeway/processor-b.yaml":        0o640,
		"etc/causeway/templates/host_nic.yaml": 0o640,
		"etc/causeway/secrets":                 0o750 | os.ModeDir,
		"etc/causeway/static":                  0o750 | os.ModeDir,
	} {
		fi, err := os.Stat(filepath.Join(stage, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v; want %v", path, fi.Mode(), mode)
		}
	}
	sysusers, err := os.ReadFile(filepath.Join(stage, "usr/lib/sysusers.d/causeway.conf"))
	if err != nil || !strings.Contains(string(sysusers), "\nu causeway ") {
		t.Errorf("sysusers.d does not declare the causeway user (%v):\n%s", err, sysusers)
	}

	// Every unit starts the installed binary on an installed, valid config.
	exec1 := regexp.MustCompile(`(?m)^ExecStart=(\S+) .*--config (\S+)`)
	for _, u := range units(t) {
		if !strings.HasSuffix(u, ".service") {
			continue
		}
		body, err := os.ReadFile(filepath.Join(stage, "lib/systemd/system", filepath.Base(u)))
		if err != nil {
			t.Fatalf("unit not installed: %v", err)
		}
		m := exec1.FindStringSubmatch(string(body))
		if m == nil {
			t.Fatalf("%s: no ExecStart with --config", u)
		}
		if _, err := os.Stat(filepath.Join(stage, m[1])); err != nil {
			t.Errorf("%s starts %s, which is not installed", u, m[1])
		}
		cfg := strings.ReplaceAll(m[2], "%i", "c")
		withSecrets := stageSecrets(t, filepath.Join(stage, cfg), filepath.Join(stage, "etc/causeway/secrets"))
		out, err := exec.Command(bin, "check-config", "-c", withSecrets).CombinedOutput()
		if err != nil {
			t.Errorf("%s: check-config %s: %v\n%s", u, cfg, err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(stage, "etc/causeway/processor-c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nbase: causeway.yaml\n", "\n  node_id: c\n", "\n  data_dir: /var/lib/causeway/processor-c\n", `bind_addr: "127.0.0.1:7103"`, `listen: "127.0.0.1:8083"`,
		"peers:\n      - {id: a, address: \"127.0.0.1:7101\"}\n      - {id: b, address: \"127.0.0.1:7102\"}\n      - {id: c, address: \"127.0.0.1:7103\"}\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("processor-c.yaml lacks %q", want)
		}
	}

	// A second run keeps what the operator edited.
	edited := filepath.Join(stage, "etc/causeway/causeway.yaml")
	if err := os.WriteFile(edited, append([]byte("# edited by the operator\n"), b...), 0o640); err != nil {
		t.Fatal(err)
	}
	if out := install(); !strings.Contains(out, "kept "+edited) {
		t.Errorf("second run did not say it kept the edited config:\n%s", out)
	}
	if got, _ := os.ReadFile(edited); !strings.HasPrefix(string(got), "# edited by the operator\n") {
		t.Error("second run overwrote the edited config")
	}
	if _, err := os.Stat(edited + ".dist"); err != nil {
		t.Errorf("shipped config not put beside the edited one: %v", err)
	}
}

// stageSecrets is a copy of the installed config at path whose secret files
// (under /etc/causeway/secrets, where an operator puts them) are created in
// dir and named there, so that check-config, which opens them, can pass.
func stageSecrets(t *testing.T, path, dir string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return stageSecretsIn(t, path, b, dir, t.TempDir())
}

// stageSecretsIn writes the staged copy of the config at path (body b)
// into out, with its base (an overlay's, named relative to it) staged
// beside it likewise.
func stageSecretsIn(t *testing.T, path string, b []byte, dir, outDir string) string {
	t.Helper()
	secret := regexp.MustCompile(`(?m)^[^#\n]*(/etc/causeway/secrets/([\w.-]+))`)
	for _, m := range secret.FindAllStringSubmatch(string(b), -1) {
		v := "a-secret"
		if strings.HasPrefix(m[2], "webhook-") {
			v = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // a signing secret's form
		}
		if err := os.WriteFile(filepath.Join(dir, m[2]), []byte(v+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if m := regexp.MustCompile(`(?m)^base: (\S+)$`).FindStringSubmatch(string(b)); m != nil {
		base := filepath.Join(filepath.Dir(path), m[1])
		bb, err := os.ReadFile(base)
		if err != nil {
			t.Fatal(err)
		}
		stageSecretsIn(t, base, bb, dir, outDir)
	}
	out := filepath.Join(outDir, filepath.Base(path))
	body := strings.ReplaceAll(string(b), "/etc/causeway/secrets/", dir+"/")
	if err := os.WriteFile(out, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInstallPrintsCommandsThatWork: the commands install.sh prints name
// each processor unit as systemctl takes it, however many nodes there
// are: a brace list of one node ("causeway-processor@{solo}") is no
// shell expansion, and names no unit.
func TestInstallPrintsCommandsThatWork(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "causeway")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ nodes, want string }{
		{"solo", "systemctl enable --now causeway.target causeway-processor@solo\n"},
		{"a,b", "systemctl enable --now causeway.target causeway-processor@a causeway-processor@b\n"},
	} {
		out, err := exec.Command("./install.sh", "--destdir", t.TempDir(), "--bin", bin, "--nodes", tc.nodes).CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh --nodes %s: %v\n%s", tc.nodes, err, out)
		}
		if !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "{") {
			t.Errorf("install.sh --nodes %s printed:\n%s\nwant %q and no brace list", tc.nodes, out, tc.want)
		}
	}
}

// TestInstallRefusesBadNodes: a --nodes list with an empty name, a name
// given twice, or a name that cannot be a systemd instance name and a file
// name (processor-<node>.yaml, causeway-processor@<node>) is refused, exit
// 2 with a line naming the problem, before anything is installed: it would
// otherwise lay down processor-.yaml, two nodes on one file, or units that
// do not start.
func TestInstallRefusesBadNodes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "causeway")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ nodes, want string }{
		{"a,,b", "empty"},
		{",a", "empty"},
		{"a,", "empty"},
		{"a,b,a", `"a" is given twice`},
		{"a/b", `"a/b"`},
		{"p 1", `"p 1"`},
		{"p@1", `"p@1"`},
		{"-p", `"-p"`},
		{"..", `".."`},
		{"p1,é", `"é"`},
	} {
		stage := t.TempDir()
		cmd := exec.Command("./install.sh", "--destdir", stage, "--bin", bin, "--nodes", tc.nodes)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("--nodes %q: %v (stderr %q); want exit 2", tc.nodes, err, stderr.String())
			continue
		}
		if !strings.Contains(stderr.String(), "--nodes") || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("--nodes %q: stderr %q; want a line on --nodes naming %s", tc.nodes, stderr.String(), tc.want)
		}
		if left, _ := os.ReadDir(stage); len(left) != 0 {
			t.Errorf("--nodes %q: refused after installing into the stage (%d entries)", tc.nodes, len(left))
		}
	}
}
