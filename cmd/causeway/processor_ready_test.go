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

// startProcessorNotify runs the binary's processor under a fake systemd
// notify socket, with the database and the broker away (a processor
// started before MariaDB, at boot). It returns the process, its output and
// the socket.
func startProcessorNotify(t *testing.T, bin, apiAddr, raftAddr string) (*exec.Cmd, *logtest.Buffer, *net.UnixConn, chan struct{}) {
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
	t.Cleanup(func() { conn.Close() })
	cfg := writeConfig(t, dir, "causeway.yaml", `database: {dsn: "u@tcp(127.0.0.1:1)/db"}
bus: {url: "amqp://guest:guest@127.0.0.1:1/"}
processor:
  node_id: p1
  data_dir: "`+filepath.Join(dir, "data")+`"
  raft: {bind_addr: "`+raftAddr+`", advertise_addr: "`+raftAddr+`", peers: [{id: p1, address: "`+raftAddr+`"}]}
  snapshot: {policy: {every_events: 1000}}
  api: {listen: "`+apiAddr+`", tokens: [{name: op, token: "0123456789abcdef0123456789abcdef", role: admin}]}
`)
	cmd := exec.Command(bin, "processor", "-c", cfg, "--log-format", "json")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	out := &logtest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return cmd, out, conn, exited
}

// readyFrom reports whether READY=1 came on conn within d.
func readyFrom(t *testing.T, conn *net.UnixConn, d time.Duration) bool {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(d)
	for {
		if err := conn.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			return false
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			return true
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestProcessorReadyOnlyOnceBound: READY=1 tells systemd the processor
// started. It was sent as the component's parts started, before the node
// bound its API and raft ports (and, with the database away, long before:
// the node waited for it first), so a processor whose port was taken said
// READY=1 and then exited 1: systemd counted the start a success, and the
// unit flapped. READY now means both ports are had: a taken one fails the
// start, naming the address, without READY=1; once READY=1 has come the
// API answers at once (/healthz 200, /readyz 503 while the state is not
// loaded), even with the database still away.
func TestProcessorReadyOnlyOnceBound(t *testing.T) {
	bin := buildBinary(t)
	for _, port := range []string{"api", "raft"} {
		t.Run(port+" taken", func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			apiAddr, raftAddr := freeAddr(t), freeAddr(t)
			if port == "api" {
				apiAddr = taken.Addr().String()
			} else {
				raftAddr = taken.Addr().String()
			}
			cmd, out, conn, exited := startProcessorNotify(t, bin, apiAddr, raftAddr)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("a processor whose %s port is taken still runs after 30s\n%s", port, out)
			}
			if got := cmd.ProcessState.ExitCode(); got != 1 {
				t.Errorf("%s port taken: %v, want exit 1\n%s", port, cmd.ProcessState, out)
			}
			if !strings.Contains(out.String(), taken.Addr().String()) {
				t.Errorf("the error does not name the taken address %s\n%s", taken.Addr(), out)
			}
			if readyFrom(t, conn, 100*time.Millisecond) {
				t.Fatalf("a processor that could not bind its %s port told systemd READY=1\n%s", port, out)
			}
		})
	}
	t.Run("free", func(t *testing.T) {
		apiAddr, raftAddr := freeAddr(t), freeAddr(t)
		cmd, out, conn, exited := startProcessorNotify(t, bin, apiAddr, raftAddr)
		if !readyFrom(t, conn, 30*time.Second) {
			t.Fatalf("no READY=1 from a processor whose ports are free, the database away\n%s", out)
		}
		client := &http.Client{Timeout: 2 * time.Second}
		for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
			resp, err := client.Get("http://" + apiAddr + path)
			if err != nil {
				t.Fatalf("READY=1 came but the API does not answer %s: %v\n%s", path, err, out)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s: %d, want %d (the state is not loaded)", path, resp.StatusCode, want)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("no stop 30s after SIGTERM\n%s", out)
		}
		if !cmd.ProcessState.Success() {
			t.Errorf("stop while waiting for the database: %v, want exit 0\n%s", cmd.ProcessState, out)
		}
	})
}
