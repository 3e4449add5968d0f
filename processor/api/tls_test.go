package api

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/internal/tlsfile/tlsfiletest"
)

// serveTLSTest serves an API with tc on host until the test ends (or
// stop), logging to h; it returns the address.
func serveTLSTest(t *testing.T, host string, tc TLS, h slog.Handler) (addr string, stop func()) {
	t.Helper()
	s, err := New(Config{Listen: net.JoinHostPort(host, "0"), Tokens: []Token{{Token: "read-token", Role: RoleReader}}, TLS: tc},
		&fakeBackend{g: &fakeGraph{}}, Deps{Logger: slog.New(h)})
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
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// get is the status of GET /healthz at url with the client of config
// (nil: plain HTTP), or the error.
func get(config *tls.Config, url string) (int, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: config}}
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestAPIOverTLS: the API served plain HTTP only, so its bearer tokens
// (an admin's changes the rules and membership) crossed the network in
// clear. With api.tls's cert_file and key_file it serves HTTPS, and
// plain HTTP is refused; with client_ca_file too, it takes only clients
// with a certificate that CA signed (mutual TLS).
func TestAPIOverTLS(t *testing.T) {
	ca := tlsfiletest.NewCA(t, "api")
	certFile, keyFile := ca.IssueFiles(t, "node")
	addr, _ := serveTLSTest(t, "127.0.0.1", TLS{CertFile: certFile, KeyFile: keyFile}, slog.DiscardHandler)
	trusting := &tls.Config{RootCAs: ca.Pool()}
	if code, err := get(trusting, "https://"+addr); err != nil || code != http.StatusOK {
		t.Errorf("GET over TLS: %d, %v; want 200", code, err)
	}
	if code, err := get(nil, "http://"+addr); err == nil && code == http.StatusOK {
		t.Errorf("GET over plain HTTP of a TLS API: %d; want it refused", code)
	}

	clients := tlsfiletest.NewCA(t, "api clients")
	addr, _ = serveTLSTest(t, "127.0.0.1", TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clients.File}, slog.DiscardHandler)
	if code, err := get(trusting, "https://"+addr); err == nil {
		t.Errorf("GET without a client certificate from a mutual TLS API: %d; want the handshake refused", code)
	}
	c, k := clients.Issue(t, "operator")
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair}}, "https://"+addr); err != nil || code != http.StatusOK {
		t.Errorf("GET with a client certificate of client_ca_file: %d, %v; want 200", code, err)
	}
	oc, ok := ca.Issue(t, "not a client")
	opair, err := tls.X509KeyPair(oc, ok)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{opair}}, "https://"+addr); err == nil {
		t.Errorf("GET with a client certificate of another CA: %d; want the handshake refused", code)
	}

	if _, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "t", Role: RoleReader}}, TLS: TLS{CertFile: keyFile, KeyFile: keyFile}},
		&fakeBackend{}, Deps{}); err == nil {
		t.Error("New with a certificate that does not load: nil error")
	}
}

// TestOpenAPIPortIsReported: an API listening past loopback over plain
// HTTP said nothing of its tokens crossing the network in clear; it
// warns as it starts serving, naming the key. On loopback, or over TLS,
// it says nothing.
func TestOpenAPIPortIsReported(t *testing.T) {
	ca := tlsfiletest.NewCA(t, "api")
	certFile, keyFile := ca.IssueFiles(t, "node")
	for _, c := range []struct {
		name, host string
		tls        TLS
		want       int
	}{{"all interfaces", "0.0.0.0", TLS{}, 1}, {"loopback", "127.0.0.1", TLS{}, 0}, {"all interfaces, tls", "0.0.0.0", TLS{CertFile: certFile, KeyFile: keyFile}, 0}} {
		t.Run(c.name, func(t *testing.T) {
			h := logtest.NewHandler()
			_, stop := serveTLSTest(t, c.host, c.tls, h)
			stop()
			got := h.Count(func(r slog.Record) bool {
				return r.Level >= slog.LevelWarn && strings.Contains(r.Message, "without TLS")
			})
			if got != c.want {
				t.Errorf("%d warnings of an API without TLS past loopback; want %d", got, c.want)
			}
		})
	}
}

// TestTLSConfigIsWhole: api.tls takes cert_file and key_file, or none;
// client_ca_file only with them.
func TestTLSConfigIsWhole(t *testing.T) {
	for _, c := range []struct {
		tls  TLS
		want string
	}{{TLS{CertFile: "c.pem"}, "tls: set cert_file and key_file, or none"}, {TLS{ClientCAFile: "ca.pem"}, "tls.client_ca_file: needs cert_file and key_file"}} {
		err := Config{Listen: "127.0.0.1:8081", Tokens: []Token{{Token: "t", Role: RoleReader}}, TLS: c.tls}.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate of tls %+v = %v; want %q", c.tls, err, c.want)
		}
	}
}
