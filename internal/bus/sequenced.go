package bus

import (
	"context"

	"github.com/causeway/causeway/internal/event"
)

// BatchPublisher publishes sequenced batches on SequencedExchange, for the
// processors that follow the log. The database stays the source of truth:
// a batch lost here is a gap that followers repair from it.
type BatchPublisher struct {
	// fields in the implementation
}

// NewBatchPublisher validates cfg. It starts nothing.
func NewBatchPublisher(cfg Conn, deps Deps) (*BatchPublisher, error) {
	panic("bus: not implemented yet")
}

// Run keeps the connection up until ctx ends and returns nil then.
func (p *BatchPublisher) Run(ctx context.Context) error { panic("bus: not implemented yet") }

// PublishSequenced publishes b (event.EncodeBatch) and waits for the
// broker's confirm. It waits for a connection while there is none, until ctx
// ends. Concurrent calls are allowed; they are sent one at a time.
func (p *BatchPublisher) PublishSequenced(ctx context.Context, b event.Batch) error {
	panic("bus: not implemented yet")
}

// Subscriber follows the sequenced stream: each connection binds a fresh
// exclusive, server-named queue to SequencedExchange and yields the decoded
// batches. Right after every (re)connection it yields an Update with Gap
// set, because batches published while it was away are not in its new
// queue: the follower then reads the log from the database from its last
// applied seq, and uses Batch.PrevSeq to skip or detect further gaps.
type Subscriber struct {
	// fields in the implementation
}

// Update is one item of the sequenced stream: a Batch, or a Gap signal.
type Update struct {
	// Gap means batches may have been missed before the next Batch.
	Gap   bool
	Batch event.Batch
}

// NewSubscriber validates cfg. It starts nothing.
func NewSubscriber(cfg SubscriberConfig, deps Deps) (*Subscriber, error) {
	panic("bus: not implemented yet")
}

// Run subscribes until ctx ends and returns nil then. Updates is closed
// when Run returns.
func (s *Subscriber) Run(ctx context.Context) error { panic("bus: not implemented yet") }

// Updates is the stream of updates; the caller must keep reading it.
func (s *Subscriber) Updates() <-chan Update { panic("bus: not implemented yet") }
