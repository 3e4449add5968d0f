package snapshot

import (
	"errors"
	"fmt"
	"time"
)

// Policy says when a snapshot is due: after EveryEvents events,
// EveryChanges graph changes or EveryInterval of time since the last one,
// whichever comes first. A zero field disables that trigger.
//
// EveryChanges bounds the work of replaying from a snapshot, which is what
// a reconstruction or a historical query pays at the worst point between
// two snapshots: an event that raises an alarm on a host deduces alarms on
// all its instances and costs tens of times the replay of a plain update.
// The changes are counted by the machine that applies the log (a counter
// it only shows, see Due), so the trigger adapts to the event mix: light
// logs are snapshotted by EveryEvents, alarm storms sooner.
//
// It remembers the last snapshot (Taken); it is not safe for concurrent
// use (the Writer guards its own copy).
type Policy struct {
	EveryEvents   int64         `yaml:"every_events"`
	EveryChanges  int64         `yaml:"every_changes"`
	EveryInterval time.Duration `yaml:"every_interval"`

	lastSeq int64
	lastAt  time.Time
	// baseChanges is the change counter at the last snapshot, when known
	// (hasBase); seen is the counter Due was last shown (hasSeen).
	baseChanges, seen int64
	hasBase, hasSeen  bool
}

// Validate reports a policy that can never fire or has negative limits.
func (p Policy) Validate() error {
	var errs []error
	if p.EveryEvents < 0 {
		errs = append(errs, fmt.Errorf("every_events: %d is negative", p.EveryEvents))
	}
	if p.EveryChanges < 0 {
		errs = append(errs, fmt.Errorf("every_changes: %d is negative", p.EveryChanges))
	}
	if p.EveryInterval < 0 {
		errs = append(errs, fmt.Errorf("every_interval: %s is negative", p.EveryInterval))
	}
	if p.EveryEvents == 0 && p.EveryChanges == 0 && p.EveryInterval == 0 {
		errs = append(errs, errors.New("every_events, every_changes, every_interval: at least one must be set"))
	}
	return errors.Join(errs...)
}

// Due reports whether a snapshot should be taken now that appliedSeq has
// been applied. changes is the applying machine's counter of graph changes
// (it only ever grows while the machine lives). The counter at the last
// snapshot is the one shown to Due just before Taken; when it is unknown
// (a leader resuming from a snapshot it did not take, or a machine
// reloaded whose counter started again) counting starts at this call, so
// the changes trigger may fire later than it would have, never earlier.
// Nothing is due while no event arrived since the last snapshot.
func (p *Policy) Due(appliedSeq, changes int64, now time.Time) bool {
	p.seen, p.hasSeen = changes, true
	if !p.hasBase || changes < p.baseChanges {
		p.baseChanges, p.hasBase = changes, true
	}
	if appliedSeq <= p.lastSeq {
		return false
	}
	if p.EveryEvents > 0 && appliedSeq-p.lastSeq >= p.EveryEvents {
		return true
	}
	if p.EveryChanges > 0 && changes-p.baseChanges >= p.EveryChanges {
		return true
	}
	return p.EveryInterval > 0 && now.Sub(p.lastAt) >= p.EveryInterval
}

// Taken records a snapshot of seq taken at the given time; the change
// counter at it is the one last shown to Due (unknown if none was).
func (p *Policy) Taken(seq int64, at time.Time) {
	if seq >= p.lastSeq {
		p.lastSeq, p.lastAt = seq, at
		p.baseChanges, p.hasBase = p.seen, p.hasSeen
	}
}

// Resumed records the newest snapshot found stored, taken at the given
// time (a leader resuming, Writer.Resume). A snapshot newer than the last
// one recorded was taken by another leader: the change counter at it is
// unknown here — the one last shown to Due is from an earlier leadership
// of this node, and the machine went on changing since — so counting
// starts at the next Due.
func (p *Policy) Resumed(seq int64, at time.Time) {
	if seq > p.lastSeq {
		p.hasBase = false
	}
	if seq >= p.lastSeq {
		p.lastSeq, p.lastAt = seq, at
	}
}

// Last returns the seq and time of the last snapshot recorded by Taken.
func (p Policy) Last() (int64, time.Time) {
	return p.lastSeq, p.lastAt
}
