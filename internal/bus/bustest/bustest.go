// Package bustest gives integration tests their own RabbitMQ vhost.
package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// EnvURL names the variable holding the test broker's URL, for example
// amqp://guest:guest@127.0.0.1:5672/ (its vhost is ignored).
const EnvURL = "CAUSEWAY_TEST_AMQP_URL"

// URL returns CAUSEWAY_TEST_AMQP_URL. Without it the test is skipped, or
// fails when the CI variable is set, so CI cannot pass by skipping.
func URL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(EnvURL)
	if raw == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set (CI is set, so integration tests must run)", EnvURL)
		}
		t.Skipf("%s is not set; skipping the RabbitMQ integration test", EnvURL)
	}
	return raw
}

// VHost creates a fresh vhost with rabbitmqctl, gives the user of
// CAUSEWAY_TEST_AMQP_URL all permissions on it, and returns the AMQP URL of
// the vhost. The vhost is deleted in t.Cleanup. Without the variable the
// test is skipped, or fails when the CI variable is set.
func VHost(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(URL(t))
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	user := u.User.Username()
	if user == "" {
		user = "guest"
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "causeway-test-" + sanitize(t.Name()) + "-" + hex.EncodeToString(rnd[:])
	if err := rabbitmqctl("add_vhost", name); err != nil {
		t.Fatalf("create vhost: %v", err)
	}
	t.Cleanup(func() {
		if err := rabbitmqctl("delete_vhost", name); err != nil {
			t.Errorf("delete vhost: %v", err)
		}
	})
	if err := rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*"); err != nil {
		t.Fatalf("grant %s on vhost: %v", user, err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// rabbitmqctl runs rabbitmqctl with args and a one-minute timeout.
func rabbitmqctl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sanitize keeps a vhost name to characters that need no escaping in a URL.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}

// Channel dials url and opens a channel on it, for a test to declare, bind
// and inspect what it needs; both are closed in t.Cleanup.
func Channel(t testing.TB, url string) *amqp.Channel {
	t.Helper()
	ch, err := Conn(t, url).Channel()
	if err != nil {
		t.Fatalf("open a channel: %v", err)
	}
	return ch
}

// Conn dials url; the connection is closed when the test ends.
func Conn(t testing.TB, url string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial the test broker: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Take consumes n messages from queue at url (acked as delivered) within
// 20 s. It stands in for basic.get, which a quorum queue with a single
// active consumer (the persist queue) refuses. A consume the broker fails
// with INTERNAL_ERROR is tried again on a new channel: RabbitMQ 3.10 does
// so for a quorum queue declared a moment before, whose replica is still
// starting.
func Take(t testing.TB, url, queue string, n int) []amqp.Delivery {
	t.Helper()
	const tag = "bustest-take"
	conn := Conn(t, url)
	var (
		ch   *amqp.Channel
		msgs <-chan amqp.Delivery
		err  error
	)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ch, err = conn.Channel(); err != nil {
			t.Fatalf("open a channel: %v", err)
		}
		msgs, err = ch.Consume(queue, tag, true, false, false, false, nil)
		var ae *amqp.Error
		if err == nil || !errors.As(err, &ae) || ae.Code != amqp.InternalError || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("consume %s: %v", queue, err)
	}
	defer func() { _ = ch.Cancel(tag, false) }()
	var got []amqp.Delivery
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("consume %s: the channel closed after %d of %d messages", queue, len(got), n)
			}
			got = append(got, m)
		case <-timeout:
			t.Fatalf("consume %s: %d of %d messages within 20s", queue, len(got), n)
		}
	}
	return got
}
