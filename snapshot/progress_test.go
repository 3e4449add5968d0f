package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

// TestRestoreStepsWhileDecoding: restoring a snapshot of many entities
// reports progress (WithProgress) while it decodes, every stepEvery of
// them, not only per chunk read: a decode longer than the processor's
// load-stall limit was taken for a hung load, and the watchdog restarted
// a healthy processor.
func TestRestoreStepsWhileDecoding(t *testing.T) {
	const entities = 4 * stepEvery
	nf := NodeFactory{Normalizer: graph.DefaultNormalizer()}
	node, at := hosts(t, nf, entities)
	for _, tc := range []struct {
		encoding string
		f        Factory
	}{{NodeBin, nf}, {NodeBin, EngineFactory{Normalizer: nf.Normalizer}}} {
		c, err := CaptureNode(node, entities, at, tc.encoding)
		if err != nil {
			t.Fatal(err)
		}
		var payload bytes.Buffer
		if err := c.Encode(&payload); err != nil {
			t.Fatal(err)
		}
		var steps atomic.Int64
		ctx := WithProgress(context.Background(), func() { steps.Add(1) })
		if _, err := tc.f.Restore(ctx, tc.encoding, &payload); err != nil {
			t.Fatal(err)
		}
		if got, want := steps.Load(), int64(entities/stepEvery); got < want {
			t.Errorf("%T %s: %d progress steps restoring %d entities; want at least %d", tc.f, tc.encoding, got, entities, want)
		}
	}
}

// hosts is a node holding n entities, and the time of their records.
func hosts(t testing.TB, nf NodeFactory, n int) (*Node, time.Time) {
	t.Helper()
	m, err := nf.New()
	if err != nil {
		t.Fatal(err)
	}
	node := m.(*Node)
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("host-%d", i)
		ev := event.Event{V: event.Version, EventID: "e" + id, Source: "test", Kind: event.KindEntityUpsert, ObservedAt: at,
			Entity: &event.Entity{Category: "RESOURCE", Type: "nova.host", ID: id, Name: id}}
		if err := node.Apply(event.Record{Seq: int64(i) + 1, RecordedAt: at, Event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	return node, at
}

// BenchmarkDecodeProgress: the bin decode of 100,000 entities, with no
// progress step and with one (an atomic add, as the processor's is).
func BenchmarkDecodeProgress(b *testing.B) {
	const entities = 100000
	node, at := hosts(b, NodeFactory{Normalizer: graph.DefaultNormalizer()}, entities)
	c, err := CaptureNode(node, entities, at, NodeBin)
	if err != nil {
		b.Fatal(err)
	}
	var payload bytes.Buffer
	if err := c.Encode(&payload); err != nil {
		b.Fatal(err)
	}
	var steps atomic.Int64
	for _, bc := range []struct {
		name string
		step func()
	}{{"none", nil}, {"step", func() { steps.Add(1) }}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := readNodeBin(bytes.NewReader(payload.Bytes()), bc.step); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
