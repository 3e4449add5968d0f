package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store/storetest"
)

// component is a daemon of the binary run by a test under a fake systemd
// notify socket, with its watchdog on.
type component struct {
	t   *testing.T
	cmd *exec.Cmd
	out *syncBuffer
	// ready is set once the daemon said READY=1; pings counts its
	// watchdog pings.
	ready atomic.Bool
	pings atomic.Int64
	// exited is closed once the process has ended.
	exited chan struct{}
}

// startComponent runs `bin name -c config --log-format json` with
// NOTIFY_SOCKET and WATCHDOG_USEC (200 ms: pings every 100 ms) set. It
// does not wait for READY: a daemon may fail before it.
func startComponent(t *testing.T, bin, name, config string) *component {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	c := &component{t: t, out: &syncBuffer{}, exited: make(chan struct{})}
	var reading sync.WaitGroup
	reading.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				switch line {
				case "READY=1":
					c.ready.Store(true)
				case "WATCHDOG=1":
					c.pings.Add(1)
				}
			}
		}
	})
	t.Cleanup(func() {
		conn.Close()
		reading.Wait()
	})
	c.cmd = exec.Command(bin, name, "-c", config, "--log-format", "json")
	c.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, c.out)
		}
	})
	return c
}

// count is the number of log lines whose message is msg.
func (c *component) count(msg string) int {
	return strings.Count(c.out.String(), `"msg":"`+msg+`"`)
}

// waitLog waits until the daemon has logged msg n times, failing at once
// if it exits meanwhile.
func (c *component) waitLog(msg string, n int, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for c.count(msg) < n {
		select {
		case <-c.exited:
			c.t.Fatalf("the daemon exited (%v) before it logged %q %d times", c.cmd.ProcessState, msg, n)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the daemon did not log %q %d times within %s", msg, n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and checks that the daemon exits 0 within ten
// seconds.
func (c *component) stop() {
	c.t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.t.Fatal("still running 10s after SIGTERM")
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Fatalf("after SIGTERM: %v, want exit 0", c.cmd.ProcessState)
	}
}

// TestNotifierWatchdogRidesOutDatabaseOutage: during a database outage
// the notifier keeps pinging systemd's watchdog. Its statements fail (and
// it says so at each scan), but none of them hangs: a restart by the
// watchdog (SIGABRT, a dump of every goroutine, maybe a core) would not
// bring the database back, and would loop for as long as the outage
// lasts.
func TestNotifierWatchdogRidesOutDatabaseOutage(t *testing.T) {
	dsn := storetest.NewDB(t)
	proxied, proxy := storetest.NewProxy(t, dsn)
	bin := buildBinary(t)
	cfg := writeConfig(t, t.TempDir(), "causeway.yaml", fmt.Sprintf(`notifier:
  dsn: %q
  instance_id: outage
  scan_interval: 200ms
  query_timeout: 1s
`, proxied))
	n := startComponent(t, bin, "notifier", cfg)
	waitFor(t, "READY=1 and a first watchdog ping", 30*time.Second, func() bool { return n.ready.Load() && n.pings.Load() > 0 })

	proxy.Down()
	before := n.count("scan subscriptions")
	n.waitLog("scan subscriptions", before+3, 30*time.Second)
	if strings.Contains(n.out.String(), "stuck") {
		t.Fatalf("the notifier called itself stuck while the database is down: systemd would restart it")
	}
	pings := n.pings.Load()
	waitFor(t, "a watchdog ping after three failed scans", 10*time.Second, func() bool { return n.pings.Load() > pings })

	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	n.stop()
}
