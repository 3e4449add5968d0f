package history_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// detectAll applies events with a real evaluator and returns every item,
// as the processor would collect them.
func detectAll(t *testing.T, evs []event.Event) ([]history.Item, []event.Record) {
	t.Helper()
	eng := evaluator.New(evaluator.Config{}, nil)
	var items []history.Item
	var recs []event.Record
	for i, ev := range evs {
		rec := event.Record{Seq: int64(i + 1), RecordedAt: ev.ObservedAt, Event: ev}
		res, err := eng.ApplyResult(rec)
		if err != nil {
			t.Fatalf("apply seq %d: %v", rec.Seq, err)
		}
		items = append(items, history.Detect(rec, res.Changes, eng.Graph())...)
		recs = append(recs, rec)
	}
	return items, recs
}

type brief struct {
	Seq  int64
	Kind history.Kind
	What string
	Sev  string
	On   string
}

func briefs(items []history.Item) []brief {
	var out []brief
	for _, it := range items {
		b := brief{Seq: it.Seq, Kind: it.Kind}
		if it.Kind == history.LinkStarted || it.Kind == history.LinkEnded {
			b.What = it.From + " -> " + it.To
		} else {
			b.What, b.Sev, b.On = it.Alarm.Name, it.Alarm.Severity, it.Alarm.Resource.ID
		}
		out = append(out, b)
	}
	return out
}

func TestDetectWithEvaluator(t *testing.T) {
	s := historytest.Scenario{Hosts: 1, InstancesPerHost: 1, Rounds: 3, Start: t0}
	items, _ := detectAll(t, s.Events())
	// Seqs: 1 template, 2 host, 3 instance, 4 NIC raised (warning), 5
	// critical, 6 cleared.
	deduced := "ALARM/vitrage/"
	var link string
	for _, it := range items {
		if it.Kind == history.Raised && it.Alarm.Deduced {
			deduced = it.Alarm.Key
			link = "ALARM/prometheus/nic-h0 -> " + deduced
		}
	}
	want := []brief{
		{4, history.Raised, "NIC_DOWN", "WARNING", "h0"},
		{4, history.Raised, "instance_nic_degraded", "WARNING", "i0-0"},
		{4, history.LinkStarted, link, "", ""},
		{5, history.SeverityChanged, "NIC_DOWN", "CRITICAL", "h0"},
		{6, history.Cleared, "NIC_DOWN", "CRITICAL", "h0"},
		{6, history.Cleared, "instance_nic_degraded", "WARNING", "i0-0"},
		{6, history.LinkEnded, link, "", ""},
	}
	if diff := cmp.Diff(briefs(items), want); diff != "" {
		t.Fatalf("items (-got +want):\n%s", diff)
	}
	for _, it := range items {
		if it.Kind == history.SeverityChanged && it.PrevSeverity != "WARNING" {
			t.Errorf("severity change from %q, want WARNING", it.PrevSeverity)
		}
	}
	// Determinism: the same log gives the same items.
	again, _ := detectAll(t, s.Events())
	if diff := cmp.Diff(again, items); diff != "" {
		t.Fatalf("second detection differs:\n%s", diff)
	}
}

// TestClearBeforeRaise: an alarm's clear recorded before an older raise of
// it (a listener's retry, two services) leaves no raised alarm, no item and
// nothing active; a newer raise raises it.
func TestClearBeforeRaise(t *testing.T) {
	evs := historytest.Scenario{Hosts: 1, InstancesPerHost: 1, Start: t0}.Events()
	nic := func(kind event.Kind, observed time.Duration) event.Event {
		e := &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: historytest.NICAlarmID(0)}
		if kind == event.KindEntityUpsert {
			e.Name, e.Severity = "NIC_DOWN", "critical"
			e.Relations = []event.Relation{{Relationship: "on", Type: "nova.host", ID: historytest.HostID(0), Direction: event.Out}}
		}
		return event.Event{V: event.Version, EventID: "nic-" + strconv.Itoa(len(evs)), Source: "historytest", Kind: kind,
			ObservedAt: t0.Add(observed), Entity: e}
	}
	evs = append(evs, nic(event.KindEntityDelete, time.Minute), nic(event.KindEntityUpsert, 30*time.Second))
	eng := evaluator.New(evaluator.Config{}, nil)
	var items []history.Item
	apply := func(i int, ev event.Event) {
		rec := event.Record{Seq: int64(i + 1), RecordedAt: t0.Add(time.Hour + time.Duration(i)*time.Second), Event: ev}
		res, err := eng.ApplyResult(rec)
		if err != nil {
			t.Fatalf("apply seq %d: %v", rec.Seq, err)
		}
		items = append(items, history.Detect(rec, res.Changes, eng.Graph())...)
	}
	for i, ev := range evs {
		apply(i, ev)
	}
	if len(items) != 0 {
		t.Errorf("items = %+v, want none", briefs(items))
	}
	g := eng.Graph()
	if s := history.ActiveAt(int64(len(evs)), t0, g); len(s.Alarms) != 0 || len(s.Links) != 0 {
		t.Errorf("active after the stale raise: %+v", s)
	}
	apply(len(evs), nic(event.KindEntityUpsert, 2*time.Minute))
	var kinds []history.Kind
	for _, it := range items {
		kinds = append(kinds, it.Kind)
	}
	if want := []history.Kind{history.Raised, history.Raised, history.LinkStarted}; !cmp.Equal(kinds, want) {
		t.Errorf("items of a newer raise = %+v, want %v", briefs(items), want)
	}
}

