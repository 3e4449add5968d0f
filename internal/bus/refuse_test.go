package bus

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/event"
)

// TestPublishNamesTheEventItRefuses: an event that does not encode fails
// the whole call, nothing spooled, with an *event.ItemError naming its
// place, so that a caller can leave it out and publish the others.
func TestPublishNamesTheEventItRefuses(t *testing.T) {
	p, err := NewPublisher(PublisherConfig{Conn: Conn{URL: "amqp://guest:guest@127.0.0.1:1/"},
		SpoolPath: filepath.Join(t.TempDir(), "spool.db")}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	big := testEvent(2)
	big.Kind, big.Entity = event.KindEntityUpsert, &event.Entity{Category: event.CategoryResource, Type: "t", ID: "x",
		Properties: map[string]string{"p": strings.Repeat("x", event.MaxEventBytes)}}
	err = p.Publish(context.Background(), testEvent(1), big, testEvent(3))
	var bad *event.ItemError
	if !errors.As(err, &bad) || bad.Index != 1 || bad.EventID != big.EventID || !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("Publish = %v; want an ItemError at index 1 wrapping ErrTooLarge", err)
	}
	if n, _ := p.Spooled(); n != 0 {
		t.Errorf("%d events spooled by a refused call", n)
	}
}

// TestPublishRecordsTakesStoredEvents: a replay re-publishes its log as it
// is: a stored event the rules of input refuse now (the evaluator's source,
// a source too long for a whole routing key) is spooled by PublishRecords,
// with its routing key clipped to what AMQP carries, while Publish refuses
// it as input.
func TestPublishRecordsTakesStoredEvents(t *testing.T) {
	p, err := NewPublisher(PublisherConfig{Conn: Conn{URL: "amqp://guest:guest@127.0.0.1:1/"},
		SpoolPath: filepath.Join(t.TempDir(), "spool.db")}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	evaluator, long := testEvent(1), testEvent(2)
	evaluator.Source, long.Source = event.EvaluatorSource, strings.Repeat("s", event.MaxIDLen)
	for _, ev := range []event.Event{evaluator, long} {
		if err := p.Publish(context.Background(), ev); !errors.Is(err, event.ErrInvalid) {
			t.Errorf("Publish of %.20s…: %v; want it refused as input", ev.Source, err)
		}
	}
	recs := []event.Record{{Seq: 1, RecordedAt: evaluator.ObservedAt, Event: evaluator}, {Seq: 2, RecordedAt: long.ObservedAt, Event: long}}
	if err := p.PublishRecords(context.Background(), recs...); err != nil {
		t.Fatalf("PublishRecords: %v", err)
	}
	if n, _ := p.Spooled(); n != 2 {
		t.Errorf("%d records spooled; want 2", n)
	}
	if k := RoutingKey(long.Source, string(long.Kind)); len(k) != MaxRoutingKey || !strings.HasPrefix(k, "sss") {
		t.Errorf("routing key of %d bytes; want it clipped to %d", len(k), MaxRoutingKey)
	}
}
