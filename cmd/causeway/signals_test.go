package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/logtest"
)

// unitSuccessStatuses maps each service unit under deploy/systemd to the
// exit statuses its SuccessExitStatus= lines list.
func unitSuccessStatuses(t *testing.T) map[string]map[int]bool {
	t.Helper()
	units, err := filepath.Glob("../../deploy/systemd/*.service")
	if err != nil || len(units) == 0 {
		t.Fatalf("no units under deploy/systemd (%v)", err)
	}
	out := map[string]map[int]bool{}
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		codes := map[int]bool{}
		for _, line := range strings.Split(string(b), "\n") {
			v, ok := strings.CutPrefix(line, "SuccessExitStatus=")
			if !ok {
				continue
			}
			for _, f := range strings.Fields(v) {
				if n, err := strconv.Atoi(f); err == nil {
					codes[n] = true
				}
			}
		}
		out[filepath.Base(u)] = codes
	}
	return out
}

// TestSecondSignalForcesStop: a second SIGTERM, or SIGINT (Ctrl-C pressed
// again), while a daemon drains after the first ends it at once instead of
// waiting for the drain: here a listener whose drain waits for a request
// in flight, whose body never comes (for read_timeout and
// shutdown_timeout, a minute each). It exits 128 + the signal's number
// (143, 130), which every unit counts as a clean stop, as it does a death
// by that signal, and its last log line says the stop was forced and what
// it leaves undrained.
func TestSecondSignalForcesStop(t *testing.T) {
	units := unitSuccessStatuses(t)
	bin := buildBinary(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		want int
	}{{syscall.SIGTERM, "SIGTERM", 143}, {syscall.SIGINT, "SIGINT", 130}} {
		t.Run(tc.name, func(t *testing.T) {
			for unit, codes := range units {
				if !codes[tc.want] {
					t.Errorf("%s: SuccessExitStatus lacks %d: a stop forced by %s would leave the unit failed (or restart it)", unit, tc.want, tc.name)
				}
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			cmd, out := startListener(t, bin,
				`{listen: "`+addr+`", read_timeout: 1m, shutdown_timeout: 1m, auth: {insecure_no_auth: true}}`, "--log-format", "json")

			// A request whose handler reads a body that never comes: the
			// server answers 100 Continue once the handler reads it.
			// READY=1 says that the server listens.
			var conn net.Conn
			waitFor(t, "the listener to accept", 30*time.Second, func() bool {
				conn, err = net.Dial("tcp", addr)
				return err == nil
			})
			defer conn.Close()
			fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n", addr)
			if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			status, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || !strings.Contains(status, " 100 ") {
				t.Fatalf("no 100 Continue for the request (%q, %v)\n%s", status, err, out)
			}

			exited := make(chan struct{})
			go func() {
				_ = cmd.Wait()
				close(exited)
			}()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			// The drain began: the listener accepts no more connections,
			// while the request holds it.
			waitFor(t, "the listener to stop accepting", 30*time.Second, func() bool {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					c.Close()
				}
				return err != nil
			})
			select {
			case <-exited:
				t.Fatalf("the daemon exited before the second signal: %v\n%s", cmd.ProcessState, out)
			default:
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("still draining 10s after the second %s\n%s", tc.name, out)
			}
			if got := cmd.ProcessState.ExitCode(); got != tc.want {
				t.Errorf("after a second %s: %v, want exit %d\n%s", tc.name, cmd.ProcessState, tc.want, out)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var last map[string]any
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
				t.Fatalf("last line is not a JSON log line (%v): %s", err, lines[len(lines)-1])
			}
			t.Logf("last log line: %s", lines[len(lines)-1])
			msg, _ := last["msg"].(string)
			undrained, _ := last["not_drained"].(string)
			if last["level"] != "WARN" || !strings.Contains(msg, "forced") || last["component"] != "listener" ||
				last["signal"] != tc.name || !strings.Contains(undrained, "spool") {
				t.Errorf("last log line %s; want a WARN of the listener saying the stop was forced by %s and what is not drained", lines[len(lines)-1], tc.name)
			}
		})
	}
}

// TestInterruptedCommandExits128PlusSignal: a command (not a daemon)
// interrupted by SIGINT (Ctrl-C) or SIGTERM gave up with "context
// canceled" and exit 1, a failure's. It says in one line that it was
// interrupted, and exits 128 + the signal's number (130, 143), as a
// daemon's forced stop does and as a shell reports a process that signal
// killed. Here `causeway status` waits for an API that never answers.
func TestInterruptedCommandExits128PlusSignal(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
		want int
	}{{syscall.SIGINT, "SIGINT", 130}, {syscall.SIGTERM, "SIGTERM", 143}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				if c, err := ln.Accept(); err == nil {
					accepted <- c // held, never answered
				}
			}()
			cmd := exec.Command(bin, "status", "--url", "http://"+ln.Addr().String(), "--token", "t", "--timeout", "1h")
			var stdout, stderr logtest.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() {
				_ = cmd.Wait()
				close(exited)
			}()
			select {
			case c := <-accepted:
				defer c.Close()
			case <-exited:
				t.Fatalf("the command ended before its request: %v\n%s", cmd.ProcessState, stderr.String())
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			<-exited
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if got := cmd.ProcessState.ExitCode(); got != tc.want || len(lines) != 1 ||
				!strings.Contains(lines[0], "interrupted") || !strings.Contains(lines[0], tc.name) || strings.Contains(lines[0], "context canceled") {
				t.Errorf("interrupted by %s: %v, stderr %q; want exit %d and one line saying it was interrupted by %s", tc.name, cmd.ProcessState, stderr.String(), tc.want, tc.name)
			}
		})
	}
}