func openDB(t testing.TB) *sql.DB {
	t.Helper()
	dsn := storetest.NewDB(t)
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// listAll pages through the history with a small page size.
func listAll(t *testing.T, db *sql.DB, q history.Query) []history.Occurrence {
	t.Helper()
	var out []history.Occurrence
	q.Limit = 2
	for {
		p, err := history.List(context.Background(), db, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		q.After = p.Next
	}
}

func TestWriteFencedIdempotentAndQueries(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 6, Start: t0}
	items, recs := detectAll(t, s.Events())
	last := recs[len(recs)-1].Seq

	// The leader at term 2 writes in batches of 7 records.
	var b history.Batch
	next := 0
	for _, r := range recs {
		for next < len(items) && items[next].Seq == r.Seq {
			b.Items = append(b.Items, items[next])
			next++
		}
		b.Seq = r.Seq
		if r.Seq%7 == 0 || r.Seq == last {
			if _, err := history.Write(ctx, db, 2, b); err != nil {
				t.Fatal(err)
			}
			b = history.Batch{}
		}
	}
	want := listAll(t, db, history.Query{})
	if len(want) == 0 {
		t.Fatal("no occurrence written")
	}

	// A new leader (term 3) rewrites everything from scratch: the head
	// skips it. Then, as if the head had been lost, rewrite with the head
	// reset: the derived keys and conditional updates make it harmless.
	res, err := history.Write(ctx, db, 3, history.Batch{Seq: last, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 0 || res.Head != last {
		t.Errorf("rewrite = %+v, want nothing written, head %d", res, last)
	}
	if _, err := db.ExecContext(ctx, "UPDATE alarm_history_head SET seq = 0"); err != nil {
		t.Fatal(err)
	}
	if res, err = history.Write(ctx, db, 3, history.Batch{Seq: last, Items: items}); err != nil || res.Written != len(items) {
		t.Fatalf("rewrite without head = %+v, %v", res, err)
	}
	if diff := cmp.Diff(listAll(t, db, history.Query{}), want); diff != "" {
		t.Fatalf("history changed by a rewrite (-got +want):\n%s", diff)
	}

	// The deposed leader's late write fails.
	if _, err := history.Write(ctx, db, 2, history.Batch{Seq: last + 1}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("write at an old term: %v, want ErrFenced", err)
	}
	if h, err := history.Head(ctx, db); err != nil || h != last {
		t.Fatalf("head = %d, %v; want %d", h, err, last)
	}

	// The occurrences agree with the items.
	raised := map[string]history.Item{}
	cleared := map[string]history.Item{}
	for _, it := range items {
		switch it.Kind {
		case history.Raised:
			raised[history.OccurrenceID(it.Alarm.Key, it.Seq)] = it
		case history.Cleared:
			cleared[it.Alarm.Key+"@"+itoa(it.Seq)] = it
		}
	}
	if len(want) != len(raised) {
		t.Fatalf("%d occurrences, %d raised items", len(want), len(raised))
	}
	sevChanges, deduced := 0, 0
	for _, o := range want {
		it, ok := raised[o.ID]
		if !ok || it.Seq != o.RaisedSeq || !o.RaisedAt.Equal(it.RecordedAt) || o.Name != it.Alarm.Name || o.Resource.ID != it.Alarm.Resource.ID {
			t.Errorf("occurrence %+v does not match its raise %+v", o, it)
		}
		if o.Deduced {
			deduced++
		}
		if !o.Active() {
			if _, ok := cleared[o.AlarmKey+"@"+itoa(o.ClearedSeq)]; !ok {
				t.Errorf("occurrence %s cleared at seq %d without a cleared item", o.ID, o.ClearedSeq)
			}
		}
		if o.SeverityChanges == nil {
			t.Errorf("occurrence %s: severity_changes is null, not []", o.ID)
		}
		sevChanges += len(o.SeverityChanges)
		for _, c := range o.SeverityChanges {
			if c.From != "WARNING" || c.To != "CRITICAL" || o.Severity != "CRITICAL" {
				t.Errorf("occurrence %s: severity change %+v, severity %s", o.ID, c, o.Severity)
			}
		}
	}
	if deduced == 0 || sevChanges == 0 || len(cleared) == 0 {
		t.Fatalf("scenario too thin: %d deduced, %d severity changes, %d cleared", deduced, sevChanges, len(cleared))
	}

	// Filters: by type, resource, severity, and by time.
	nic := listAll(t, db, history.Query{Type: "prometheus", Resource: "h1"})
	for _, o := range nic {
		if o.Type != "prometheus" || o.Resource.ID != "h1" {
			t.Errorf("filtered list has %+v", o)
		}
	}
	if len(nic) == 0 {
		t.Error("no NIC alarm on h1")
	}
	// Active at t: raised at or before t, not cleared at or before t (the
	// state at t holds the events recorded at t). At the moment one
	// occurrence clears, and at the log's middle.
	var clearedAt time.Time
	for _, o := range want {
		if !o.Active() {
			clearedAt = o.ClearedAt
			break
		}
	}
	for _, at := range []time.Time{clearedAt, recs[len(recs)/2].RecordedAt} {
		listed := map[string]bool{}
		for _, o := range listAll(t, db, history.Query{From: at, To: at}) {
			listed[o.ID] = true
		}
		for _, o := range want {
			active := !o.RaisedAt.After(at) && (o.Active() || o.ClearedAt.After(at))
			if listed[o.ID] != active {
				t.Errorf("at %s: occurrence %s (%s..%s) listed %v, active %v", at, o.ID, o.RaisedAt, o.ClearedAt, listed[o.ID], active)
			}
		}
	}
	// An active occurrence has no clearing times in JSON (not year 1).
	for _, o := range want {
		if o.Active() {
			b, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("cleared_at")) || bytes.Contains(b, []byte("0001-01-01")) {
				t.Errorf("active occurrence in JSON: %s", b)
			}
			break
		}
	}
	crit := listAll(t, db, history.Query{Severity: "critical"})
	for _, o := range crit {
		if o.Severity != "CRITICAL" {
			t.Errorf("severity filter gave %s", o.Severity)
		}
	}
	if _, err := history.List(ctx, db, history.Query{After: "!!"}); !errors.Is(err, history.ErrBadToken) {
		t.Errorf("bad token: %v", err)
	}

	// Links of the first NIC alarm.
	links, err := listLinks(ctx, db, "ALARM/prometheus/nic-h0", time.Time{}, time.Time{})
	if err != nil || len(links) == 0 {
		t.Fatalf("links = %v, %v", links, err)
	}

	// Stats: the counts add up to the occurrences.
	buckets, err := history.Stats(ctx, db, history.StatsQuery{From: t0, To: t0.Add(time.Hour), Interval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, bk := range buckets {
		total += bk.Raised
		if bk.Start.Before(t0) || bk.Start.Sub(t0)%(10*time.Second) != 0 {
			t.Errorf("bucket start %s", bk.Start)
		}
	}
	if total != int64(len(want)) {
		t.Errorf("stats count %d raises, want %d", total, len(want))
	}

	// Retention: everything that ended before the end goes; active ones stay.
	p, err := history.Prune(ctx, db, 3, recs[len(recs)-1].RecordedAt.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rest := listAll(t, db, history.Query{})
	for _, o := range rest {
		if !o.Active() {
			t.Errorf("cleared occurrence %s survived retention", o.ID)
		}
	}
	if p.Occurrences != int64(len(want)-len(rest)) || p.Occurrences == 0 {
		t.Errorf("pruned %+v; %d of %d left", p, len(rest), len(want))
	}
	if _, err := history.Prune(ctx, db, 2, t0); !errors.Is(err, store.ErrFenced) {
		t.Errorf("prune at an old term: %v", err)
	}
}

func itoa(n int64) string { return time.Duration(n).String() }

// The call contract across a failover: the leader writes part of the log
// and is deposed; the standby, holding its own pending items pruned to the
// head it last read, wins and writes what it holds. The history equals
// the one a single leader writes, and the old leader's late write fails.
func TestFailoverContract(t *testing.T) {
	ctx := context.Background()
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 7, Start: t0}
	items, recs := detectAll(t, s.Events())
	last := recs[len(recs)-1].Seq
	upTo := func(lo, hi int64) history.Batch {
		b := history.Batch{Seq: hi}
		for _, it := range items {
			if it.Seq > lo && it.Seq <= hi {
				b.Items = append(b.Items, it)
			}
		}
		return b
	}

	single := openDB(t)
	if _, err := history.Write(ctx, single, 1, upTo(0, last)); err != nil {
		t.Fatal(err)
	}
	want := listAll(t, single, history.Query{})

	db := openDB(t)
	cut := last / 2
	// Leader (term 1) writes up to cut in two batches.
	for _, b := range []history.Batch{upTo(0, cut/2), upTo(cut/2, cut)} {
		if _, err := history.Write(ctx, db, 1, b); err != nil {
			t.Fatal(err)
		}
	}
	// The standby read the head when it was cut/2 and pruned its pending
	// items to it; it has applied everything since.
	pending := upTo(0, last)
	pending.Prune(cut / 2)
	if len(pending.Items) == 0 || pending.Items[0].Seq <= cut/2 {
		t.Fatalf("prune left %d items from seq %d", len(pending.Items), pending.Items[0].Seq)
	}
	res, err := history.Write(ctx, db, 2, pending)
	if err != nil {
		t.Fatal(err)
	}
	if res.Head != last {
		t.Fatalf("head %d, want %d", res.Head, last)
	}
	if diff := cmp.Diff(listAll(t, db, history.Query{}), want); diff != "" {
		t.Fatalf("history after failover differs from a single leader's (-got +want):\n%s", diff)
	}
	// The deposed leader's next batch is refused and changes nothing.
	if _, err := history.Write(ctx, db, 1, upTo(cut, last)); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("late write of the old leader: %v", err)
	}
}

// TestLongestKeysClose: an alarm whose key is as long as keys get (type
// and external id of 255 characters each, on a resource alike) is stored
// whole, so its occurrence closes when it clears.
func TestLongestKeysClose(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	// The longest key: a type of slashes, each escaped as "%2F".
	typ, id := strings.Repeat("/", event.MaxIDLen), strings.Repeat("i", event.MaxIDLen)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	evs := []event.Event{
		{V: event.Version, EventID: "r", Source: "static", Kind: event.KindEntityUpsert, ObservedAt: at(1), Entity: &event.Entity{
			Category: event.CategoryResource, Type: typ, ID: id, Name: "r", State: "available"}},
		{V: event.Version, EventID: "a", Source: "nagios", Kind: event.KindEntityUpsert, ObservedAt: at(2), Entity: &event.Entity{
			Category: event.CategoryAlarm, Type: typ, ID: id, Name: "long", Severity: "CRITICAL",
			Relations: []event.Relation{{Relationship: "on", Type: typ, ID: id, Direction: event.Out}}}},
		{V: event.Version, EventID: "c", Source: "nagios", Kind: event.KindEntityDelete, ObservedAt: at(3), Entity: &event.Entity{
			Category: event.CategoryAlarm, Type: typ, ID: id}},
	}
	items, recs := detectAll(t, evs)
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: recs[len(recs)-1].Seq, Items: items}); err != nil {
		t.Fatal(err)
	}
	occ := listAll(t, db, history.Query{})
	key := graph.Vertex{Category: event.CategoryAlarm, Type: typ, ExternalID: id}.Key()
	if len(occ) != 1 || occ[0].Active() || occ[0].AlarmKey != key {
		t.Fatalf("occurrences %+v; want one, closed, under the whole key (%d characters)", occ, len(key))
	}
}

// TestKeysKeptApart raises two alarms the graph keeps apart but whose keys
// an earlier release confused, and clears the second: the history must
// keep them apart too. Ids differing only by a trailing space were one key
// under a PAD SPACE collation; a type holding "/" met another type's id
// holding it before types were escaped in keys.
func TestKeysKeptApart(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		typ1, id1, typ2, id2 string
		key1, key2           string
	}{
		{"trailing space", "nagios", "x", "nagios", "x ", "ALARM/nagios/x", "ALARM/nagios/x "},
		{"slash in the type", "k8s", "pod/x", "k8s/pod", "x", "ALARM/k8s/pod/x", "ALARM/k8s%2Fpod/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t)
			at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
			alarm := func(eventID, typ, id string, kind event.Kind, s int) event.Event {
				ev := event.Event{V: event.Version, EventID: eventID, Source: "nagios", Kind: kind, ObservedAt: at(s), Entity: &event.Entity{
					Category: event.CategoryAlarm, Type: typ, ID: id}}
				if kind == event.KindEntityUpsert {
					ev.Entity.Name, ev.Entity.Severity = "disk", "WARNING"
					ev.Entity.Relations = []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h", Direction: event.Out}}
				}
				return ev
			}
			evs := []event.Event{
				{V: event.Version, EventID: "h", Source: "static", Kind: event.KindEntityUpsert, ObservedAt: at(1), Entity: &event.Entity{
					Category: event.CategoryResource, Type: "nova.host", ID: "h", Name: "h", State: "available"}},
				alarm("a1", tc.typ1, tc.id1, event.KindEntityUpsert, 2),
				alarm("a2", tc.typ2, tc.id2, event.KindEntityUpsert, 3),
				alarm("c2", tc.typ2, tc.id2, event.KindEntityDelete, 4),
			}
			items, recs := detectAll(t, evs)
			if _, err := history.Write(ctx, db, 1, history.Batch{Seq: recs[len(recs)-1].Seq, Items: items}); err != nil {
				t.Fatal(err)
			}
			state := map[string]bool{}
			for _, o := range listAll(t, db, history.Query{}) {
				state[o.AlarmKey] = o.Active()
			}
			if len(state) != 2 || !state[tc.key1] || state[tc.key2] {
				t.Fatalf("occurrences by key (active) = %v; want %q active and %q cleared, apart", state, tc.key1, tc.key2)
			}
		})
	}
}

