package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// `alarms history` pages through what the leader wrote, with filters;
// `alarms stats` counts the same occurrences.
func TestAlarmsHistoryAndStats(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 6, Start: t0}
	r := newLogRig(t, s, 4, 1000)
	from := t0.Add(-time.Minute).Format(time.RFC3339)
	to := r.moments[len(r.moments)-1].at.Add(time.Minute).Format(time.RFC3339)

	want, err := history.List(context.Background(), r.db, history.Query{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Items) < 5 {
		t.Fatalf("scenario too small: %d occurrences", len(want.Items))
	}
	var got []history.Occurrence
	page := ""
	for pages := 0; ; pages++ {
		args := []string{"alarms", "history", "--dsn", r.dsn, "--from", from, "--to", to, "--limit", "3", "-o", "json"}
		if page != "" {
			args = append(args, "--page", page)
		}
		out, err := runCausewayCLI(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			history.Page
			Head int64 `json:"history_head"`
		}
		if err := json.Unmarshal([]byte(out), &p); err != nil || p.Head == 0 {
			t.Fatalf("%v (history_head %d)\n%s", err, p.Head, out)
		}
		got = append(got, p.Items...)
		if p.Next == "" {
			break
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		page = p.Next
	}
	if len(got) != len(want.Items) {
		t.Fatalf("paged %d occurrences, want %d", len(got), len(want.Items))
	}
	for i := range got {
		if got[i].ID != want.Items[i].ID {
			t.Fatalf("occurrence %d: %s, want %s", i, got[i].ID, want.Items[i].ID)
		}
	}

	// The table's next-page hint names the window it resolved, so that a
	// relative --from/--to does not move between pages.
	out, err := runCausewayCLI(t, "alarms", "history", "--dsn", r.dsn, "--from", from, "--to", to, "--limit", "1", "--type", "prometheus")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "--from "+from+" --to "+to+" --type prometheus --limit 1") {
		t.Errorf("next-page hint without the window and filters:\n%s", out)
	}

	// Filters and the table form.
	out, err = runCausewayCLI(t, "alarms", "history", "--dsn", r.dsn, "--from", from, "--to", to, "--type", "prometheus", "--resource", "h0")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[0], "RAISED") || !regexp.MustCompile(`^\(history written to seq \d+\)$`).MatchString(lines[len(lines)-1]) {
		t.Fatalf("table (rows, a blank line, the history's head):\n%s", out)
	}
	for _, l := range lines[1 : len(lines)-2] {
		if !strings.Contains(l, "NIC_DOWN") || !strings.Contains(l, "nova.host/h0") {
			t.Errorf("filtered row %q", l)
		}
	}

	// Stats add up to the occurrences.
	out, err = runCausewayCLI(t, "alarms", "stats", "--dsn", r.dsn, "--from", from, "--to", to, "--interval", "10s", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var stats statsDoc
	if err := json.Unmarshal([]byte(out), &stats); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, b := range stats.Buckets {
		n += b.Raised
	}
	if n != int64(len(want.Items)) {
		t.Errorf("stats count %d, want %d", n, len(want.Items))
	}

	for _, args := range [][]string{
		{"alarms", "history", "--dsn", r.dsn, "--from", "last week"},
		{"alarms", "history", "--dsn", r.dsn, "--from", to, "--to", from},
		{"alarms", "history", "--dsn", r.dsn, "--page", "%%%"},
		{"alarms", "history", "--dsn", r.dsn, "--limit", "0"},
		{"alarms", "stats", "--dsn", r.dsn, "--interval", "1ms"},
		{"alarms", "stats", "--dsn", r.dsn, "--from", "-1h", "--interval", "1ms"},
		{"alarms", "stats", "--dsn", r.dsn, "--interval", "1.0000005s"},
	} {
		if _, err := runCausewayCLI(t, args...); exitCode(err) != exitBadInput {
			t.Errorf("%v: %v, want exit %d", args, err, exitBadInput)
		}
	}
}

