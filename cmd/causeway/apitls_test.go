package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/tlsfile/tlsfiletest"
	"github.com/causeway/causeway/processor/api"
)

// TestAPICommandsOverTLS: the CLI had no setting of https: it could not
// trust an API over processor.api.tls whose certificate the site's own
// CA signed, nor present a certificate to one of mutual TLS. --ca-file,
// --cert-file and --key-file (env CAUSEWAY_CA_FILE, CAUSEWAY_CERT_FILE,
// CAUSEWAY_KEY_FILE) set them.
func TestAPICommandsOverTLS(t *testing.T) {
	b, _ := apiServer(t)
	ca, clients := tlsfiletest.NewCA(t, "api"), tlsfiletest.NewCA(t, "api clients")
	certFile, keyFile := ca.IssueFiles(t, "p1")
	s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "adm", Role: api.RoleAdmin}},
		TLS: api.TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clients.File}}, b, api.Deps{NodeID: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	url := "https://" + ln.Addr().String()
	ccert, ckey := clients.IssueFiles(t, "operator")
	if out, err := runCLI(t, newRootCmd(), "status", "--url", url, "--token", "adm", "--ca-file", ca.File, "--cert-file", ccert, "--key-file", ckey); err != nil || !strings.Contains(out, "applied_seq") {
		t.Errorf("status over mutual TLS: %v\n%s", err, out)
	}
	t.Setenv("CAUSEWAY_CA_FILE", ca.File)
	t.Setenv("CAUSEWAY_CERT_FILE", ccert)
	t.Setenv("CAUSEWAY_KEY_FILE", ckey)
	if out, err := runCLI(t, newRootCmd(), "status", "--url", url, "--token", "adm"); err != nil || !strings.Contains(out, "applied_seq") {
		t.Errorf("status over mutual TLS, files from the environment: %v\n%s", err, out)
	}
	if _, err := runCLI(t, newRootCmd(), "status", "--url", url, "--token", "adm", "--ca-file", clients.File); err == nil {
		t.Error("status trusting another CA than the API's: nil error")
	}
}

// TestCheckConfigTakesAPITLSWhole: check-config refuses a
// processor.api.tls of a certificate without its key, naming the key.
func TestCheckConfigTakesAPITLSWhole(t *testing.T) {
	dir := t.TempDir()
	path := exampleWithSecrets(t, dir)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const old = "    # tls:\n    #   cert_file: /etc/causeway/api.pem\n"
	if !strings.Contains(string(b), old) {
		t.Fatalf("deploy/causeway.yaml no longer has %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, "    tls:\n      cert_file: /etc/causeway/api.pem\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = runCLI(t, newRootCmd(), "check-config", "-c", path)
	if err == nil || !strings.Contains(err.Error(), "processor: api: tls: set cert_file and key_file, or none") {
		t.Errorf("check-config of an api.tls without key_file: %v; want it refused", err)
	}
}
