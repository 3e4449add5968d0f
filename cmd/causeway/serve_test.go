package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// notifySocket is a datagram socket standing for systemd's NOTIFY_SOCKET,
// with the watchdog on at a 20 ms interval (pings every 10 ms).
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "20000")
	return conn
}

// next reads the next message, or "" when none comes within wait.
func next(t *testing.T, conn *net.UnixConn, wait time.Duration) string {
	t.Helper()
	buf := make([]byte, 256)
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// TestServeGatesTheWatchdogOnEveryActor checks the wiring every component
// shares: systemd hears READY, then watchdog pings only while every actor
// says it is alive (one stuck actor withholds them, so systemd restarts
// the component), and STOPPING on a clean stop.
func TestServeGatesTheWatchdogOnEveryActor(t *testing.T) {
	conn := notifySocket(t)
	var stuck atomic.Bool
	idle := func(ctx context.Context) error { <-ctx.Done(); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), newRegistry(), "",
			actor{name: "publisher", run: idle, alive: func() bool { return true }},
			actor{name: "drivers", run: idle, alive: func() bool { return !stuck.Load() }},
			actor{name: "no check", run: idle})
	}()
	if got := next(t, conn, 5*time.Second); got != "READY=1" {
		t.Fatalf("first message %q; want READY=1", got)
	}
	for range 3 {
		if got := next(t, conn, 5*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("with every actor alive: %q; want WATCHDOG=1", got)
		}
	}

	stuck.Store(true)
	// For 30 watchdog intervals (a healthy component pings about 60
	// times), at most the one ping decided before the store comes.
	pings := 0
	for end := time.Now().Add(600 * time.Millisecond); time.Now().Before(end); {
		switch got := next(t, conn, time.Until(end)); got {
		case "":
		case "WATCHDOG=1":
			pings++
		default:
			t.Fatalf("unexpected %q", got)
		}
	}
	if pings > 1 {
		t.Fatalf("with the drivers stuck, systemd heard %d watchdog pings in 30 intervals; want at most the one in flight", pings)
	}

	stuck.Store(false)
	if got := next(t, conn, 5*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("once the drivers move again: %q; want WATCHDOG=1", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a clean stop returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	for {
		got := next(t, conn, 5*time.Second)
		if got == "WATCHDOG=1" {
			continue // sent before the stop took effect
		}
		if got != "STOPPING=1" {
			t.Fatalf("on the way out: %q; want STOPPING=1", got)
		}
		break
	}
}

// TestServeStopsEveryActorWhenOneFails checks that an actor's failure ends
// the component with the actor's name in the error, and stops the others.
func TestServeStopsEveryActorWhenOneFails(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	boom := errors.New("broker gone")
	var stopped atomic.Int32
	idle := func(ctx context.Context) error { <-ctx.Done(); stopped.Add(1); return nil }
	err := serve(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), newRegistry(), "",
		actor{name: "publisher", run: idle},
		actor{name: "http server", run: func(context.Context) error { return boom }},
		actor{name: "openstack consumer", run: idle})
	if !errors.Is(err, boom) || err.Error() != "http server: broker gone" {
		t.Fatalf("serve returned %v; want the failing actor's error, named", err)
	}
	if n := stopped.Load(); n != 2 {
		t.Fatalf("%d of the 2 other actors stopped", n)
	}
}

// TestServeLogsStartAndCleanStop: a component logs its start (its parts
// and the binary's version) and a clean stop; a failure it does not call
// a stop (daemon logs the error).
func TestServeLogsStartAndCleanStop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	idle := func(ctx context.Context) error { <-ctx.Done(); return nil }
	var buf bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := serve(ctx, slog.New(slog.NewTextHandler(&buf, nil)), newRegistry(), "", actor{name: "persister", run: idle}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`msg=starting parts=[persister] version=`, `msg=stopped`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	_ = serve(context.Background(), slog.New(slog.NewTextHandler(&buf, nil)), newRegistry(), "",
		actor{name: "listener", run: func(context.Context) error { return errors.New("bind: address in use") }})
	if strings.Contains(buf.String(), "msg=stopped") {
		t.Errorf("a failed component logged a clean stop:\n%s", buf.String())
	}
}

