package bus

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus/bustest"
)

// TestSubscriberQueueBoundedInBytes: a follower that stops reading lets
// its broker-side queue hold no more than MaxQueuedBytes of batches, the
// oldest dropped (it repairs the gap from the database). Bounded by count
// alone, the queue of a lagging processor held every batch up to 10,000,
// however large, in the broker's memory.
func TestSubscriberQueueBoundedInBytes(t *testing.T) {
	u := bustest.VHost(t)
	bp, err := NewBatchPublisher(fastConn(u), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, bp.Run)
	const limit = 64 << 10
	s, err := NewSubscriber(SubscriberConfig{Conn: fastConn(u), MaxQueuedBytes: limit}, Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, s.Run)
	select {
	case up := <-s.Updates():
		if !up.Gap {
			t.Fatalf("first update %+v, want a gap signal", up)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no update within 30s")
	}
	// The follower reads no more: the subscriber holds its prefetch of
	// 256 batches unacked, and the rest waits in the queue.
	ctx := context.Background()
	const batches, records = 400, 16
	for i := range batches {
		if err := bp.PublishSequenced(ctx, testBatch(int64(i*records), records)); err != nil {
			t.Fatalf("publish batch %d: %v", i, err)
		}
	}
	ready, bytes := subscriberQueue(t, u)
	t.Logf("subscriber queue: %d batches, %d bytes ready", ready, bytes)
	if bytes > limit {
		t.Fatalf("subscriber queue holds %d bytes of %d batches, over max_queued_bytes %d", bytes, ready, limit)
	}
	if ready == 0 {
		t.Fatal("subscriber queue is empty: the test did not fill it")
	}
}

// subscriberQueue returns the ready messages and their bytes of the
// subscriber's server-named queue in u's vhost.
func subscriberQueue(t *testing.T, u string) (ready int, bytes int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "list_queues", "-q", "--no-table-headers", "-p", vhostOf(t, u),
		"name", "messages_ready", "message_bytes_ready").CombinedOutput()
	if err != nil {
		t.Fatalf("list queues: %v: %s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[0], "amq.gen-") {
			continue
		}
		n, err1 := strconv.Atoi(f[1])
		b, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("list queues: unexpected line %q", line)
		}
		return n, b
	}
	t.Fatalf("no subscriber queue in\n%s", out)
	return 0, 0
}
