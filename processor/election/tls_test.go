package election

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/causeway/causeway/internal/tlsfile"
	"github.com/causeway/causeway/internal/tlsfile/tlsfiletest"
)

// testCA is a certificate authority for the tests' raft clusters.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its PEM
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(t.TempDir(), "ca.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a certificate the CA signs for a node, and its key, and
// returns the node's TLSConfig.
func (ca *testCA) issue(t *testing.T, name string) TLSConfig {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := TLSConfig{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+".key"), CAFile: ca.file}
	writePEM(t, c.CertFile, "CERTIFICATE", der)
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, c.KeyFile, "EC PRIVATE KEY", kder)
	return c
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOutsiderCannotDeposeTheLeader: raft's transport took RPCs from
// anyone who reached bind_addr: one heartbeat of a higher term from an
// outsider made the leader step down (and more of them keep the cluster
// following the outsider, with no leader of its own acting). Over
// raft.tls, a node takes RPCs only from a peer with a certificate of the
// cluster's CA: an outsider over plain TCP, or over TLS with a
// certificate of another CA, is refused, and the leader leads on; the
// cluster's nodes join and follow one another as over TCP.
func TestOutsiderCannotDeposeTheLeader(t *testing.T) {
	ca := newTestCA(t, "raft cluster")
	addr := freeAddr(t)
	n := runTCPNode(t, "n0", addr, ca.issue(t, "n0"), []Peer{{ID: "n0", Address: addr}})
	waitFor(t, "n0 leading", 10*time.Second, func() bool { return n.LeaderTerm() != 0 })
	before := n.LeaderTerm()
	depose := func(out *raft.NetworkTransport) {
		t.Helper()
		var resp raft.AppendEntriesResponse
		err := out.AppendEntries("n0", raft.ServerAddress(addr), &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ID: []byte("outsider"), Addr: []byte(out.LocalAddr())},
			Term:      before + 100,
		}, &resp)
		if err == nil || resp.Success || resp.Term > before {
			t.Errorf("an outsider's heartbeat of term %d was taken (answer %+v, %v); want it refused", before+100, resp, err)
		}
	}
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	depose(plain)
	// Over TLS, with a certificate of another CA.
	foreign := newTestCA(t, "another").issue(t, "outsider")
	_, client, err := foreign.load(tlsfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := raft.NewNetworkTransport(&tlsStream{Listener: ln, adv: ln.Addr(), client: client}, 1, time.Second, io.Discard)
	defer out.Close()
	depose(out)
	if got := n.LeaderTerm(); got != before {
		t.Errorf("leader term %d after the outsiders' heartbeats; want %d still", got, before)
	}
	// A member of the cluster joins and follows.
	jaddr := freeAddr(t)
	j := runTCPNode(t, "n1", jaddr, ca.issue(t, "n1"), nil)
	waitFor(t, "n1's raft running", 10*time.Second, func() bool { return j.State() != "" })
	if err := n.Join("n1", jaddr, 5*time.Second); err != nil {
		t.Fatalf("Join of a member over TLS: %v", err)
	}
	waitFor(t, "n1 to know its leader", 10*time.Second, func() bool { id, _ := j.Leader(); return id == "n0" })
}

// TestTLSConfigIsWhole: raft.tls takes its three files, or none.
func TestTLSConfigIsWhole(t *testing.T) {
	c := Config{NodeID: "n0", BindAddr: "127.0.0.1:7101", AdvertiseAddr: "127.0.0.1:7101", DataDir: "/d", TLS: TLSConfig{CertFile: "c.pem"}}
	c.SetDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tls: set cert_file, key_file and ca_file") {
		t.Errorf("Validate of a partial tls = %v; want it refused", err)
	}
}

// TestRaftCertificateIsRenewed: a node read raft.tls's files once, at its
// start: a renewed certificate was presented (and a renewed CA bundle
// trusted) only after a restart. They are read again when they change
// (looked at every few seconds): a peer connecting after the renewal is
// presented the new certificate.
func TestRaftCertificateIsRenewed(t *testing.T) {
	ca := newTestCA(t, "raft cluster")
	c := ca.issue(t, "cert A")
	var clock atomic.Int64
	server, client, err := c.load(tlsfile.Options{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	presented := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", ln.Addr().String(), client)
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := presented(); got != "cert A" {
		t.Fatalf("presented %q; want cert A", got)
	}
	b := ca.issue(t, "cert B")
	for _, f := range [][2]string{{b.CertFile, c.CertFile}, {b.KeyFile, c.KeyFile}} {
		raw, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		tlsfiletest.Replace(t, f[1], raw)
	}
	clock.Add(int64(tlsfile.DefaultCheckEvery))
	if got := presented(); got != "cert B" {
		t.Errorf("presented %q after the renewal; want cert B", got)
	}
}
