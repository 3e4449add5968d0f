package snapshot

import (
	"context"
	"errors"
	"time"
)

// Capturer captures a machine that nothing else is changing (a shadow's)
// for a snapshot at seq.
type Capturer interface {
	Capture(m Machine, seq int64, recordedAt time.Time) (Capture, error)
}

// Shadow is a second machine, private to the snapshot writer, that follows
// the log from the database: Writer.TakeFromLog snapshots it instead of the
// live machine, so event processing never waits for a snapshot. It is not
// safe for concurrent use; the Writer runs one TakeFromLog at a time.
type Shadow struct {
	r   *Reconstructor
	cap Capturer
	cur *Reconstruction // nil until the first capture
}

// NewShadow returns a shadow that is reconstructed (newest snapshot, then
// the log) on first use and then advanced along the log.
func NewShadow(r *Reconstructor, c Capturer) *Shadow {
	return &Shadow{r: r, cap: c}
}

// Seq returns the seq the shadow is at (0 before its first use).
func (s *Shadow) Seq() int64 {
	if s.cur == nil {
		return 0
	}
	return s.cur.Seq
}

func (s *Shadow) capture(ctx context.Context, seq int64) (Capture, error) {
	if s.cur != nil && s.cur.Seq <= seq {
		err := s.r.Advance(ctx, s.cur, AtSeq(seq))
		if err == nil {
			return s.cap.Capture(s.cur.Machine, s.cur.Seq, s.cur.RecordedAt)
		}
		if !errors.Is(err, ErrGap) {
			return Capture{}, err
		}
		// The log no longer follows the shadow: retention went past it
		// (its leader could not write snapshots for that long). It starts
		// again from a snapshot, as on first use.
		s.cur = nil
	}
	res, err := s.r.Reconstruct(ctx, AtSeq(seq))
	if err != nil {
		return Capture{}, err
	}
	s.cur = &res
	return s.cap.Capture(s.cur.Machine, s.cur.Seq, s.cur.RecordedAt)
}
