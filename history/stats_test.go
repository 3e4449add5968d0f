package history_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/history"
)

// TestStatsApproxRaisesApart: an occurrence a leader opened to agree
// with the state at a salvage base (Batch.Reconcile) was raised somewhere
// in the lost range, at or before the base, not at the base's time. Stats
// must not count it as raised in the base's bucket, which would tell an
// operator of a burst of raises at the moment the history was salvaged.
func TestStatsApproxRaisesApart(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	alarm := func(id string) history.Alarm {
		return history.Alarm{Key: "ALARM/nic/" + id, VitrageID: 1, Type: "nic", ID: id, Name: id, Severity: "WARNING"}
	}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 1, Items: []history.Item{
		{Kind: history.Raised, Seq: 1, RecordedAt: t0, Alarm: alarm("a")},
	}}); err != nil {
		t.Fatal(err)
	}
	// The records 2..10 are lost; at 10, b is active and a is not.
	base := t0.Add(2*time.Hour + time.Minute)
	state := history.State{Seq: 10, RecordedAt: base, Alarms: []history.Alarm{alarm("b")}}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 11, Reconcile: &state, Items: []history.Item{
		{Kind: history.Raised, Seq: 11, RecordedAt: base, Alarm: alarm("c")},
	}}); err != nil {
		t.Fatal(err)
	}
	bs, err := history.Stats(ctx, db, history.StatsQuery{From: t0, To: t0.Add(3 * time.Hour), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// a at t0; c at the base, exactly; b at or before the base, apart.
	want := []history.Bucket{
		{Start: t0, End: t0.Add(time.Hour), Type: "nic", Severity: "WARNING", Raised: 1},
		{Start: t0.Add(2 * time.Hour), End: t0.Add(3 * time.Hour), Type: "nic", Severity: "WARNING", Raised: 1, RaisedApprox: 1},
	}
	if diff := cmp.Diff(bs, want); diff != "" {
		t.Errorf("buckets (-got +want):\n%s", diff)
	}
}

// TestStatsLastBucketEnds: the window's end cuts its last bucket short;
// the bucket says where it ends, or a raise after the window's end but
// inside the bucket's interval would look counted (and a rate per
// interval computed from it would be too low).
func TestStatsLastBucketEnds(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	a := history.Alarm{Key: "ALARM/nic/a", VitrageID: 1, Type: "nic", ID: "a", Name: "a", Severity: "WARNING"}
	b := a
	b.Key, b.ID = "ALARM/nic/b", "b"
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 2, Items: []history.Item{
		{Kind: history.Raised, Seq: 1, RecordedAt: t0.Add(80 * time.Minute), Alarm: a},
		{Kind: history.Raised, Seq: 2, RecordedAt: t0.Add(100 * time.Minute), Alarm: b},
	}}); err != nil {
		t.Fatal(err)
	}
	to := t0.Add(90 * time.Minute)
	bs, err := history.Stats(ctx, db, history.StatsQuery{From: t0, To: to, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(bs)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["raised"] != float64(1) || got[0]["end"] != to.Format(time.RFC3339Nano) {
		t.Errorf("buckets %s: want one, of 1 raise, ending at %s", js, to.Format(time.RFC3339Nano))
	}
}