// stateAt applies evs through seq and returns the state then.
func stateAt(t *testing.T, evs []event.Event, seq int64) history.State {
	t.Helper()
	eng := evaluator.New(evaluator.Config{}, nil)
	var rec event.Record
	for i, ev := range evs[:seq] {
		rec = event.Record{Seq: int64(i + 1), RecordedAt: ev.ObservedAt, Event: ev}
		if _, err := eng.ApplyResult(rec); err != nil {
			t.Fatalf("apply seq %d: %v", rec.Seq, err)
		}
	}
	return history.ActiveAt(rec.Seq, rec.RecordedAt, eng.Graph())
}

// dumpHistory returns every history row, every column but the term.
func dumpHistory(t *testing.T, db *sql.DB) []string {
	t.Helper()
	var out []string
	for _, q := range append(historytest.Tables, "SELECT name, seq FROM alarm_history_head") {
		out = append(out, historytest.Rows(t, db, q)...)
	}
	return out
}

// TestReconcileLostRange: the history is written through seq 9; records
// 10..12 are past retention, so a leader writes the items after 12 with
// the state at 12 to reconcile with. What ended in the lost range is
// closed, what began in it and holds at 12 is opened, both marked
// approximate (at 12's seq and time, after 9); the rest is exact. Writing

// aroundLostRange splits items into those written before a lost range
// (seq up to head) and those after it (past base): the items of the lost
// range itself are never written.
func aroundLostRange(items []history.Item, head, base int64) (before, after []history.Item) {
	for _, it := range items {
		switch {
		case it.Seq <= head:
			before = append(before, it)
		case it.Seq > base:
			after = append(after, it)
		}
	}
	return before, after
}

