package openstack

import (
	"context"
	neturl "net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
)

// hangingPublisher's Publish returns only once release is closed or ctx
// ends, as a Publish into a spool whose disk stopped answering would.
type hangingPublisher struct {
	release chan struct{}
	entered chan struct{}
}

func (p *hangingPublisher) Publish(ctx context.Context, _ ...event.Event) error {
	select {
	case p.entered <- struct{}{}:
	default:
	}
	select {
	case <-p.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitAlive waits until c.Alive() is want, and returns how long that took.
func waitAlive(t *testing.T, c *Consumer, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for c.Alive() != want {
		if time.Since(start) > within {
			t.Fatalf("Alive() is not %t within %s", want, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// testStallLimit is the stall limit the tests shorten the consumer's to:
// far above what a declare, an ack or a Publish into a fake takes on a
// loaded machine, so that only the operation a test holds can exceed it.
const testStallLimit = time.Second

// TestConsumerNotAliveWhileAPublishHangs: a notification whose events'
// Publish has run past the stall limit (shortened here) makes the
// consumer stuck; once the Publish returns, the notification is acked and
// the consumer is alive again.
func TestConsumerNotAliveWhileAPublishHangs(t *testing.T) {
	url := bustest.VHost(t)
	b := dial(t, url)
	pub := &hangingPublisher{release: make(chan struct{}), entered: make(chan struct{}, 1)}
	release := sync.OnceFunc(func() { close(pub.release) })
	defer release()
	const limit = testStallLimit
	c, stop := startConsumer(t, Config{Conn: bus.Conn{URL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}},
		Deps{Publisher: pub}, limit)
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })
	if !c.Alive() {
		t.Fatal("not alive waiting for notifications")
	}
	// Taken before the notification is sent, so before the Publish's
	// operation began: the consumer may not be stuck sooner than limit
	// after it. (Taken once Publish was entered, it came after the
	// operation began, and not alive could follow it by less than limit.)
	began := time.Now()
	b.publish("testdata/instance_create_end.json")
	select {
	case <-pub.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the notification was not published within 20s")
	}
	waitAlive(t, c, false, 10*time.Second)
	if took := time.Since(began); took < limit {
		t.Fatalf("not alive %s after the notification was sent, short of the limit %s", took, limit)
	}
	release()
	waitAlive(t, c, true, 10*time.Second)
	waitFor(t, "the notification acked", func() bool { return b.queue(DefaultQueue) == 0 })
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestConsumerAliveWhileBackingOff: a consumer whose Publish keeps failing
// (the spool is full: the broker of the events has been away too long)
// retries with backoff and holds the notification unacked; it is alive
// throughout, for several times its stall limit (shortened here). So is
// one whose broker refuses it (its vhost's permissions revoked), which
// declares and reconnects with backoff.
func TestConsumerAliveWhileBackingOff(t *testing.T) {
	url := bustest.VHost(t)
	b := dial(t, url)
	pub := &fakePublisher{fail: -1}
	const limit = testStallLimit
	c, stop := startConsumer(t, Config{Conn: bus.Conn{URL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}},
		Deps{Publisher: pub}, limit)
	waitFor(t, "the notification queue", func() bool { return b.queue(DefaultQueue) >= 0 })
	b.publish("testdata/instance_create_end.json")
	waitFor(t, "publish attempts", func() bool { _, calls := pub.snapshot(); return calls >= 1 })
	for end := time.Now().Add(3 * limit); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !c.Alive() {
			t.Fatal("not alive while retrying a failing Publish with backoff")
		}
	}
	if _, calls := pub.snapshot(); calls < 4 {
		t.Errorf("%d Publish calls in %s; want the failing one retried", calls, 3*limit)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}

	// Without permissions on its vhost, a new consumer cannot declare its
	// queue: it retries with backoff, alive.
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	vhost, user := strings.TrimPrefix(u.Path, "/"), u.User.Username()
	rabbitmqctl(t, "clear_permissions", "-p", vhost, user)
	c, _ = startConsumer(t, Config{Conn: bus.Conn{URL: url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}},
		Deps{Publisher: &fakePublisher{}}, limit)
	for end := time.Now().Add(3 * limit); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !c.Alive() {
			t.Fatal("not alive while the broker refuses the consumer")
		}
	}
}

// rabbitmqctl runs rabbitmqctl with args, failing the test on error.
func rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl %v: %v: %s", args, err, out)
	}
}
