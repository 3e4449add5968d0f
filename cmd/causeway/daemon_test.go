package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonErrorsAreLogged: the error a component stops on (here its
// configuration, which cannot be read) is its last log line, in the
// configured format and level, not a plain text line on stderr that a
// JSON log pipeline cannot parse; the exit code stays 1.
func TestDaemonErrorsAreLogged(t *testing.T) {
	bin := buildBinary(t)
	missing := filepath.Join(t.TempDir(), "causeway.yaml")
	for _, component := range []string{"persister", "processor", "driver", "listener", "notifier"} {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, component, "-c", missing, "--log-format", "json")
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s with a missing config: %v, want exit 1\n%s", component, err, &stderr)
			continue
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		var last struct{ Level, Msg, Err, Component string }
		for _, l := range lines {
			if err := json.Unmarshal([]byte(l), &last); err != nil {
				t.Errorf("%s: a line of its log is not JSON (%v): %s", component, err, l)
			}
		}
		if last.Level != "ERROR" || last.Component != component || !strings.Contains(last.Err, missing) {
			t.Errorf("%s: last log line %+v, want an ERROR of the component naming the missing file", component, last)
		}
	}
}

// writeConfig writes body to name in dir and returns its path.
func writeConfig(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkDaemonExit runs component with config (JSON logs) and checks that it
// exits want, its last log line an ERROR of the component.
func checkDaemonExit(t *testing.T, bin, component, config string, want int) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, component, "-c", config, "--log-format", "json")
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != want {
		t.Errorf("%s -c %s: %v, want exit %d\n%s", component, filepath.Base(config), err, want, &stderr)
		return
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	var last struct{ Level, Msg, Component string }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Level != "ERROR" || last.Component != component {
		t.Errorf("%s -c %s: last log line %q (%v), want an ERROR of the component", component, filepath.Base(config), lines[len(lines)-1], err)
	}
}

// TestDaemonConfigErrorsExit78: a component whose configuration is wrong
// (it does not decode, a value is refused, nothing is configured to run)
// exits 78, which the units do not restart, and says so in its last log
// line; one whose secret file cannot be read exits 1, which they restart.
func TestDaemonConfigErrorsExit78(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	const shared = "database: {dsn: 'root@tcp(127.0.0.1:1)/causeway'}\nbus: {url: 'amqp://guest:guest@127.0.0.1:1/'}\n"
	unknown := writeConfig(t, dir, "unknown.yaml", shared+"bogus: 1\n")
	refused := writeConfig(t, dir, "refused.yaml", shared+"persister: {batch_size: -1}\nprocessor: {node_id: ''}\nnotifier: {shutdown_grace: -1s}\nlistener: {}\ndrivers: {}\n")
	secret := writeConfig(t, dir, "secret.yaml", "database: {dsn_file: "+filepath.Join(dir, "absent")+"}\nbus: {url_file: "+filepath.Join(dir, "absent")+"}\nnotifier: {}\n")
	for _, tc := range []struct {
		config string
		want   int
	}{{unknown, 78}, {refused, 78}, {secret, 1}} {
		for _, component := range []string{"persister", "processor", "driver", "listener", "notifier"} {
			checkDaemonExit(t, bin, component, tc.config, tc.want)
		}
	}
}

// TestWatchdogAbortIsRestarted: systemd's watchdog stops a stuck daemon
// with SIGABRT (WatchdogSignal's default), and the Go runtime ends a
// process on such a fatal signal (or a panic) with exit status 2 unless
// it is told to crash, the status of a usage error, which the units do
// not restart (RestartPreventExitStatus): a stuck daemon would stay down.
// It must end killed by the signal, which they restart.
func TestWatchdogAbortIsRestarted(t *testing.T) {
	units, err := filepath.Glob("../../deploy/systemd/*.service")
	if err != nil || len(units) == 0 {
		t.Fatalf("no units under deploy/systemd (%v)", err)
	}
	prevented := map[int]string{}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			v, ok := strings.CutPrefix(line, "RestartPreventExitStatus=")
			if !ok {
				continue
			}
			for _, f := range strings.Fields(v) {
				if n, err := strconv.Atoi(f); err == nil {
					prevented[n] = filepath.Base(u)
				}
			}
		}
	}
	bin := buildBinary(t)
	cmd, out := startDaemon(t, bin)
	if err := cmd.Process.Signal(syscall.SIGABRT); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		t.Fatalf("no wait status: %v", cmd.ProcessState)
	}
	if ws.Exited() {
		if unit, ok := prevented[ws.ExitStatus()]; ok {
			t.Fatalf("after SIGABRT the daemon exited %d, which %s does not restart\n%s", ws.ExitStatus(), unit, out)
		}
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGABRT {
		t.Errorf("after SIGABRT: %v, want killed by SIGABRT", cmd.ProcessState)
	}
	if !strings.Contains(out.String(), "goroutine ") {
		t.Errorf("no goroutine dump on stderr (what says where it was stuck):\n%s", out)
	}
}

