package snapshot

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// hangRig is a writer and a store over a proxy to a fresh database, and a
// store straight to it.
type hangRig struct {
	proxy  *storetest.Proxy
	w      *Writer
	st     *Store // through the proxy
	direct *Store
}

func newHangRig(t *testing.T) hangRig {
	t.Helper()
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	proxied, proxy := storetest.NewProxy(t, dsn)
	open := func(dsn string) *Store {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return NewStore(db, nil)
	}
	st := open(proxied)
	w, err := NewWriter(Config{Policy: Policy{EveryEvents: 1}}, WriterDeps{DB: st.db, Fence: FenceFunc(store.CheckFence)})
	if err != nil {
		t.Fatal(err)
	}
	return hangRig{proxy: proxy, w: w, st: st, direct: open(dsn)}
}

// kvAt is a capture of a small kv state at seq, recorded at at.
func kvAt(seq int64, at time.Time) Capture {
	m := newKV()
	m.Seq, m.Count, m.KV["a"] = seq, seq, "1"
	c := m.capture(seq)
	c.RecordedAt = at
	return c
}

// awaitReturn waits for call's result, failing the test if it has not come
// a minute after the call's context ended: what an unbounded COMMIT or
// ROLLBACK would do (until the kernel's TCP timeout).
func awaitReturn(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("%s still waits for the database a minute past its context's end", what)
		return nil
	}
}

// TestWriteUnansweredEndsWithItsContext: over a database that stops
// answering right after the fenced snapshot write's COMMIT reached it, the
// write returns once its context ends (for Take, WriteLimit), not when the
// kernel's TCP timeout would end the connection. The COMMIT took effect
// although the writer could not know it; writing again, as the leader's
// snapshot loop does after a failed write, succeeds: the fence passes at
// the same term, and the second row at the same seq is a duplicate that
// verifies like the first, which retention removes.
func TestWriteUnansweredEndsWithItsContext(t *testing.T) {
	ctx := context.Background()
	g := newHangRig(t)
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	tripped := g.proxy.HoleAfter([]byte("COMMIT"))
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := g.w.write(wctx, 3, kvAt(5, at), Result{})
		done <- err
	}()
	if err := awaitReturn(t, done, "a snapshot write whose COMMIT went unanswered"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("snapshot write whose COMMIT went unanswered = %v; want a deadline error", err)
	}
	select {
	case <-tripped:
	default:
		t.Fatal("the snapshot write sent no COMMIT")
	}
	g.proxy.Pass()

	res, err := g.w.write(ctx, 3, kvAt(5, at), Result{})
	if err != nil {
		t.Fatalf("snapshot write again: %v", err)
	}
	ms, err := g.direct.List(ctx, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].ID != res.Meta.ID {
		t.Fatalf("snapshots %+v; want the rewritten one (id %d) newest", ms, res.Meta.ID)
	}
	for _, m := range ms {
		if m.Seq != 5 || m.Term != 3 {
			t.Errorf("snapshot %+v; want seq 5 at term 3", m)
		}
		if _, _, err := g.direct.Load(ctx, m); err != nil {
			t.Errorf("snapshot %d does not verify: %v", m.ID, err)
		}
	}
	if _, err := g.direct.Prune(ctx, at); err != nil {
		t.Fatal(err)
	}
	if ms, err := g.direct.List(ctx, 1<<62); err != nil || len(ms) != 1 || ms[0].ID != res.Meta.ID {
		t.Errorf("snapshots after retention %+v, %v; want only id %d", ms, err, res.Meta.ID)
	}
}

// TestPruneUnansweredEndsWithItsContext: retention's delete of a snapshot
// (the persister's maintenance, whose context ends at shutdown) returns
// once its context is cancelled, even while the COMMIT's answer is
// awaited; pruning again is harmless.
func TestPruneUnansweredEndsWithItsContext(t *testing.T) {
	ctx := context.Background()
	g := newHangRig(t)
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	for seq := int64(1); seq <= 2; seq++ {
		if _, err := g.w.write(ctx, 1, kvAt(seq, at.Add(time.Duration(seq)*time.Second)), Result{}); err != nil {
			t.Fatal(err)
		}
	}
	tripped := g.proxy.HoleAfter([]byte("COMMIT"))
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := g.st.Prune(pctx, at.Add(time.Hour))
		done <- err
	}()
	select {
	case <-tripped:
	case err := <-done:
		t.Fatalf("prune ended before its COMMIT: %v", err)
	}
	cancel() // the persister stops
	if err := awaitReturn(t, done, "a prune whose COMMIT went unanswered"); !errors.Is(err, context.Canceled) {
		t.Fatalf("prune whose COMMIT went unanswered = %v; want context.Canceled", err)
	}
	g.proxy.Pass()

	if _, err := g.st.Prune(ctx, at.Add(time.Hour)); err != nil {
		t.Fatalf("prune again: %v", err)
	}
	if ms, err := g.direct.List(ctx, 1<<62); err != nil || len(ms) != 1 || ms[0].Seq != 2 {
		t.Errorf("snapshots after retention %+v, %v; want only seq 2", ms, err)
	}
}
