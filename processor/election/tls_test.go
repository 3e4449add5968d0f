package election

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/causeway/causeway/internal/tlsfile"
	"github.com/causeway/causeway/internal/tlsfile/tlsfiletest"
)

// issue is the node's TLSConfig: a key pair ca signs for name, and ca's
// certificate as the cluster's CA.
func issue(t *testing.T, ca *tlsfiletest.CA, name string) TLSConfig {
	t.Helper()
	cert, key := ca.IssueFiles(t, name)
	return TLSConfig{CertFile: cert, KeyFile: key, CAFile: ca.File}
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
	ca := tlsfiletest.NewCA(t, "raft cluster")
	addr := freeAddr(t)
	n := runTCPNode(t, "n0", addr, issue(t, ca, "n0"), []Peer{{ID: "n0", Address: addr}})
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
	foreign := issue(t, tlsfiletest.NewCA(t, "another"), "outsider")
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
	j := runTCPNode(t, "n1", jaddr, issue(t, ca, "n1"), nil)
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
	ca := tlsfiletest.NewCA(t, "raft cluster")
	c := issue(t, ca, "cert A")
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
	b := issue(t, ca, "cert B")
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
