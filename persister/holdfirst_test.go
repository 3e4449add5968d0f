package persister

import (
	"database/sql/driver"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/causeway/causeway/internal/store"
)

// TestFirstAttemptHonoursHoldLimit: a batch is handed back only between
// attempts, so hold_limit is sized under the broker's consumer_timeout by
// one attempt's bound: no attempt may hold a batch past hold_limit plus
// the bound. A retry starts by hold_limit; the first attempt of a batch
// may start later. Here a database that needs 50 s for every commit
// (append_timeout 10 s) teaches a bound of 80 s, and eight messages
// delivered at once wait in the client's buffer while the batches before
// theirs commit: the fourth batch (g, h) comes to the committer held
// 3m40s, past hold_limit (3m). Its first attempt must end by 4m20s
// (hold_limit plus the bound), and the batch be handed back then; it ran
// its whole bound, 50 s of it here, to 4m30s, and would have taken the
// whole 80 s had it needed them.
func TestFirstAttemptHonoursHoldLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: 10 * time.Second,
			HoldLimit: 3 * time.Minute, RetryMax: time.Second},
			func(entries []store.Entry) error {
				if entries[0].Event.EventID == "g" {
					return driver.ErrBadConn
				}
				return nil
			})
		h.log.slow.Store(int64(50 * time.Second))
		h.q.push(body(t, "a"), body(t, "b"), body(t, "c"), body(t, "d"), body(t, "e"), body(t, "f"), body(t, "g"), body(t, "h"))
		time.Sleep(4*time.Minute + 20*time.Second - time.Since(begin))
		synctest.Wait()
		got, _ := h.j.split()
		i := slices.Index(got, "ack 6 multiple=true")
		if i < 0 {
			t.Fatalf("the third batch (e, f, first attempt at 2m51s, under hold_limit) not committed: %v", got)
		}
		want := []string{"append 2 slow until context deadline exceeded", "pause"}
		if !slices.Equal(got[i+1:], want) {
			t.Errorf("hold_limit plus the bound after the delivery: the fourth batch's journal %v; want %v (its attempt ended, the batch handed back)", got[i+1:], want)
		}
		if n := timedOutAppends(h.j); n != 4 {
			t.Errorf("%d attempts timed out; want the 3 of the first batch and the fourth batch's, cut short", n)
		}
		if got := time.Duration(h.p.bound.Load()); got != 80*time.Second {
			t.Errorf("bound after the attempt cut short = %v; want the 80s learned (a cut attempt teaches nothing)", got)
		}
		h.stop(t)
	})
}

// TestFirstAttemptCutShortTeachesNothing: a first attempt cut to the
// little left of hold_limit plus the bound (here about 1.5 s, too short
// for a ping, which comes at half append_timeout) times out without a
// ping answered. That is no sign of a hang: the bound learned from the
// slow database (80 s) must stay for the next batches, not fall back to
// append_timeout, which would cost each of them the timed-out attempts
// of learning it again.
func TestFirstAttemptCutShortTeachesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		h := start(t, Config{BatchSize: 2, BatchWait: time.Millisecond, AppendTimeout: 10 * time.Second,
			HoldLimit: 142 * time.Second, RetryMax: time.Second}, nil)
		h.log.slow.Store(int64(50 * time.Second))
		// a, b commit at about 2m0.5s (attempts of 10, 20 and 40 s time
		// out, the fourth, of 80 s, takes 50), c, d at 2m50.5s, e, f (cut
		// to 51.5 s) at 3m40.5s; g, h are then left about 1.5 s.
		h.q.push(body(t, "a"), body(t, "b"), body(t, "c"), body(t, "d"), body(t, "e"), body(t, "f"), body(t, "g"), body(t, "h"))
		time.Sleep(142*time.Second + 80*time.Second - time.Since(begin))
		synctest.Wait()
		got, _ := h.j.split()
		i := slices.Index(got, "ack 6 multiple=true")
		if i < 0 {
			t.Fatalf("the third batch not committed: %v", got)
		}
		if want := []string{"append 2 slow until context deadline exceeded", "pause"}; !slices.Equal(got[i+1:], want) {
			t.Fatalf("the fourth batch's journal %v; want %v (its attempt cut short, the batch handed back)", got[i+1:], want)
		}
		if got := time.Duration(h.p.bound.Load()); got != 80*time.Second {
			t.Errorf("bound after an attempt cut short = %v; want the 80s learned", got)
		}
		h.stop(t)
	})
}
