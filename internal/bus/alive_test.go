package bus

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
)

// waitAlive waits until p.Alive() is want, and returns how long that took.
func waitAlive(t *testing.T, p *Publisher, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for p.Alive() != want {
		if time.Since(start) > within {
			t.Fatalf("Alive() is not %t within %s", want, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestPublisherNotAliveWhileASpoolCommitHangs: a spool commit that does
// not finish (here the test holds the spool file's write lock, as a disk
// that stopped answering holds the fsync) makes the publisher stuck once
// it has run past the stall limit (shortened here); when it finishes, the
// publisher is alive again.
func TestPublisherNotAliveWhileASpoolCommitHangs(t *testing.T) {
	p := newTestPublisher(t, "amqp://guest:guest@127.0.0.1:1/", "", nil)
	const limit = 300 * time.Millisecond
	p.stallLimit = limit
	tx, err := p.spool.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	rollback := sync.OnceFunc(func() { _ = tx.Rollback() })
	defer rollback()
	start := time.Now()
	published := make(chan error, 1)
	go func() { published <- p.Publish(context.Background(), testEvent(1)) }()
	waitAlive(t, p, false, 10*time.Second)
	if took := time.Since(start); took < limit {
		t.Fatalf("not alive after %s, short of the limit %s", took, limit)
	}
	rollback()
	if err := <-published; err != nil {
		t.Fatalf("Publish once the commit went through: %v", err)
	}
	if !p.Alive() {
		t.Error("not alive once the commit went through")
	}
}

// TestPublisherAliveUnlessASessionStepHangs: a step of the broker session
// in flight past the stall limit makes the publisher stuck, unless the
// broker blocks the connection (a resource alarm) or stopped blocking it
// within the limit.
func TestPublisherAliveUnlessASessionStepHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = time.Minute
		p := &Publisher{log: slog.New(slog.DiscardHandler), conn: &connector{}, stallLimit: limit}
		if !p.Alive() {
			t.Fatal("an idle publisher is not alive")
		}
		end := p.sending.Begin()
		time.Sleep(limit - time.Second)
		if !p.Alive() {
			t.Fatal("not alive short of the limit")
		}
		time.Sleep(2 * time.Second)
		if p.Alive() {
			t.Fatal("alive with a step in flight past the limit")
		}
		p.conn.setBlocked(true)
		if !p.Alive() {
			t.Fatal("not alive while the broker blocks the connection")
		}
		time.Sleep(time.Hour)
		if !p.Alive() {
			t.Fatal("not alive after the broker blocked the connection for an hour")
		}
		p.conn.setBlocked(false)
		time.Sleep(limit - time.Second)
		if !p.Alive() {
			t.Fatal("not alive within the limit after the broker stopped blocking")
		}
		time.Sleep(2 * time.Second)
		if p.Alive() {
			t.Fatal("alive with a step in flight past the limit since the broker stopped blocking")
		}
		end()
		if !p.Alive() {
			t.Error("not alive once the step ended")
		}
	})
}

// TestPublisherAliveThroughABrokerOutage: while the broker refuses the
// publisher (its vhost's permissions revoked), Publish goes on into the
// spool and Run reconnects with backoff: the publisher is alive
// throughout, for several times its stall limit (shortened here), and
// drains the spool once the broker is back. The limit stays well above
// what a spool commit's fsync takes on a loaded machine, and each wait
// between attempts is longer than the limit, so that counting one as a
// step would show.
func TestPublisherAliveThroughABrokerOutage(t *testing.T) {
	u := bustest.VHost(t)
	vhost := vhostOf(t, u)
	const limit = time.Second
	// Waits of 1.5 to 3 s (half the backoff, plus jitter).
	conn := Conn{URL: u, ReconnectMin: 3 * limit, ReconnectMax: 3 * limit}
	p, err := NewPublisher(PublisherConfig{Conn: conn, SpoolPath: filepath.Join(t.TempDir(), "spool.db")}, Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	p.stallLimit = limit
	r := start(t, p.Run)
	ctx := context.Background()
	if err := p.Publish(ctx, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, p, 30*time.Second)
	// Read before the outage: the session it ends may fail before
	// closeConnections returns.
	failures := metricValue(t, p.conn.failures)
	rabbitmqctlT(t, "clear_permissions", "-p", vhost, "guest")
	closeConnections(t, u)
	for i, end := 1, time.Now().Add(5*limit); time.Now().Before(end); i++ {
		if err := p.Publish(ctx, testEvent(i)); err != nil {
			t.Fatalf("Publish during the outage: %v", err)
		}
		if !p.Alive() {
			t.Fatal("not alive while the broker refuses the publisher")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := metricValue(t, p.conn.failures) - failures; got < 2 {
		t.Errorf("%v failed sessions during the outage; want the one it ended and a retry", got)
	}
	rabbitmqctlT(t, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
	waitEmpty(t, p, time.Minute)
	if !p.Alive() {
		t.Error("not alive once the spool drained")
	}
	r.stop(t)
}

// freezer is a TCP proxy to the broker whose traffic the test can stop
// and resume, in both directions, with the connections left open: a
// broker connection that stopped moving. With a rate, it is a slow link
// instead.
type freezer struct {
	addr   string
	rate   int // bytes per second in each direction; 0: as fast as it goes
	mu     sync.Mutex
	frozen bool
	thawed *sync.Cond
}

// newFreezer proxies a listener on a free loopback port to target.
func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	return newSlowLink(t, target, 0)
}

// newSlowLink is newFreezer with traffic held to rate bytes per second in
// each direction (0: no limit). A slow link also buffers little: its
// receive buffers are small, so that a sender blocks on it soon rather
// than after filling megabytes of kernel buffers.
func newSlowLink(t *testing.T, target string, rate int) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{addr: ln.Addr().String(), rate: rate}
	f.thawed = sync.NewCond(&f.mu)
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		f.set(false)
		_ = ln.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	conns.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			if f.rate > 0 {
				for _, c := range []net.Conn{in, out} {
					if err := c.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
						t.Errorf("proxy read buffer: %v", err)
					}
				}
			}
			mu.Lock()
			open = append(open, in, out)
			mu.Unlock()
			conns.Go(func() { f.copy(out, in) })
			conns.Go(func() { f.copy(in, out) })
		}
	})
	return f
}