// replay's other outputs: the summary agrees with the live graph, DOT is a
// digraph, and a progress bar, when asked for, goes to stderr only.
func TestReplayOutputs(t *testing.T) {
	s := historytest.Scenario{Hosts: 2, InstancesPerHost: 2, Rounds: 3, Start: t0}
	r := newLogRig(t, s, 5, 1000)
	m := r.moments[len(r.moments)-1]
	seq := "--seq=" + itoa(m.seq)
	out, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, seq, "--format", "summary", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var sum summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Seq != m.seq || sum.Vertices["RESOURCE"] != 2+2*2 || sum.Replayed != m.seq {
		t.Errorf("summary %+v", sum)
	}
	if out, err = runCausewayCLI(t, "replay", "--dsn", r.dsn, seq, "--format", "dot"); err != nil || !strings.HasPrefix(out, "digraph topology {") {
		t.Errorf("dot: %v\n%.200s", err, out)
	}
	if out, err = runCausewayCLI(t, "replay", "--dsn", r.dsn, seq, "--format", "summary"); err != nil || !strings.Contains(out, "events replayed") {
		t.Errorf("summary table: %v\n%s", err, out)
	}
	root := newRootCmd()
	var stdout, stderr strings.Builder
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"--config", "/nonexistent", "replay", "--dsn", r.dsn, seq, "--progress", "always"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != string(m.dump) || !strings.Contains(stderr.String(), "replay [") {
		t.Errorf("with a progress bar: stdout equal %v, stderr %q", stdout.String() == string(m.dump), stderr.String())
	}
}

// `alarms history` shows the rows a salvaging leader wrote for a lost
// range as such: the time as a bound ("<=T (lost range)"), the seqs it
// may have happened in, and a note; JSON says raised_approx or
// cleared_approx. Rows the log still gave stay exact.
func TestAlarmsHistoryShowsLostRange(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const head, base, last = historytest.LostRangeHead, historytest.LostRangeBase, historytest.LostRangeLast
	eng := evaluator.New(evaluator.Config{}, graph.DefaultNormalizer())
	var before, after []history.Item
	var state history.State
	var baseAt time.Time
	for i, ev := range historytest.LostRangeEvents(t0) {
		rec := event.Record{Seq: int64(i + 1), RecordedAt: ev.ObservedAt, Event: ev}
		res, err := eng.ApplyResult(rec)
		if err != nil {
			t.Fatalf("apply seq %d: %v", rec.Seq, err)
		}
		items := history.Detect(rec, res.Changes, eng.Graph())
		switch {
		case rec.Seq <= head:
			before = append(before, items...)
		case rec.Seq == base:
			state, baseAt = history.ActiveAt(base, rec.RecordedAt, eng.Graph()), rec.RecordedAt
		case rec.Seq > base:
			after = append(after, items...)
		}
	}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: head, Items: before}); err != nil {
		t.Fatal(err)
	}
	if _, err := history.Write(ctx, db, 2, history.Batch{Seq: last, Reconcile: &state, Items: after}); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Add(-time.Minute).Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339)

	out, err := runCausewayCLI(t, "alarms", "history", "--dsn", dsn, "--from", from, "--to", to, "--type", "prometheus")
	if err != nil {
		t.Fatal(err)
	}
	bound := "<=" + baseAt.Format(time.RFC3339) + " (lost range)"
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		for h := 0; h < 3; h++ {
			if strings.Contains(l, " "+historytest.NICAlarmID(h)+" ") {
				rows[historytest.NICAlarmID(h)] = l
			}
		}
	}
	lostSeqs := regexp.MustCompile(`\s10\.\.12(\s|$)`)
	for id, want := range map[string]struct{ lost, raisedLost bool }{
		"nic-h0": {lost: true},                   // cleared in the lost range
		"nic-h1": {lost: true, raisedLost: true}, // raised in it
		"nic-h2": {},                             // exact
	} {
		l := rows[id]
		if l == "" {
			t.Errorf("no row for %s:\n%s", id, out)
			continue
		}
		if got := strings.Contains(l, bound) && lostSeqs.MatchString(l); got != want.lost {
			t.Errorf("row of %s shows a lost range %v, want %v: %q", id, got, want.lost, l)
		}
		if want.lost && strings.HasPrefix(l, "<=") != want.raisedLost {
			t.Errorf("row of %s: the raise shown as a bound %v, want %v: %q", id, !want.raisedLost, want.raisedLost, l)
		}
	}
	if l := rows["nic-h2"]; !strings.Contains(l, "WARNING->CRITICAL@10..12 (lost range)") {
		t.Errorf("row of nic-h2 does not show its severity change in the lost range: %q", l)
	}
	if !strings.Contains(out, "(lost range: ") {
		t.Errorf("no note on the lost range:\n%s", out)
	}

	out, err = runCausewayCLI(t, "alarms", "history", "--dsn", dsn, "--from", from, "--to", to, "--type", "prometheus", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var p history.Page
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	approx := map[string][2]bool{}
	for _, o := range p.Items {
		approx[o.AlarmID] = [2]bool{o.RaisedApprox, o.ClearedApprox}
	}
	want := map[string][2]bool{"nic-h0": {false, true}, "nic-h1": {true, false}, "nic-h2": {false, false}}
	if diff := cmp.Diff(approx, want); diff != "" {
		t.Errorf("approximate (raised, cleared) by alarm in JSON (-got +want):\n%s", diff)
	}
}

