package processor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/snapshot"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// notifyLog is the log of the failover test: the history scenario (a
// template, hosts with instances, NIC alarms raised, made critical and
// cleared, deduced alarms on the instances caused by them) with
// subscriptions put, changed and deleted along the way.
func notifyLog() []event.Event {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	evs := historytest.Scenario{Hosts: 5, InstancesPerHost: 2, Rounds: 12, Start: t0}.Events()
	sub := func(id string, kind event.Kind, spec string) event.Event {
		ev := event.Event{V: event.Version, EventID: "sub-" + id + "-" + string(kind), Source: "cli", ObservedAt: t0,
			Kind: kind, Subscription: &event.Subscription{ID: id}}
		if spec != "" {
			ev.Subscription.Spec = []byte(spec)
		}
		return ev
	}
	third := len(evs) / 3
	var out []event.Event
	out = append(out, evs[:2]...)
	out = append(out, sub("all", event.KindSubscriptionPut, `{"url":"http://hooks.example/all"}`),
		sub("crit", event.KindSubscriptionPut, `{"url":"http://hooks.example/crit","format":"alertmanager","filter":{"severities":["critical"]}}`))
	out = append(out, evs[2:third]...)
	out = append(out, sub("deduced", event.KindSubscriptionPut, `{"url":"http://hooks.example/d","filter":{"alarm_types":["vitrage"]}}`))
	out = append(out, evs[third:2*third]...)
	out = append(out, sub("all", event.KindSubscriptionDelete, ""))
	out = append(out, evs[2*third:]...)
	for i := range out {
		out[i].ObservedAt = t0.Add(time.Duration(i) * time.Second)
	}
	return out
}

// appendEvents appends evs one per transaction, at recorded_at
// 2026-03-01 + their index in seconds, so two databases fed the same
// events hold byte-identical logs.
func appendEvents(t *testing.T, db *sql.DB, evs []event.Event, first int) {
	t.Helper()
	for i, ev := range evs {
		at := time.Date(2026, 3, 1, 0, 0, first+i, 0, time.UTC)
		l := store.NewLog(db, func() time.Time { return at })
		body, err := event.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(context.Background(), []store.Entry{{Event: ev, Body: body}}); err != nil {
			t.Fatal(err)
		}
	}
}