// the same batch again changes nothing, even with the head lost.
func TestReconcileLostRange(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	evs := historytest.LostRangeEvents(t0)
	items, recs := detectAll(t, evs)
	const head, base, last = historytest.LostRangeHead, historytest.LostRangeBase, historytest.LostRangeLast
	before, after := aroundLostRange(items, head, base)
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: head, Items: before}); err != nil {
		t.Fatal(err)
	}
	state := stateAt(t, evs, base)
	if len(state.Alarms) != 4 || len(state.Links) != 2 {
		t.Fatalf("state at %d: %d alarms, %d links; want h1's and h2's NIC and deduced alarms, and their links", base, len(state.Alarms), len(state.Links))
	}
	b := history.Batch{Seq: last, Reconcile: &state, Items: after}
	res, err := history.Write(ctx, db, 2, b)
	if err != nil {
		t.Fatal(err)
	}
	want := history.Reconciled{Applied: true, Closed: 2, Opened: 2, Severities: 1, LinksEnded: 1, LinksStarted: 1}
	if res.Reconciled != want || res.Head != last || res.Written != len(after) {
		t.Errorf("write = %+v; want %d items written, head %d, reconciled %+v", res, len(after), last, want)
	}

	// The deduced alarm on an instance, by the instance.
	deduced := map[string]string{}
	for _, it := range items {
		if it.Kind == history.Raised && it.Alarm.Deduced {
			deduced[it.Alarm.Resource.ID] = it.Alarm.Key
		}
	}
	nic := func(h int) string { return "ALARM/prometheus/" + historytest.NICAlarmID(h) }
	at := func(seq int64) time.Time { return recs[seq-1].RecordedAt.UTC() }
	type span struct {
		Key                               string
		RaisedSeq, RaisedAfter            int64
		RaisedAt                          time.Time
		RaisedApprox                      bool
		ClearedSeq, ClearedAfter          int64
		ClearedAt                         time.Time
		ClearedApprox                     bool
		RaisedSeverity, Severity, Changes string
	}
	var got []span
	for _, o := range listAll(t, db, history.Query{}) {
		var ch []string
		for _, c := range o.SeverityChanges {
			c1 := c.From + ">" + c.To + "@" + strconv.FormatInt(c.Seq, 10)
			if c.Approx {
				c1 += " after " + strconv.FormatInt(c.AfterSeq, 10)
			}
			ch = append(ch, c1)
		}
		got = append(got, span{o.AlarmKey, o.RaisedSeq, o.RaisedAfterSeq, o.RaisedAt, o.RaisedApprox,
			o.ClearedSeq, o.ClearedAfterSeq, o.ClearedAt, o.ClearedApprox, o.RaisedSeverity, o.Severity, strings.Join(ch, ",")})
	}
	wantOcc := []span{
		// Open at the head, cleared in the lost range: closed at 12, after 9.
		{Key: nic(0), RaisedSeq: 8, RaisedAt: at(8), ClearedSeq: base, ClearedAfter: head, ClearedAt: at(base), ClearedApprox: true, RaisedSeverity: "WARNING", Severity: "WARNING"},
		{Key: deduced["i0"], RaisedSeq: 8, RaisedAt: at(8), ClearedSeq: base, ClearedAfter: head, ClearedAt: at(base), ClearedApprox: true, RaisedSeverity: "WARNING", Severity: "WARNING"},
		// Open at the head, made critical in the lost range (the change
		// is known at the base, after 9), cleared after the base.
		{Key: nic(2), RaisedSeq: 9, RaisedAt: at(9), ClearedSeq: 14, ClearedAt: at(14), RaisedSeverity: "WARNING", Severity: "CRITICAL",
			Changes: "WARNING>CRITICAL@12 after 9"},
		{Key: deduced["i2"], RaisedSeq: 9, RaisedAt: at(9), ClearedSeq: 14, ClearedAt: at(14), RaisedSeverity: "WARNING", Severity: "WARNING"},
		// Raised in the lost range, active at the base: opened at 12,
		// after 9; what follows the base is exact.
		{Key: nic(1), RaisedSeq: base, RaisedAfter: head, RaisedAt: at(base), RaisedApprox: true, RaisedSeverity: "WARNING", Severity: "CRITICAL", Changes: "WARNING>CRITICAL@13"},
		{Key: deduced["i1"], RaisedSeq: base, RaisedAfter: head, RaisedAt: at(base), RaisedApprox: true, RaisedSeverity: "WARNING", Severity: "WARNING"},
	}
	if diff := cmp.Diff(got, wantOcc); diff != "" {
		t.Errorf("occurrences (-got +want):\n%s", diff)
	}

	type period struct {
		From, To          string
		Start, StartAfter int64
		StartAt           time.Time
		StartApprox       bool
		End, EndAfter     int64
		EndAt             time.Time
		EndApprox         bool
	}
	var links []period
	for h := 0; h < 3; h++ {
		ls, err := listLinks(ctx, db, nic(h), time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			links = append(links, period{l.From, l.To, l.StartSeq, l.StartAfterSeq, l.StartAt, l.StartApprox, l.EndSeq, l.EndAfterSeq, l.EndAt, l.EndApprox})
		}
	}
	wantLinks := []period{
		{From: nic(0), To: deduced["i0"], Start: 8, StartAt: at(8), End: base, EndAfter: head, EndAt: at(base), EndApprox: true},
		{From: nic(1), To: deduced["i1"], Start: base, StartAfter: head, StartAt: at(base), StartApprox: true},
		{From: nic(2), To: deduced["i2"], Start: 9, StartAt: at(9), End: 14, EndAt: at(14)},
	}
	if diff := cmp.Diff(links, wantLinks); diff != "" {
		t.Errorf("links (-got +want):\n%s", diff)
	}

	// An approximate row says so in JSON; an exact one does not.
	for _, o := range listAll(t, db, history.Query{}) {
		j, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		approx := bytes.Contains(j, []byte(`"raised_approx":true`)) || bytes.Contains(j, []byte(`"cleared_approx":true`))
		if approx != (o.RaisedApprox || o.ClearedApprox) {
			t.Errorf("occurrence %s in JSON: %s", o.AlarmKey, j)
		}
	}

	// A failover in the middle: the new leader writes the same batch
	// again. The head says it is written; and with the head lost, the
	// reconcile finds the history agreeing with the state already.
	written := dumpHistory(t, db)
	res, err = history.Write(ctx, db, 3, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 0 || res.Reconciled.Applied {
		t.Errorf("second write = %+v; want nothing written, nothing reconciled", res)
	}
	if _, err := db.ExecContext(ctx, "UPDATE alarm_history_head SET seq = ?", head); err != nil {
		t.Fatal(err)
	}
	res, err = history.Write(ctx, db, 3, b)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reconciled.Applied || res.Reconciled.Changed() {
		t.Errorf("write with the head lost = %+v; want the state applied, changing nothing", res)
	}
	if diff := cmp.Diff(dumpHistory(t, db), written); diff != "" {
		t.Errorf("history changed by writing the salvage again (-got +want):\n%s", diff)
	}

	// A state after the batch, or without a time, is refused.
	late := state
	late.Seq = last + 1
	if _, err := history.Write(ctx, db, 3, history.Batch{Seq: last, Reconcile: &late}); err == nil {
		t.Error("a state after the batch's seq was taken")
	}
	// The deposed leader's salvage is refused by the fence.
	if _, err := history.Write(ctx, db, 2, b); !errors.Is(err, store.ErrFenced) {
		t.Errorf("salvage at an old term: %v, want ErrFenced", err)
	}
}

