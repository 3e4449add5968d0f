package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
)

// TestListenerStopSendsWhatItAnswered: a request the listener answers 2xx
// while it stops (it was in flight when SIGTERM came) is in the spool,
// and the spool went to the broker only at the next start: a listener
// stopped for good (a host taken out, a rolling replacement) kept on its
// disk webhooks it had answered 2xx. With the broker there, the stop
// sends the spool before the process exits: the event is in the persist
// queue once the listener has exited, and its exit is a clean one.
func TestListenerStopSendsWhatItAnswered(t *testing.T) {
	amqpURL := bustest.VHost(t)
	bin := buildBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd, out := startListenerOn(t, bin, amqpURL, `{listen: "`+addr+`", read_timeout: 1m, shutdown_timeout: 1m, auth: {insecure_no_auth: true}}`, "--log-format", "json")
	ch := bustest.Channel(t, amqpURL)
	waitFor(t, "the publisher to declare the topology", 30*time.Second, func() bool {
		_, err := ch.QueueDeclarePassive(bus.PersistQueue, true, false, false, false, nil)
		if err != nil {
			ch = bustest.Channel(t, amqpURL) // a failed passive declare closes the channel
		}
		return err == nil
	})

	body, err := os.ReadFile("../../listeners/events/testdata/host_down.json")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial the listener: %v\n%s", err, out)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, len(body))
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if status, err := r.ReadString('\n'); err != nil || !strings.Contains(status, " 100 ") {
		t.Fatalf("no 100 Continue (%q, %v)\n%s", status, err, out)
	}
	if _, err := r.ReadString('\n'); err != nil { // the empty line after it
		t.Fatal(err)
	}

	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the listener to stop accepting", 30*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no answer to the request in flight: %v\n%s", err, out)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the request in flight: %s, want 200\n%s", resp.Status, out)
	}
	select {
	case <-exited:
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("the listener still runs 40s after SIGTERM\n%s", out)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGTERM; want 0\n%s", code, out)
	}
	// A confirmed message may take a moment to be counted.
	var messages int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		q, err := ch.QueueDeclarePassive(bus.PersistQueue, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if messages = q.Messages; messages == 1 || time.Now().After(deadline) {
			break
		}
	}
	if messages != 1 {
		t.Fatalf("the listener exited with %d messages in the persist queue; want the one it answered 200 while stopping\n%s", messages, out)
	}
}

// TestListenerStopWithTheBrokerAway: the drain of the stop does not wait
// for a broker that is away: a listener holding events it answered 200
// stops at once, cleanly, saying that they stay in the spool.
func TestListenerStopWithTheBrokerAway(t *testing.T) {
	bin := buildBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd, out := startListener(t, bin, `{listen: "`+addr+`", auth: {insecure_no_auth: true}}`, "--log-format", "json")
	body, err := os.ReadFile("../../listeners/events/testdata/host_down.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+addr+"/v1/events", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST with the broker away: %s; want 200 (spooled)", resp.Status)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; want a clean stop\n%s", err, out)
	}
	if took := time.Since(start); took > drainGrace/2 {
		t.Errorf("the stop took %s with the broker away; want it not to wait for the broker\n%s", took, out)
	}
	if !strings.Contains(out.String(), "1 events left in the spool") {
		t.Errorf("no log line saying what stays in the spool\n%s", out)
	}
}
