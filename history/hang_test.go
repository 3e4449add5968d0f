package history_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// TestWriteUnansweredEndsWithItsContext: over a database that stops
// answering right after a history write's COMMIT (or, for a write the
// fence refuses, its ROLLBACK) reached it, Write returns once its context
// ends (the leader's round limit), not when the kernel's TCP timeout would
// end the connection. The COMMIT took effect although Write could not
// know it: writing the same batch again, as the leader does after a failed
// round, writes nothing twice.
func TestWriteUnansweredEndsWithItsContext(t *testing.T) {
	s := historytest.Scenario{Hosts: 1, InstancesPerHost: 2, Rounds: 2, Start: t0}
	items, recs := detectAll(t, s.Events())
	b := history.Batch{Seq: recs[len(recs)-1].Seq, Items: items}
	for _, tc := range []struct {
		name    string
		term    int64 // of the write into the hole; the fence is at 2
		trigger string
	}{
		{"commit", 2, "COMMIT"},
		{"fenced rollback", 1, "ROLLBACK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.NewDB(t)
			proxied, proxy := storetest.NewProxy(t, dsn)
			db, err := store.Open(ctx, proxied)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if _, err := history.Write(ctx, db, 2, history.Batch{}); err != nil {
				t.Fatal(err)
			}

			tripped := proxy.HoleAfter([]byte(tc.trigger))
			wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := history.Write(wctx, db, tc.term, b)
				done <- err
			}()
			select {
			case err := <-done:
				if tc.trigger == "COMMIT" && !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("history write whose COMMIT went unanswered = %v; want a deadline error", err)
				}
				if tc.trigger == "ROLLBACK" && !errors.Is(err, store.ErrFenced) {
					t.Fatalf("fenced history write whose ROLLBACK went unanswered = %v; want ErrFenced", err)
				}
			case <-time.After(time.Minute):
				t.Fatalf("history write still waits for the answer to its %s a minute past its deadline", tc.trigger)
			}
			select {
			case <-tripped:
			default:
				t.Fatalf("history write sent no %s", tc.trigger)
			}
			proxy.Pass()

			res, err := history.Write(ctx, db, 2, b)
			if err != nil {
				t.Fatalf("history write again: %v", err)
			}
			wantWritten := 0 // the COMMIT took effect
			if tc.trigger == "ROLLBACK" {
				wantWritten = len(items)
			}
			if res.Written != wantWritten || res.Head != b.Seq {
				t.Errorf("history write again = %+v; want %d written, head %d", res, wantWritten, b.Seq)
			}
			ref := openDB(t)
			if _, err := history.Write(ctx, ref, 2, b); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(listAll(t, db, history.Query{}), listAll(t, ref, history.Query{})); diff != "" {
				t.Errorf("history after the hole and a retry differs from one written once (-got +want):\n%s", diff)
			}
		})
	}
}
