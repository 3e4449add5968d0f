package snapshot

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
)

// TestParamsSnapshotEncodings: the params of templates (and of the
// definitions they included) are part of a snapshot in every encoding: a
// node or an engine captured with them restores to the same dump and goes
// on as the node fed the whole log.
func TestParamsSnapshotEncodings(t *testing.T) {
	evs := nodeLog(200)
	at := evs[0].ObservedAt
	k := len(evs) / 2
	for i, tp := range paramsTemplates {
		tp := tp
		ev := event.Event{V: event.Version, EventID: "tp" + string(rune('a'+i)), Source: "operator",
			Kind: event.KindTemplatePut, ObservedAt: at, Template: &tp}
		evs = append(evs[:k/2], append([]event.Event{ev}, evs[k/2:]...)...)
	}
	f := NodeFactory{Normalizer: graph.DefaultNormalizer()}
	ef := EngineFactory{Normalizer: graph.DefaultNormalizer()}
	whole, _ := f.New()
	applyNode(t, whole.(*Node), evs, 0)
	want := dumpOf(t, whole)
	half, _ := f.New()
	applyNode(t, half.(*Node), evs[:k], 0)
	if len(half.(*Node).Engine.Templates()) != len(paramsTemplates) {
		t.Fatalf("loaded %d templates of %d", len(half.(*Node).Engine.Templates()), len(paramsTemplates))
	}
	for _, enc := range []string{NodeBin, NodeGob, NodeJSON, EngineBin, EngineGob, EngineJSON} {
		t.Run(enc, func(t *testing.T) {
			var c Capture
			var err error
			var m Machine
			var live Machine = half
			if enc == EngineBin || enc == EngineGob || enc == EngineJSON {
				live = half.(*Node).Engine
				c, err = CaptureEngine(half.(*Node).Engine, int64(k), time.Time{}, enc)
			} else {
				c, err = CaptureNode(half.(*Node), int64(k), time.Time{}, enc)
			}
			if err != nil {
				t.Fatal(err)
			}
			var payload bytes.Buffer
			if err := c.Encode(&payload); err != nil {
				t.Fatal(err)
			}
			if enc == NodeBin || enc == EngineBin {
				if l := payload.Bytes()[4]; l != binLayoutVersion {
					t.Fatalf("written in layout %d, want %d", l, binLayoutVersion)
				}
			}
			if live == half {
				m, err = f.Restore(context.Background(), enc, &payload)
			} else {
				m, err = ef.Restore(context.Background(), enc, &payload)
			}
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := dumpOf(t, m); got != dumpOf(t, live) {
				t.Fatal("restored dump differs from the captured one's")
			}
			if live != half {
				return
			}
			applyNode(t, m.(*Node), evs[k:], int64(k))
			if got := dumpOf(t, m); got != want {
				t.Fatal("snapshot + replay differs from a replay of the whole log")
			}
		})
	}
}
