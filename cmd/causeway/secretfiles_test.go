package main

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
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
