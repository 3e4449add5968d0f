package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/logtest"
)

// TestListenerWrongConfigExits78: an endpoint path http.ServeMux
// cannot register crashed the listener with a panic at start, and two
// endpoints on one path, or a listen address that is not host:port,
// stopped it with exit 1, which the unit restarts every two seconds for
// ever; check-config passed them all. Each is a wrong
// configuration: refused by check-config, exit 78 at start.
func TestListenerWrongConfigExits78(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	const shared = "bus: {url: 'amqp://guest:guest@127.0.0.1:1/'}\nlistener:\n  publisher: {spool_path: SPOOL}\n"
	for name, body := range map[string]string{
		"space": "  server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}\n  events: {path: /v1/my events}\n",
		"brace": "  server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}\n  alertmanager: {path: '/v1/{x', mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
		"twice": "  server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}\n  events: {path: /v1/hooks}\n  alertmanager: {path: /v1/hooks, mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
		// net.Listen refused it in Run: exit 1, restarted for ever.
		"listen":  "  server: {listen: '8091', auth: {insecure_no_auth: true}}\n  events: {}\n",
		"default": "  server: {listen: '127.0.0.1:0', auth: {insecure_no_auth: true}}\n  events: {path: /v1/alertmanager}\n  alertmanager: {mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
		// The webhook's own limit over the memory cap: no such body
		// could be taken (its default 32 MiB over a cap of 16 MiB).
		"inflight": "  server: {listen: '127.0.0.1:0', max_body_bytes: 1048576, max_inflight_bytes: 16777216, auth: {insecure_no_auth: true}}\n  alertmanager: {mapping: {rules: [{resource_type: nova.host, resource_id_labels: [instance]}]}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, dir, name+".yaml", strings.ReplaceAll(shared, "SPOOL", dir+"/"+name+".spool")+body)
			loaded, err := loadConfig(cfg, needBus)
			if err != nil {
				t.Fatal(err)
			}
			if err := loaded.validate(); err == nil {
				t.Error("check-config accepted it")
			}
			checkDaemonExit(t, bin, "listener", cfg, exitConfig)
		})
	}
}

// TestListenerReadyOnlyOnceListening: READY=1 tells systemd (and the
// units ordered after the listener) that webhooks are taken now. It was
// sent as the parts started, before the server bound its address, so a
// listener whose address was taken said READY=1 and then failed: systemd
// counted the start a success. It must bind first: a taken address fails
// the start (exit 1, restarted) without READY=1, and once READY=1 has
// come the address accepts at the first try.
func TestListenerReadyOnlyOnceListening(t *testing.T) {
	bin := buildBinary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

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
	defer conn.Close()
	cfg := writeConfig(t, dir, "causeway.yaml", `bus: {url: "amqp://guest:guest@127.0.0.1:1/"}
listener:
  server: {listen: "`+taken.Addr().String()+`", auth: {insecure_no_auth: true}}
  publisher: {spool_path: "`+filepath.Join(dir, "spool.db")+`"}
  events: {}
`)
	cmd := exec.Command(bin, "listener", "-c", cfg, "--log-format", "json")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var out logtest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("a listener whose address is taken still runs after 30s\n%s", &out)
	}
	if got := cmd.ProcessState.ExitCode(); got != 1 {
		t.Errorf("address taken: %v, want exit 1 (restarted: the address may be freed)\n%s", cmd.ProcessState, &out)
	}
	buf := make([]byte, 4096)
	for {
		if err := conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			break // nothing more was sent
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			t.Fatalf("a listener that could not bind its address told systemd READY=1\n%s", &out)
		}
	}

	// Free, the address accepts as soon as READY=1 has come.
	addr := taken.Addr().String()
	taken.Close()
	cmd, out2 := startListener(t, bin, `{listen: "`+addr+`", auth: {insecure_no_auth: true}}`)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("READY=1 came but the listener does not accept: %v\n%s", err, out2)
	}
	c.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, out2)
	}
}
