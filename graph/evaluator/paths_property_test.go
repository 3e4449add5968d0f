package evaluator

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"testing"
)

// TestPropertyApplyPathsAgree checks, after every record of random logs,
// that the canonical dump is the same whichever way the engine applied
// them: Apply (the replay's path, whose changes point into space the graph
// reuses), ApplyResult (the live path, whose changes are the caller's),
// and Apply after a Restore at a random midpoint.
func TestPropertyApplyPathsAgree(t *testing.T) {
	n := 600
	if testing.Short() {
		n = 250
	}
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (replay with CAUSEWAY_EVALUATOR_SEED=%d)", seed, seed)
			recs := genLog(t, seed, n)
			mid := rand.New(rand.NewSource(seed + 1)).Intn(len(recs))
			scratch, live := New(Config{}, nil), New(Config{}, nil)
			var restored *Engine
			for i, rec := range recs {
				errA := scratch.Apply(rec)
				_, errB := live.ApplyResult(rec)
				if (errA == nil) != (errB == nil) || (errA != nil && !errors.Is(errA, ErrInvalidTemplate)) {
					t.Fatalf("seq %d (%s): Apply: %v; ApplyResult: %v", rec.Seq, rec.Event.Kind, errA, errB)
				}
				if restored != nil {
					if err := restored.Apply(rec); (err == nil) != (errA == nil) {
						t.Fatalf("seq %d (%s): restored Apply: %v; Apply: %v", rec.Seq, rec.Event.Kind, err, errA)
					}
				}
				da, db := dump(t, scratch), dump(t, live)
				if !bytes.Equal(da, db) {
					t.Fatalf("after seq %d (%s) Apply and ApplyResult differ:\n%s", rec.Seq, rec.Event.Kind, firstDiff(db, da))
				}
				if restored != nil {
					if dr := dump(t, restored); !bytes.Equal(da, dr) {
						t.Fatalf("after seq %d (%s) the engine restored at %d differs:\n%s", rec.Seq, rec.Event.Kind, mid, firstDiff(da, dr))
					}
				}
				if i == mid {
					r, err := Restore(scratch.State(), Config{}, nil)
					if err != nil {
						t.Fatalf("restore after seq %d: %v", rec.Seq, err)
					}
					restored = r
				}
			}
		})
	}
}
