package main

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

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
	"github.com/causeway/causeway/snapshot"
)

// runCausewayCLI runs the causeway command line in-process and returns stdout and
// the error (an *exitError for bad input).
func runCausewayCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--config", "/nonexistent/causeway.yaml", "--log-level", "error"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// moment is what the live engine showed right after a batch was applied.
type moment struct {
	seq int64
	at  time.Time
	// dump is the live processor's canonical dump (engine and
	// subscriptions), as GET /v1/debug/dump answers it.
	dump    []byte
	rca     map[graph.VertexID][]byte // rcaCore of every alarm, cleared ones included
	cleared map[graph.VertexID]bool
	alarms  []byte // the topology graph of every alarm, deleted included
	// live is a copy of the live graph, for an API to serve.
	live *apitest.Graph
}

// logRig is a database whose log was written through store.Log while a live
// engine followed it, with what the engine showed at each moment, snapshots
// taken on the way and the alarm history written by a "leader".
type logRig struct {
	dsn     string
	db      *sql.DB
	log     *store.Log
	moments []moment
	// clearedAt is the seq at which each alarm (by vitrage id) last cleared.
	clearedAt map[graph.VertexID]int64
}

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func newLogRig(t *testing.T, s historytest.Scenario, batch int, snapshotEvery int64) *logRig {
	t.Helper()
	return newLogRigOf(t, s.Events(), batch, snapshotEvery, snapshot.NodeBin)
}

// newLogRigOf is newLogRig of the events evs, whose live node is captured
// in snapshots of the given encoding: a processor's (snapshot.NodeBin), or
// an engine-only one of an earlier release (snapshot.EngineGob).
func newLogRigOf(t *testing.T, evs []event.Event, batch int, snapshotEvery int64, encoding string) *logRig {
	t.Helper()
	ctx := context.Background()
	dsn := storetest.NewDB(t)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := t0
	l := store.NewLog(db, func() time.Time { clock = clock.Add(1500 * time.Millisecond); return clock })
	w, err := snapshot.NewWriter(snapshot.Config{Policy: snapshot.Policy{EveryEvents: snapshotEvery}},
		snapshot.WriterDeps{DB: db, Fence: snapshot.FenceFunc(store.CheckFence), Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	// The live state is a processor's: the engine and the subscriptions.
	m, err := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}.New()
	if err != nil {
		t.Fatal(err)
	}
	live := m.(*snapshot.Node)
	r := &logRig{dsn: dsn, db: db, log: l, clearedAt: map[graph.VertexID]int64{}}
	for start := 0; start < len(evs); start += batch {
		var entries []store.Entry
		for _, ev := range evs[start:min(start+batch, len(evs))] {
			body, err := event.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, store.Entry{Event: ev, Body: body})
		}
		app, err := l.Append(ctx, entries)
		if err != nil {
			t.Fatal(err)
		}
		var hb history.Batch
		for _, rec := range app.Batch.Records {
			res, err := live.ApplyResult(rec)
			if err != nil {
				t.Fatalf("apply seq %d: %v", rec.Seq, err)
			}
			items := history.Detect(rec, res.Engine.Changes, live.Engine.Graph())
			for _, it := range items {
				if it.Kind == history.Cleared {
					r.clearedAt[graph.VertexID(it.Alarm.VitrageID)] = rec.Seq
				}
			}
			hb.Items = append(hb.Items, items...)
			hb.Seq = rec.Seq
		}
		if _, err := history.Write(ctx, db, 1, hb); err != nil {
			t.Fatal(err)
		}
		last := app.Batch.Records[len(app.Batch.Records)-1]
		if w.Due(last.Seq, live.Engine.ChangesApplied()) {
			if _, err := w.Take(ctx, 1, func() (snapshot.Capture, error) {
				if encoding == snapshot.EngineGob {
					return snapshot.CaptureEngine(live.Engine, last.Seq, last.RecordedAt, encoding)
				}
				return snapshot.CaptureNode(live, last.Seq, last.RecordedAt, encoding)
			}); err != nil {
				t.Fatal(err)
			}
		}
		r.moments = append(r.moments, record(t, live, last))
	}
	return r
}

