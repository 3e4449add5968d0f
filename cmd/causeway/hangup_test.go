package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/logtest"
)

// buildBinary builds this command once per test into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("go is not on PATH (CI is set, so this test must run)")
		}
		t.Skip("go is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "causeway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startDaemon runs the binary's listener component, which needs no broker to
// start (its publisher spools while the broker is away), under a fake
// systemd notify socket, and returns once it said READY=1.
func startDaemon(t *testing.T, bin string, extraArgs ...string) (*exec.Cmd, *logtest.Buffer) {
	t.Helper()
	return startListener(t, bin, `{listen: "127.0.0.1:0", auth: {insecure_no_auth: true}}`, extraArgs...)
}

// startListener is startDaemon with the listener's server section given.
func startListener(t *testing.T, bin, server string, extraArgs ...string) (*exec.Cmd, *logtest.Buffer) {
	t.Helper()
	return startListenerOn(t, bin, "amqp://guest:guest@127.0.0.1:1/", server, extraArgs...)
}

// startListenerOn is startListener publishing to the broker at busURL.
func startListenerOn(t *testing.T, bin, busURL, server string, extraArgs ...string) (*exec.Cmd, *logtest.Buffer) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cfg := filepath.Join(dir, "causeway.yaml")
	body := `database: {dsn: "u@tcp(127.0.0.1:1)/db"}
bus: {url: "` + busURL + `", reconnect_min: 1s, reconnect_max: 1s}
listener:
  server: ` + server + `
  publisher: {spool_path: "` + filepath.Join(dir, "spool.db") + `"}
  metrics_listen: "127.0.0.1:0"
  events: {}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"listener", "-c", cfg}, extraArgs...)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	stderr := &logtest.Buffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	buf := make([]byte, 4096)
	for {
		if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no READY=1 from the daemon: %v\n%s", err, stderr)
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			return cmd, stderr
		}
	}
}

// TestSIGHUPDoesNotStopDaemon: a SIGHUP (what `kill -HUP`, or a reload an
// operator expects, sends) is logged as unsupported and the daemon keeps
// running; SIGTERM then stops it cleanly.
func TestSIGHUPDoesNotStopDaemon(t *testing.T) {
	bin := buildBinary(t)
	cmd, out := startDaemon(t, bin)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload-not-supported log line", 10*time.Second, func() bool {
		return strings.Contains(out.String(), "reload not supported; restart to apply configuration")
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("the daemon is gone after SIGHUP: %v\n%s", err, out)
	}
	err := cmd.Wait()
	if err != nil {
		t.Fatalf("daemon exit after SIGHUP then SIGTERM: %v (want a clean exit)\n%s", err, out)
	}
}

// TestMetricsListenFlag: --metrics-listen moves /metrics off the
// configuration's metrics_listen, so that instances sharing one file can
// each serve their own.
func TestMetricsListenFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	bin := buildBinary(t)
	cmd, out := startDaemon(t, bin, "--metrics-listen", addr)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics on the flag's address: %v\n%s", err, out)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics: %s", resp.Status)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, out)
	}
}
