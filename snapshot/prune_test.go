package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
)

// insertBlob stores a snapshot whose blob is header h followed by body,
// with a header CRC and body checksum that verify: what a writer with a
// bug in its payload would store.
func (g *rig) insertBlob(t *testing.T, h Header, body []byte) Meta {
	t.Helper()
	h.Version, h.BodySize, h.Checksum = FormatVersion, uint64(len(body)), sha256.Sum256(body)
	blob := make([]byte, headerLen(h.Encoding), headerLen(h.Encoding)+len(body))
	h.marshal(blob)
	blob = append(blob, body...)
	m, err := NewStore(g.db, nil).insert(context.Background(), FenceFunc(store.CheckFence), DefaultFenceName, 1, h, sql.Null[int]{}, blob, func(int64) int { return 64 }, g.clock)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPruneAnchorMustInflate: retention's anchor is the one snapshot it
// keeps below the boundary, the base of every moment after it, so it
// must be one that reconstruction can read; one whose checksum verifies
// but whose payload does not inflate to its announced size (a writer's
// bug) is passed over as Reconstruct passes it over, and the older ones
// stay.
func TestPruneAnchorMustInflate(t *testing.T) {
	blob, _ := testBlob(t, bytes.Repeat([]byte("state "), 500))
	zbody := blob[headerLen("test-enc"):]
	for name, tc := range map[string]struct {
		raw  uint64
		body []byte
	}{
		"not zstd":       {10, []byte("this is not a zstd stream at all")},
		"raw size lie":   {3001, zbody},
		"truncated zstd": {3000, zbody[:len(zbody)-3]},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			g := newRig(t, Config{})
			// Ten batches of 10, one a minute: batch k recorded at t0 + k min.
			g.recs = g.appendEvents(t, tickEvents(1, 100, nil), 10, time.Minute)
			t0 := g.recs[0].RecordedAt
			g.snapshotAt(t, 1, 20)
			good := g.snapshotAt(t, 1, 30)
			g.insertBlob(t, Header{Seq: 40, RecordedAt: g.recs[39].RecordedAt, Encoding: "kv-json", RawSize: tc.raw}, tc.body)
			// Reconstruct skips it as corrupt.
			res, err := g.r.Reconstruct(ctx, AtSeq(40))
			if err != nil || res.SnapshotSeq != 30 || res.Skipped != 1 {
				t.Fatalf("reconstruct at 40: from %d, %d skipped, err %v; want from 30, 1 skipped", res.SnapshotSeq, res.Skipped, err)
			}
			// Retention must not take it for its anchor.
			pr, err := NewStore(g.db, nil).Prune(ctx, t0.Add(5*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if pr.AnchorSeq != 30 {
				t.Errorf("prune: anchor %d; want 30 (the snapshot at 40 does not inflate)", pr.AnchorSeq)
			}
			ms, err := NewStore(g.db, nil).List(ctx, 1<<62)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, m := range ms {
				seqs = append(seqs, m.Seq)
			}
			if got := fmt.Sprint(seqs); got != "[40 30]" {
				t.Errorf("left %s; want [40 30]", got)
			}
			g.check(t, AtTime(t0.Add(5*time.Minute)), 60, good.Meta.Seq)
		})
	}
}

// TestEveryStoredFailureIsSkipped: each way a stored snapshot can fail to
// verify makes Reconstruct fall back to the older one, and retention keep
// the older one as its anchor.
func TestEveryStoredFailureIsSkipped(t *testing.T) {
	for name, damage := range map[string]string{
		"truncated chunk":    "UPDATE snapshot_chunks SET data = LEFT(data, LENGTH(data) - 1) WHERE snapshot_id = ? AND idx = 1",
		"missing chunk":      "DELETE FROM snapshot_chunks WHERE snapshot_id = ? AND idx = 2",
		"missing last chunk": "DELETE FROM snapshot_chunks WHERE snapshot_id = ? ORDER BY idx DESC LIMIT 1",
		"row counts more":    "UPDATE snapshots SET chunks = chunks + 1 WHERE id = ?",
		"row counts fewer":   "UPDATE snapshots SET chunks = chunks - 1 WHERE id = ?",
		"extra chunk":        "INSERT INTO snapshot_chunks (snapshot_id, idx, data) SELECT id, chunks, 'x' FROM snapshots WHERE id = ?",
		"chunks renumbered":  "UPDATE snapshot_chunks SET idx = idx + 100 WHERE snapshot_id = ? AND idx = 0",
		"row checksum":       "UPDATE snapshots SET checksum = REVERSE(checksum) WHERE id = ?",
		"row size":           "UPDATE snapshots SET size = size + 1 WHERE id = ?",
		"body byte":          "UPDATE snapshot_chunks SET data = CONCAT('Y', SUBSTR(data, 2)) WHERE snapshot_id = ? AND idx = 2",
		"header version":     "UPDATE snapshot_chunks SET data = INSERT(data, 9, 2, UNHEX('0002')) WHERE snapshot_id = ? AND idx = 0",
		"no chunk at all":    "DELETE FROM snapshot_chunks WHERE snapshot_id = ?",
		"chunk emptied":      "UPDATE snapshot_chunks SET data = '' WHERE snapshot_id = ? AND idx = 0",
		"chunk reversed":     "UPDATE snapshot_chunks SET data = REVERSE(data) WHERE snapshot_id = ? AND idx = 1",
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			g := newRig(t, Config{ChunkSize: 64})
			g.recs = g.appendEvents(t, tickEvents(1, 100, nil), 10, time.Minute)
			t0 := g.recs[0].RecordedAt
			g.snapshotAt(t, 1, 30)
			bad := g.snapshotAt(t, 1, 40)
			if bad.Meta.Chunks < 4 {
				t.Fatalf("%d chunks; want 4 or more", bad.Meta.Chunks)
			}
			if _, err := g.db.ExecContext(ctx, damage, bad.Meta.ID); err != nil {
				t.Fatal(err)
			}
			res := g.check(t, AtSeq(45), 45, 30)
			if res.Skipped != 1 {
				t.Errorf("skipped %d; want 1", res.Skipped)
			}
			pr, err := NewStore(g.db, nil).Prune(ctx, t0.Add(5*time.Minute))
			if err != nil || pr.AnchorSeq != 30 {
				t.Errorf("prune: anchor %d, err %v; want anchor 30", pr.AnchorSeq, err)
			}
		})
	}
}
