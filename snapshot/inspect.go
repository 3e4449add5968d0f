package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/store"
)

// Stale reports whether the snapshot is known to hold a state computed
// under other semantics than this build's (evaluator.Semantics). A snapshot
// at seq 0 is never stale: the empty state is the same under any
// semantics. A snapshot whose row does not record its semantics is not
// known to be stale; Inspect finds out.
func (m Meta) Stale() bool {
	return m.Seq > 0 && m.Semantics.Valid && m.Semantics.V != evaluator.Semantics
}

// Inspection is what loading and restoring one snapshot showed.
type Inspection struct {
	Meta
	// Problem is why Reconstruct would skip the snapshot: "corrupt",
	// "version", "encoding" or "restore"; empty when it is usable.
	Problem string
	// Err is the error behind Problem.
	Err error
}

// Inspect loads one snapshot, verifies it and restores it with the
// Reconstructor's factory, as Reconstruct would. A snapshot whose row does
// not record its semantics gets them from the restored state
// (SemanticsAware). The error is a database failure; an unusable snapshot
// is reported in the Inspection.
func (r *Reconstructor) Inspect(ctx context.Context, m Meta) (Inspection, error) {
	in := Inspection{Meta: m}
	mach, err := r.restore(ctx, m)
	if err != nil {
		if in.Problem = skipReason(err); in.Problem == "" {
			return Inspection{}, fmt.Errorf("inspect snapshot %d: %w", m.ID, err)
		}
		in.Err = err
		return in, nil
	}
	if sa, ok := mach.(SemanticsAware); ok && !in.Semantics.Valid {
		in.Semantics = sql.Null[int]{V: sa.StateSemantics(), Valid: true}
	}
	return in, nil
}

// ErrLogNotWhole refuses PruneStale: without the log from seq 1, the moments
// that only stale snapshots still reach could no longer be reconstructed.
var ErrLogNotWhole = errors.New("the event log no longer starts at seq 1")

// RetentionLog is the event log as PruneStale needs it (store.Log).
type RetentionLog interface {
	// First returns the first seq the log holds (0 when it is empty).
	First(ctx context.Context) (int64, error)
	// LockRetention takes the lock retention holds while it prunes
	// snapshots and drops events, waiting at most wait.
	LockRetention(ctx context.Context, wait time.Duration) (store.RetentionLease, error)
}

// StalePrune is what PruneStale found, and deleted unless it was a dry run.
type StalePrune struct {
	// Stale are the snapshots of other semantics, newest first.
	Stale []Meta
	// Unusable are snapshots whose rows do not record their semantics and
	// that Reconstruct skips anyway: left in place. (A stale row's snapshot
	// is deleted whatever its payload.)
	Unusable []Inspection
	// Deleted counts the stale snapshots removed.
	Deleted int
}

// pruneLockWait bounds PruneStale's wait for retention's lock.
const pruneLockWait = time.Minute

// PruneStale finds the snapshots holding a state of other semantics than
// this build's and, unless dryRun, deletes them, so that the processors,
// started again, replay the log under this build's semantics (doc.go).
// Snapshots whose rows do not record their semantics are inspected.
//
// It holds retention's lock from reading where the log starts to the last
// deletion, so that retention cannot drop the start of the log in between.
// Unless the log starts at seq 1, it refuses (dry run included) with
// ErrLogNotWhole when there is anything to delete: a replay could not reach
// back to the start. The processors must be stopped: a running leader
// would go on writing snapshots of its stale state. beforeDelete, when
// set, runs under the lock right before the first deletion (the CLI checks
// there that no processor has started meanwhile); its error stops it.
func (r *Reconstructor) PruneStale(ctx context.Context, log RetentionLog, dryRun bool, beforeDelete func(context.Context) error) (StalePrune, error) {
	var lease store.RetentionLease
	if !dryRun {
		var err error
		if lease, err = log.LockRetention(ctx, pruneLockWait); err != nil {
			return StalePrune{}, fmt.Errorf("prune stale snapshots: %w", err)
		}
		defer lease.Release()
	}
	first, err := log.First(ctx)
	if err != nil {
		return StalePrune{}, fmt.Errorf("prune stale snapshots: %w", err)
	}
	all, err := r.store.List(ctx, math.MaxInt64)
	if err != nil {
		return StalePrune{}, fmt.Errorf("prune stale snapshots: %w", err)
	}
	var res StalePrune
	for _, m := range all {
		if !m.Semantics.Valid {
			in, err := r.Inspect(ctx, m)
			if err != nil {
				return res, fmt.Errorf("prune stale snapshots: %w", err)
			}
			if in.Problem != "" {
				res.Unusable = append(res.Unusable, in)
				continue
			}
			m = in.Meta
		}
		if m.Stale() {
			res.Stale = append(res.Stale, m)
		}
	}
	if len(res.Stale) == 0 {
		return res, nil
	}
	if first != 1 {
		return res, fmt.Errorf("prune stale snapshots: %w (first seq %d): keep them; the states they give stay reported stale", ErrLogNotWhole, first)
	}
	if dryRun {
		return res, nil
	}
	if beforeDelete != nil {
		if err := beforeDelete(ctx); err != nil {
			return res, fmt.Errorf("prune stale snapshots: %w", err)
		}
	}
	for _, m := range res.Stale {
		// The lock goes with its session: should that have dropped,
		// retention may be dropping the log's start meanwhile.
		if err := lease.Held(ctx); err != nil {
			return res, fmt.Errorf("prune stale snapshots (%d of %d deleted): %w", res.Deleted, len(res.Stale), err)
		}
		if err := r.store.delete(ctx, m.ID); err != nil {
			return res, fmt.Errorf("prune stale snapshots (%d of %d deleted): %w", res.Deleted, len(res.Stale), err)
		}
		res.Deleted++
		r.log.Info("stale snapshot deleted", "snapshot_id", m.ID, "seq", m.Seq, "semantics", m.Semantics.V, "current", evaluator.Semantics)
	}
	return res, nil
}