// dbNode is a node over a real database, without raft or the bus: the
// test drives its catch-up and its leadership.
func dbNode(t *testing.T, db *sql.DB) *node {
	t.Helper()
	cfg := Config{NodeID: "t", FlushInterval: 10 * time.Millisecond, SnapshotCheck: time.Hour}
	cfg.SetDefaults()
	log := store.NewLog(db, nil)
	recon, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
		DB: db, Events: log, Factory: snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{cfg: cfg, deps: Deps{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Now: time.Now},
		log: slog.New(slog.DiscardHandler)}
	n, err := p.newNode(Parts{
		Log: log, Reconstructor: recon, Fence: newLeaderFence(db, snapshot.DefaultFenceName, time.Second, nil),
		Produce: ProduceNode, Outbox: dbOutbox{db: db}, History: dbHistory{db: db},
		Capture: CaptureEngine, Inspect: InspectEngine, Election: &fakeElector{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !n.load(context.Background()) {
		t.Fatal("state not loaded")
	}
	return n
}

// leadOnce makes n lead at term until both heads reach through.
func leadOnce(t *testing.T, n *node, db *sql.DB, term uint64, through int64) {
	t.Helper()
	ctx := context.Background()
	leadUntil(t, n, term, fmt.Sprintf("heads at %d", through), func() bool {
		o, err1 := dbOutbox{db}.Head(ctx)
		h, err2 := dbHistory{db}.Head(ctx)
		return err1 == nil && err2 == nil && o >= through && h >= through
	})
}

// writtenTables are the rows a leader writes, every column but who wrote
// them (term).
var writtenTables = []string{
	"SELECT subscription_id, seq, ord, webhook_id, recorded_at, payload FROM notifier_outbox ORDER BY seq, subscription_id, ord",
	"SELECT id, seq, deleted, spec FROM notifier_subscriptions ORDER BY id",
	"SELECT subscription_id FROM notifier_cursors ORDER BY subscription_id",
	historytest.Tables[0], historytest.Tables[1], historytest.Tables[2],
	"SELECT name, seq FROM notifier_outbox_head",
	"SELECT name, seq FROM alarm_history_head",
}

func openTestDB(t *testing.T) *sql.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestColdStartLeaderFillsTheGap: leader A writes the outbox and the
// history through k1 and dies; a snapshot exists at k2 > k1 (A took it
// before its last writes failed); node B starts cold from that snapshot,
// follows the log to k3 and becomes leader. The tables must end identical
// to those a single leader writes over the whole log.
func TestColdStartLeaderFillsTheGap(t *testing.T) {
	evs := notifyLog()
	k1, k2 := int64(len(evs)/4), int64(len(evs)*2/3)
	k3 := int64(len(evs))
	ctx := context.Background()

	// The reference and A start on an empty log and apply every record
	// through the follower: they derive all their rows live.
	ref := openTestDB(t)
	single := dbNode(t, ref)
	appendEvents(t, ref, evs, 0)
	if err := single.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	leadOnce(t, single, ref, 1, k3)
	if single.regenRows.Load() != 0 || single.regenItems.Load() != 0 {
		t.Fatal("the reference leader regenerated rows")
	}

	db := openTestDB(t)
	a := dbNode(t, db)
	appendEvents(t, db, evs[:k1], 0)
	if err := a.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	leadOnce(t, a, db, 1, k1)
	if a.regenRows.Load() != 0 {
		t.Fatal("A regenerated rows")
	}

	appendEvents(t, db, evs[k1:k2], int(k1))
	takeSnapshot(t, db, 1, k2)
	appendEvents(t, db, evs[k2:], int(k2))

	b := dbNode(t, db)
	if b.f.appliedSeq.Load() != k3 {
		t.Fatalf("B loaded at %d, want %d", b.f.appliedSeq.Load(), k3)
	}
	if _, outFrom, _, _ := b.f.pend.take(); outFrom != k3 {
		t.Fatalf("B's pending starts after %d, want %d (it holds nothing of the replay)", outFrom, k3)
	}
	if o, _ := (dbOutbox{db}).Head(ctx); o != k1 {
		t.Fatalf("outbox head %d before B leads, want %d", o, k1)
	}
	leadOnce(t, b, db, 2, k3)
	if b.regenRows.Load() == 0 || b.regenItems.Load() == 0 {
		t.Errorf("B regenerated %d rows and %d items: the test has no gap to fill", b.regenRows.Load(), b.regenItems.Load())
	}

	for _, q := range writtenTables {
		got, want := historytest.Rows(t, db, q), historytest.Rows(t, ref, q)
		if len(want) == 0 && !strings.Contains(q, "severity_changes") {
			t.Errorf("%s: the single leader wrote nothing", q)
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("%s (-failover +single leader):\n%s", q, diff)
		}
	}
	var inGap int
	if err := db.QueryRow("SELECT COUNT(*) FROM notifier_outbox WHERE seq > ? AND seq <= ?", k1, k3).Scan(&inGap); err != nil {
		t.Fatal(err)
	}
	if inGap == 0 {
		t.Error("no outbox row after k1: the gap was empty")
	}
	// The dump of B (engine + subscriptions) equals a replay of the log.
	var bd strings.Builder
	if err := b.f.m.Dump(&bd); err != nil {
		t.Fatal(err)
	}
	var sd strings.Builder
	if err := single.f.m.Dump(&sd); err != nil {
		t.Fatal(err)
	}
	if bd.String() != sd.String() {
		t.Error("dump of the node loaded from the snapshot differs from the single leader's")
	}
	if !strings.Contains(bd.String(), `"id":"crit"`) {
		t.Error("the dump does not hold the subscriptions")
	}
}

// takeSnapshot writes a snapshot at seq, fenced at term, as a leader's
// shadow takes it from the log.
func takeSnapshot(t *testing.T, db *sql.DB, term, seq int64) {
	t.Helper()
	w, err := snapshot.NewWriter(snapshot.Config{Policy: snapshot.Policy{EveryEvents: 1}}, snapshot.WriterDeps{
		DB: db, Fence: snapshot.FenceFunc(store.CheckFence),
	})
	if err != nil {
		t.Fatal(err)
	}
	factory := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}
	shadowRecon, err := snapshot.NewReconstructor(snapshot.ReconstructConfig{}, snapshot.ReconstructDeps{
		DB: db, Events: store.NewLog(db, nil), Factory: factory,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.TakeFromLog(context.Background(), term, snapshot.NewShadow(shadowRecon, factory), seq); err != nil {
		t.Fatal(err)
	}
}

// TestSalvagedHistoryAgreesWithTheBase: leader A writes the outbox and
// the history through seq 9 (historytest.LostRangeEvents) and goes away; a
// snapshot is taken at 12 and retention drops the events through 12. Node
// B starts cold from the snapshot, follows the log on to 14 and leads: it
// cannot rebuild 10..12 and salvages from the snapshot. The history
// must then agree with the log from 12 on: what ended in 10..12 closed at
// 12, what began there and held at 12 open from 12, both marked
// approximate (after 9, at 12's time); the rest exact. Node C, which finds
// the history's head back at 9 (lost), salvages again and changes no row.
//
// Without a usable snapshot (the one at 12 is corrupted after B loaded
// it), the salvage has no base of its own: the state B loaded at 12 stands
// in, and the history must come out the same.
func TestSalvagedHistoryAgreesWithTheBase(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		t.Run(map[bool]string{false: "snapshot", true: "no usable snapshot"}[corrupt], func(t *testing.T) {
			salvagedHistory(t, corrupt)
		})
	}
}

func salvagedHistory(t *testing.T, corrupt bool) {
	ctx := context.Background()
	db := openTestDB(t)
	evs := historytest.LostRangeEvents(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	const head, base, last = historytest.LostRangeHead, historytest.LostRangeBase, historytest.LostRangeLast
	// Keep what the test wrote: its times are months old.
	keep := history.Config{Retention: 100 * 365 * 24 * time.Hour}

	a := dbNode(t, db)
	a.cfg.History = keep
	appendEvents(t, db, evs[:head], 0)
	if err := a.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	leadOnce(t, a, db, 1, head)
	appendEvents(t, db, evs[head:base], head)
	takeSnapshot(t, db, 1, base)
	if _, err := db.ExecContext(ctx, "DELETE FROM events WHERE seq <= ?", base); err != nil {
		t.Fatal(err)
	}

	b := dbNode(t, db)
	b.cfg.History = keep
	if b.f.appliedSeq.Load() != base {
		t.Fatalf("B loaded at %d, want %d", b.f.appliedSeq.Load(), base)
	}
	appendEvents(t, db, evs[base:], base)
	if err := b.f.catchUp(ctx, 0); err != nil || b.f.appliedSeq.Load() != last {
		t.Fatalf("B caught up to %d, want %d: %v", b.f.appliedSeq.Load(), last, err)
	}
	if corrupt {
		if _, err := db.ExecContext(ctx, "UPDATE snapshot_chunks SET data = REVERSE(data)"); err != nil {
			t.Fatal(err)
		}
	}
	leadOnce(t, b, db, 2, last)
	unrecoverable(t, b, 2, "the outbox's and the history's")

	// appendEvents records seq s at 00:00:s-1.
	at := func(seq int64) time.Time { return time.Date(2026, 3, 1, 0, 0, int(seq-1), 0, time.UTC) }
	type span struct {
		Resource                 string
		RaisedSeq, RaisedAfter   int64
		RaisedAt                 time.Time
		RaisedApprox             bool
		ClearedSeq, ClearedAfter int64
		ClearedAt                time.Time
		ClearedApprox            bool
		Severity                 string
	}
	p, err := history.List(ctx, db, history.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]string{} // alarm key -> resource id
	var got []span
	for _, o := range p.Items {
		byKey[o.AlarmKey] = o.Resource.ID
		got = append(got, span{o.Resource.ID, o.RaisedSeq, o.RaisedAfterSeq, o.RaisedAt, o.RaisedApprox,
			o.ClearedSeq, o.ClearedAfterSeq, o.ClearedAt, o.ClearedApprox, o.Severity})
	}
	// By raised seq, then key: prometheus NIC alarms on hosts before the
	// deduced (vitrage) ones on instances.
	want := []span{
		{Resource: "h0", RaisedSeq: 8, RaisedAt: at(8), ClearedSeq: base, ClearedAfter: head, ClearedAt: at(base), ClearedApprox: true, Severity: "WARNING"},
		{Resource: "i0", RaisedSeq: 8, RaisedAt: at(8), ClearedSeq: base, ClearedAfter: head, ClearedAt: at(base), ClearedApprox: true, Severity: "WARNING"},
		{Resource: "h2", RaisedSeq: 9, RaisedAt: at(9), ClearedSeq: last, ClearedAt: at(last), Severity: "CRITICAL"},
		{Resource: "i2", RaisedSeq: 9, RaisedAt: at(9), ClearedSeq: last, ClearedAt: at(last), Severity: "WARNING"},
		{Resource: "h1", RaisedSeq: base, RaisedAfter: head, RaisedAt: at(base), RaisedApprox: true, Severity: "CRITICAL"},
		{Resource: "i1", RaisedSeq: base, RaisedAfter: head, RaisedAt: at(base), RaisedApprox: true, Severity: "WARNING"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("occurrences (-got +want):\n%s", diff)
	}

	type period struct {
		From, To          string
		Start, StartAfter int64
		End, EndAfter     int64
		EndAt             time.Time
	}
	var links []period
	for _, h := range []int{0, 1, 2} {
		ls, err := history.Links(ctx, db, history.LinksQuery{Alarm: "ALARM/prometheus/" + historytest.NICAlarmID(h), Limit: 10000})
		if err != nil || ls.Next != "" {
			t.Fatalf("links: %v (next page %q)", err, ls.Next)
		}
		for _, l := range ls.Links {
			if l.StartApprox != (l.StartAfterSeq > 0) || l.EndApprox != (l.EndAfterSeq > 0) {
				t.Errorf("link %+v: approximate bounds without their seq", l)
			}
			links = append(links, period{byKey[l.From], byKey[l.To], l.StartSeq, l.StartAfterSeq, l.EndSeq, l.EndAfterSeq, l.EndAt})
		}
	}
	wantLinks := []period{
		{From: "h0", To: "i0", Start: 8, End: base, EndAfter: head, EndAt: at(base)},
		{From: "h1", To: "i1", Start: base, StartAfter: head},
		{From: "h2", To: "i2", Start: 9, End: last, EndAt: at(last)},
	}
	if diff := cmp.Diff(links, wantLinks); diff != "" {
		t.Errorf("links (-got +want):\n%s", diff)
	}

	if corrupt {
		return // a node starting now could not load
	}
	// A second salvage of the history (its head found at 9 again) changes
	// no row.
	var written [][]string
	for _, q := range historytest.Tables {
		written = append(written, historytest.Rows(t, db, q))
	}
	if _, err := db.ExecContext(ctx, "UPDATE alarm_history_head SET seq = ?", head); err != nil {
		t.Fatal(err)
	}
	c := dbNode(t, db)
	c.cfg.History = keep
	leadOnce(t, c, db, 3, last)
	unrecoverable(t, c, 1, "the history's")
	for i, q := range historytest.Tables {
		if diff := cmp.Diff(historytest.Rows(t, db, q), written[i]); diff != "" {
			t.Errorf("%s changed by a second salvage (-got +want):\n%s", q, diff)
		}
	}
}

// TestLeaderClaimFencesEveryWrite: a new leader's claim covers every row
// its writes check, not only the snapshots'. Before any write of its own,
// a deposed leader's late outbox and history writes are refused, and a
// deposed leader stopped in the middle of an outbox write (holding the
// outbox's fence row) is evicted instead of blocking the new leader.
func TestLeaderClaimFencesEveryWrite(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	old := newLeaderFence(db, snapshot.DefaultFenceName, 200*time.Millisecond, nil)
	if err := old.Claim(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.Write(ctx, db, 1, outbox.Batch{Seq: 1}); err != nil {
		t.Fatalf("outbox write at term 1: %v", err)
	}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 1}); err != nil {
		t.Fatalf("history write at term 1: %v", err)
	}

	// The old leader stops in the middle of an outbox write.
	tx, err := store.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := store.CheckFence(ctx, tx, outbox.FenceName, 1); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := newLeaderFence(db, snapshot.DefaultFenceName, 200*time.Millisecond, nil).Claim(ctx, 2); err != nil {
		t.Fatalf("claim at term 2: %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("claim took %s: it waited on the outbox row instead of evicting its holder", took)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO notifier_outbox_head (name, seq) VALUES ('late', 1)"); err == nil {
		if err := tx.Commit(ctx); err == nil {
			t.Error("the stopped leader's outbox transaction committed after the new leader's claim")
		}
	}

	// Its later writes, of every kind, are refused before the new leader
	// has written anything.
	if _, err := outbox.Write(ctx, db, 1, outbox.Batch{Seq: 2}); !errors.Is(err, store.ErrFenced) {
		t.Errorf("late outbox write at term 1 = %v; want ErrFenced", err)
	}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 2}); !errors.Is(err, store.ErrFenced) {
		t.Errorf("late history write at term 1 = %v; want ErrFenced", err)
	}
	if got, err := old.Stored(ctx); err != nil || got != 2 {
		t.Errorf("stored term = %d, %v; want 2", got, err)
	}
	if err := old.Claim(ctx, 1); !errors.Is(err, store.ErrFenced) {
		t.Errorf("claim at term 1 after term 2 = %v; want ErrFenced", err)
	}
}
