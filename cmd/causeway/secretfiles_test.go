package main

import (
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// exampleWithSecrets writes deploy/causeway.yaml with every secret file it
// names (and the commented-out ones) under dir, and returns its path.
func exampleWithSecrets(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/causeway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{
		{"    # token_file: /etc/causeway/secrets/alertmanager-token", "    token_file: /etc/causeway/secrets/alertmanager-token"},
		{"    # ca_file: /etc/causeway/alertmanager-ca.pem", "    ca_file: /etc/causeway/secrets/alertmanager-ca.pem"},
		{"      # username: alertmanager\n      # password_file:", "      username: alertmanager\n      password_file:"},
		{"\nnotifier:\n", "\nnotifier:\n  dsn_file: /etc/causeway/secrets/notifier-dsn\n"},
		{"/etc/causeway/secrets/", dir + "/"},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("deploy/causeway.yaml no longer has %q", r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	for name, v := range map[string]string{
		"api-admin-token": "a", "api-reader-token": "r", "listener-token": "l", "listener-password": "p",
		"alertmanager-token": "t", "notifier-dsn": "u@tcp(h:3306)/db",
		"webhook-ops": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tls := httptest.NewTLSServer(nil)
	tls.Close()
	if err := os.WriteFile(filepath.Join(dir, "alertmanager-ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tls.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "causeway.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckConfigOpensSecretFiles: check-config opens every secret file the
// daemons read, reports each missing, empty, unreadable or malformed one by
// its YAML path, and never prints what one holds.
func TestCheckConfigOpensSecretFiles(t *testing.T) {
	dir := t.TempDir()
	path := exampleWithSecrets(t, dir)
	if out, err := runCLI(t, newRootCmd(), "check-config", "-c", path); err != nil || !strings.Contains(out, "is valid") {
		t.Fatalf("check-config with every secret in place: %v\n%s", err, out)
	}

	const leak = "whsec_not-base64-SECRET-VALUE"
	for name, v := range map[string]string{"listener-token": " \n", "webhook-ops": leak, "alertmanager-ca.pem": "no certificate\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"api-reader-token", "alertmanager-token", "notifier-dsn", "listener-password"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A directory stands for an unreadable file (the tests may run as root).
	if err := os.Mkdir(filepath.Join(dir, "listener-password"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := runCLI(t, newRootCmd(), "check-config", "-c", path)
	if err == nil {
		t.Fatal("check-config found the configuration valid with secrets missing")
	}
	msg := err.Error()
	for _, want := range []string{
		"processor.api.tokens[1].token_file: open " + dir + "/api-reader-token: no such file",
		"drivers.alertmanager.token_file: open " + dir + "/alertmanager-token: no such file",
		"listener.server.auth.tokens[0].token_file: " + dir + "/listener-token is empty",
		"listener.server.auth.password_file: read " + dir + "/listener-password: is a directory",
		"notifier.dsn_file: open " + dir + "/notifier-dsn: no such file",
		"notifier.secrets.ops.file: signing secret: bad base64",
		"drivers.alertmanager.ca_file: " + dir + "/alertmanager-ca.pem holds no PEM certificate",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("check-config error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "processor.api.tokens[0]") {
		t.Errorf("check-config reports a secret file that is fine:\n%s", msg)
	}
	if strings.Contains(msg, "SECRET-VALUE") {
		t.Errorf("check-config printed a secret:\n%s", msg)
	}
}

func TestConfigSharedSecretFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := parseConfig([]byte("database: {dsn_file: "+empty+"}\nbus: {url_file: "+dir+"/missing}\n"), needBoth)
	for _, want := range []string{"database.dsn_file: " + empty + " is empty", "bus.url_file: open " + dir + "/missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseConfig error = %v, want one containing %q", err, want)
		}
	}
}

// TestLooseSecretFilesAreReported: a secret file that every user of the
// host may read (mode 0644, what a plain `echo >` or an editor leaves
// under the usual umask) was read without a word, against the README's
// 0640 root:causeway. check-config reports each such file by its YAML
// path (CA bundles are no secret), and each daemon warns at its start of
// those it reads.
func TestLooseSecretFilesAreReported(t *testing.T) {
	dir := t.TempDir()
	path := exampleWithSecrets(t, dir)
	for _, name := range []string{"api-reader-token", "webhook-ops"} {
		if err := os.Chmod(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "alertmanager-token"), 0o602); err != nil {
		t.Fatal(err)
	}
	_, err := runCLI(t, newRootCmd(), "check-config", "-c", path)
	if err == nil {
		t.Fatal("check-config found the configuration valid with secret files other users read")
	}
	msg := err.Error()
	for _, want := range []string{
		"processor.api.tokens[1].token_file: " + dir + "/api-reader-token is mode 0644",
		"notifier.secrets.ops.file: " + dir + "/webhook-ops is mode 0644",
		"drivers.alertmanager.token_file: " + dir + "/alertmanager-token is mode 0602",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("check-config error lacks %q:\n%s", want, msg)
		}
	}
	for _, fine := range []string{"tokens[0]", "ca_file", "notifier.dsn_file"} {
		if strings.Contains(msg, fine) {
			t.Errorf("check-config reports %s, which is fine:\n%s", fine, msg)
		}
	}
}

// TestDaemonsWarnOfLooseSecretFiles: each daemon warns, when it starts,
// of the secret files it reads that other users may read too, naming
// their YAML keys (here the shared database and bus ones; the daemons
// then stop on a refused value, exit 78).
func TestDaemonsWarnOfLooseSecretFiles(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	dsn, url := filepath.Join(dir, "dsn"), filepath.Join(dir, "amqp-url")
	for f, v := range map[string]string{dsn: "root@tcp(127.0.0.1:1)/causeway", url: "amqp://guest:guest@127.0.0.1:1/"} {
		if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, 0o644); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	config := writeConfig(t, dir, "loose.yaml", "database: {dsn_file: "+dsn+"}\nbus: {url_file: "+url+"}\n"+
		"persister: {batch_size: -1}\nprocessor: {node_id: ''}\nnotifier: {shutdown_grace: -1s}\nlistener: {}\ndrivers: {}\n")
	for _, tc := range []struct {
		component string
		keys      []string
	}{
		{"persister", []string{"database.dsn_file", "bus.url_file"}},
		{"processor", []string{"database.dsn_file", "bus.url_file"}},
		{"driver", []string{"bus.url_file"}},
		{"listener", []string{"bus.url_file"}},
		{"notifier", []string{"database.dsn_file"}},
	} {
		var stderr strings.Builder
		cmd := exec.Command(bin, tc.component, "-c", config, "--log-format", "json")
		cmd.Stderr = &stderr
		_ = cmd.Run()
		for _, key := range tc.keys {
			found := false
			for line := range strings.SplitSeq(stderr.String(), "\n") {
				var rec struct{ Level, Key, File, Mode string }
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" && rec.Key == key && rec.Mode == "0644" {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no warning of %s, mode 0644:\n%s", tc.component, key, stderr.String())
			}
		}
	}
}