func record(t *testing.T, n *snapshot.Node, last event.Record) moment {
	t.Helper()
	m := moment{seq: last.Seq, at: last.RecordedAt, rca: map[graph.VertexID][]byte{}, cleared: map[graph.VertexID]bool{}}
	// What the processor's GET /v1/debug/dump answers.
	var b bytes.Buffer
	if err := n.Dump(&b); err != nil {
		t.Fatal(err)
	}
	m.dump = b.Bytes()
	g := n.Engine.Graph()
	for _, a := range g.Alarms("", true, true) {
		var r api.RCAResponse
		if !api.ComputeRCA(g, a.ID, &r) {
			t.Fatalf("no RCA of alarm %d", a.ID)
		}
		js, err := json.Marshal(rcaCore{Graph: r.Graph, RootCauses: r.RootCauses, Paths: r.Paths, PathsTruncated: r.PathsTruncated})
		if err != nil {
			t.Fatal(err)
		}
		m.rca[a.ID] = js
		m.cleared[a.ID] = a.IsDeleted
	}
	var top api.TopologyResponse
	if err := api.ComputeTopology(g, api.TopologyQuery{Category: "ALARM", All: true}, &top); err != nil {
		t.Fatal(err)
	}
	var err error
	if m.alarms, err = json.Marshal(top.Graph); err != nil {
		t.Fatal(err)
	}
	m.live = apitest.Copy(g)
	return m
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

// The acceptance test of historical RCA and replay: at every moment of a
// log, `replay --at` gives the live engine's canonical dump byte for byte,
// `rca show --at` the live RCA of every alarm (cleared ones too, long after
// they cleared), and `topology show --at` the alarm list.
func TestReplayAndRCAAtEveryMoment(t *testing.T) {
	s := historytest.Scenario{Hosts: 4, InstancesPerHost: 2, Rounds: 9, Tail: 30, Start: t0}
	r := newLogRig(t, s, 3, 20)
	if len(r.moments) < 10 {
		t.Fatalf("only %d moments", len(r.moments))
	}
	var snaps int
	if err := r.db.QueryRow("SELECT COUNT(*) FROM snapshots").Scan(&snaps); err != nil || snaps == 0 {
		t.Fatalf("%d snapshots (%v): the test must cover reconstruction from a snapshot", snaps, err)
	}
	last := r.moments[len(r.moments)-1]
	longCleared := 0
	for i, m := range r.moments {
		at := m.at.Format(time.RFC3339Nano)
		// By time at every moment; by seq at every other one.
		got, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, "--at", at, "--progress", "never")
		if err != nil {
			t.Fatalf("replay --at %s: %v", at, err)
		}
		if got != string(m.dump) {
			t.Fatalf("replay --at %s (seq %d) differs from the live dump:\ngot  %.300s\nwant %.300s", at, m.seq, got, m.dump)
		}
		if i%2 == 0 {
			got, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, "--seq", strconv.FormatInt(m.seq, 10))
			if err != nil || got != string(m.dump) {
				t.Fatalf("replay --seq %d differs from the live dump (%v)", m.seq, err)
			}
		}
		top, err := runCausewayCLI(t, "topology", "show", "--dsn", r.dsn, "--at", at, "--category", "ALARM", "--all", "-o", "json")
		if err != nil {
			t.Fatalf("topology show --at %s: %v", at, err)
		}
		var topDoc historicalTopology
		if err := json.Unmarshal([]byte(top), &topDoc); err != nil {
			t.Fatalf("topology show output: %v\n%s", err, top)
		}
		if got, _ := json.Marshal(topDoc.Graph); string(got) != string(m.alarms) || topDoc.Seq != m.seq {
			t.Fatalf("alarm list at %s (seq %d, got seq %d):\ngot  %s\nwant %s", at, m.seq, topDoc.Seq, got, m.alarms)
		}
		for id, want := range m.rca {
			out, err := runCausewayCLI(t, "rca", "show", strconv.FormatInt(int64(id), 10), "--dsn", r.dsn, "--at", at, "-o", "json")
			if err != nil {
				t.Fatalf("rca show %d --at %s: %v", id, at, err)
			}
			// The API's document (what `rca show` prints live), with the
			// graph, root causes and paths the API computes from the live
			// engine at that seq.
			var doc struct {
				api.RCAResponse
				Alarms []rcaAlarm `json:"alarms"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("rca show output: %v\n%s", err, out)
			}
			got, err := json.Marshal(rcaCore{Graph: doc.Graph, RootCauses: doc.RootCauses, Paths: doc.Paths, PathsTruncated: doc.PathsTruncated})
			if err != nil {
				t.Fatal(err)
			}
			if doc.Seq != m.seq || !doc.Historical || !doc.RecordedAt.Equal(m.at) || string(got) != string(want) {
				t.Fatalf("rca of %d at %s (seq %d, got seq %d, historical %v, recorded_at %v):\ngot  %s\nwant %s",
					id, at, m.seq, doc.Seq, doc.Historical, doc.RecordedAt, got, want)
			}
			for _, a := range doc.Alarms {
				if a.RaisedAt == nil {
					t.Errorf("rca of %d at seq %d: alarm %d has no raised time from the history", id, m.seq, a.VitrageID)
				}
				if a.Cleared != (a.ClearedAt != nil) {
					t.Errorf("rca at seq %d: alarm %d cleared=%v, cleared_at %v", m.seq, a.VitrageID, a.Cleared, a.ClearedAt)
				}
			}
			if m.cleared[id] && m.seq == last.seq && r.clearedAt[id] > 0 && r.clearedAt[id] < last.seq-20 {
				longCleared++
			}
		}
	}
	if longCleared == 0 {
		t.Error("no RCA of an alarm cleared long before the last moment was checked")
	}
}

// TestHistoricalRCABeyondTheHistoryHead: asked about a seq the alarm
// history is not written up to (its leader down), rca show says so and
// leaves the raised times out, rather than show an earlier occurrence's.
func TestHistoricalRCABeyondTheHistoryHead(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 1, Rounds: 3, Start: t0}
	r := newLogRig(t, s, 2, 1000)
	m := r.moments[len(r.moments)-1]
	var id graph.VertexID
	for a := range m.rca {
		id = a
		break
	}
	if _, err := r.db.Exec("UPDATE alarm_history_head SET seq = ?", m.seq-5); err != nil {
		t.Fatal(err)
	}
	out, err := runCausewayCLI(t, "rca", "show", strconv.FormatInt(int64(id), 10), "--dsn", r.dsn, "--seq", strconv.FormatInt(m.seq, 10), "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		HistoryHead *int64     `json:"history_head"`
		Alarms      []rcaAlarm `json:"alarms"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.HistoryHead == nil || *doc.HistoryHead != m.seq-5 || len(doc.Alarms) == 0 {
		t.Fatalf("rca show beyond the history head: %v\n%s", err, out)
	}
	for _, a := range doc.Alarms {
		if a.RaisedAt != nil || a.RaisedSeq != 0 {
			t.Errorf("alarm %d: raised %v at seq %d, from a history written to seq %d only", a.VitrageID, a.RaisedAt, a.RaisedSeq, m.seq-5)
		}
	}
}

// TestHistoricalRCAShowsLostRange: an alarm whose occurrence a salvaging
// leader opened for a lost range (raised_after_seq set) shows its raised
// time as a bound, in JSON and in the table.
func TestHistoricalRCAShowsLostRange(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 1, Rounds: 3, Start: t0}
	r := newLogRig(t, s, 2, 1000)
	m := r.moments[len(r.moments)-1]
	var id graph.VertexID
	for a := range m.rca {
		if !m.cleared[a] {
			id = a
			break
		}
	}
	if id == 0 {
		t.Fatal("no active alarm at the last moment")
	}
	res, err := r.db.Exec("UPDATE alarm_history SET raised_after_seq = raised_seq - 1 WHERE vitrage_id = ? AND cleared_seq IS NULL", id)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("mark the occurrence of %d approximate: %d rows, %v", id, n, err)
	}
	args := []string{"rca", "show", strconv.FormatInt(int64(id), 10), "--dsn", r.dsn, "--seq", strconv.FormatInt(m.seq, 10)}
	out, err := runCausewayCLI(t, append(args, "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Alarms []rcaAlarm `json:"alarms"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	for _, a := range doc.Alarms {
		if a.RaisedApprox != (graph.VertexID(a.VitrageID) == id) || a.ClearedApprox {
			t.Errorf("alarm %d: raised_approx %v, cleared_approx %v; want the raise of %d only approximate", a.VitrageID, a.RaisedApprox, a.ClearedApprox, id)
		}
	}
	if out, err = runCausewayCLI(t, args...); err != nil || !strings.Contains(out, " <=") || !strings.Contains(out, "(lost range)") {
		t.Errorf("rca table without the lost range (%v):\n%s", err, out)
	}
}

func TestHistoricalBadInput(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 1, Rounds: 3, Start: t0}
	r := newLogRig(t, s, 2, 1000)
	m := r.moments[len(r.moments)-1]
	at := m.at.Format(time.RFC3339Nano)
	// At the last moment, NIC_DOWN is raised on several hosts.
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"malformed time", []string{"rca", "show", "1", "--dsn", r.dsn, "--at", "yesterday"}, "neither RFC 3339"},
		{"malformed replay time", []string{"replay", "--dsn", r.dsn, "--at", "2026-13-01T00:00:00Z"}, "neither RFC 3339"},
		{"before the log", []string{"rca", "show", "1", "--dsn", r.dsn, "--at", t0.Add(-time.Hour).Format(time.RFC3339)}, "before the first event"},
		{"future", []string{"replay", "--dsn", r.dsn, "--at", "+48h"}, "in the future"},
		{"beyond the log", []string{"replay", "--dsn", r.dsn, "--seq", "100000"}, "beyond the end of the log"},
		{"both", []string{"replay", "--dsn", r.dsn, "--seq", "3", "--at", at}, "not both"},
		{"from without republish", []string{"replay", "--dsn", r.dsn, "--seq", "3", "--from", "-1h"}, "--republish-url only"},
		{"no moment", []string{"replay", "--dsn", r.dsn}, "needs --at or --seq"},
		{"unknown alarm", []string{"rca", "show", "NO_SUCH_ALARM", "--dsn", r.dsn, "--at", at}, "unknown alarm"},
		{"unknown vitrage id", []string{"rca", "show", "99999", "--dsn", r.dsn, "--at", at}, "unknown alarm"},
		{"ambiguous name", []string{"rca", "show", "NIC_DOWN", "--dsn", r.dsn, "--at", at}, "ambiguous"},
		{"bad format", []string{"rca", "show", "1", "--dsn", r.dsn, "--at", at, "-o", "yaml"}, "not one of"},
		{"seq 0 is not live", []string{"rca", "show", "1", "--dsn", r.dsn, "--seq", "0"}, "not a seq of the log"},
		{"topology at seq 0", []string{"topology", "show", "--dsn", r.dsn, "--seq", "0"}, "not a seq of the log"},
		{"resource without a moment", []string{"rca", "show", "NIC_DOWN", "--resource", "h1"}, "--resource names"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runCausewayCLI(t, c.args...)
			if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v (exit %d), want exit %d saying %q", err, exitCode(err), exitBadInput, c.want)
			}
		})
	}
	// A name with its resource finds the one alarm active then.
	var nic graph.VertexID
	live := evaluator.New(evaluator.Config{}, graph.DefaultNormalizer())
	recs, err := r.log.ReadRange(context.Background(), 0, int(m.seq))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		_ = live.Apply(rec)
	}
	for _, a := range live.Graph().Alarms("", true, false) {
		if a.Name == "NIC_DOWN" {
			if res, ok := live.Graph().AlarmResource(a.ID); ok && res.ExternalID == historytest.HostID(1) {
				nic = a.ID
			}
		}
	}
	if nic == 0 {
		t.Fatal("scenario: no active NIC_DOWN on h1 at the last moment")
	}
	out, err := runCausewayCLI(t, "rca", "show", "NIC_DOWN", "--resource", historytest.HostID(1), "--dsn", r.dsn, "--at", at, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Alarm int64 `json:"alarm"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || graph.VertexID(doc.Alarm) != nic {
		t.Fatalf("rca show NIC_DOWN --resource h1 = %d (%v), want %d", doc.Alarm, err, nic)
	}
	// By external id too.
	if out, err = runCausewayCLI(t, "rca", "show", historytest.NICAlarmID(1), "--dsn", r.dsn, "--at", at, "-o", "dot"); err != nil || !strings.HasPrefix(out, "digraph rca") {
		t.Fatalf("rca show by alarm id as dot: %v\n%s", err, out)
	}

	// Retention: drop the oldest events (as DropBefore would); moments
	// before the first stored event are refused clearly.
	if _, err := r.db.Exec("DELETE FROM events WHERE seq <= 4"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"replay", "--dsn", r.dsn, "--seq", "3"},
		{"replay", "--dsn", r.dsn, "--at", r.moments[0].at.Format(time.RFC3339Nano)},
		{"rca", "show", "1", "--dsn", r.dsn, "--at", at},
	} {
		_, err := runCausewayCLI(t, args...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "before the retained log") {
			t.Errorf("%v: err = %v, want exit %d: before the retained log", args, err, exitBadInput)
		}
	}
}

// rcaCore is what an RCA document says of the causes, without the moment.
type rcaCore struct {
	Graph          api.Graph  `json:"graph"`
	RootCauses     []string   `json:"root_causes"`
	Paths          [][]string `json:"paths"`
	PathsTruncated bool       `json:"paths_truncated,omitempty"`
}

// TestHistoricalBadFlags: a malformed flag value or an unknown flag of a
// historical command is bad input like any other (exit 2, naming the
// flag), not a failure (exit 1); none of these reaches the database.
func TestHistoricalBadFlags(t *testing.T) {
	dsn := "root@tcp(127.0.0.1:1)/none"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--dsn", dsn, "--seq", "abc"}, `"--seq"`},
		{[]string{"replay", "--dsn", dsn, "--seq", "3", "--format", "yaml"}, `--format: "yaml"`},
		{[]string{"replay", "--dsn", dsn, "--seq", "3", "--republish-batch", "x"}, "--republish-batch"},
		{[]string{"replay", "--dsn", dsn, "--seq", "3", "--no-such-flag"}, "--no-such-flag"},
		{[]string{"rca", "show", "1", "--dsn", dsn, "--seq", "1.5"}, `"--seq"`},
		{[]string{"topology", "show", "--dsn", dsn, "--seq", "3", "--depth", "x"}, "--depth"},
		{[]string{"topology", "show", "--dsn", dsn, "--seq", "3", "-o", "yaml"}, `--output: "yaml"`},
		{[]string{"alarms", "history", "--dsn", dsn, "--limit", "ten"}, "--limit"},
		{[]string{"alarms", "stats", "--dsn", dsn, "--interval", "5x"}, "--interval"},
		{[]string{"rca", "show", "--dsn", dsn, "--seq", "3"}, "accepts 1 arg"},
		{[]string{"replay", "--dsn", dsn, "--seq", "3", "extra"}, "unknown command"},
	} {
		_, err := runCausewayCLI(t, c.args...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v (exit %d), want exit %d naming %s", c.args, err, exitCode(err), exitBadInput, c.want)
		}
	}
}

// TestHistoricalEveryEventPastRetention: once retention has dropped every
// stored event (a log idle for longer than retention, its newest snapshot
// kept), a seq that no snapshot gives is refused as before the retained
// log (exit 2), not as beyond the end of the log (exit 1), and one that a
// snapshot gives exactly is still answered.
func TestHistoricalEveryEventPastRetention(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 1, Rounds: 4, Start: t0}
	r := newLogRig(t, s, 2, 5)
	var snap int64
	if err := r.db.QueryRow("SELECT MAX(seq) FROM snapshots").Scan(&snap); err != nil || snap == 0 {
		t.Fatalf("scenario: no snapshot (%v)", err)
	}
	head := r.moments[len(r.moments)-1].seq
	if snap >= head-1 {
		t.Fatalf("scenario: the newest snapshot (seq %d) must be well before the head (seq %d)", snap, head)
	}
	if _, err := r.db.Exec("DELETE FROM events"); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{snap - 1, snap + 1, head} {
		_, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, "--seq", strconv.FormatInt(seq, 10))
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "before the retained log") || strings.Contains(err.Error(), "seq 0") {
			t.Errorf("replay --seq %d: err = %v (exit %d), want exit %d: before the retained log", seq, err, exitCode(err), exitBadInput)
		}
	}
	var want []byte
	for _, m := range r.moments {
		if m.seq == snap {
			want = m.dump
		}
	}
	if got, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, "--seq", strconv.FormatInt(snap, 10)); err != nil || got != string(want) {
		t.Errorf("replay --seq %d, the snapshot's own seq: %v (dump equal: %v)", snap, err, got == string(want))
	}
	_, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, "--at", r.moments[0].at.Format(time.RFC3339Nano))
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "before the retained log") || strings.Contains(err.Error(), "seq 0") {
		t.Errorf("replay --at the first moment: err = %v (exit %d), want exit %d: before the retained log, naming no seq 0", err, exitCode(err), exitBadInput)
	}
}

// TestHistoricalAtTheSnapshotRetentionKept: once retention has dropped the
// events up to the snapshot it keeps, a moment from that snapshot's time
// to the next stored event's is the snapshot's state: replay, rca show and
// topology show answer it by time as by seq, rather than refuse it as
// before the retained log; a moment before the snapshot still is.
func TestHistoricalAtTheSnapshotRetentionKept(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 1, Rounds: 4, Start: t0}
	r := newLogRig(t, s, 2, 5)
	var snap int64
	if err := r.db.QueryRow("SELECT MAX(seq) FROM snapshots").Scan(&snap); err != nil || snap == 0 {
		t.Fatalf("scenario: no snapshot (%v)", err)
	}
	var m, next moment
	for i, x := range r.moments {
		if x.seq == snap && i+1 < len(r.moments) {
			m, next = x, r.moments[i+1]
		}
	}
	if m.seq == 0 {
		t.Fatalf("scenario: the newest snapshot (seq %d) is no moment before the last", snap)
	}
	if _, err := r.db.Exec("DELETE FROM events WHERE seq <= ?", snap); err != nil {
		t.Fatal(err)
	}
	between := m.at.Add(next.at.Sub(m.at) / 2)
	for _, at := range []time.Time{m.at, between} {
		got, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, "--at", at.Format(time.RFC3339Nano))
		if err != nil || got != string(m.dump) {
			t.Errorf("replay --at %s, at or after the kept snapshot (seq %d): %v (dump equal: %v)", at.Format(time.RFC3339Nano), snap, err, got == string(m.dump))
		}
		out, err := runCausewayCLI(t, "topology", "show", "--dsn", r.dsn, "--at", at.Format(time.RFC3339Nano), "-o", "json")
		var doc historicalTopology
		if err != nil || json.Unmarshal([]byte(out), &doc) != nil || doc.Seq != snap {
			t.Errorf("topology show --at %s: %v, seq %d; want seq %d", at.Format(time.RFC3339Nano), err, doc.Seq, snap)
		}
	}
	_, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, "--at", m.at.Add(-time.Microsecond).Format(time.RFC3339Nano))
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "before the retained log") {
		t.Errorf("replay --at just before the kept snapshot: err = %v (exit %d), want exit %d: before the retained log", err, exitCode(err), exitBadInput)
	}
}

// TestReplayOutputJSONIsJSON: replay -o json prints JSON or is refused:
// with --format dot it printed the Graphviz text instead, without a
// word, which a script decoding it would trip on. It is bad input (exit
// 2) naming both flags, before the database is read.
func TestReplayOutputJSONIsJSON(t *testing.T) {
	_, err := runCausewayCLI(t, "replay", "--dsn", "root@tcp(127.0.0.1:1)/none", "--seq", "3", "--format", "dot", "-o", "json")
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "--output") || !strings.Contains(err.Error(), "--format dot") {
		t.Errorf("replay --format dot -o json: %v (exit %d); want exit %d naming --output and --format dot", err, exitCode(err), exitBadInput)
	}
}

// TestHistoricalRCAWarnsBeforeHistoryRetention: rca show --at a moment
// before the alarm history's retention boundary (the log still rebuilds
// it) left the raised times of the alarms that ended before the boundary
// out without a word, as if the history never had them, where alarms
// history warns of the same window. It now says so: a warning on stderr
// with the table (exit 0: the causes are rebuilt from the log, whole),
// and complete_from and incomplete in the JSON, as alarms history -o json
// has them; a moment from the boundary on is not warned of.
func TestHistoricalRCAWarnsBeforeHistoryRetention(t *testing.T) {
	ctx := context.Background()
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 6, Start: t0}
	r := newLogRig(t, s, 4, 1000)
	all, err := history.List(ctx, r.db, history.Query{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	// An alarm active at a moment that cleared after it: pruned below,
	// its raise is what the answer at that moment misses.
	var m moment
	var id graph.VertexID
	var boundary time.Time
	for _, o := range all.Items {
		for _, x := range r.moments {
			if !o.Active() && o.RaisedSeq <= x.seq && o.ClearedSeq > x.seq && x.rca[graph.VertexID(o.VitrageID)] != nil {
				m, id, boundary = x, graph.VertexID(o.VitrageID), o.ClearedAt.Add(time.Second)
				break
			}
		}
		if id != 0 {
			break
		}
	}
	if id == 0 {
		t.Fatal("scenario: no alarm active at a moment and cleared after it")
	}
	if _, err := history.Prune(ctx, r.db, 1, boundary); err != nil {
		t.Fatal(err)
	}
	bound := boundary.UTC().Format(time.RFC3339Nano)
	args := []string{"rca", "show", strconv.FormatInt(int64(id), 10), "--dsn", r.dsn, "--at", m.at.Format(time.RFC3339Nano)}
	out, errOut, err := runCausewayCLIErr(t, append(args, "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Incomplete   bool       `json:"incomplete"`
		CompleteFrom time.Time  `json:"complete_from"`
		Alarms       []rcaAlarm `json:"alarms"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.Incomplete || !doc.CompleteFrom.Equal(boundary) || errOut != "" {
		t.Errorf("rca show --at before the history's boundary -o json: %v, stderr %q:\n%s\nwant incomplete, complete_from %s, nothing on stderr", err, errOut, out, bound)
	}
	missing := false
	for _, a := range doc.Alarms {
		missing = missing || (graph.VertexID(a.VitrageID) == id && a.RaisedAt == nil)
	}
	if !missing {
		t.Errorf("scenario: alarm %d keeps its raised time after the prune; the test shows nothing", id)
	}
	out, errOut, err = runCausewayCLIErr(t, args...)
	if err != nil || !strings.Contains(errOut, "warning: incomplete") || !strings.Contains(errOut, bound) || strings.Contains(out, "warning") {
		t.Errorf("rca show --at before the history's boundary: %v, stderr %q; want exit 0 and a warning on stderr naming %s", err, errOut, bound)
	}
	last := r.moments[len(r.moments)-1]
	if !last.at.After(boundary) {
		t.Fatalf("scenario: the last moment %s is not after the boundary %s", last.at, bound)
	}
	var lid graph.VertexID
	for a := range last.rca {
		lid = a
		break
	}
	largs := []string{"rca", "show", strconv.FormatInt(int64(lid), 10), "--dsn", r.dsn, "--at", last.at.Format(time.RFC3339Nano)}
	if out, errOut, err := runCausewayCLIErr(t, largs...); err != nil || errOut != "" {
		t.Errorf("rca show --at after the boundary: %v, stderr %q; want no warning\n%s", err, errOut, out)
	}
	if out, _, err := runCausewayCLIErr(t, append(largs, "-o", "json")...); err != nil || strings.Contains(out, `"incomplete"`) || !strings.Contains(out, `"complete_from"`) {
		t.Errorf("rca show --at after the boundary -o json: %v; want complete_from and no incomplete\n%s", err, out)
	}
}

