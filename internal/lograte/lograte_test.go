package lograte

import (
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var l Limiter
	type step struct {
		at    time.Duration
		n     int64
		count int64
		ok    bool
	}
	for i, s := range []step{
		{0, 3, 3, true},            // the first at once
		{time.Second, 2, 0, false}, // within the minute
		{59 * time.Second, 1, 0, false},
		{time.Minute, 4, 7, true}, // the count since the last line
		{time.Minute + 1, 1, 0, false},
		{-time.Hour, 1, 2, true}, // a clock stepped back logs rather than stay silent
	} {
		count, ok := l.Allow(t0.Add(s.at), s.n)
		if count != s.count || ok != s.ok {
			t.Errorf("step %d: Allow = %d, %t; want %d, %t", i, count, ok, s.count, s.ok)
		}
	}
}
