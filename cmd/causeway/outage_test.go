package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/freeport"
	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// component is a daemon of the binary run by a test under a fake systemd
// notify socket, with its watchdog on.
type component struct {
	t   *testing.T
	cmd *exec.Cmd
	out *logtest.Buffer
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
	c := &component{t: t, out: &logtest.Buffer{}, exited: make(chan struct{})}
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

// waitingConfig is a configuration of every daemon, with the database at
// dsn and the broker at amqpURL; a processor node p1 alone in its cluster
// serves its API on api.
func waitingConfig(t *testing.T, dsn, amqpURL, api string) string {
	t.Helper()
	dir := t.TempDir()
	raft := freeport.Addr(t)
	return writeConfig(t, dir, "causeway.yaml", fmt.Sprintf(`database: {dsn: %q}
bus: {url: %q, reconnect_min: 100ms, reconnect_max: 1s}
persister: {}
processor:
  node_id: p1
  data_dir: %q
  poll_interval: 200ms
  raft:
    bind_addr: %q
    peers: [{id: p1, address: %q}]
  api:
    listen: %q
    tokens: [{name: admin, token: outage-test-token, role: admin}]
  snapshot:
    policy: {every_events: 50000}
notifier:
  instance_id: waiting
  scan_interval: 200ms
  query_timeout: 5s
`, dsn, amqpURL, filepath.Join(dir, "p1"), raft, raft, api))
}

// openDB opens dsn for the test's own reads and writes.
func openTestDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestDaemonsWaitForTheDatabase: a persister, notifier or processor
// started while the database is down (its port closed: at boot, before
// MariaDB, or during an outage) does not exit, which would have systemd
// restart it every RestartSec for as long as the database is away (and
// give up on the unit after StartLimitBurst starts). It says READY,
// warns at each failed attempt to reach the database, with the error,
// and goes on once the database answers: the persister stores a
// published event, the notifier takes up a subscriber, the processor
// becomes ready.
func TestDaemonsWaitForTheDatabase(t *testing.T) {
	bin := buildBinary(t)
	dsn := storetest.NewDB(t)
	db := openTestDB(t, dsn)
	amqpURL := bustest.VHost(t)
	for _, tc := range []struct {
		name string
		// works waits until the daemon has done its job with the database.
		works func(t *testing.T, api string)
	}{
		{"persister", func(t *testing.T, _ string) {
			pub, err := bus.NewPublisher(bus.PublisherConfig{
				Conn:      bus.Conn{URL: amqpURL, ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second},
				SpoolPath: filepath.Join(t.TempDir(), "spool.db"),
			}, bus.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- pub.Run(ctx) }()
			defer func() {
				cancel()
				<-done
				pub.Close()
			}()
			if err := pub.Publish(ctx, event.Event{V: event.Version, EventID: "after-the-outage", Source: "test", Kind: event.KindTick,
				ObservedAt: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the published event stored", 60*time.Second, func() bool {
				var n int
				if err := db.QueryRow("SELECT COUNT(*) FROM events WHERE event_id = 'after-the-outage'").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n == 1
			})
		}},
		{"notifier", func(t *testing.T, _ string) {
			if _, err := db.Exec(`INSERT INTO notifier_subscriptions (id, seq, spec, term, updated_at) VALUES ('ops', 1, ?, 1, UTC_TIMESTAMP(6))`,
				`{"url":"http://127.0.0.1:1/hook"}`); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the notifier's lease on the subscriber", 60*time.Second, func() bool {
				var owner string
				err := db.QueryRow("SELECT lease_owner FROM notifier_cursors WHERE subscription_id = 'ops'").Scan(&owner)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					t.Fatal(err)
				}
				return strings.HasPrefix(owner, "waiting/")
			})
		}},
		{"processor", func(t *testing.T, api string) {
			waitFor(t, "the processor's /readyz", 60*time.Second, func() bool {
				resp, err := http.Get("http://" + api + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxied, proxy := storetest.NewProxy(t, dsn)
			proxy.Down()
			api := freeport.Addr(t)
			c := startComponent(t, bin, tc.name, waitingConfig(t, proxied, amqpURL, api))
			c.waitLog("waiting for the database", 2, 30*time.Second)
			if !c.ready.Load() {
				t.Fatal("no READY=1 while waiting for the database")
			}
			if !strings.Contains(c.out.String(), "connection refused") {
				t.Error("the warnings do not say why the database does not answer")
			}
			if err := proxy.Up(); err != nil {
				t.Fatal(err)
			}
			tc.works(t, api)
			c.stop()
		})
	}
}

// TestDaemonStopsWhileWaitingForTheDatabase: SIGTERM ends the wait for
// the database at once, as a clean stop.
func TestDaemonStopsWhileWaitingForTheDatabase(t *testing.T) {
	bin := buildBinary(t)
	cfg := waitingConfig(t, "causeway@tcp("+freeport.Addr(t)+")/causeway", "amqp://guest:guest@127.0.0.1:1/", freeport.Addr(t))
	for _, name := range []string{"persister", "notifier", "processor"} {
		t.Run(name, func(t *testing.T) {
			c := startComponent(t, bin, name, cfg)
			c.waitLog("waiting for the database", 1, 30*time.Second)
			c.stop()
			if !strings.Contains(c.out.String(), `"msg":"stopped"`) {
				t.Error("no clean stop logged")
			}
		})
	}
}

// TestDaemonWrongDSNExit78: a DSN the driver cannot parse, or that the
// server refuses (a user or password it does not take, a database it does
// not have), is a wrong configuration: the daemon exits 78 at once, which
// the units do not restart, instead of waiting for a database that will
// never take it.
func TestDaemonWrongDSNExit78(t *testing.T) {
	bin := buildBinary(t)
	server, err := mysql.ParseDSN(storetest.ServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	stranger := *server
	stranger.User, stranger.Passwd = "causeway_no_such_user", "wrong"
	nowhere := *server
	nowhere.DBName = "causeway_no_such_database"
	for _, tc := range []struct{ name, dsn string }{
		{"syntax", server.User + "@tcp(" + server.Addr + ")causeway"},
		{"password", stranger.FormatDSN()},
		{"database", nowhere.FormatDSN()},
	} {
		cfg := waitingConfig(t, tc.dsn, "amqp://guest:guest@127.0.0.1:1/", freeport.Addr(t))
		for _, component := range []string{"persister", "notifier", "processor"} {
			t.Run(tc.name+"/"+component, func(t *testing.T) {
				c := startComponent(t, bin, component, cfg)
				select {
				case <-c.exited:
				case <-time.After(30 * time.Second):
					t.Fatal("still running 30s after its start")
				}
				if code := c.cmd.ProcessState.ExitCode(); code != exitConfig {
					t.Fatalf("%v, want exit %d", c.cmd.ProcessState, exitConfig)
				}
				lines := strings.Split(strings.TrimSpace(c.out.String()), "\n")
				if last := lines[len(lines)-1]; !strings.Contains(last, `"level":"ERROR"`) || !strings.Contains(last, "configuration is wrong") {
					t.Errorf("last log line %s, want an ERROR saying the configuration is wrong", last)
				}
			})
		}
	}
}
