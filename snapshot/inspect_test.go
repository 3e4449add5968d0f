package snapshot

import (
	"context"
	"database/sql"
	"encoding/gob"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/store"
)

// TestPruneStale writes snapshots as an older build (its semantics in the
// payload, none in the row), as a build that records them in the row, and
// as this build, plus a corrupt one; it checks what the rows and Inspect
// say, that PruneStale refuses without the whole log, and that it deletes
// the stale ones and only those, after which a reconstruction is current.
func TestPruneStale(t *testing.T) {
	ctx := context.Background()
	norm, err := graph.NewNormalizer(nil)
	if err != nil {
		t.Fatal(err)
	}
	td := newTestDB(t)
	recs := td.appendEvents(t, randomLog(rand.New(rand.NewPCG(7, 7)), 500), 50, time.Second)
	live := evaluator.New(evaluator.Config{}, norm)
	w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}}, WriterDeps{DB: td.db, Fence: FenceFunc(store.CheckFence)})
	if err != nil {
		t.Fatal(err)
	}
	applied := int64(0)
	advance := func(seq int64) {
		for ; applied < seq; applied++ {
			_ = live.Apply(recs[applied])
		}
	}
	// take writes the live state at seq with the given semantics in the
	// payload, recorded in the row when inRow.
	take := func(seq int64, semantics int, inRow bool) Meta {
		t.Helper()
		advance(seq)
		res, err := w.Take(ctx, 1, func() (Capture, error) {
			s := live.State()
			s.Semantics = semantics
			c := Capture{Seq: seq, Encoding: EngineGob, Encode: func(w io.Writer) error { return gob.NewEncoder(w).Encode(&s) }}
			if inRow {
				c.Semantics = sql.Null[int]{V: semantics, Valid: true}
			}
			if seq > 0 {
				c.RecordedAt = recs[seq-1].RecordedAt
			}
			return c, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Meta
	}
	old := evaluator.Semantics - 1
	take(0, old, false)   // the empty state: never stale
	take(100, old, false) // an older build's, before the column
	take(200, old, true)  // an older build's, in the row
	advance(300)          // this build's, through CaptureEngine
	cur, err := w.Take(ctx, 1, func() (Capture, error) { return CaptureEngine(live, 300, recs[299].RecordedAt, EngineGob) })
	if err != nil {
		t.Fatal(err)
	}
	bad := take(400, old, true) // stale, but corrupt: skipped anyway
	if _, err := td.db.ExecContext(ctx, "UPDATE snapshot_chunks SET data = REVERSE(data) WHERE snapshot_id = ?", bad.ID); err != nil {
		t.Fatal(err)
	}
	if !cur.Meta.Semantics.Valid || cur.Meta.Semantics.V != evaluator.Semantics {
		t.Fatalf("CaptureEngine's row semantics = %+v; want %d", cur.Meta.Semantics, evaluator.Semantics)
	}

	rc, err := NewReconstructor(ReconstructConfig{}, ReconstructDeps{DB: td.db, Events: td.log, Factory: EngineFactory{Normalizer: norm}})
	if err != nil {
		t.Fatal(err)
	}
	metas, err := NewStore(td.db, nil).List(ctx, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[int64]Meta{}
	for _, m := range metas {
		bySeq[m.Seq] = m
	}
	for seq, want := range map[int64]struct{ valid, stale bool }{0: {false, false}, 100: {false, false}, 200: {true, true}, 300: {true, false}, 400: {true, true}} {
		m := bySeq[seq]
		if m.Semantics.Valid != want.valid || m.Stale() != want.stale {
			t.Errorf("row of seq %d: semantics %+v, stale %v; want recorded %v, stale %v", seq, m.Semantics, m.Stale(), want.valid, want.stale)
		}
	}
	in, err := rc.Inspect(ctx, bySeq[100])
	if err != nil || in.Problem != "" || !in.Semantics.Valid || in.Semantics.V != old || !in.Stale() {
		t.Fatalf("Inspect(seq 100) = problem %q, semantics %+v, stale %v, %v; want usable, semantics %d, stale", in.Problem, in.Semantics, in.Stale(), err, old)
	}
	if in, err := rc.Inspect(ctx, bySeq[400]); err != nil || in.Problem != "corrupt" {
		t.Fatalf("Inspect(corrupt) = problem %q, %v; want corrupt", in.Problem, err)
	}

	staleSeqs := func(ms []Meta) []int64 {
		var out []int64
		for _, m := range ms {
			out = append(out, m.Seq)
		}
		return out
	}
	for _, dry := range []bool{true, false} {
		if _, err := rc.PruneStale(ctx, 2, dry); !errors.Is(err, ErrLogNotWhole) {
			t.Fatalf("PruneStale with the log from seq 2 (dry run %v): %v; want ErrLogNotWhole", dry, err)
		}
	}
	res, err := rc.PruneStale(ctx, 1, true)
	if err != nil || res.Deleted != 0 || len(res.Unusable) != 0 || !slices.Equal(staleSeqs(res.Stale), []int64{400, 200, 100}) {
		t.Fatalf("dry run: stale %v, unusable %d, deleted %d, %v; want 400, 200, 100 and nothing deleted", staleSeqs(res.Stale), len(res.Unusable), res.Deleted, err)
	}
	if after, _ := NewStore(td.db, nil).List(ctx, math.MaxInt64); len(after) != len(metas) {
		t.Fatalf("the dry run deleted snapshots: %d left of %d", len(after), len(metas))
	}
	res, err = rc.PruneStale(ctx, 1, false)
	if err != nil || res.Deleted != 3 {
		t.Fatalf("PruneStale: deleted %d, %v; want 3", res.Deleted, err)
	}
	left, err := NewStore(td.db, nil).List(ctx, math.MaxInt64)
	if err != nil || !slices.Equal(staleSeqs(left), []int64{300, 0}) {
		t.Fatalf("left %v, %v; want 300 and 0", staleSeqs(left), err)
	}
	var n int
	if err := td.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM snapshot_chunks WHERE snapshot_id NOT IN (SELECT id FROM snapshots)").Scan(&n); err != nil || n != 0 {
		t.Fatalf("chunks of deleted snapshots left: %d, %v", n, err)
	}
	// Below the current snapshot the state is now replayed from the start.
	got, err := rc.Reconstruct(ctx, AtSeq(250))
	if err != nil || got.StaleSemantics || got.SnapshotSeq != 0 || got.Replayed != 250 {
		t.Fatalf("Reconstruct(250) after the prune: %+v, %v; want a current full replay", got, err)
	}
	if again, err := rc.PruneStale(ctx, 1, false); err != nil || len(again.Stale) != 0 {
		t.Fatalf("second PruneStale: %d stale, %v; want none", len(again.Stale), err)
	}
}
