// Package liveness tells a stuck part of a component from a slow, idle or
// backing-off one, for systemd's watchdog: cmd/causeway pings it only
// while every part of the component says it is alive.
//
// A part brackets each operation that can hang (a poll of a datasource, a
// publish into the spool or to the broker, a declare on a broker
// connection) with Ops.Begin and the function it returns. The part is
// stuck when one operation has been in flight for longer than its limit,
// which Limit puts well beyond the timeouts that should end the operation,
// so that only a hang trips it: an operation its own timeout failed to end
// (a driver that ignores its context, a disk that stopped answering, a
// broker connection that stopped moving). Waiting for work, or backing off
// between attempts while a datasource or the broker is away, is no
// operation and is never stuck: an outage must not make systemd restart
// every component in a loop.
//
// A part whose one operation may rightly run for longer than any limit
// (a processor loading its state) reports its progress instead
// (Progress.Step): it is stuck when it made none for longer than the
// limit.
package liveness

import (
	"sync"
	"time"
)

// MinLimit is the least limit Limit returns: an operation is stuck after
// two minutes at least, as a persister's write to the database is.
const MinLimit = 2 * time.Minute

// Limit is the stall limit of operations that the timeouts in bounds
// should end: four times the longest of them, and at least MinLimit. An
// operation that runs that long has outlived its own timeout several
// times over, so it hangs rather than being slow.
func Limit(bounds ...time.Duration) time.Duration {
	limit := MinLimit
	for _, b := range bounds {
		limit = max(limit, 4*b)
	}
	return limit
}

// Ops tracks the operations in flight of one part of a component: of one
// loop, or of many goroutines alike (the requests of a server, the jobs of
// a runner). The zero value is ready to use, and a nil *Ops tracks
// nothing. It is safe for concurrent use.
type Ops struct {
	// Now is the clock (nil: time.Now): the component's own, when it
	// injects one. Set it before the first Begin.
	Now func() time.Time

	mu      sync.Mutex
	next    uint64
	started map[uint64]time.Time // by operation; the times carry the monotonic clock
}

// Begin records that an operation began now. The returned function
// records that it ended; calling it again does nothing.
func (o *Ops) Begin() (end func()) {
	if o == nil {
		return func() {}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.started == nil {
		o.started = map[uint64]time.Time{}
	}
	o.next++
	id := o.next
	o.started[id] = o.now()
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		delete(o.started, id)
	}
}

// Longest is how long the oldest operation in flight has run; 0 when none
// is in flight.
func (o *Ops) Longest() time.Duration {
	if o == nil {
		return 0
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var longest time.Duration
	now := o.now()
	for _, t := range o.started {
		longest = max(longest, now.Sub(t))
	}
	return longest
}

func (o *Ops) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// Stuck reports whether an operation has been in flight for longer than
// limit.
func (o *Ops) Stuck(limit time.Duration) bool { return o.Longest() > limit }

// Progress tracks one long operation that reports its progress as it
// goes (a processor loading its state: a snapshot read chunk by chunk,
// then the log replayed page by page), which may rightly run for longer
// than any limit: it is stalled when it has made no progress for longer
// than the limit, however long it has run. Between operations (backing
// off after a failed one) it is never stalled. The zero value is ready to
// use, and a nil *Progress tracks nothing. It is safe for concurrent use.
type Progress struct {
	// Now is the clock (nil: time.Now). Set it before the first Begin.
	Now func() time.Time

	mu      sync.Mutex
	running uint64    // the operation running, 0 when none
	next    uint64    // the last operation begun
	last    time.Time // its beginning or its last step
}

// Begin records that an operation began now. The returned function
// records that it ended; calling it again does nothing.
func (p *Progress) Begin() (end func()) {
	if p == nil {
		return func() {}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	id := p.next
	p.running, p.last = id, p.now()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.running == id {
			p.running = 0
		}
	}
}

// Step records that the operation running made progress now.
func (p *Progress) Step() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running != 0 {
		p.last = p.now()
	}
}

// Stalled reports whether an operation runs that has made no progress
// for longer than limit.
func (p *Progress) Stalled(limit time.Duration) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running != 0 && p.now().Sub(p.last) > limit
}

func (p *Progress) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}