// TestHistoricalBeforeRetentionSaysWhereToAsk: a moment before what the
// log can rebuild was refused naming only the oldest stored seq, which
// --at does not take, so the asker had to guess a time. The refusal
// (exit 2) now names the earliest moment that can be rebuilt, as --at
// takes it, and that moment is answered.
func TestHistoricalBeforeRetentionSaysWhereToAsk(t *testing.T) {
	s := historytest.Scenario{Hosts: 3, InstancesPerHost: 1, Rounds: 4, Start: t0}
	r := newLogRig(t, s, 2, 5)
	var snap int64
	if err := r.db.QueryRow("SELECT MIN(seq) FROM snapshots").Scan(&snap); err != nil || snap == 0 {
		t.Fatalf("scenario: no snapshot (%v)", err)
	}
	var m moment
	for _, x := range r.moments {
		if x.seq == snap {
			m = x
		}
	}
	if m.seq == 0 || m.seq == r.moments[0].seq {
		t.Fatalf("scenario: the oldest snapshot (seq %d) is not a later moment", snap)
	}
	if _, err := r.db.Exec("DELETE FROM events WHERE seq <= ?", snap); err != nil {
		t.Fatal(err)
	}
	earliest := m.at.UTC().Format(time.RFC3339Nano)
	for _, args := range [][]string{
		{"rca", "show", "1", "--dsn", r.dsn, "--at", r.moments[0].at.Format(time.RFC3339Nano)},
		{"rca", "show", "1", "--dsn", r.dsn, "--seq", strconv.FormatInt(r.moments[0].seq, 10)},
		{"replay", "--dsn", r.dsn, "--at", r.moments[0].at.Format(time.RFC3339Nano)},
	} {
		_, err := runCausewayCLI(t, args...)
		if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "before the retained log") || !strings.Contains(err.Error(), "--at "+earliest) {
			t.Errorf("%v: err = %v (exit %d); want exit %d, before the retained log, naming --at %s", args, err, exitCode(err), exitBadInput, earliest)
		}
	}
	if got, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, "--at", earliest); err != nil || got != string(m.dump) {
		t.Errorf("replay --at the earliest moment named: %v (the dump of seq %d: %v)", err, m.seq, got == string(m.dump))
	}
}