// TestStatsSubMicrosecondBounds: the history's times are whole
// microseconds (DATETIME(6)); a from, to or bucket boundary between two
// microseconds (a relative --from resolved from the clock is one) counts
// a raise in the bucket whose [start, start+interval) holds it, and only
// when it is in [from, to) — the server truncating such a bound to the
// microsecond before it did not.
func TestStatsSubMicrosecondBounds(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	x := t0.Add(6 * time.Second) // the raise, on the microsecond grid
	a := history.Alarm{Key: "ALARM/prometheus/a", VitrageID: 1, Type: "prometheus", ID: "a", Name: "A", Severity: "WARNING"}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 1, Items: []history.Item{{Kind: history.Raised, Seq: 1, RecordedAt: x, Alarm: a}}}); err != nil {
		t.Fatal(err)
	}
	const half = 500 * time.Nanosecond
	for _, q := range []history.StatsQuery{
		{From: x.Add(half), To: x.Add(time.Hour), Interval: time.Hour},                    // from just after it
		{From: x.Add(-time.Hour), To: x.Add(half), Interval: time.Hour},                   // to just after it
		{From: x.Add(-time.Second + half), To: x.Add(time.Minute), Interval: time.Second}, // a boundary just after it
		{From: x.Add(-time.Hour), To: x, Interval: time.Hour},                             // to at it: [from, to) leaves it out
		{From: x, To: x.Add(time.Second), Interval: time.Second},                          // from at it
	} {
		bs, err := history.Stats(ctx, db, q)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(0)
		if !x.Before(q.From) && x.Before(q.To) {
			want = 1
		}
		var n int64
		for _, b := range bs {
			n += b.Raised
			if x.Before(b.Start) || !x.Before(b.Start.Add(q.Interval)) {
				t.Errorf("stats from %s interval %s: the raise at %s counted in the bucket at %s",
					q.From.Format(time.RFC3339Nano), q.Interval, x.Format(time.RFC3339Nano), b.Start.Format(time.RFC3339Nano))
			}
		}
		if n != want {
			t.Errorf("stats [%s, %s): %d raises, want %d", q.From.Format(time.RFC3339Nano), q.To.Format(time.RFC3339Nano), n, want)
		}
	}
	// An interval of a fraction of a microsecond more cannot be counted
	// in the history's microseconds: refused, not drifted.
	if _, err := history.Stats(ctx, db, history.StatsQuery{From: x, To: x.Add(time.Hour), Interval: time.Second + half}); !errors.Is(err, history.ErrBadQuery) {
		t.Errorf("interval 1.0000005s: %v, want ErrBadQuery", err)
	}
}

