package persister_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/persister"
	"github.com/causeway/causeway/snapshot"
)

// retentionWorld is what the retention tests write their days of events
// with: a log over day partitions from day0 (eight of them made), dated by
// *clock, which the test moves; the live engine the events are applied to;
// and a snapshot writer taking one whenever asked.
func retentionWorld(t *testing.T, e *env) (day0 time.Time, clock *time.Time, log *store.Log, norm *graph.Normalizer, live *evaluator.Engine, w *snapshot.Writer) {
	t.Helper()
	day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	clock = new(time.Time)
	*clock = day0
	log = store.NewLog(e.db, func() time.Time { return *clock })
	if _, err := log.MaintainPartitions(context.Background(), day0, 8); err != nil {
		t.Fatal(err)
	}
	norm = graph.DefaultNormalizer()
	live = evaluator.New(evaluator.Config{}, norm)
	w, err := snapshot.NewWriter(snapshot.Config{Policy: snapshot.Policy{EveryEvents: 1}},
		snapshot.WriterDeps{DB: e.db, Fence: snapshot.FenceFunc(store.CheckFence)})
	if err != nil {
		t.Fatal(err)
	}
	return day0, clock, log, norm, live, w
}

// appendHost appends, at the log's clock, an upsert of host h<k> in state
// observed at, and applies it to live.
func appendHost(t *testing.T, log *store.Log, live *evaluator.Engine, eventID string, k int, state string, at time.Time) store.Appended {
	t.Helper()
	ev := event.Event{V: event.Version, EventID: eventID, Source: "nova", Kind: event.KindEntityUpsert,
		ObservedAt: at, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.host",
			ID: fmt.Sprintf("h%d", k), Name: fmt.Sprintf("host-%d", k), State: state}}
	body, err := event.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	app, err := log.Append(context.Background(), []store.Entry{{Event: ev, Body: body}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range app.Batch.Records {
		if err := live.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	return app
}

// TestRetentionPrunesSnapshotsThenEvents: with a snapshot taken every day
// over six days of events, the persister's maintenance, by the log's
// clock, deletes the snapshots older than the newest one at or before the
// retention boundary (the anchor), then drops the day partitions before
// the anchor and deletes the events up to it. Every moment from the anchor on still reconstructs, and the
// newest state is the one the whole log gave. Without the snapshot pruning
// the oldest snapshot would pin the log for ever.
func TestRetentionPrunesSnapshotsThenEvents(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	day0, clock, log, norm, live, w := retentionWorld(t, e)
	snapSeq := map[int]int64{} // day -> seq of that day's snapshot
	var firstOf [6]int64       // day -> its first seq
	for d := range 6 {
		for k := range 3 {
			*clock = day0.AddDate(0, 0, d).Add(time.Hour + time.Duration(k)*time.Minute)
			app := appendHost(t, log, live, fmt.Sprintf("d%d-%d", d, k), k, []string{"available", "error"}[(d+k)%2], *clock)
			if k == 0 {
				firstOf[d] = app.Batch.Records[0].Seq
			}
		}
		if d >= 1 && d <= 4 {
			res, err := w.Take(ctx, 1, func() (snapshot.Capture, error) {
				return snapshot.CaptureEngine(live, int64(3*(d+1)), *clock, snapshot.EngineGob)
			})
			if err != nil {
				t.Fatal(err)
			}
			snapSeq[d] = res.Meta.Seq
		}
	}

	// The boundary falls in day 2, after its snapshot: that snapshot is the
	// anchor; day 1's goes, and so do the partitions of days 0 and 1, and
	// the events of day 2, all at or before the anchor (the last of them).
	now := day0.AddDate(0, 0, 5).Add(12 * time.Hour)
	cfg := persister.Config{Retention: 3 * 24 * time.Hour}
	// While another session (`snapshots prune-stale`) holds retention's
	// lock, retention waits.
	lease, err := log.LockRetention(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The log's clock (the database server's in production; here the
	// persister's log is given this test's) is days behind the clock of
	// the persister's host (today's): retention goes by the log's, which
	// dated the records. By the host's, it dropped the days of the log
	// still within retention, and their snapshots.
	r := e.startPersisterDeps(t, cfg, func(d *persister.Deps) {
		d.Snapshots = snapshot.NewStore(e.db, nil)
		d.Log = store.NewLog(e.db, func() time.Time { return now })
	})
	time.Sleep(2 * time.Second)
	if first, err := log.First(ctx); err != nil || first != 1 || r.counter(t, "causeway_persister_snapshots_pruned_total") != 0 {
		t.Fatalf("retention ran while its lock was held: first seq %d (%v)", first, err)
	}
	lease.Release()
	waitFor(t, "retention applied", 30*time.Second, func() (bool, string) {
		first, err := log.First(ctx)
		pruned := r.counter(t, "causeway_persister_snapshots_pruned_total")
		return err == nil && first == firstOf[3] && pruned == 1, fmt.Sprintf("first seq %d (%v), %v snapshots pruned", first, err, pruned)
	})
	metas, err := snapshot.NewStore(e.db, nil).List(ctx, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	var kept []int64
	for _, m := range metas {
		kept = append(kept, m.Seq)
	}
	if want := []int64{snapSeq[4], snapSeq[3], snapSeq[2]}; fmt.Sprint(kept) != fmt.Sprint(want) {
		t.Errorf("snapshots kept at seqs %v; want %v (the anchor and the newer ones)", kept, want)
	}

	rc, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
		DB: e.db, Events: log, Factory: snapshot.EngineFactory{Normalizer: norm}})
	if err != nil {
		t.Fatal(err)
	}
	boundary := now.Add(-cfg.Retention)
	at, err := rc.Reconstruct(ctx, snapshot.AtTime(boundary))
	if err != nil {
		t.Fatalf("reconstruct at the retention boundary: %v", err)
	}
	if at.SnapshotSeq != snapSeq[2] || at.Seq != firstOf[3]-1 {
		t.Errorf("at the boundary: seq %d from the snapshot at %d; want %d from %d", at.Seq, at.SnapshotSeq, firstOf[3]-1, snapSeq[2])
	}
	latest, err := rc.Reconstruct(ctx, snapshot.Latest())
	if err != nil {
		t.Fatal(err)
	}
	var got, want bytes.Buffer
	if err := latest.Machine.(*evaluator.Engine).Dump(&got); err != nil {
		t.Fatal(err)
	}
	if err := live.Dump(&want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Error("the newest reconstruction after retention differs from the state of the whole log")
	}
}

// TestRetentionLeavesNoEventBeforeItsAnchor: with the snapshots taken in
// the middle of a day, the anchor's day partition also holds the events
// before the anchor, which no stored snapshot precedes once the older
// snapshots are deleted. Retention deletes them along with the events up
// to the anchor, so that the oldest retained event has a snapshot at or
// before it, and every retained seq reconstructs.
func TestRetentionLeavesNoEventBeforeItsAnchor(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	day0, clock, log, norm, live, w := retentionWorld(t, e)
	snapSeq := map[int]int64{} // day -> seq of that day's snapshot
	for d := range 6 {
		for k := range 4 {
			*clock = day0.AddDate(0, 0, d).Add(time.Hour + time.Duration(k)*time.Hour)
			app := appendHost(t, log, live, fmt.Sprintf("d%d-%d", d, k), k, []string{"available", "error"}[(d+k)%2], *clock)
			// Mid-day: after the second of the day's four events.
			if k == 1 && d >= 1 && d <= 4 {
				seq := app.Batch.LastSeq()
				res, err := w.Take(ctx, 1, func() (snapshot.Capture, error) {
					return snapshot.CaptureEngine(live, seq, *clock, snapshot.EngineGob)
				})
				if err != nil {
					t.Fatal(err)
				}
				snapSeq[d] = res.Meta.Seq
			}
		}
	}

	// The boundary falls in day 2, after its snapshot (02:00): that
	// snapshot is the anchor.
	now := day0.AddDate(0, 0, 5).Add(12 * time.Hour)
	cfg := persister.Config{Retention: 3 * 24 * time.Hour}
	r := e.startPersisterDeps(t, cfg, func(d *persister.Deps) {
		d.Snapshots = snapshot.NewStore(e.db, nil)
		d.Log = store.NewLog(e.db, func() time.Time { return now })
	})
	waitFor(t, "retention applied", 30*time.Second, func() (bool, string) {
		first, err := log.First(ctx)
		pruned := r.counter(t, "causeway_persister_snapshots_pruned_total")
		return err == nil && first == snapSeq[2]+1 && pruned == 1,
			fmt.Sprintf("first seq %d (%v), %v snapshots pruned; want the anchor's seq %d + 1", first, err, pruned, snapSeq[2])
	})
	first, err := log.First(ctx)
	if err != nil {
		t.Fatal(err)
	}
	metas, err := snapshot.NewStore(e.db, nil).List(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) == 0 {
		t.Fatalf("the oldest retained event, seq %d, has no snapshot at or before it (the anchor is at seq %d)", first, snapSeq[2])
	}
	rc, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
		DB: e.db, Events: log, Factory: snapshot.EngineFactory{Normalizer: norm}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Reconstruct(ctx, snapshot.AtSeq(first)); err != nil {
		t.Fatalf("reconstruct at the oldest retained seq %d: %v", first, err)
	}
	// The moments from the anchor (02:00) to the oldest retained event
	// (03:00) are the anchor's state.
	between := day0.AddDate(0, 0, 2).Add(150 * time.Minute)
	at, err := rc.Reconstruct(ctx, snapshot.AtTime(between))
	if err != nil || at.Seq != snapSeq[2] {
		t.Fatalf("reconstruct at %s: seq %d, %v; want the anchor's, %d", between, at.Seq, err, snapSeq[2])
	}
	if got := r.counter(t, "causeway_persister_events_trimmed_total"); got != 2 {
		t.Errorf("events trimmed = %v; want 2 (the anchor's day up to it)", got)
	}
}

// retainWatch is the log, and a channel that gets the boundary of each
// retention round once its Retain returned.
type retainWatch struct {
	persister.Log
	rounds chan time.Time
}

func (w retainWatch) Retain(ctx context.Context, t time.Time, anchored bool) ([]string, time.Time, error) {
	dropped, bound, err := w.Log.Retain(ctx, t, anchored)
	select {
	case w.rounds <- t:
	default:
	}
	return dropped, bound, err
}

// TestRetentionIgnoresALogClockAheadOfTheHost: the database server's
// clock stepped weeks forward (a bad NTP source, a VM restored with a
// wrong clock). Every event and snapshot is within retention by the time
// they were recorded at and by this host's clock, so retention deletes
// nothing. By the log's clock alone it deleted every snapshot but the
// newest and the events before it, within one maintenance round and for
// good.
func TestRetentionIgnoresALogClockAheadOfTheHost(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	day0, clock, log, _, live, w := retentionWorld(t, e)
	for d := range 6 {
		*clock = day0.AddDate(0, 0, d).Add(time.Hour)
		app := appendHost(t, log, live, fmt.Sprintf("d%d", d), 0, []string{"available", "error"}[d%2], *clock)
		if d >= 1 && d <= 4 {
			seq := app.Batch.LastSeq()
			if _, err := w.Take(ctx, 1, func() (snapshot.Capture, error) {
				return snapshot.CaptureEngine(live, seq, *clock, snapshot.EngineGob)
			}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// By this host's clock, the log's first day is a month within
	// retention; by the log's, ahead, days 0 to 3 are past it.
	cfg := persister.Config{Retention: time.Since(day0).Round(time.Hour) + 30*24*time.Hour}
	ahead := cfg.Retention - time.Since(day0.AddDate(0, 0, 4))
	rounds := make(chan time.Time, 1)
	r := e.startPersisterDeps(t, cfg, func(d *persister.Deps) {
		d.Snapshots = snapshot.NewStore(e.db, nil)
		d.Log = retainWatch{Log: store.NewLog(e.db, func() time.Time { return time.Now().Add(ahead) }), rounds: rounds}
	})
	var cut time.Time
	select {
	case cut = <-rounds:
	case <-time.After(30 * time.Second):
		t.Fatal("no retention round within 30s")
	}
	if limit := time.Now().Add(-cfg.Retention); cut.After(limit) {
		t.Errorf("retention boundary %s; want at or before %s, retention before this host's clock", cut.UTC(), limit.UTC())
	}
	if first, err := log.First(ctx); err != nil || first != 1 {
		t.Errorf("oldest stored seq %d (%v); want 1: nothing is past retention", first, err)
	}
	metas, err := snapshot.NewStore(e.db, nil).List(ctx, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 4 || r.counter(t, "causeway_persister_snapshots_pruned_total") != 0 {
		t.Errorf("%d snapshots kept; want the 4 taken, none pruned", len(metas))
	}
}