// TestDaemonUnreadableFilesExit1: a file a component cannot read or open
// when it starts (a listener's token file, the Alertmanager driver's
// token file, a spool whose directory is not there) is no wrong
// configuration: it exits 1, which the units restart, as provisioning may
// still be writing it, rather than 78, which they do not.
func TestDaemonUnreadableFilesExit1(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	absent := filepath.Join(dir, "absent")
	notDir := writeConfig(t, dir, "not-a-directory", "")
	const bus = "bus: {url: 'amqp://guest:guest@127.0.0.1:1/'}\n"
	spool := "{spool_path: " + filepath.Join(dir, "spool.db") + "}"
	for _, tc := range []struct{ component, name, body string }{
		{"listener", "listener-token", bus + "listener: {server: {listen: '127.0.0.1:0', auth: {tokens: [{token_file: " + absent + "}]}}, publisher: " + spool + ", events: {}}\n"},
		{"listener", "listener-password", bus + "listener: {server: {listen: '127.0.0.1:0', auth: {username: am, password_file: " + absent + "}}, publisher: " + spool + ", events: {}}\n"},
		{"listener", "listener-spool", bus + "listener: {server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}, publisher: {spool_path: " + filepath.Join(notDir, "spool.db") + "}, events: {}}\n"},
		{"driver", "driver-token", bus + "drivers: {publisher: " + spool + ", alertmanager: {url: 'http://127.0.0.1:1', token_file: " + absent + ", mapping: {rules: [{resource_type_label: t, resource_id_labels: [id]}]}}}\n"},
		{"driver", "driver-spool", bus + "drivers: {publisher: {spool_path: " + filepath.Join(notDir, "spool.db") + "}, static: {directory: " + dir + "}}\n"},
	} {
		checkDaemonExit(t, bin, tc.component, writeConfig(t, dir, tc.name+".yaml", tc.body), 1)
	}
}

// TestBrokenLogStreamIsRestarted: a daemon logs to stderr, under systemd
// a stream to journald. When that stream breaks (journald stopped), the
// Go runtime ends the process at its next log line with SIGPIPE, which
// systemd counts as a clean exit, like SIGTERM: Restart=on-failure leaves
// the component down, silently. The units must restart a daemon that
// SIGPIPE ended (RestartForceExitStatus), so that it comes back with a
// new stream.
func TestBrokenLogStreamIsRestarted(t *testing.T) {
	units, err := filepath.Glob("../../deploy/systemd/*.service")
	if err != nil || len(units) == 0 {
		t.Fatalf("no units under deploy/systemd (%v)", err)
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := writeConfig(t, dir, "causeway.yaml", `bus: {url: "amqp://guest:guest@127.0.0.1:1/", reconnect_min: 1h, reconnect_max: 1h}
listener:
  server: {listen: "127.0.0.1:0", auth: {insecure_no_auth: true}}
  publisher: {spool_path: "`+filepath.Join(dir, "spool.db")+`"}
  events: {}
`)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "listener", "-c", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	buf := make([]byte, 4096)
	for ready := false; !ready; {
		if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no READY=1 from the daemon: %v", err)
		}
		ready = strings.Contains(string(buf[:n]), "READY=1")
	}
	r.Close() // the log stream breaks
	// A SIGHUP makes the daemon log a line.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Skip("the daemon outlived its log stream: nothing for the units to restart")
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Fatalf("after its log stream broke: %v; want killed by SIGPIPE (or alive)", cmd.ProcessState)
	}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		forced := false
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "RestartForceExitStatus="); ok && slices.Contains(strings.Fields(v), "SIGPIPE") {
				forced = true
			}
		}
		if !forced {
			t.Errorf("%s: a daemon that SIGPIPE ended (its log stream broke) is a clean exit to systemd, not restarted; want RestartForceExitStatus=SIGPIPE", filepath.Base(u))
		}
	}
}
