package snapshot

import (
	"errors"
	"fmt"
	"time"
)

// Policy says when a snapshot is due: after EveryEvents events or
// EveryInterval of time since the last one, whichever comes first. A zero
// field disables that trigger. It remembers the last snapshot (Taken); it is
// not safe for concurrent use (the Writer guards its own copy).
type Policy struct {
	EveryEvents   int64         `yaml:"every_events"`
	EveryInterval time.Duration `yaml:"every_interval"`

	lastSeq int64
	lastAt  time.Time
}

// Validate reports a policy that can never fire or has negative limits.
func (p Policy) Validate() error {
	var errs []error
	if p.EveryEvents < 0 {
		errs = append(errs, fmt.Errorf("every_events: %d is negative", p.EveryEvents))
	}
	if p.EveryInterval < 0 {
		errs = append(errs, fmt.Errorf("every_interval: %s is negative", p.EveryInterval))
	}
	if p.EveryEvents == 0 && p.EveryInterval == 0 {
		errs = append(errs, errors.New("every_events, every_interval: at least one must be set"))
	}
	return errors.Join(errs...)
}

// Due reports whether a snapshot should be taken now that appliedSeq has
// been applied. Nothing is due while no event arrived since the last one.
func (p Policy) Due(appliedSeq int64, now time.Time) bool {
	if appliedSeq <= p.lastSeq {
		return false
	}
	if p.EveryEvents > 0 && appliedSeq-p.lastSeq >= p.EveryEvents {
		return true
	}
	return p.EveryInterval > 0 && now.Sub(p.lastAt) >= p.EveryInterval
}

// Taken records a snapshot of seq taken at the given time.
func (p *Policy) Taken(seq int64, at time.Time) {
	if seq >= p.lastSeq {
		p.lastSeq, p.lastAt = seq, at
	}
}

// Last returns the seq and time of the last snapshot recorded by Taken.
func (p Policy) Last() (int64, time.Time) {
	return p.lastSeq, p.lastAt
}
