package listeners_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/tlsfile/tlsfiletest"
	"github.com/causeway/causeway/listeners"
)

// TestServerOverTLS: the listener served plain HTTP only, so the
// credentials of every sender (an Alertmanager's bearer token or basic
// auth password) crossed the network in clear. With tls.cert_file and
// tls.key_file it serves HTTPS: a client that trusts the certificate
// posts its events; a plain HTTP request is refused. A key pair that
// does not load stops New.
func TestServerOverTLS(t *testing.T) {
	// httptest's certificate, for 127.0.0.1.
	ts := httptest.NewTLSServer(nil)
	defer ts.Close()
	leaf := ts.Certificate()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalPKCS8PrivateKey(ts.TLS.Certificates[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	s, err := listeners.New(listeners.Config{
		Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}},
		TLS:  listeners.TLS{CertFile: certFile, KeyFile: keyFile},
	}, listeners.Deps{Publisher: pub, Endpoints: endpoints(t), Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	post := func(c *http.Client, scheme string) (int, error) {
		req, err := http.NewRequest(http.MethodPost, scheme+"://"+ln.Addr().String()+"/v1/events", bytes.NewReader(file(t, "events/testdata/host_down.json")))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer tok-1")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post(client, "https"); err != nil || code != http.StatusOK {
		t.Errorf("POST over TLS: %d, %v; want 200", code, err)
	}
	if code, err := post(&http.Client{Timeout: 10 * time.Second}, "http"); err == nil && code == http.StatusOK {
		t.Errorf("POST over plain HTTP to a TLS listener: %d; want it refused", code)
	}
	if pub.count() != 1 {
		t.Errorf("%d events published; want the one sent over TLS", pub.count())
	}
	if _, err := listeners.New(listeners.Config{
		Auth: listeners.Auth{InsecureNoAuth: true}, TLS: listeners.TLS{CertFile: keyFile, KeyFile: keyFile},
	}, listeners.Deps{Publisher: pub, Endpoints: endpoints(t)}); err == nil {
		t.Error("New with a certificate that does not load: nil error")
	}
}

// TestServerCertificateIsRenewed: the listener read its key pair once, at
// its start: a certificate renewed on disk (certbot, cert-manager) was
// served only after a restart, and the old one, served on, expired. It
// reads the files again when they change (looked at every few seconds
// of Deps.Now): a client connecting after the renewal gets the new
// certificate.
func TestServerCertificateIsRenewed(t *testing.T) {
	ca := tlsfiletest.NewCA(t, "listener")
	certFile, keyFile := ca.IssueFiles(t, "cert A")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	s, err := listeners.New(listeners.Config{
		Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}},
		TLS:  listeners.TLS{CertFile: certFile, KeyFile: keyFile},
	}, listeners.Deps{Publisher: &fakePublisher{}, Endpoints: endpoints(t), Listener: ln,
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "cert A" {
		t.Fatalf("served %q; want cert A", got)
	}
	ca.Renew(t, "cert B", certFile, keyFile)
	skew.Add(int64(time.Minute))
	if got := served(); got != "cert B" {
		t.Errorf("served %q after the renewal; want cert B", got)
	}
}
