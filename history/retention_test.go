package history_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
)

// TestPruneMarksEarlierWindowsIncomplete: after retention pruned the
// history before a boundary, a window that starts before it lists only the
// long-active alarms; the answer must say it is incomplete, and from when
// it is complete, rather than pass for the whole truth.
func TestPruneMarksEarlierWindowsIncomplete(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	long := history.Alarm{Key: "ALARM/prometheus/long", Type: "prometheus", ID: "long", Name: "long", Severity: "WARNING"}
	brief := history.Alarm{Key: "ALARM/prometheus/brief", Type: "prometheus", ID: "brief", Name: "brief", Severity: "CRITICAL"}
	items := []history.Item{
		{Kind: history.Raised, Seq: 1, RecordedAt: at(1), Alarm: long},
		{Kind: history.Raised, Seq: 2, RecordedAt: at(2), Alarm: brief},
		{Kind: history.LinkStarted, Seq: 3, RecordedAt: at(3), From: brief.Key, To: long.Key},
		{Kind: history.LinkEnded, Seq: 4, RecordedAt: at(4), From: brief.Key, To: long.Key},
		{Kind: history.Cleared, Seq: 4, RecordedAt: at(4), Alarm: brief},
	}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 4, Items: items}); err != nil {
		t.Fatal(err)
	}
	// Before any retention every window is complete.
	p, err := history.List(ctx, db, history.Query{From: at(2), To: at(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 2 || p.Incomplete || !p.CompleteFrom.IsZero() {
		t.Fatalf("before retention: %d items, incomplete %v, complete from %s; want 2, false, zero", len(p.Items), p.Incomplete, p.CompleteFrom)
	}

	boundary := at(100).Add(123456789) // sub-microsecond: stored floored
	if _, err := history.Prune(ctx, db, 1, boundary); err != nil {
		t.Fatal(err)
	}
	want := boundary.Truncate(time.Microsecond)
	// "What was firing at 00:00:03?": the brief alarm is gone.
	p, err = history.List(ctx, db, history.Query{From: at(2), To: at(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1 || p.Items[0].AlarmKey != long.Key {
		t.Fatalf("after retention: %d items, want only the long-active alarm", len(p.Items))
	}
	if !p.Incomplete || !p.CompleteFrom.Equal(want) {
		t.Errorf("a window before the retention boundary: incomplete %v, complete from %s; want true, %s", p.Incomplete, p.CompleteFrom, want)
	}
	// No start: before the boundary too.
	if c, err := history.CoverageOf(ctx, db, time.Time{}, time.Time{}); err != nil || !c.Incomplete {
		t.Errorf("a window without a start: %+v, %v; want incomplete", c, err)
	}
	// At or after the boundary the window is complete, and says from when.
	for _, from := range []time.Time{want, at(200)} {
		p, err = history.List(ctx, db, history.Query{From: from})
		if err != nil {
			t.Fatal(err)
		}
		if p.Incomplete || !p.CompleteFrom.Equal(want) {
			t.Errorf("a window from %s: incomplete %v, complete from %s; want false, %s", from, p.Incomplete, p.CompleteFrom, want)
		}
	}
	// A shorter retention later (an earlier boundary) does not lower it:
	// the rows are gone all the same.
	if _, err := history.Prune(ctx, db, 1, at(50)); err != nil {
		t.Fatal(err)
	}
	if c, err := history.CoverageOf(ctx, db, at(60), time.Time{}); err != nil || !c.Incomplete || !c.CompleteFrom.Equal(want) {
		t.Errorf("after an earlier boundary: %+v, %v; want incomplete, complete from %s", c, err, want)
	}
	// The boundary is a fenced write: a deposed leader does not move it.
	if _, err := store.ClaimFence(ctx, db, history.FenceName, 5, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := history.Prune(ctx, db, 4, at(500)); !errors.Is(err, store.ErrFenced) {
		t.Errorf("prune at a stale term: %v, want ErrFenced", err)
	}
	if c, err := history.CoverageOf(ctx, db, at(300), time.Time{}); err != nil || c.Incomplete {
		t.Errorf("after a fenced prune: %+v, %v; want the boundary unmoved", c, err)
	}
}

// TestCoverageOfTheLog: a window before the oldest event the log retains
// is not rebuildable from it; the coverage says so.
func TestCoverageOfTheLog(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	now := t0
	l := store.NewLog(db, func() time.Time { return now })
	evs := historytest.Scenario{Hosts: 1, InstancesPerHost: 1, Rounds: 1, Start: t0}.Events()
	appendOne := func(ev event.Event) {
		t.Helper()
		body, err := event.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, []store.Entry{{Event: ev, Body: body}}); err != nil {
			t.Fatal(err)
		}
	}
	appendOne(evs[0])
	if _, err := l.MaintainPartitions(ctx, now, 2); err != nil {
		t.Fatal(err)
	}
	if c, err := history.CoverageOf(ctx, db, t0.Add(-time.Hour), time.Time{}); err != nil || c.LogTruncated || !c.LogFrom.IsZero() {
		t.Fatalf("a whole log: %+v, %v; want not truncated", c, err)
	}
	now = t0.AddDate(0, 0, 1)
	appendOne(evs[1])
	if _, err := l.DropBefore(ctx, now.Truncate(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := history.CoverageOf(ctx, db, t0, time.Time{})
	if err != nil || !c.LogTruncated || !c.LogFrom.Equal(now) {
		t.Errorf("a window before the oldest retained event: %+v, %v; want truncated, log from %s", c, err, now)
	}
	if c, err := history.CoverageOf(ctx, db, now, time.Time{}); err != nil || c.LogTruncated {
		t.Errorf("a window from the oldest retained event: %+v, %v; want not truncated", c, err)
	}
}
