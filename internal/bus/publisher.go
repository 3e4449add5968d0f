package bus

import (
	"context"
	"errors"

	"github.com/causeway/causeway/internal/event"
)

// Sentinel errors of the Publisher.
var (
	// ErrSpoolFull means the spool is at its configured limit (bytes or
	// events): the broker has been away, or too slow, for too long. The
	// events of the failed call were not accepted; the caller refuses its
	// input (HTTP 503) or retries later.
	ErrSpoolFull = errors.New("bus: spool full")
	// ErrClosed means Publish was called after Close.
	ErrClosed = errors.New("bus: publisher closed")
)

// Publisher publishes events to EventsExchange through a local disk spool.
//
// Publish may be called from any number of goroutines, before, during and
// after Run; concurrent calls are grouped into one fsynced spool commit.
// Run moves the spool to the broker: it publishes spooled events in spool
// order, persistent and mandatory, with up to MaxInFlight confirms
// outstanding, and deletes each event from the spool once the broker
// confirms it. Close releases the spool file after Run has returned.
type Publisher struct {
	// fields in the implementation
}

// NewPublisher validates cfg and opens (or creates) the spool file. Events
// left in the spool by an earlier process, even one killed with SIGKILL, are
// sent again by Run.
func NewPublisher(cfg PublisherConfig, deps Deps) (*Publisher, error) {
	panic("bus: not implemented yet")
}

// Publish appends evs to the spool and returns once they are fsynced there:
// from then on they reach the broker at least once, across broker outages
// and restarts of this process. Each event is encoded with event.Encode; an
// invalid event fails the whole call (wrapping event.ErrInvalid) and nothing
// of it is spooled. It fails with ErrSpoolFull when the spool is at its
// limit and with ctx's error if ctx ends first (the events may then have
// been spooled or not: re-publishing them is a harmless duplicate).
func (p *Publisher) Publish(ctx context.Context, evs ...event.Event) error {
	panic("bus: not implemented yet")
}

// Run publishes the spool until ctx ends, reconnecting with backoff. It
// returns nil when ctx ends; events not yet confirmed stay in the spool.
func (p *Publisher) Run(ctx context.Context) error { panic("bus: not implemented yet") }

// Spooled reports the events and bytes currently in the spool (published or
// not, but not yet confirmed).
func (p *Publisher) Spooled() (events int, bytes int64) { panic("bus: not implemented yet") }

// Close closes the spool file. Call it after Run has returned; Publish then
// fails with ErrClosed.
func (p *Publisher) Close() error { panic("bus: not implemented yet") }