// TestReplayDumpIsTheProcessorsDump: replay --format dump prints the
// processor's canonical dump at that seq, byte for byte, subscriptions
// included: what GET /v1/debug/dump answers, so that a node's state can be
// checked against the log. It printed the engine's dump alone, which no
// processor's dump ever equals. A log whose snapshots are engine-only (an
// earlier release's) and whose events before them are past retention
// cannot give the subscriptions: the dump is refused saying why, while the
// graph's own outputs still answer.
func TestReplayDumpIsTheProcessorsDump(t *testing.T) {
	evs := historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 4, Start: t0}.Events()
	sub := func(id string, kind event.Kind, spec string) event.Event {
		ev := event.Event{V: event.Version, EventID: "sub-" + string(kind) + "-" + id, Source: "cli", Kind: kind,
			ObservedAt: t0, Subscription: &event.Subscription{ID: id}}
		if spec != "" {
			ev.Subscription.Spec = []byte(spec)
		}
		return ev
	}
	k := len(evs) / 3
	evs = slices.Concat(evs[:k],
		[]event.Event{sub("all", event.KindSubscriptionPut, `{"url":"http://a.example/"}`),
			sub("crit", event.KindSubscriptionPut, `{"url":"http://c.example/","filter":{"severities":["critical"]}}`)},
		evs[k:2*k], []event.Event{sub("all", event.KindSubscriptionDelete, "")}, evs[2*k:])
	r := newLogRigOf(t, evs, 3, 10, snapshot.NodeBin)
	var snaps int
	if err := r.db.QueryRow("SELECT COUNT(*) FROM snapshots").Scan(&snaps); err != nil || snaps < 2 {
		t.Fatalf("%d snapshots (%v): the test must cover reconstruction from a snapshot", snaps, err)
	}
	withSubs := 0
	for _, m := range r.moments {
		if bytes.Contains(m.dump, []byte(`"id":"crit"`)) {
			withSubs++
		}
		got, err := runCausewayCLI(t, "replay", "--dsn", r.dsn, "--seq", strconv.FormatInt(m.seq, 10))
		if err != nil || got != string(m.dump) {
			t.Fatalf("replay --seq %d differs from the processor's dump (%v):\ngot  %.200s\nwant %.200s", m.seq, err, got, m.dump)
		}
		got, err = runCausewayCLI(t, "replay", "--dsn", r.dsn, "--at", m.at.Format(time.RFC3339Nano), "--progress", "always")
		if err != nil || got != string(m.dump) {
			t.Fatalf("replay --at %s (seq %d) differs from the processor's dump (%v)", m.at.Format(time.RFC3339Nano), m.seq, err)
		}
	}
	if withSubs == 0 {
		t.Fatal("scenario: no moment has a subscription in force")
	}

	old := newLogRigOf(t, evs, 3, 10, snapshot.EngineGob)
	var snap int64
	if err := old.db.QueryRow("SELECT MAX(seq) FROM snapshots").Scan(&snap); err != nil || snap == 0 {
		t.Fatalf("scenario: no engine snapshot (%v)", err)
	}
	last := old.moments[len(old.moments)-1]
	seq := strconv.FormatInt(last.seq, 10)
	if got, err := runCausewayCLI(t, "replay", "--dsn", old.dsn, "--seq", seq); err != nil || got != string(last.dump) {
		t.Fatalf("replay --seq %s over engine snapshots with the whole log stored: %v (dump equal: %v)", seq, err, got == string(last.dump))
	}
	if _, err := old.db.Exec("DELETE FROM events WHERE seq <= ?", snap); err != nil {
		t.Fatal(err)
	}
	_, err := runCausewayCLI(t, "replay", "--dsn", old.dsn, "--seq", seq)
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "subscriptions") || !strings.Contains(err.Error(), "--format summary") {
		t.Errorf("replay --seq %s from an engine snapshot only: %v (exit %d); want exit %d saying the subscriptions cannot be rebuilt", seq, err, exitCode(err), exitBadInput)
	}
	if out, err := runCausewayCLI(t, "replay", "--dsn", old.dsn, "--seq", seq, "--format", "summary", "-o", "json"); err != nil || !strings.Contains(out, `"seq": `+seq) {
		t.Errorf("replay --format summary from an engine snapshot only: %v\n%s", err, out)
	}
}
