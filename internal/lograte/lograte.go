// Package lograte keeps the log line of a lasting condition met over and
// over (a sender whose clock is ahead, met by each of its requests) from
// becoming one line an occurrence: the first occurrence is logged at once,
// and the next ones at most once an interval, each line saying how many
// occurrences it stands for. Metrics still count every occurrence.
package lograte

import (
	"sync"
	"time"
)

// Limiter says when a line is due. The zero value logs at most once a
// minute; it is safe for concurrent use.
type Limiter struct {
	// Every is the least time between two lines (default a minute).
	Every time.Duration

	mu     sync.Mutex
	logged bool
	last   time.Time
	since  int64 // occurrences since the last line
}

// DefaultEvery is the interval of a Limiter without one.
const DefaultEvery = time.Minute

// Allow counts n occurrences met at now. When a line is due, it returns
// the occurrences it stands for (these n, and those since the last line)
// and true; otherwise 0 and false.
func (l *Limiter) Allow(now time.Time, n int64) (int64, bool) {
	every := l.Every
	if every <= 0 {
		every = DefaultEvery
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since += n
	if l.logged && now.Sub(l.last) < every && now.Sub(l.last) >= 0 {
		return 0, false
	}
	count := l.since
	l.logged, l.last, l.since = true, now, 0
	return count, true
}
