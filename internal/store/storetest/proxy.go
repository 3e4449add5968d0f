package storetest

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/causeway/causeway/internal/freeport"
)

// Proxy is a TCP proxy to the test server that a test can turn into a
// black hole: the database hung (a frozen server, a network that drops
// everything) while its connections stay open. Holed, it still accepts
// connections and reads what clients send, but forwards nothing either way
// and answers nothing, so only a client's own deadline ends its wait. It
// can also be taken down: the server stopped, its port closed, so that a
// connection is refused at once.
//
// A connection that lost bytes in the hole is broken for good (its stream
// has a gap): it forwards nothing more, and Pass closes it, as a client
// finds such a connection once the network is back. A client's close does
// reach the server, so the server drops the session (and rolls back its
// transaction) at once rather than after an idle timeout.
type Proxy struct {
	addr   string
	target string

	mu      sync.Mutex
	ln      net.Listener // nil while down
	holed   bool
	trigger []byte        // HoleAfter's bytes, nil when not armed
	tripped chan struct{} // closed when trigger was seen
	conns   map[*proxyConn]bool
	closed  bool
	wg      sync.WaitGroup
}

// proxyConn is one client connection and its connection to the server.
type proxyConn struct {
	client, server net.Conn
	broken         bool // lost bytes in the hole; guarded by Proxy.mu
}

// NewProxy starts a proxy to the server of dsn on a loopback port and
// returns dsn with the proxy's address, and the proxy, which passes
// traffic until told otherwise. It closes, with every connection through
// it, in t.Cleanup.
//
// The port is one the kernel does not hand out to outgoing connections
// (freeport), so that Up can take it again after Down.
func NewProxy(t testing.TB, dsn string) (string, *Proxy) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("storetest: parse dsn: %v", err)
	}
	p := &Proxy{addr: freeport.Addr(t), target: cfg.Addr, conns: map[*proxyConn]bool{}}
	t.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		if p.ln != nil {
			_ = p.ln.Close()
		}
		for c := range p.conns {
			c.close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	if err := p.listen(); err != nil {
		t.Fatalf("storetest: proxy: %v", err)
	}
	cfg.Net, cfg.Addr = "tcp", p.addr
	return cfg.FormatDSN(), p
}

// listen opens the proxy's port and accepts on it.
func (p *Proxy) listen() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = ln.Close()
		return nil
	}
	p.ln = ln
	p.wg.Go(func() { p.accept(ln) })
	return nil
}

// Down takes the server down: the proxy's port closes, so that a new
// connection is refused at once, and every connection through it is
// closed, as a stopped server's are.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.close()
	}
}

// Up brings the server back after Down: the proxy's port opens again.
// It fails when the port cannot be had again.
func (p *Proxy) Up() error {
	p.mu.Lock()
	up := p.ln != nil
	p.mu.Unlock()
	if up {
		return nil
	}
	if err := p.listen(); err != nil {
		return fmt.Errorf("storetest: proxy up again on %s: %w", p.addr, err)
	}
	return nil
}

// Hole makes the proxy a black hole from now on.
func (p *Proxy) Hole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holed = true
}

// HoleAfter passes traffic until a client sends data containing b: that
// data still reaches the server, and from then on the proxy is a black
// hole. Armed with "COMMIT", it makes a commit whose outcome the client
// cannot know: the server commits, its answer is lost. The channel closes
// when the hole opens.
func (p *Proxy) HoleAfter(b []byte) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger = bytes.Clone(b)
	p.tripped = make(chan struct{})
	return p.tripped
}

// Pass forwards traffic again, and closes the connections that lost bytes
// in the hole.
func (p *Proxy) Pass() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holed, p.trigger = false, nil
	for c := range p.conns {
		if c.broken {
			c.close()
		}
	}
}

func (p *Proxy) accept(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		holed := p.holed
		p.mu.Unlock()
		var server net.Conn
		// Holed, a connection reaches no server: a hung one does not
		// time out the handshake it never started (connect_timeout).
		if !holed {
			if server, err = net.Dial("tcp", p.target); err != nil {
				_ = client.Close()
				continue
			}
		}
		c := &proxyConn{client: client, server: server, broken: holed}
		p.mu.Lock()
		if p.closed || p.ln != ln { // closed, or taken down meanwhile
			p.mu.Unlock()
			c.close()
			return
		}
		p.conns[c] = true
		p.mu.Unlock()
		if holed {
			p.wg.Go(func() { p.pump(c, nil, c.client, true) })
			continue
		}
		p.wg.Go(func() { p.pump(c, c.server, c.client, true) })
		p.wg.Go(func() { p.pump(c, c.client, c.server, false) })
	}
}

// pump copies src to dst through the hole; up is the client's direction,
// the one HoleAfter watches. Either side's end closes both.
func (p *Proxy) pump(c *proxyConn, dst, src net.Conn, up bool) {
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.forward(c, buf[:n], up) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forward says whether data read from c goes on, and opens the hole when
// it carries HoleAfter's bytes (after which it still goes on).
func (p *Proxy) forward(c *proxyConn, data []byte, up bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holed || c.broken {
		c.broken = true
		return false
	}
	if up && p.trigger != nil && bytes.Contains(data, p.trigger) {
		p.holed, p.trigger = true, nil
		close(p.tripped)
	}
	return true
}

func (c *proxyConn) close() {
	_ = c.client.Close()
	if c.server != nil {
		_ = c.server.Close()
	}
}
