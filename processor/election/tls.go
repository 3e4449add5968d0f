package election

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/causeway/causeway/internal/tlsfile"
)

// TLSConfig secures raft's transport with mutual TLS. Raft's own TCP
// transport authenticates no one: whoever reaches bind_addr can send a
// node heartbeats of a higher term as a leader, or entries that change
// the membership. With TLS, each node presents CertFile and takes only a
// peer whose certificate CAFile's authorities signed, both ways. Give
// the raft cluster a CA of its own: any certificate it signed is a
// member. The peers' addresses are not checked against the certificates'
// names (they are often IP addresses).
type TLSConfig struct {
	// CertFile and KeyFile are this node's certificate (PEM, with the
	// intermediates after it) and its private key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile is the PEM bundle of the authorities whose certificates are
	// the cluster's members.
	CAFile string `yaml:"ca_file"`
}

// enabled reports whether any of c is set (Validate: then all of it).
func (c TLSConfig) enabled() bool { return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" }

func (c TLSConfig) validate() error {
	if !c.enabled() || (c.CertFile != "" && c.KeyFile != "" && c.CAFile != "") {
		return nil
	}
	return errors.New("tls: set cert_file, key_file and ca_file, or none")
}

// load reads the files into the server and client sides of the
// transport. The files are read again when they change (a renewal), see
// tlsfile.
func (c TLSConfig) load(o tlsfile.Options) (server, client *tls.Config, err error) {
	pair, err := tlsfile.LoadPair(c.CertFile, c.KeyFile, o)
	if err != nil {
		return nil, nil, err
	}
	pool, err := tlsfile.LoadPool(c.CAFile, o)
	if err != nil {
		return nil, nil, err
	}
	// A peer is one whose certificate the cluster's CA signed, whatever
	// its name and key usage: one certificate serves a node both ways.
	member := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("raft peer presented no certificate")
		}
		opts := x509.VerifyOptions{Roots: pool.CertPool(), Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("raft peer's certificate: %w", err)
		}
		return nil
	}
	server = &tls.Config{
		GetCertificate: pair.GetCertificate, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAnyClientCert, VerifyConnection: member,
	}
	client = &tls.Config{
		GetClientCertificate: pair.GetClientCertificate, MinVersion: tls.VersionTLS12,
		// The chain is checked by member, against the cluster's CA
		// alone; the name is not (peers are dialled by address).
		InsecureSkipVerify: true, VerifyConnection: member,
	}
	return server, client, nil
}

// tlsStream is raft's StreamLayer over mutual TLS.
type tlsStream struct {
	net.Listener // a TLS listener
	adv          net.Addr
	client       *tls.Config
}

// Addr is the address the other nodes dial (advertise_addr).
func (s *tlsStream) Addr() net.Addr { return s.adv }

// Dial connects to a peer and completes the handshake within timeout.
func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(addr), s.client)
}

// handshakeLimit bounds the TLS handshake of a connection accepted: raft
// reads a connection with no deadline, so a peer that connects and sends
// nothing would hold its goroutine for good.
const handshakeLimit = 10 * time.Second

// tlsListener serves TLS on the connections of a TCP listener. The
// handshake is made on a connection's first read, in the goroutine raft
// reads it with, so a slow peer holds back no other; one that fails (an
// outsider with no certificate of the cluster's) ends the connection, and
// raft logs its error.
type tlsListener struct {
	net.Listener
	server *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeFirst{Conn: tls.Server(c, l.server)}, nil
}

// handshakeFirst completes the handshake, within handshakeLimit, before
// its first read.
type handshakeFirst struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *handshakeFirst) Read(p []byte) (int, error) {
	c.once.Do(func() {
		_ = c.Conn.SetDeadline(time.Now().Add(handshakeLimit))
		if err := c.Conn.Handshake(); err != nil {
			c.err = fmt.Errorf("raft connection from %s refused: TLS handshake: %w", c.Conn.RemoteAddr(), err)
			return
		}
		_ = c.Conn.SetDeadline(time.Time{})
	})
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}
