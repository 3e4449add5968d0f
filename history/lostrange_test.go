package history_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/history"
)

// TestWindowInLostRangeIsApprox: a window that overlaps a lost range (the
// records a leader salvaged past, Batch.Reconcile) is answered from a
// history made to agree with the state at the base: an alarm raised and
// cleared inside is missing, one that cleared inside shows active until
// the base. Such a window must say it is approximate, and which range;
// one before the range (up to the last time the history held at its
// head) or from the base's time on is exact and must not.
func TestWindowInLostRangeIsApprox(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	alarm := func(id string) history.Alarm {
		return history.Alarm{Key: "ALARM/nic/" + id, VitrageID: 1, Type: "nic", ID: id, Name: id, Severity: "WARNING"}
	}
	headAt := t0.Add(10 * time.Minute)
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 2, Items: []history.Item{
		{Kind: history.Raised, Seq: 1, RecordedAt: t0, Alarm: alarm("a")},
		{Kind: history.Raised, Seq: 2, RecordedAt: headAt, Alarm: alarm("b")},
	}}); err != nil {
		t.Fatal(err)
	}
	// The records 3..10 are lost; at 10, a and b are still active: the
	// salvage changes no row.
	base := t0.Add(2 * time.Hour)
	state := history.State{Seq: 10, RecordedAt: base, Alarms: []history.Alarm{alarm("a"), alarm("b")}}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 10, Reconcile: &state}); err != nil {
		t.Fatal(err)
	}
	// As the JSON says it (a type of the test's, so that the test
	// compiled, and failed, before history had one).
	type lostRange struct {
		AfterSeq int64     `json:"after_seq"`
		Seq      int64     `json:"seq"`
		AfterAt  time.Time `json:"after_at"`
		At       time.Time `json:"at"`
	}
	type cov struct {
		Approx     bool        `json:"approx"`
		LostRanges []lostRange `json:"lost_ranges"`
	}
	lost := []lostRange{{AfterSeq: 2, Seq: 10, AfterAt: headAt, At: base}}
	for _, c := range []struct {
		name     string
		from, to time.Time
		want     []lostRange
	}{
		{"inside", t0.Add(time.Hour), t0.Add(90 * time.Minute), lost},
		{"across its start", t0, t0.Add(time.Hour), lost},
		{"ending at its start", t0, headAt, lost},
		{"across its end", t0.Add(time.Hour), base.Add(time.Hour), lost},
		{"ending just before the base", t0.Add(time.Hour), base.Add(-time.Microsecond), lost},
		{"unbounded", time.Time{}, time.Time{}, lost},
		{"before", t0.Add(-time.Hour), headAt.Add(-time.Microsecond), nil},
		{"from the base on", base, base.Add(time.Hour), nil},
	} {
		p, err := history.List(ctx, db, history.Query{From: c.from, To: c.to})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var got cov
		if err := json.Unmarshal(js, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, cov{Approx: c.want != nil, LostRanges: c.want}); diff != "" {
			t.Errorf("%s: window %s..%s (-got +want):\n%s\n%s", c.name, c.from, c.to, diff, js)
		}
	}
}

// TestLostRangesRecordedBeforeBackfilled: migration 15 records the lost
// ranges salvaged before it from their approximate rows, as a salvage
// now records its own: the same range, the base's time, and the latest
// time the history held at the old head.
func TestLostRangesRecordedBeforeBackfilled(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	alarm := func(id string) history.Alarm {
		return history.Alarm{Key: "ALARM/nic/" + id, VitrageID: 1, Type: "nic", ID: id, Name: id, Severity: "WARNING"}
	}
	headAt := t0.Add(10 * time.Minute)
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 3, Items: []history.Item{
		{Kind: history.Raised, Seq: 1, RecordedAt: t0, Alarm: alarm("a")},
		{Kind: history.Raised, Seq: 2, RecordedAt: t0.Add(time.Minute), Alarm: alarm("b")},
		{Kind: history.Cleared, Seq: 3, RecordedAt: headAt, Alarm: alarm("b")},
	}}); err != nil {
		t.Fatal(err)
	}
	// Lost 4..10: a cleared, c raised.
	state := history.State{Seq: 10, RecordedAt: t0.Add(2 * time.Hour), Alarms: []history.Alarm{alarm("c")}}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 10, Reconcile: &state}); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		var after, seq int64
		var afterAt, at time.Time
		if err := db.QueryRowContext(ctx, "SELECT after_seq, seq, after_at, at FROM alarm_history_lost_ranges").Scan(&after, &seq, &afterAt, &at); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(after, seq, afterAt.UTC(), at.UTC())
	}
	recorded := read()
	if want := fmt.Sprint(3, 10, headAt, state.RecordedAt); recorded != want {
		t.Errorf("recorded %s; want %s", recorded, want)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM alarm_history_lost_ranges"); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../internal/store/migrations/0015_history_lost_ranges.sql")
	if err != nil {
		t.Fatal(err)
	}
	var stmt strings.Builder
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "--") {
			continue
		}
		stmt.WriteString(l + "\n")
		if strings.HasSuffix(l, ";") {
			if _, err := db.ExecContext(ctx, strings.TrimSuffix(stmt.String(), ";\n")); err != nil {
				t.Fatalf("%s: %v", stmt.String(), err)
			}
			stmt.Reset()
		}
	}
	if got := read(); got != recorded {
		t.Errorf("backfilled %s; want %s", got, recorded)
	}
}

// TestPruneDropsLostRangesBeforeItsBoundary: a lost range that ended
// before the retention boundary qualifies only moments a window already
// says are incomplete; Prune kept its row for ever (one per salvage).
// One that ends after the boundary stays.
func TestPruneDropsLostRangesBeforeItsBoundary(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	alarm := history.Alarm{Key: "ALARM/nic/a", VitrageID: 1, Type: "nic", ID: "a", Name: "a", Severity: "WARNING"}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 1, Items: []history.Item{
		{Kind: history.Raised, Seq: 1, RecordedAt: t0, Alarm: alarm},
	}}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		seq int64
		at  time.Time
	}{{10, t0.Add(time.Hour)}, {20, t0.Add(3 * time.Hour)}} {
		state := history.State{Seq: b.seq, RecordedAt: b.at, Alarms: []history.Alarm{alarm}}
		if _, err := history.Write(ctx, db, 1, history.Batch{Seq: b.seq, Reconcile: &state}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := history.Prune(ctx, db, 1, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	rows, err := db.QueryContext(ctx, "SELECT seq FROM alarm_history_lost_ranges ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs) != "[20]" {
		t.Errorf("lost ranges left after the prune, by base seq: %v; want [20] (the one ending before the boundary deleted)", seqs)
	}
}
