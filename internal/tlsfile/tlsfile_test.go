package tlsfile_test

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/internal/tlsfile"
	"github.com/causeway/causeway/internal/tlsfile/tlsfiletest"
)

// server serves TLS with config on loopback until the test ends.
func server(t *testing.T, config *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// served is the name of the certificate the server at addr presents.
func served(t *testing.T, addr string, ca *tlsfiletest.CA) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestPairFollowsRenewals: a pair served is read again when its files are
// replaced, once CheckEvery has passed; files replaced by ones that do
// not load leave the pair served before in service, with one warning
// however many handshakes follow.
func TestPairFollowsRenewals(t *testing.T) {
	ca := tlsfiletest.NewCA(t, "test")
	certFile, keyFile := ca.IssueFiles(t, "cert A")
	var clock atomic.Int64
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	h := logtest.NewHandler()
	pair, err := tlsfile.LoadPair(certFile, keyFile, tlsfile.Options{Logger: slog.New(h), Now: now, CheckEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	addr := server(t, &tls.Config{GetCertificate: pair.GetCertificate})
	if got := served(t, addr, ca); got != "cert A" {
		t.Fatalf("served %q; want cert A", got)
	}
	ca.Renew(t, "cert B", certFile, keyFile)
	if got := served(t, addr, ca); got != "cert A" {
		t.Errorf("served %q before CheckEvery passed; want cert A still (the files are looked at once a CheckEvery)", got)
	}
	clock.Add(int64(time.Second))
	if got := served(t, addr, ca); got != "cert B" {
		t.Errorf("served %q after the renewal; want cert B", got)
	}
	tlsfiletest.Replace(t, certFile, []byte("not a certificate"))
	for range 3 {
		clock.Add(int64(time.Second))
		if got := served(t, addr, ca); got != "cert B" {
			t.Errorf("served %q after garbage was written; want cert B still", got)
		}
	}
	warned := func() int {
		return h.Count(func(r slog.Record) bool {
			return r.Level == slog.LevelWarn && strings.Contains(r.Message, "do not load")
		})
	}
	if got := warned(); got != 1 {
		t.Errorf("%d warnings of files that do not load; want 1", got)
	}
	// Mended, they load again.
	ca.Renew(t, "cert C", certFile, keyFile)
	clock.Add(int64(time.Second))
	if got := served(t, addr, ca); got != "cert C" {
		t.Errorf("served %q after the files were mended; want cert C", got)
	}
	if _, err := tlsfile.LoadPair(keyFile, keyFile, tlsfile.Options{}); err == nil {
		t.Error("LoadPair of files that are no pair: nil error")
	}
}

// TestPoolFollowsRenewals: a CA bundle is read again when replaced; one
// that holds no certificate keeps the bundle before.
func TestPoolFollowsRenewals(t *testing.T) {
	a, b := tlsfiletest.NewCA(t, "CA A"), tlsfiletest.NewCA(t, "CA B")
	file := filepath.Join(t.TempDir(), "ca.pem")
	tlsfiletest.WriteFile(t, file, pemOf(t, a.File))
	var clock atomic.Int64
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	pool, err := tlsfile.LoadPool(file, tlsfile.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	trusts := func(ca *tlsfiletest.CA) bool {
		_, err := ca.Cert.Verify(x509.VerifyOptions{Roots: pool.CertPool()})
		return err == nil
	}
	if !trusts(a) || trusts(b) {
		t.Fatal("the pool loaded is not CA A's")
	}
	tlsfiletest.Replace(t, file, pemOf(t, b.File))
	clock.Add(int64(tlsfile.DefaultCheckEvery))
	if trusts(a) || !trusts(b) {
		t.Error("the pool is not CA B's after the file was replaced")
	}
	tlsfiletest.Replace(t, file, []byte("garbage"))
	clock.Add(int64(tlsfile.DefaultCheckEvery))
	if !trusts(b) {
		t.Error("the pool lost CA B when the file was replaced by garbage")
	}
	if _, err := tlsfile.LoadPool(file, tlsfile.Options{}); err == nil {
		t.Error("LoadPool of garbage: nil error")
	}
}

func pemOf(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
