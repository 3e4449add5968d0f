package drivers

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/liveness"
)

// hangingDriver's GetAll ignores its context: it returns only once
// release is closed, as a driver whose read hangs would never.
type hangingDriver struct {
	name    string
	release chan struct{}
}

func (d *hangingDriver) Name() string { return d.name }

func (d *hangingDriver) GetAll(context.Context) ([]event.Entity, error) {
	<-d.release
	return nil, nil
}

// hangingPublisher's Publish returns only once release is closed or ctx
// ends, as a Publish into a spool whose disk stopped answering would.
type hangingPublisher struct{ release chan struct{} }

func (p *hangingPublisher) Publish(ctx context.Context, _ ...event.Event) error {
	select {
	case <-p.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestRunnerNotAliveWhileAReadHangs: a job whose read of the source has
// run past the stall limit (four times pull_timeout, at least two
// minutes) is stuck; short of the limit, or once the read returned, it is
// alive.
func TestRunnerNotAliveWhileAReadHangs(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pullTimeout time.Duration
		limit       time.Duration
	}{
		{"default pull_timeout", 0, liveness.MinLimit},
		{"long pull_timeout", 5 * time.Minute, 20 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				drv := &hangingDriver{name: "am", release: make(chan struct{})}
				release := sync.OnceFunc(func() { close(drv.release) })
				r, stopRunner := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Hour, PullTimeout: tc.pullTimeout}}}, Deps{Publisher: &fakePublisher{}})
				stop := sync.OnceValue(stopRunner)
				defer func() { _ = stop() }()
				defer release() // before stop: the read ignores its context
				synctest.Wait() // the sync.begin is published; the read hangs
				if !r.Alive() {
					t.Fatal("not alive as the read began")
				}
				time.Sleep(tc.limit - time.Second)
				if !r.Alive() {
					t.Fatalf("not alive with the read hung for %s, short of the limit %s", tc.limit-time.Second, tc.limit)
				}
				time.Sleep(2 * time.Second)
				if r.Alive() {
					t.Fatalf("alive with the read hung for %s, past the limit %s", tc.limit+time.Second, tc.limit)
				}
				release()
				synctest.Wait()
				if !r.Alive() {
					t.Error("not alive once the read returned")
				}
				if err := stop(); err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		})
	}
}

// TestRunnerNotAliveWhileAPublishHangs: a Publish that has run past the
// stall limit makes the job stuck.
func TestRunnerNotAliveWhileAPublishHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &hangingPublisher{release: make(chan struct{})}
		release := sync.OnceFunc(func() { close(pub.release) })
		defer release()
		drv := &fakeDriver{name: "am", ents: []event.Entity{host("c1", "up")}}
		r, stopRunner := startRunner(t, []Job{{Driver: drv, Schedule: Schedule{Interval: time.Hour}}}, Deps{Publisher: pub})
		stop := sync.OnceValue(stopRunner)
		defer func() { _ = stop() }()
		time.Sleep(liveness.MinLimit - time.Second)
		if !r.Alive() {
			t.Fatal("not alive short of the limit")
		}
		time.Sleep(2 * time.Second)
		if r.Alive() {
			t.Fatal("alive with a Publish hung past the limit")
		}
		release()
		synctest.Wait()
		if !r.Alive() {
			t.Error("not alive once the Publish returned")
		}
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestRunnerAliveWhileIdleOrBackingOff: waiting hours for the next
// interval is not stuck, and neither is a job retrying with backoff, for
// an hour, a source that fails and a spool that is full (the broker has
// been away too long): a watchdog restart would help neither.
func TestRunnerAliveWhileIdleOrBackingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idle := &fakeDriver{name: "idle", ents: []event.Entity{host("c1", "up")}}
		failing := &fakeDriver{name: "failing", errs: 1 << 30}
		full := &fakeDriver{name: "full", ents: []event.Entity{host("c2", "up")}}
		jobs := []Job{
			{Driver: idle, Schedule: Schedule{Interval: 3 * time.Hour}},
			{Driver: failing, Schedule: Schedule{Interval: time.Minute}},
		}
		r, stop := startRunner(t, jobs, Deps{Publisher: &fakePublisher{}})
		fullPub := &fakePublisher{fail: 1 << 30}
		r2, stop2 := startRunner(t, []Job{{Driver: full, Schedule: Schedule{Interval: time.Minute}}}, Deps{Publisher: fullPub})
		for elapsed := 10 * time.Second; elapsed <= time.Hour; elapsed += 10 * time.Second {
			time.Sleep(10 * time.Second)
			if !r.Alive() || !r2.Alive() {
				t.Fatalf("not alive (idle or backing off) after %s", elapsed)
			}
		}
		failing.mu.Lock()
		reads := failing.gets
		failing.mu.Unlock()
		if reads < 10 {
			t.Errorf("the failing source was read %d times in an hour; want it retried with backoff", reads)
		}
		fullPub.mu.Lock()
		calls := fullPub.calls
		fullPub.mu.Unlock()
		if calls < 10 {
			t.Errorf("the full spool was tried %d times in an hour; want it retried with backoff", calls)
		}
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := stop2(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