// copy forwards src to dst, holding each chunk while the proxy is frozen,
// and, with a rate, until the bytes so far are due at that rate.
func (f *freezer) copy(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	start, sent := time.Now(), 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.mu.Lock()
			for f.frozen {
				f.thawed.Wait()
			}
			f.mu.Unlock()
			if f.rate > 0 {
				sent += n
				time.Sleep(time.Until(start.Add(time.Duration(sent) * time.Second / time.Duration(f.rate))))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) set(frozen bool) {
	f.mu.Lock()
	f.frozen = frozen
	f.mu.Unlock()
	f.thawed.Broadcast()
}

// TestPublisherNotAliveWhileAConfirmHangs: over a broker connection that
// stopped moving, a publisher with nothing to send stays alive; one whose
// event awaits its confirm past the stall limit (shortened here, below
// confirm_timeout, so that the connection need not stay frozen until the
// session gives up) is stuck, and alive again once the confirm arrives.
func TestPublisherNotAliveWhileAConfirmHangs(t *testing.T) {
	u := bustest.VHost(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, parsed.Host)
	parsed.Host = f.addr
	p := newTestPublisher(t, parsed.String(), "", nil)
	const limit = 300 * time.Millisecond
	p.stallLimit = limit
	start(t, p.Run)
	t.Cleanup(func() { f.set(false) }) // before Run stops, if the test fails frozen
	ctx := context.Background()
	if err := p.Publish(ctx, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, p, 30*time.Second)

	f.set(true)
	for end := time.Now().Add(3 * limit); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !p.Alive() {
			t.Fatal("not alive with nothing to send over a frozen connection")
		}
	}
	began := time.Now()
	if err := p.Publish(ctx, testEvent(1)); err != nil {
		t.Fatal(err)
	}
	waitAlive(t, p, false, 5*time.Second)
	if took := time.Since(began); took < limit {
		t.Fatalf("not alive %s after the publish, short of the limit %s", took, limit)
	}
	f.set(false)
	waitEmpty(t, p, 30*time.Second)
	if !p.Alive() {
		t.Error("not alive once the confirm arrived")
	}
	if got := metricValue(t, p.conn.failures); got != 0 {
		t.Errorf("%v failed sessions; want the frozen one to have gone on once thawed", got)
	}
}

// TestPublisherAliveWhileASlowSendProgresses: over a slow link, sending a
// window of large events takes several times the stall limit, while each
// one takes a small part of it: the publisher makes progress, so it is not
// stuck, and stays alive throughout. (Each message sent begins a step of
// its own; one step for the whole send phase ran past the limit.)
func TestPublisherAliveWhileASlowSendProgresses(t *testing.T) {
	u := bustest.VHost(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	// 8 MiB/s: a 512 KiB event crosses in 64 ms, the 64 of them in 4 s,
	// less the few MiB that the kernel buffers take at once.
	const rate, size, n = 8 << 20, 512 << 10, 64
	f := newSlowLink(t, parsed.Host, rate)
	parsed.Host = f.addr
	p := newTestPublisher(t, parsed.String(), "", nil)
	const limit = time.Second
	p.stallLimit = limit
	ctx := context.Background()
	for i := range n { // spooled before Run: its first turn sends them all
		ev := testEvent(i)
		ev.Kind, ev.Template = event.KindTemplatePut, &event.Template{Name: ev.EventID, Body: strings.Repeat("x", size)}
		if err := p.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	start(t, p.Run)
	for deadline := began.Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if !p.Alive() {
			t.Fatalf("not alive %s into sending %d events of %d KiB at %d MiB/s", time.Since(began), n, size>>10, rate>>20)
		}
		if left, _ := p.Spooled(); left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spool did not drain within 2 minutes")
		}
	}
	// Else the test shows nothing: the send phase must outlast the limit.
	if took := time.Since(began); took < 2*limit {
		t.Fatalf("the spool drained in %s; want a send phase of more than twice the limit %s", took, limit)
	}
	if got := metricValue(t, p.conn.failures); got != 0 {
		t.Errorf("%v failed sessions; want the slow one to have gone on", got)
	}
}
