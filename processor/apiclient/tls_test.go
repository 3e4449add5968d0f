package apiclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/tlsfile/tlsfiletest"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/apiclient"
)

// TestClientOverTLS: the client trusted the system's authorities only,
// and presented no certificate, so the CLI could not talk to an API over
// processor.api.tls with a certificate of the site's own CA, nor to one
// of mutual TLS. With TLS.CAFile it trusts that CA's certificates (and
// still refuses an API whose certificate it did not sign); with CertFile
// and KeyFile it presents its own.
func TestClientOverTLS(t *testing.T) {
	ca, clients := tlsfiletest.NewCA(t, "api"), tlsfiletest.NewCA(t, "api clients")
	certFile, keyFile := ca.IssueFiles(t, "node")
	s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "rd", Role: api.RoleReader}},
		TLS: api.TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clients.File}}, sample(), api.Deps{NodeID: "test"})
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
	status := func(tc apiclient.TLS) error {
		t.Helper()
		c, err := apiclient.NewWithTLS(url, "rd", 5*time.Second, tc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Status(context.Background())
		return err
	}
	if err := status(apiclient.TLS{CAFile: ca.File, CertFile: ccert, KeyFile: ckey}); err != nil {
		t.Errorf("Status over mutual TLS: %v", err)
	}
	if err := status(apiclient.TLS{CAFile: ca.File}); err == nil {
		t.Error("Status without a client certificate: nil error; want the handshake refused")
	}
	if err := status(apiclient.TLS{CAFile: clients.File, CertFile: ccert, KeyFile: ckey}); err == nil {
		t.Error("Status trusting another CA than the API's: nil error; want the certificate refused")
	}
	for _, tc := range []apiclient.TLS{{CAFile: keyFile}, {CertFile: ccert}, {CertFile: ccert, KeyFile: ccert}} {
		if _, err := apiclient.NewWithTLS(url, "rd", time.Second, tc); err == nil {
			t.Errorf("NewWithTLS with %+v: nil error", tc)
		}
	}
}
