package persister_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/persister"
)

// startSlowCommitPersister makes every commit of the log take 2 s (a
// trigger on the counter row) and starts a persister whose append_timeout
// is 1 s, its attempts logged.
func (e *env) startSlowCommitPersister(t *testing.T) (*running, *attemptLog) {
	t.Helper()
	if _, err := e.db.ExecContext(context.Background(),
		"CREATE TRIGGER slow_commit BEFORE UPDATE ON log_counter FOR EACH ROW SET @slept = SLEEP(2)"); err != nil {
		t.Fatal(err)
	}
	log := &attemptLog{}
	cfg := persister.Config{
		BatchSize: 100, BatchWait: 50 * time.Millisecond,
		AppendTimeout: time.Second, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}
	p := e.startPersisterDeps(t, cfg, func(d *persister.Deps) { log.Log = d.Log; d.Log = log })
	return p, log
}

// TestSlowCommitLongerThanAppendTimeoutCommits: every commit takes longer
// than append_timeout (a trigger makes the database server sleep 2 s in
// the counter row's update, which each commit makes once, whatever its
// size), while the database answers everything else at once: slow, not
// down. Each attempt that the timeout ends is rolled back, so a persister
// that kept bounding its attempts by append_timeout would retry the batch
// for ever; the attempts' bound must grow until one commits, and the
// batch is then stored exactly once, delivered once. Some events are
// published twice, as a publisher may (see
// TestDatabaseHangCostsNoRedelivery): found stored, they are no sign of
// an attempt that committed after its timeout.
func TestSlowCommitLongerThanAppendTimeoutCommits(t *testing.T) {
	e := newEnv(t)
	p, log := e.startSlowCommitPersister(t)
	pub := e.startPublisher(t)

	const n = 50
	want := map[string]bool{}
	var evs []event.Event
	now := time.Now().UTC()
	for i := range n {
		id := fmt.Sprint("slow-", i)
		want[id] = true
		evs = append(evs, tick(id, now))
	}
	if err := pub.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	const again = 5 // published twice
	if err := pub.Publish(context.Background(), evs[:again]...); err != nil {
		t.Fatal(err)
	}
	// Bounds of 1, 2 and 4 s (with the rolled-back attempts' sessions
	// still holding the counter row for up to 2 s each) commit within
	// about 10 s; a minute is far beyond that, and long enough for dozens
	// of attempts bounded by append_timeout.
	waitFor(t, "every event committed", time.Minute, func() (bool, string) {
		c := p.counter(t, "causeway_persister_events_committed_total")
		d := p.counter(t, "causeway_persister_duplicates_total")
		return c >= n && c+d >= n+again, fmt.Sprintf("committed %v, duplicates %v after %d attempts, %d of them timed out",
			c, d, log.returned.Load(), log.timedOut.Load())
	})
	if !p.alive() {
		t.Error("not alive after attempts longer than append_timeout")
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, e.db, want)
	// An event an attempt stored after its timeout would have been found
	// stored by the next one, and not counted here.
	if c := p.counter(t, "causeway_persister_events_committed_total"); c != n {
		t.Errorf("committed_total = %v; want %d (every attempt the timeout ended was rolled back)", c, n)
	}
	if count, sum := p.histogram(t, "causeway_bus_consumer_delivery_count"); count < n+again || sum != 0 {
		t.Errorf("%d deliveries, their x-delivery-count summing to %v; want %d or more (a publisher may publish twice), no redelivery", count, sum, n+again)
	}
	if log.timedOut.Load() == 0 {
		t.Error("no attempt timed out: the commit was not slower than append_timeout, so the test shows nothing")
	}
	t.Logf("%d append attempts, %d timed out", log.returned.Load(), log.timedOut.Load())
}

// TestSlowCommitIsLearnedOnce: every commit takes 2 s (the trigger of
// TestSlowCommitLongerThanAppendTimeoutCommits), append_timeout is 1 s.
// The first batch finds the bound a commit needs, through attempts that
// time out; the batches after it, published one at a time, each once the
// one before is committed, must commit at their first attempt: the
// bound learned outlives the commit (which takes more than a quarter of
// it), instead of going back to append_timeout and being learned again
// by every batch, a timed-out attempt, a retry and a rolled-back
// transaction each time.
func TestSlowCommitIsLearnedOnce(t *testing.T) {
	e := newEnv(t)
	p, log := e.startSlowCommitPersister(t)
	pub := e.startPublisher(t)
	e.waitConsuming(t)

	const batches, n = 4, 10
	want := map[string]bool{}
	var learnt int64
	for b := range batches {
		var evs []event.Event
		now := time.Now().UTC()
		for i := range n {
			id := fmt.Sprintf("learnt-%d-%d", b, i)
			want[id] = true
			evs = append(evs, tick(id, now))
		}
		if err := pub.Publish(context.Background(), evs...); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("batch %d committed", b), time.Minute, func() (bool, string) {
			c := p.counter(t, "causeway_persister_events_committed_total")
			return int(c) >= (b+1)*n, fmt.Sprintf("committed %v after %d attempts, %d of them timed out", c, log.returned.Load(), log.timedOut.Load())
		})
		if b == 0 {
			learnt = log.timedOut.Load()
		}
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, e.db, want)
	if learnt == 0 {
		t.Error("no attempt of the first batch timed out: the commit was not slower than append_timeout, so the test shows nothing")
	}
	if again := log.timedOut.Load() - learnt; again != 0 {
		t.Errorf("%d attempts of the %d batches after the first timed out; want none (the bound learned from the first)", again, batches-1)
	}
	t.Logf("%d append attempts, %d timed out, %d of them in the first batch", log.returned.Load(), log.timedOut.Load(), learnt)
}