// TestServeKeepsMetricsWhileStopping: /metrics answers until every actor
// has returned, so a stop that drains for a while is seen by the scrapes;
// then it is closed.
func TestServeKeepsMetricsWhileStopping(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stopping, release := make(chan struct{}), make(chan struct{})
	draining := func(ctx context.Context) error {
		<-ctx.Done()
		close(stopping)
		<-release
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), newRegistry(), addr, actor{name: "draining", run: draining})
	}()
	get := func() error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for get() != nil {
		if time.Now().After(deadline) {
			t.Fatal("/metrics never answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-stopping
	if err := get(); err != nil {
		t.Fatalf("/metrics while an actor drains: %v; want 200", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := get(); err == nil {
		t.Fatal("/metrics still answers after serve returned")
	}
}

// TestWithGrace: a run that returns within the grace after its stop
// returns its own result; one that does not is left once the grace has
// passed, a clean stop all the same (nil, so the process exits 0 and
// `systemctl stop` leaves the unit inactive, as a persister's or a
// processor's whose grace ran out), with a warning saying what is left
// undrained.
func TestWithGrace(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	prompt := withGrace(log, time.Hour, "nothing", func(ctx context.Context) error { <-ctx.Done(); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := prompt(ctx); err != nil {
		t.Fatalf("a run that stops at once: %v", err)
	}
	if logs.Len() != 0 {
		t.Errorf("a run that stops at once logged %s", logs.String())
	}
	hang := make(chan struct{})
	defer close(hang)
	stuck := withGrace(log, 10*time.Millisecond, "the deliveries in flight", func(context.Context) error { <-hang; return nil })
	if err := stuck(ctx); err != nil {
		t.Fatalf("a run that does not stop within the grace: %v; want nil, a clean stop", err)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON log line (%v): %s", err, logs.String())
	}
	if msg, _ := line["msg"].(string); line["level"] != "WARN" || !strings.Contains(msg, "grace") || line["not_drained"] != "the deliveries in flight" {
		t.Errorf("log line %s; want a WARN saying the grace passed and what is not drained", logs.String())
	}
	failed := errors.New("boom")
	if err := withGrace(log, time.Hour, "nothing", func(context.Context) error { return failed })(context.Background()); !errors.Is(err, failed) {
		t.Fatalf("a run that fails: %v", err)
	}
}

// TestServeDrainsAfterTheIntake: an actor with a drain (a publisher) is
// not stopped with the others: its run goes on while they finish what
// they took (a request answered during the stop is spooled then), its
// drain is called once they have all returned, and its run is stopped
// only after the drain.
func TestServeDrainsAfterTheIntake(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	var steps []string
	var mu sync.Mutex
	step := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, s)
	}
	release := make(chan struct{})
	intake := func(ctx context.Context) error {
		<-ctx.Done()
		step("intake stopping")
		<-release // a request in flight
		step("intake returned")
		return nil
	}
	publisher := func(ctx context.Context) error {
		<-ctx.Done()
		step("publisher stopped")
		return nil
	}
	drain := func(ctx context.Context) error {
		step("drain")
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), newRegistry(), "",
			actor{name: "publisher", run: publisher, drain: drain},
			actor{name: "http server", run: intake})
	}()
	cancel()
	waitFor(t, "the intake to stop", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(steps) > 0
	})
	mu.Lock()
	early := slices.Clone(steps)
	mu.Unlock()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := []string{"intake stopping"}; !slices.Equal(early, want) {
		t.Errorf("while the intake finishes: %q; want %q (the publisher still running)", early, want)
	}
	if want := []string{"intake stopping", "intake returned", "drain", "publisher stopped"}; !slices.Equal(steps, want) {
		t.Errorf("stop order %q; want %q", steps, want)
	}
}

// TestServeSkipsTheDrainOfAFailedActor: a carrier whose run failed is not
// drained (nothing runs to send), and the failure ends serve at once.
func TestServeSkipsTheDrainOfAFailedActor(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	boom := errors.New("spool broken")
	drained := false
	err := serve(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), newRegistry(), "",
		actor{name: "publisher", run: func(context.Context) error { return boom }, drain: func(context.Context) error { drained = true; return nil }},
		actor{name: "http server", run: func(ctx context.Context) error { <-ctx.Done(); return nil }})
	if !errors.Is(err, boom) {
		t.Fatalf("serve returned %v; want the publisher's failure", err)
	}
	if drained {
		t.Error("the drain of a publisher whose run had failed was called")
	}
}

// TestMetricsServerDropsAStalledRequest: the /metrics server of the
// persister, notifier, driver and listener had a header timeout only, so
// a client that sent a request's headers and never its body (or idled on
// a kept-alive connection) held a connection and a goroutine for good:
// enough of them, from anyone who reaches the port, took the process's
// file descriptors. A request's body now has metricsReadTimeout to come.
func TestMetricsServerDropsAStalledRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), newRegistry(), addr, actor{name: "idle", run: func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		}})
	}()
	defer func() { cancel(); <-done }()
	var conn net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for conn, err = net.Dial("tcp", addr); err != nil; conn, err = net.Dial("tcp", addr) {
		if time.Now().After(deadline) {
			t.Fatalf("dial the metrics server: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer conn.Close()
	// The headers, and not the 10 bytes of body they promise.
	if _, err := io.WriteString(conn, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(20 * time.Second))
	_, err = io.Copy(io.Discard, conn) // the answer, then the server's close
	if err != nil {
		t.Fatalf("the connection of a request whose body never came is still open after %s: %v", time.Since(start).Round(time.Second), err)
	}
}