// TestUpperBoundRoundsUp checks that a time known only as a bound is shown
// in whole seconds rounded up: the bound must still hold.
func TestUpperBoundRoundsUp(t *testing.T) {
	at := time.Date(2026, 5, 4, 10, 0, 11, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{at, "<=2026-05-04T10:00:11Z (lost range)"},
		{at.Add(500 * time.Millisecond), "<=2026-05-04T10:00:12Z (lost range)"},
		{at.Add(time.Nanosecond), "<=2026-05-04T10:00:12Z (lost range)"},
	} {
		if got := upperBound(tc.t); got != tc.want {
			t.Errorf("upperBound(%s) = %q; want %q", tc.t.Format(time.RFC3339Nano), got, tc.want)
		}
	}
}

// The tables print the times the JSON says, to the sub-second: a raise
// recorded at 10:00:07.5 printed as 10:00:07 would send an operator who
// pastes it into --at to a state before the alarm was raised.
func TestTablesKeepSubSecondTimes(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 1, Rounds: 4, Start: t0}
	r := newLogRig(t, s, 2, 1000) // a batch every 1.5 s: half the times end in .5
	from := t0.Add(-time.Minute).Format(time.RFC3339)
	to := r.moments[len(r.moments)-1].at.Add(time.Minute).Format(time.RFC3339)
	args := []string{"alarms", "history", "--dsn", r.dsn, "--from", from, "--to", to, "--type", "prometheus"}
	js, err := runCausewayCLI(t, append(args, "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var p history.Page
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatal(err)
	}
	table, err := runCausewayCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	fractional := 0
	for _, o := range p.Items {
		if o.RaisedAt.Nanosecond() != 0 {
			fractional++
		}
		if !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(o.RaisedAt.Format(time.RFC3339Nano))+` .* `+o.AlarmID+` `).MatchString(table) ||
			(!o.Active() && !strings.Contains(table, o.ClearedAt.Format(time.RFC3339Nano)+" ")) {
			t.Errorf("occurrence %s raised %s cleared %s (JSON) is not in the table so:\n%s", o.AlarmID,
				o.RaisedAt.Format(time.RFC3339Nano), o.ClearedAt.Format(time.RFC3339Nano), table)
		}
		// The time the table prints, given back as --at, shows the alarm
		// raised.
		if o.Active() {
			out, err := runCausewayCLI(t, "rca", "show", o.AlarmID, "--dsn", r.dsn, "--at", o.RaisedAt.Format(time.RFC3339Nano))
			if err != nil || !strings.Contains(out, o.RaisedAt.Format(time.RFC3339Nano)+" ") {
				t.Errorf("rca show %s --at its raise: %v\n%s", o.AlarmID, err, out)
			}
		}
	}
	if fractional == 0 {
		t.Fatal("scenario: no raise at a fractional second")
	}

	// Stats: the buckets' starts as the JSON has them.
	sargs := []string{"alarms", "stats", "--dsn", r.dsn, "--from", t0.Add(500 * time.Millisecond).Format(time.RFC3339Nano), "--to", to, "--interval", "3s"}
	js, err = runCausewayCLI(t, append(sargs, "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var sdoc statsDoc
	if err := json.Unmarshal([]byte(js), &sdoc); err != nil || len(sdoc.Buckets) == 0 {
		t.Fatalf("stats: %v\n%s", err, js)
	}
	if table, err = runCausewayCLI(t, sargs...); err != nil {
		t.Fatal(err)
	}
	for _, b := range sdoc.Buckets {
		if !strings.Contains(table, b.Start.Format(time.RFC3339Nano)+" ") {
			t.Errorf("bucket %s (JSON) is not in the table:\n%s", b.Start.Format(time.RFC3339Nano), table)
		}
	}
}

// TestShellQuote: the next-page hint of alarms history quotes a filter's
// value so that bash reads it back as it was given, and, since the hint is
// a cell of the table, with printable characters alone: a tab or a line
// break in the value would otherwise get the whole hint quoted by row (or
// shift it) and the command printed would no longer run.
func TestShellQuote(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, s := range []string{"nova.host", "it's", "a b", "a\tb", "two\nlines", "x\u2028y", "café\u2028", `q"\'$x`, "tab\t'quote'"} {
		q := shellQuote(s)
		if printable(q) != q {
			t.Errorf("shellQuote(%q) = %q: not printable", s, q)
		}
		// Whatever the locale: a fresh machine's shell may have none.
		for _, locale := range []string{"C", "C.UTF-8"} {
			cmd := exec.Command(bash, "-c", "printf %s "+q)
			cmd.Env = append(os.Environ(), "LC_ALL="+locale)
			out, err := cmd.Output()
			if err != nil || string(out) != s {
				t.Errorf("shellQuote(%q) = %s: bash in locale %s reads %q (%v)", s, q, locale, out, err)
			}
		}
	}
}

// runCausewayCLIErr is runCausewayCLI that returns stderr too.
func runCausewayCLIErr(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--config", "/nonexistent/causeway.yaml", "--log-level", "error"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// statsDoc is the JSON of `alarms stats`.
type statsDoc struct {
	From     time.Time        `json:"from"`
	To       time.Time        `json:"to"`
	Interval string           `json:"interval"`
	Head     *int64           `json:"history_head"`
	Buckets  []history.Bucket `json:"buckets"`
	history.Coverage
}

// TestAlarmsHistoryWarnsBeforeRetention: after retention pruned the
// history, `alarms history` and `alarms stats` over a window that starts
// before the boundary warn on stderr that it is incomplete; a window from
// the boundary on does not. Their JSON says so in its fields, and its
// stderr stays quiet: that of stats was a bare array of buckets, which had
// no room for it, so a script reading it could not tell.
func TestAlarmsHistoryWarnsBeforeRetention(t *testing.T) {
	ctx := context.Background()
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 6, Start: t0}
	r := newLogRig(t, s, 4, 1000)
	all, err := history.List(ctx, r.db, history.Query{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var cleared *history.Occurrence
	for i := range all.Items {
		if o := &all.Items[i]; !o.Active() {
			cleared = o
			break
		}
	}
	if cleared == nil {
		t.Fatal("no cleared occurrence in the history")
	}
	boundary := cleared.ClearedAt.Add(time.Second)
	if _, err := history.Prune(ctx, r.db, 1, boundary); err != nil {
		t.Fatal(err)
	}
	from, to := cleared.RaisedAt.Format(time.RFC3339Nano), cleared.ClearedAt.Format(time.RFC3339Nano)
	bound := boundary.UTC().Format(time.RFC3339Nano)

	for _, cmd := range [][]string{
		{"alarms", "history", "--dsn", r.dsn, "--from", from, "--to", to},
		{"alarms", "stats", "--dsn", r.dsn, "--from", from, "--to", to},
	} {
		out, errOut, err := runCausewayCLIErr(t, cmd...)
		if err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
		if !strings.Contains(errOut, "warning: incomplete") || !strings.Contains(errOut, bound) {
			t.Errorf("%v: stderr %q; want a warning that the window is incomplete before %s", cmd, errOut, bound)
		}
		if strings.Contains(out, "warning") {
			t.Errorf("%v: the warning is on stdout:\n%s", cmd, out)
		}
	}
	out, errOut, err := runCausewayCLIErr(t, "alarms", "history", "--dsn", r.dsn, "--from", from, "--to", to, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Incomplete   bool      `json:"incomplete"`
		CompleteFrom time.Time `json:"complete_from"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || !p.Incomplete || !p.CompleteFrom.Equal(boundary) || errOut != "" {
		t.Errorf("-o json: incomplete %v, complete_from %s (%v), stderr %q; want true, %s, nothing", p.Incomplete, p.CompleteFrom, err, errOut, bound)
	}
	out, errOut, err = runCausewayCLIErr(t, "alarms", "stats", "--dsn", r.dsn, "--from", from, "--to", to, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var sd statsDoc
	if err := json.Unmarshal([]byte(out), &sd); err != nil || !sd.Incomplete || !sd.CompleteFrom.Equal(boundary) || sd.Buckets == nil ||
		sd.Head == nil || sd.Interval != "1h0m0s" || sd.From.Format(time.RFC3339Nano) != from || errOut != "" {
		t.Errorf("stats -o json: %v, stderr %q:\n%s\nwant an object with its buckets, history_head, interval 1h0m0s, from %s, incomplete, complete_from %s; nothing on stderr",
			err, errOut, out, from, bound)
	}
	later := boundary.Add(time.Hour).Format(time.RFC3339Nano)
	out, _, err = runCausewayCLIErr(t, "alarms", "stats", "--dsn", r.dsn, "--from", bound, "--to", later, "-o", "json")
	sd = statsDoc{}
	if err != nil || json.Unmarshal([]byte(out), &sd) != nil || sd.Incomplete || !sd.CompleteFrom.Equal(boundary) || sd.Buckets == nil {
		t.Errorf("stats -o json from the boundary: %v\n%s\nwant complete (no incomplete), complete_from %s, buckets", err, out, bound)
	}
	if strings.Contains(out, `"incomplete"`) {
		t.Errorf("stats -o json from the boundary says incomplete:\n%s", out)
	}

	for _, cmd := range [][]string{
		{"alarms", "history", "--dsn", r.dsn, "--from", bound, "--to", later},
		{"alarms", "stats", "--dsn", r.dsn, "--from", bound, "--to", later},
	} {
		if _, errOut, err := runCausewayCLIErr(t, cmd...); err != nil || errOut != "" {
			t.Errorf("%v: stderr %q, %v; want no warning", cmd, errOut, err)
		}
	}
}

// TestAlarmsHistoryWarnsInLostRange: `alarms history` and `alarms stats`
// over a window that overlaps a lost range (salvaged by a leader: the
// history there is the state at its base) warn on stderr that it is
// approximate, naming the seqs; their JSON says "approx": true with the
// range. A window from the base's time on does not.
func TestAlarmsHistoryWarnsInLostRange(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a := history.Alarm{Key: "ALARM/nic/a", VitrageID: 1, Type: "nic", ID: "a", Name: "a", Severity: "WARNING"}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 1, Items: []history.Item{
		{Kind: history.Raised, Seq: 1, RecordedAt: t0, Alarm: a},
	}}); err != nil {
		t.Fatal(err)
	}
	base := t0.Add(2 * time.Hour)
	state := history.State{Seq: 9, RecordedAt: base, Alarms: []history.Alarm{a}}
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 9, Reconcile: &state}); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Add(time.Hour).Format(time.RFC3339), t0.Add(90*time.Minute).Format(time.RFC3339)
	for _, cmd := range [][]string{
		{"alarms", "history", "--dsn", dsn, "--from", from, "--to", to},
		{"alarms", "stats", "--dsn", dsn, "--from", from, "--to", to},
	} {
		_, errOut, err := runCausewayCLIErr(t, cmd...)
		if err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
		if !strings.Contains(errOut, "warning: approximate") || !strings.Contains(errOut, "seqs 2..9") {
			t.Errorf("%v: stderr %q; want a warning that the window overlaps the lost range 2..9", cmd, errOut)
		}
		out, errOut, err := runCausewayCLIErr(t, append(cmd, "-o", "json")...)
		if err != nil {
			t.Fatalf("%v -o json: %v", cmd, err)
		}
		var doc struct {
			Approx     bool `json:"approx"`
			LostRanges []struct {
				AfterSeq int64 `json:"after_seq"`
				Seq      int64 `json:"seq"`
			} `json:"lost_ranges"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.Approx || len(doc.LostRanges) != 1 ||
			doc.LostRanges[0].AfterSeq != 1 || doc.LostRanges[0].Seq != 9 || errOut != "" {
			t.Errorf("%v -o json: %v, stderr %q:\n%s\nwant approx and the lost range after 1 through 9", cmd, err, errOut, out)
		}
		later := append(cmd[:len(cmd)-4:len(cmd)-4], "--from", base.Format(time.RFC3339), "--to", base.Add(time.Hour).Format(time.RFC3339))
		if _, errOut, err := runCausewayCLIErr(t, later...); err != nil || strings.Contains(errOut, "approximate") {
			t.Errorf("%v: %v, stderr %q; want no warning from the base on", later, err, errOut)
		}
	}
}
