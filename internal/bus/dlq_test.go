package bus

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
)

// TestDeadLetterBrowseAndRequeue: listing the dead-letter queue shows each
// message with its reason and leaves it there; requeueing moves messages
// back to causeway.events (hence causeway.persist) with their id and
// routing key and without the reason, removing each from the queue.
func TestDeadLetterBrowseAndRequeue(t *testing.T) {
	u := bustest.VHost(t)
	ch := declaredChannel(t, u)
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	// e0 is not a Causeway event; e1 and e2 are (refused by the database,
	// say); e3 is a replay's re-published record of a log written before
	// a rule of input (a source this long) was added: not an event as
	// input, but one as stored, which a persister keeping recorded_at
	// takes.
	for i := range 4 {
		body := []byte(`{"v":1}`)
		headers := amqp.Table{ReasonHeader: fmt.Sprintf("rejected (%d)", i)}
		if i > 0 {
			ev := testEvent(i)
			ev.EventID = fmt.Sprint("e", i)
			encode := event.Encode
			if i == 3 {
				ev.Source = strings.Repeat("s", event.MaxSourceLen+1)
				encode = event.EncodeStored
				headers[RecordedAtHeader] = at.Format(time.RFC3339Nano)
			}
			var err error
			if body, err = encode(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := ch.PublishWithContext(context.Background(), DeadLetterExchange, "api.entity.upsert", false, false, amqp.Publishing{
			Headers: headers, MessageId: fmt.Sprint("e", i),
			Timestamp: at, DeliveryMode: amqp.Persistent, Body: body,
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("4 dead letters", func() bool { return queueDepth(t, u, DeadLetterQueue) == 4 })

	// A look takes nothing away (in a quorum queue the messages looked at
	// go back at its tail: a partial look rotates the queue).
	for _, limit := range []int{2, 10} {
		dls, total, err := BrowseDeadLetters(context.Background(), u, limit)
		if err != nil {
			t.Fatal(err)
		}
		if total != 4 || len(dls) != min(limit, 4) {
			t.Fatalf("look at %d: %d in all, %d shown", limit, total, len(dls))
		}
		for _, d := range dls {
			var i int
			if _, err := fmt.Sscanf(d.MessageID, "e%d", &i); err != nil || d.Reason != fmt.Sprintf("rejected (%d)", i) ||
				d.RoutingKey != "api.entity.upsert" || !d.Published.Equal(at) || d.Bytes != len(d.Body) || d.Bytes == 0 {
				t.Errorf("look at %d: %+v", limit, d)
			}
		}
		waitFor("the dead letters back", func() bool { return queueDepth(t, u, DeadLetterQueue) == 4 })
	}

	moved, skipped, err := RequeueDeadLetters(context.Background(), u, 10, 30*time.Second)
	if err != nil || len(moved) != 3 || skipped != 1 {
		t.Fatalf("requeue: %d moved, %d skipped, %v; want the 3 events moved, the other left", len(moved), skipped, err)
	}
	waitFor("one left", func() bool { return queueDepth(t, u, DeadLetterQueue) == 1 })
	waitFor("three in the persist queue", func() bool { return queueDepth(t, u, PersistQueue) == 3 })
	got := map[string]bool{}
	for _, m := range bustest.Take(t, u, PersistQueue, 3) {
		if m.RoutingKey != "api.entity.upsert" || m.Headers[ReasonHeader] != nil {
			t.Errorf("requeued message %s: key %s, headers %v", m.MessageId, m.RoutingKey, m.Headers)
		}
		if _, err := event.DecodeStored(m.Body); err != nil {
			t.Errorf("requeued message %s: %v", m.MessageId, err)
		}
		if (m.Headers[RecordedAtHeader] != nil) != (m.MessageId == "e3") {
			t.Errorf("requeued message %s: headers %v; the recorded_at kept on e3 only", m.MessageId, m.Headers)
		}
		got[m.MessageId] = true
	}
	if !got["e1"] || !got["e2"] || !got["e3"] {
		t.Errorf("requeued %v; want e1, e2 and e3", got)
	}
	left, _, err := BrowseDeadLetters(context.Background(), u, 10)
	if err != nil || len(left) != 1 || left[0].MessageID != "e0" {
		t.Errorf("left after the requeue: %+v, %v; want e0", left, err)
	}
}
