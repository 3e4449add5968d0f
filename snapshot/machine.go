package snapshot

import (
	"context"
	"database/sql"
	"io"
	"time"

	"github.com/causeway/causeway/internal/event"
)

// Machine is the deterministic state machine that snapshots capture: the
// processor's graph and evaluator. Apply must be a pure function of the
// records applied so far (invariant 3 of DESIGN.md), also when it refuses a
// record: an Apply error is logged and replay goes on, as live processing
// does. Dump writes the canonical dump that two equal states share byte for
// byte.
type Machine interface {
	Apply(event.Record) error
	Dump(io.Writer) error
}

// SemanticsAware is implemented by machines whose state records the apply
// semantics it was computed under (evaluator.Semantics). StaleSemantics
// reports a state computed by a build that applies the same log
// differently: Reconstruct uses a snapshot of such a state like any other,
// and says so (Reconstruction.StaleSemantics).
type SemanticsAware interface {
	StaleSemantics() bool
	// StateSemantics is the semantics number the state was computed
	// under (0: older than the number).
	StateSemantics() int
}

// Factory makes the machines Reconstruct fills: an empty one (the state
// before seq 1) or one restored from a snapshot payload.
type Factory interface {
	New() (Machine, error)
	// Restore builds a machine from a payload of the named encoding. It
	// returns an error wrapping ErrUnknownEncoding for an encoding it does
	// not read; any other error means the payload is bad. It reports
	// its progress to ctx's step (WithProgress), if any, as it goes.
	Restore(ctx context.Context, encoding string, payload io.Reader) (Machine, error)
}

// Capture is a machine's state copied out of the live machine, with the
// place in the log it reflects. The processor builds it under its lock (the
// pause); Encode then runs outside the lock, concurrently with Apply, so it
// must read only the copy, never the live machine.
type Capture struct {
	// Seq is the last seq applied to the captured state; RecordedAt that
	// record's recorded_at.
	Seq        int64
	RecordedAt time.Time
	// Encoding names the payload encoding, for Factory.Restore.
	Encoding string
	// Semantics is the apply semantics of the captured state, recorded in
	// the snapshot's row (Meta.Semantics); not valid for a machine that
	// records none.
	Semantics sql.Null[int]
	// Encode writes the payload.
	Encode func(io.Writer) error
}