// TestListBetweenMicroseconds: List and Links take a window whose ends
// fall between two microseconds as the occurrences and links active at
// some moment of it, whatever the server does with a finer time than its
// columns: here it rounds (sql_mode TIME_ROUND_FRACTIONAL), which took in
// a raise just after to and left out an alarm cleared just after from.
func TestListBetweenMicroseconds(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.NewDBRoundingTimes(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	x := t0.Add(time.Microsecond)
	a := history.Alarm{Key: "ALARM/prometheus/a", VitrageID: 1, Type: "prometheus", ID: "a", Name: "A", Severity: "WARNING"}
	b := history.Alarm{Key: "ALARM/prometheus/b", VitrageID: 2, Type: "prometheus", ID: "b", Name: "B", Severity: "WARNING"}
	// a raised at x, b at x+1µs, b causes a from x+1µs; a cleared and the
	// link ended at x+2µs.
	items := []history.Item{
		{Kind: history.Raised, Seq: 1, RecordedAt: x, Alarm: a},
		{Kind: history.Raised, Seq: 2, RecordedAt: x.Add(time.Microsecond), Alarm: b},
		{Kind: history.LinkStarted, Seq: 2, RecordedAt: x.Add(time.Microsecond), From: b.Key, To: a.Key},
		{Kind: history.Cleared, Seq: 3, RecordedAt: x.Add(2 * time.Microsecond), Alarm: a},
		{Kind: history.LinkEnded, Seq: 3, RecordedAt: x.Add(2 * time.Microsecond), From: b.Key, To: a.Key},
	}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 3, Items: items}); err != nil {
		t.Fatal(err)
	}
	const ns = time.Nanosecond
	for _, tc := range []struct {
		from, to time.Time
		want     []string
		links    int
	}{
		{x.Add(-time.Second), x.Add(900 * ns), []string{"a"}, 0},                                   // b raised after to
		{x.Add(1900 * ns), x.Add(time.Second), []string{"a", "b"}, 1},                              // a cleared after from
		{x.Add(2 * time.Microsecond), x.Add(time.Second), []string{"b"}, 0},                        // a cleared at from
		{x.Add(-time.Second), x.Add(time.Microsecond + 100*ns), []string{"a", "b"}, 1},             // b raised before to
		{x.Add(2*time.Microsecond + 100*ns), x.Add(2*time.Microsecond + 900*ns), []string{"b"}, 0}, // a cleared before from
	} {
		var got []string
		for _, o := range listAll(t, db, history.Query{From: tc.from, To: tc.to}) {
			got = append(got, o.AlarmID)
		}
		if !cmp.Equal(got, tc.want) {
			t.Errorf("List [%s, %s] = %v, want %v", tc.from.Format(time.RFC3339Nano), tc.to.Format(time.RFC3339Nano), got, tc.want)
		}
		ls, err := listLinks(ctx, db, a.Key, tc.from, tc.to)
		if err != nil || len(ls) != tc.links {
			t.Errorf("Links [%s, %s] = %d links (%v), want %d", tc.from.Format(time.RFC3339Nano), tc.to.Format(time.RFC3339Nano), len(ls), err, tc.links)
		}
	}
}

