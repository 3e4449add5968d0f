package sdnotify

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen stands in for systemd's notification socket (a unixgram socket).
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func read(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 256)
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

func TestReadyStoppingAndWatchdog(t *testing.T) {
	conn := listen(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	Ready(logger)
	if got := read(t, conn); got != "READY=1" {
		t.Errorf("Ready sent %q", got)
	}
	Status(logger, "applied seq 42")
	if got := read(t, conn); got != "STATUS=applied seq 42" {
		t.Errorf("Status sent %q", got)
	}

	t.Setenv("WATCHDOG_USEC", "20000") // 20 ms: pings every 10 ms
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Watchdog(ctx, logger, func() bool { return true }) }()
	if got := read(t, conn); !strings.HasPrefix(got, "WATCHDOG=1") {
		t.Errorf("Watchdog sent %q", got)
	}
	cancel()
	<-done

	Stopping(logger)
	for { // drain pings sent before cancel took effect
		if got := read(t, conn); got != "WATCHDOG=1" {
			if got != "STOPPING=1" {
				t.Errorf("Stopping sent %q", got)
			}
			break
		}
	}
}

func TestWatchdogOffReturnsAtOnce(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watchdog(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watchdog did not return with the watchdog off")
	}
}
