// Package graphtest applies events to a graph as the log would, for the
// tests of the packages that produce those events.
package graphtest

import (
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

// Log numbers the events it applies as consecutive records of a log.
type Log struct {
	G *graph.Graph
	// Start is the recorded_at of seq 0; record n is recorded n seconds
	// after it.
	Start time.Time
	// Seq is the last seq applied.
	Seq int64
}

// New returns a Log over an empty graph with the default normaliser.
func New(start time.Time) *Log { return &Log{G: graph.New(nil), Start: start} }

// Apply applies evs as the next records; an error fails t.
func (l *Log) Apply(t testing.TB, evs ...event.Event) {
	t.Helper()
	for _, ev := range evs {
		l.Seq++
		rec := event.Record{Seq: l.Seq, RecordedAt: l.Start.Add(time.Duration(l.Seq) * time.Second), Event: ev}
		if _, err := l.G.Apply(rec); err != nil {
			t.Fatalf("apply seq %d (%s): %v", l.Seq, ev.Kind, err)
		}
	}
}
