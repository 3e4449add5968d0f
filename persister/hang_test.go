package persister_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/persister"
)

// attemptLog counts the Append calls of a persister that returned, and
// those of them that ended at their deadline.
type attemptLog struct {
	persister.Log
	returned, timedOut atomic.Int64
}

func (l *attemptLog) Append(ctx context.Context, entries []store.Entry) (store.Appended, error) {
	res, err := l.Log.Append(ctx, entries)
	if errors.Is(err, context.DeadlineExceeded) {
		l.timedOut.Add(1)
	}
	l.returned.Add(1)
	return res, err
}

// TestDatabaseHangCostsNoRedelivery: while MariaDB hangs (behind a proxy
// turned black hole: connections accepted, statements read, nothing
// answered), each append attempt of the persister ends at append_timeout
// and is retried in the process, the batch unacked; the broker never
// delivers a message twice, and once the database answers again the batch
// is committed exactly once. Whether the hang starts before the batch's
// statements or right after its COMMIT reached the server (which commits,
// but its answer is lost, so the persister cannot know), the log ends up
// with each event once.
func TestDatabaseHangCostsNoRedelivery(t *testing.T) {
	for _, tc := range []struct {
		name string
		hole func(*storetest.Proxy) <-chan struct{}
		// committedUnseen: the first attempt's COMMIT took effect, so the
		// retry finds its events stored.
		committedUnseen bool
	}{
		{"hung", func(p *storetest.Proxy) <-chan struct{} {
			p.Hole()
			c := make(chan struct{})
			close(c)
			return c
		}, false},
		{"commit unanswered", func(p *storetest.Proxy) <-chan struct{} { return p.HoleAfter([]byte("COMMIT")) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			proxied, proxy := storetest.NewProxy(t, e.dsn)
			db, err := store.Open(context.Background(), proxied)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			log := &attemptLog{Log: store.NewLog(db, nil)}
			cfg := persister.Config{
				BatchSize: 100, BatchWait: 50 * time.Millisecond,
				AppendTimeout: time.Second, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
			}
			p := e.startPersisterDeps(t, cfg, func(d *persister.Deps) { d.Log = log })
			pub := e.startPublisher(t)

			tripped := tc.hole(proxy)
			const n = 50
			want := map[string]bool{}
			var evs []event.Event
			now := time.Now().UTC()
			for i := range n {
				id := fmt.Sprint("hang-", i)
				want[id] = true
				evs = append(evs, tick(id, now))
			}
			if err := pub.Publish(context.Background(), evs...); err != nil {
				t.Fatal(err)
			}
			// A minute is far beyond append_timeout and the backoff, and
			// far short of the kernel's TCP timeout (about 15 minutes),
			// which alone would end an attempt that does not bound itself.
			waitFor(t, "three append attempts ended by append_timeout", time.Minute, func() (bool, string) {
				return log.timedOut.Load() >= 3, fmt.Sprintf("%d attempts returned, %d of them timed out", log.returned.Load(), log.timedOut.Load())
			})
			select {
			case <-tripped:
			default:
				t.Fatal("the database never hung: no COMMIT was sent")
			}
			if c := p.counter(t, "causeway_persister_events_committed_total"); c != 0 {
				t.Fatalf("committed_total = %v while the database hung; want 0", c)
			}
			if r := p.counter(t, "causeway_persister_commit_retries_total"); r < 3 {
				t.Errorf("commit_retries_total = %v after three timed-out attempts; want at least 3", r)
			}
			if !p.alive() {
				t.Error("not alive while retrying appends that end at their timeout")
			}

			proxy.Pass()
			waitFor(t, "every event committed or found stored", time.Minute, func() (bool, string) {
				c := p.counter(t, "causeway_persister_events_committed_total")
				d := p.counter(t, "causeway_persister_duplicates_total")
				return c+d >= n, fmt.Sprintf("committed %v, duplicates %v", c, d)
			})
			if err := p.stop(); err != nil {
				t.Fatal(err)
			}
			checkLog(t, e.db, want)
			if d := p.counter(t, "causeway_persister_duplicates_total"); tc.committedUnseen != (d > 0) {
				t.Errorf("duplicates_total = %v; want it above 0 exactly when an unanswered COMMIT took effect (%v)", d, tc.committedUnseen)
			}
			// Redeliveries are counted as deliveries: n means the broker
			// handed each message out once.
			if got := p.counter(t, "causeway_bus_consumer_delivered_total"); got != n {
				t.Errorf("the consumer received %v deliveries of %d messages; want each once (no redelivery)", got, n)
			}
			t.Logf("%d append attempts, %d timed out; committed %v, found stored %v", log.returned.Load(), log.timedOut.Load(),
				p.counter(t, "causeway_persister_events_committed_total"), p.counter(t, "causeway_persister_duplicates_total"))
		})
	}
}