// TestReconcileRaisedAgainInLostRange: an alarm open at the head clears in
// the lost range, stays cleared past graph.DeletedRetention (its vertex,
// and its deduced alarm's, are purged) and is raised again before the
// base: the state at the base holds its key on a new vertex. The history
// must not keep the old occurrence open across the base as if it were the
// same alarm (an exact raise time that is not the alarm's at the base, the
// old vertex): the old one closes at the base and a new one opens there,
// both approximate, and so do the links of the two. What the history says
// of each alarm at the base then is what the graph rebuilt there shows.
func TestReconcileRaisedAgainInLostRange(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	var evs []event.Event
	at := t0
	add := func(ev event.Event, after time.Duration) {
		at = at.Add(after)
		ev.V, ev.EventID, ev.ObservedAt = event.Version, "raised-again-"+strconv.Itoa(len(evs)+1), at
		if ev.Source == "" {
			ev.Source = "historytest"
		}
		evs = append(evs, ev)
	}
	host := func(props map[string]string) event.Event {
		return event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.host",
			ID: historytest.HostID(0), Name: "host-0", State: "available", Properties: props}}
	}
	nic := func(sev string) event.Event {
		return event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "prometheus",
			ID: historytest.NICAlarmID(0), Name: "NIC_DOWN", Severity: sev,
			Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: historytest.HostID(0), Direction: event.Out}}}}
	}
	add(event.Event{Kind: event.KindTemplatePut, Source: "cli", Template: &event.Template{Name: "host_nic", Body: historytest.Template}}, 0)
	add(host(nil), time.Second)
	add(event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: "i0", Name: "i0", State: "ACTIVE",
		Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: historytest.HostID(0), Direction: event.In}}}}, time.Second)
	add(nic("warning"), time.Second) // 4: raised
	add(host(map[string]string{"n": "1"}), time.Second)
	const head = 5
	// Lost: cleared (6), purged by 7, raised again (8): the base.
	add(event.Event{Kind: event.KindEntityDelete, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: historytest.NICAlarmID(0)}}, time.Second)
	add(host(map[string]string{"n": "2"}), graph.DeletedRetention+2*time.Hour)
	add(nic("warning"), time.Second)
	const base = 8
	add(nic("critical"), time.Second) // 9
	const last = 9

	items, recs := detectAll(t, evs)
	before, after := aroundLostRange(items, head, base)
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: head, Items: before}); err != nil {
		t.Fatal(err)
	}
	state := stateAt(t, evs, base)
	if len(state.Alarms) != 2 || len(state.Links) != 1 {
		t.Fatalf("state at %d: %d alarms, %d links; want the NIC alarm, its deduced alarm and their link", base, len(state.Alarms), len(state.Links))
	}
	for _, a := range state.Alarms {
		for _, it := range before {
			if it.Kind == history.Raised && it.Alarm.Key == a.Key && it.Alarm.VitrageID == a.VitrageID {
				t.Fatalf("alarm %s has its old vertex %d at the base: the scenario needs it purged", a.Key, a.VitrageID)
			}
		}
	}
	b := history.Batch{Seq: last, Reconcile: &state, Items: after}
	res, err := history.Write(ctx, db, 2, b)
	if err != nil {
		t.Fatal(err)
	}
	want := history.Reconciled{Applied: true, Closed: 2, Opened: 2, LinksEnded: 1, LinksStarted: 1}
	if res.Reconciled != want {
		t.Errorf("reconciled %+v, want %+v", res.Reconciled, want)
	}

	baseAt := recs[base-1].RecordedAt.UTC()
	type span struct {
		Key                      string
		VitrageID                int64
		RaisedSeq, RaisedAfter   int64
		ClearedSeq, ClearedAfter int64
	}
	var got []span
	for _, o := range listAll(t, db, history.Query{}) {
		got = append(got, span{o.AlarmKey, o.VitrageID, o.RaisedSeq, o.RaisedAfterSeq, o.ClearedSeq, o.ClearedAfterSeq})
	}
	var wantOcc []span
	for _, it := range before {
		if it.Kind == history.Raised {
			wantOcc = append(wantOcc, span{Key: it.Alarm.Key, VitrageID: it.Alarm.VitrageID, RaisedSeq: it.Seq, ClearedSeq: base, ClearedAfter: head})
		}
	}
	for _, a := range state.Alarms {
		wantOcc = append(wantOcc, span{Key: a.Key, VitrageID: a.VitrageID, RaisedSeq: base, RaisedAfter: head})
	}
	if diff := cmp.Diff(got, wantOcc); diff != "" {
		t.Errorf("occurrences (-got +want):\n%s", diff)
	}

	// What the history says of each alarm at the base, against the graph
	// rebuilt there.
	keys := make([]string, 0, len(state.Alarms))
	for _, a := range state.Alarms {
		keys = append(keys, a.Key)
	}
	occ, err := history.At(ctx, db, keys, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range state.Alarms {
		o := occ[a.Key]
		if o.VitrageID != a.VitrageID || !o.Active() || !o.RaisedApprox || o.RaisedAt.After(baseAt) {
			t.Errorf("history of %s at seq %d: vertex %d, raised at seq %d (approx %v), active %v; the graph there has vertex %d, raised in the lost range",
				a.Key, base, o.VitrageID, o.RaisedSeq, o.RaisedApprox, o.Active(), a.VitrageID)
		}
	}

	l := state.Links[0]
	ls, err := listLinks(ctx, db, l.From, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var periods []string
	for _, p := range ls {
		periods = append(periods, strconv.FormatInt(p.StartSeq, 10)+".."+strconv.FormatInt(p.EndSeq, 10))
	}
	if want := []string{"4.." + strconv.Itoa(base), strconv.Itoa(base) + "..0"}; !cmp.Equal(periods, want) {
		t.Errorf("periods of the link %s -> %s: %v, want %v (ended and started again in the lost range)", l.From, l.To, periods, want)
	}

	// Written again, with the head lost, nothing changes.
	written := dumpHistory(t, db)
	if _, err := db.ExecContext(ctx, "UPDATE alarm_history_head SET seq = ?", head); err != nil {
		t.Fatal(err)
	}
	res, err = history.Write(ctx, db, 3, b)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reconciled.Applied || res.Reconciled.Changed() {
		t.Errorf("write with the head lost = %+v; want the state applied, changing nothing", res)
	}
	if diff := cmp.Diff(dumpHistory(t, db), written); diff != "" {
		t.Errorf("history changed by writing the salvage again (-got +want):\n%s", diff)
	}
}

// TestSeverityFilterAtTheTime: the severity filter selects the occurrences
// that had the severity at some moment of [From, To], as the graph rebuilt
// at each moment shows them, not by the severity they have now: an alarm
// that was a warning at t and turned critical later is a warning at t. The
// records of a batch share their recorded time, and the state at that time
// is the one after the last of them; over a window, what any record after
// its start gave counts, as an occurrence raised and cleared within one
// batch is listed (the log had it).
func TestSeverityFilterAtTheTime(t *testing.T) {
	for _, batch := range []int{1, 3} {
		t.Run("batch="+strconv.Itoa(batch), func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t)
			s := historytest.Scenario{Hosts: 3, InstancesPerHost: 1, Rounds: 5, Start: t0}
			evs := s.Events()
			for i := range evs {
				evs[i].ObservedAt = t0.Add(time.Duration(i/batch) * time.Second)
			}
			items, recs := detectAll(t, evs)
			last := recs[len(recs)-1].Seq
			if _, err := history.Write(ctx, db, 1, history.Batch{Seq: last, Items: items}); err != nil {
				t.Fatal(err)
			}
			// The active alarms by severity at each moment (after the
			// last record of a recorded time), from the graph.
			type moment struct {
				seq   int64
				at    time.Time
				bySev map[string][]string
			}
			var moments []moment
			// bySeq: after each record, whether or not a moment.
			bySeq := make([]map[string][]string, len(recs)+1)
			eng := evaluator.New(evaluator.Config{}, nil)
			for i, rec := range recs {
				if _, err := eng.ApplyResult(rec); err != nil {
					t.Fatal(err)
				}
				bySeq[rec.Seq] = map[string][]string{}
				for _, a := range history.ActiveAt(rec.Seq, rec.RecordedAt, eng.Graph()).Alarms {
					bySeq[rec.Seq][a.Severity] = append(bySeq[rec.Seq][a.Severity], a.Key)
				}
				if i+1 < len(recs) && recs[i+1].RecordedAt.Equal(rec.RecordedAt) {
					continue
				}
				moments = append(moments, moment{seq: rec.Seq, at: rec.RecordedAt, bySev: bySeq[rec.Seq]})
			}
			listed := func(q history.Query) []string {
				var keys []string
				for _, o := range listAll(t, db, q) {
					keys = append(keys, o.AlarmKey)
				}
				slices.Sort(keys)
				return keys
			}
			changed := false
			for i, m := range moments {
				for _, sev := range []string{"WARNING", "CRITICAL"} {
					want := slices.Clone(m.bySev[sev])
					slices.Sort(want)
					if got := listed(history.Query{From: m.at, To: m.at, Severity: sev}); !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
						t.Errorf("%s alarms at seq %d: history lists %v, the graph has %v", sev, m.seq, got, want)
					}
				}
				if i == 0 || cmp.Equal(moments[i-1].bySev["CRITICAL"], m.bySev["CRITICAL"]) {
					continue
				}
				changed = true
				// Over the two moments: what any record from the first
				// through the second gave.
				for _, sev := range []string{"WARNING", "CRITICAL"} {
					var want []string
					for seq := moments[i-1].seq; seq <= m.seq; seq++ {
						want = append(want, bySeq[seq][sev]...)
					}
					slices.Sort(want)
					want = slices.Compact(want)
					if got := listed(history.Query{From: moments[i-1].at, To: m.at, Severity: sev}); !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
						t.Errorf("%s alarms at seqs %d and %d: history lists %v, the graph has %v", sev, moments[i-1].seq, m.seq, got, want)
					}
				}
			}
			if !changed {
				t.Fatal("scenario too thin: no severity changed")
			}
		})
	}
}

