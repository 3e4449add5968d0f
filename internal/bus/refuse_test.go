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
