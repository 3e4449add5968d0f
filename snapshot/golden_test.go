package snapshot

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/graph"
)

// TestOldSnapshotsRestore: snapshots as a release before template
// parameters wrote them (bin layout 1, evaluator state version 1; the
// files of testdata were written by commit 52be03b from nodeLog(120) and
// includesTemplates, and must never be regenerated) still restore, in
// every encoding, to the state they hold: node-v1.dump.json is that
// node's canonical dump as the writing build gave it.
func TestOldSnapshotsRestore(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "node-v1.dump.json"))
	if err != nil {
		t.Fatal(err)
	}
	nf := NodeFactory{Normalizer: graph.DefaultNormalizer()}
	ef := EngineFactory{Normalizer: graph.DefaultNormalizer()}
	for _, enc := range []string{NodeBin, NodeGob, NodeJSON, EngineBin} {
		t.Run(enc, func(t *testing.T) {
			blob, err := os.ReadFile(filepath.Join("testdata", enc+"-v1.snap"))
			if err != nil {
				t.Fatal(err)
			}
			h, body, err := Decode(blob)
			if err != nil || h.Encoding != enc {
				t.Fatalf("decode: %v (encoding %q)", err, h.Encoding)
			}
			payload, err := ReadPayload(h, body)
			if err != nil {
				t.Fatal(err)
			}
			if enc == EngineBin {
				m, err := ef.Restore(context.Background(), enc, bytes.NewReader(payload))
				if err != nil {
					t.Fatalf("restore: %v", err)
				}
				// The node's dump holds the engine's.
				if got := `{"engine":` + strings.TrimSpace(dumpOf(t, m)) + `,"subscriptions":`; !strings.HasPrefix(string(want), got) {
					t.Fatal("the restored engine dumps other than the engine of the node that wrote it")
				}
				return
			}
			m, err := nf.Restore(context.Background(), enc, bytes.NewReader(payload))
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := dumpOf(t, m); got != string(want) {
				t.Fatal("the restored node dumps other than the node that wrote it")
			}
			// Node state 1 records no told alarms, which a replay under
			// this build's semantics may hold: it is used, and said stale.
			if !m.(*Node).StaleSemantics() {
				t.Fatal("a node state 1 is not said to be of other semantics")
			}
			if enc != NodeBin {
				return
			}
			// A state without template params is written as that release
			// wrote it, byte for byte, so that it reads this one's.
			c, err := CaptureNode(m.(*Node), h.Seq, h.RecordedAt, enc)
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if err := c.Encode(&again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), payload) {
				t.Fatal("the restored node, captured again, is written other than the release before params wrote it")
			}
		})
	}
}
