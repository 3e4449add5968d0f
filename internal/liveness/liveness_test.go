package liveness

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestOpsStuckOnlyPastTheLimit: idle is never stuck; an operation in
// flight is stuck once it has run past the limit, and no longer once it
// ended; of several, the oldest counts.
func TestOpsStuckOnlyPastTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var o Ops
		const limit = time.Minute
		if o.Stuck(limit) {
			t.Fatal("idle Ops are stuck")
		}
		time.Sleep(time.Hour)
		if o.Stuck(limit) {
			t.Fatal("Ops idle for an hour are stuck")
		}
		endOld := o.Begin()
		time.Sleep(limit / 2)
		endNew := o.Begin()
		time.Sleep(limit / 2)
		if o.Stuck(limit) {
			t.Fatalf("stuck after %s, with a limit of %s", o.Longest(), limit)
		}
		time.Sleep(time.Second)
		if !o.Stuck(limit) {
			t.Fatalf("not stuck with an operation in flight for %s, past the limit of %s", o.Longest(), limit)
		}
		endOld()
		endOld() // a second call does nothing
		if o.Stuck(limit) {
			t.Fatalf("stuck once the old operation ended: the newer one has run %s only", o.Longest())
		}
		if got, want := o.Longest(), limit/2+time.Second; got != want {
			t.Errorf("Longest = %s, want %s (the newer operation)", got, want)
		}
		endNew()
		if got := o.Longest(); got != 0 {
			t.Errorf("Longest = %s with nothing in flight, want 0", got)
		}
	})
}

func TestNilOpsTrackNothing(t *testing.T) {
	var o *Ops
	end := o.Begin()
	if o.Stuck(0) {
		t.Error("nil Ops are stuck")
	}
	end()
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		bounds []time.Duration
		want   time.Duration
	}{
		{nil, MinLimit},
		{[]time.Duration{10 * time.Second}, MinLimit},
		{[]time.Duration{30 * time.Second, 10 * time.Second}, MinLimit},
		{[]time.Duration{45 * time.Second, 2 * time.Minute}, 8 * time.Minute},
	} {
		if got := Limit(tc.bounds...); got != tc.want {
			t.Errorf("Limit(%v) = %s, want %s", tc.bounds, got, tc.want)
		}
	}
}

// TestOpsOnTheComponentsClock: Ops with a clock of their own measure
// the operations in flight on it.
func TestOpsOnTheComponentsClock(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := Ops{Now: func() time.Time { return now }}
	end := o.Begin()
	now = now.Add(time.Hour)
	if got := o.Longest(); got != time.Hour {
		t.Fatalf("Longest = %s after the clock moved an hour, want 1h", got)
	}
	if !o.Stuck(time.Minute) {
		t.Fatal("not stuck with an operation in flight for an hour of the clock")
	}
	end()
	if o.Stuck(time.Minute) {
		t.Fatal("stuck once the operation ended")
	}
}

// TestProgressStalledOnlyWithoutProgress: a long operation that reports
// progress (a load reading and applying pages) is never stalled however
// long it runs, as long as each step comes within the limit; one that
// makes no progress for longer than the limit is, until its next step or
// its end. Not running is never stalled.
func TestProgressStalledOnlyWithoutProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p Progress
		const limit = time.Minute
		p.Step() // no operation: nothing to note
		time.Sleep(time.Hour)
		if p.Stalled(limit) {
			t.Fatal("stalled with no operation running")
		}
		end := p.Begin()
		for range 60 { // an hour of steady progress
			time.Sleep(limit - time.Second)
			p.Step()
			if p.Stalled(limit) {
				t.Fatal("stalled while it progresses")
			}
		}
		time.Sleep(limit)
		if p.Stalled(limit) {
			t.Fatal("stalled at the limit")
		}
		time.Sleep(time.Second)
		if !p.Stalled(limit) {
			t.Fatal("not stalled after no progress for longer than the limit")
		}
		p.Step()
		if p.Stalled(limit) {
			t.Fatal("still stalled once it progressed again")
		}
		time.Sleep(2 * limit)
		end()
		end() // a second call does nothing
		if p.Stalled(limit) {
			t.Fatal("stalled once it ended")
		}
		end = p.Begin() // a new operation starts afresh
		if p.Stalled(limit) {
			t.Fatal("a new operation is stalled at once")
		}
		end()
	})
}

func TestNilProgressTracksNothing(t *testing.T) {
	var p *Progress
	end := p.Begin()
	p.Step()
	if p.Stalled(0) {
		t.Error("nil Progress is stalled")
	}
	end()
}