// TestPruneKeepsTheChangesOfKeptOccurrences: retention removes what ended
// before its boundary; an occurrence still active keeps its severity
// changes, however old, or the history could not say which severity it
// had at a moment inside the window (nor how it came to the one it has).
func TestPruneKeepsTheChangesOfKeptOccurrences(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 1, Rounds: 5, Tail: 3, Start: t0}
	items, recs := detectAll(t, s.Events())
	last := recs[len(recs)-1]
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: last.Seq, Items: items}); err != nil {
		t.Fatal(err)
	}
	var active []history.Occurrence
	changes := 0
	for _, o := range listAll(t, db, history.Query{}) {
		if o.Active() {
			active = append(active, o)
			changes += len(o.SeverityChanges)
		}
	}
	if changes == 0 {
		t.Fatal("scenario too thin: no active occurrence changed severity")
	}
	// The boundary is after every record: all that ended goes.
	if _, err := history.Prune(ctx, db, 1, last.RecordedAt.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(listAll(t, db, history.Query{}), active); diff != "" {
		t.Errorf("active occurrences after retention (-got +want):\n%s", diff)
	}
	for _, sev := range []string{"WARNING", "CRITICAL"} {
		var want []string
		for _, o := range active {
			if o.Severity == sev {
				want = append(want, o.ID)
			}
		}
		var got []string
		for _, o := range listAll(t, db, history.Query{From: last.RecordedAt, To: last.RecordedAt, Severity: sev}) {
			got = append(got, o.ID)
		}
		if !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
			t.Errorf("%s at the last record after retention: %v, want %v", sev, got, want)
		}
	}
	// Once they clear and retention passes them, their changes go too.
	var clears []history.Item
	for i, o := range active {
		clears = append(clears, history.Item{Kind: history.Cleared, Seq: last.Seq + 1, RecordedAt: last.RecordedAt.Add(time.Duration(i+1) * time.Second),
			Alarm: history.Alarm{Key: o.AlarmKey}})
	}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: last.Seq + 1, Items: clears}); err != nil {
		t.Fatal(err)
	}
	if _, err := history.Prune(ctx, db, 1, last.RecordedAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if rows := historytest.Rows(t, db, "SELECT id FROM alarm_severity_changes"); len(rows) != 0 {
		t.Errorf("%d severity changes left after their occurrences were pruned", len(rows))
	}
}

// listLinks pages through the links of key overlapping [from, to] with a
// small page size.
func listLinks(ctx context.Context, db *sql.DB, key string, from, to time.Time) ([]history.Link, error) {
	var out []history.Link
	q := history.LinksQuery{Alarm: key, From: from, To: to, Limit: 2}
	for {
		p, err := history.Links(ctx, db, q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Links...)
		if p.Next == "" {
			return out, nil
		}
		q.After = p.Next
	}
}
