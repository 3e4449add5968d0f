package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/history/historytest"
	"github.com/causeway/causeway/snapshot"
)

// TestSnapshotsCommands lists a rig's snapshots after marking one as
// written before the semantics column and one as stale, then prunes the
// stale one: a dry run first, then --yes, and a refusal once the log no
// longer starts at seq 1.
func TestSnapshotsCommands(t *testing.T) {
	r := newLogRigOf(t, historytest.Scenario{Hosts: 3, InstancesPerHost: 2, Rounds: 6, Tail: 10, Start: t0}.Events(), 3, 6, snapshot.EngineGob)
	var ids []int64
	rows, err := r.db.Query("SELECT id FROM snapshots ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil || len(ids) < 3 {
		t.Fatalf("%d snapshots (%v); the test needs 3", len(ids), err)
	}
	unknown, stale, stale2 := ids[0], ids[1], ids[2]
	mark := func(id int64, semantics any) {
		t.Helper()
		if _, err := r.db.Exec("UPDATE snapshots SET semantics = ? WHERE id = ?", semantics, id); err != nil {
			t.Fatal(err)
		}
	}
	mark(unknown, nil)
	mark(stale, evaluator.Semantics-1)

	list := func(args ...string) map[int64]snapshotRow {
		t.Helper()
		out, err := runCausewayCLI(t, append([]string{"snapshots", "list", "--dsn", r.dsn, "-o", "json"}, args...)...)
		if err != nil {
			t.Fatalf("snapshots list %v: %v", args, err)
		}
		var rs []snapshotRow
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("snapshots list output: %v\n%s", err, out)
		}
		m := map[int64]snapshotRow{}
		for _, r := range rs {
			m[r.ID] = r
		}
		return m
	}
	isStale := func(r snapshotRow) bool { return r.Stale != nil && *r.Stale }
	got := list()
	if len(got) != len(ids) || got[unknown].Semantics != nil || got[unknown].Stale != nil || !isStale(got[stale]) ||
		got[stale2].Semantics == nil || *got[stale2].Semantics != evaluator.Semantics || isStale(got[stale2]) {
		t.Fatalf("snapshots list: %+v", got)
	}
	// This rig writes engine-only snapshots: usable by historical queries,
	// skipped by the processors.
	got = list("--check")
	if u := got[unknown]; u.Check != "historical only" || u.Problem != "encoding" || u.Semantics == nil || *u.Semantics != evaluator.Semantics || isStale(u) {
		t.Fatalf("snapshots list --check: the snapshot without recorded semantics shows %+v; want this build's, historical only", u)
	}
	table, err := runCausewayCLI(t, "snapshots", "list", "--dsn", r.dsn)
	if err != nil || !strings.Contains(table, "(stale)") || !strings.Contains(table, " ? ") {
		t.Fatalf("snapshots list (table): %v\n%s", err, table)
	}

	out, err := runCausewayCLI(t, "snapshots", "prune-stale", "--dsn", r.dsn)
	if err != nil || !strings.Contains(out, "would delete:") || !strings.Contains(out, "--yes") || len(list()) != len(ids) {
		t.Fatalf("prune-stale without --yes: %v, %d snapshots left of %d\n%s", err, len(list()), len(ids), out)
	}
	// A processor that still runs makes --yes refuse, unless --force.
	if _, err := r.db.Exec("INSERT INTO processor_presence (node_id, instance, started_at, seen_at) VALUES ('p1', 'x', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"); err != nil {
		t.Fatal(err)
	}
	out, err = runCausewayCLI(t, "snapshots", "prune-stale", "--dsn", r.dsn, "--yes")
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "p1") || len(list()) != len(ids) {
		t.Fatalf("prune-stale --yes beside a running processor: exit %d, %v; want a refusal naming p1\n%s", exitCode(err), err, out)
	}
	if _, err := r.db.Exec("DELETE FROM processor_presence"); err != nil {
		t.Fatal(err)
	}
	out, err = runCausewayCLI(t, "snapshots", "prune-stale", "--dsn", r.dsn, "--yes")
	if err != nil || !strings.Contains(out, "deleted 1 ") {
		t.Fatalf("prune-stale --yes: %v\n%s", err, out)
	}
	if got := list(); len(got) != len(ids)-1 || got[stale].ID != 0 {
		t.Fatalf("after prune-stale: %+v; want all but snapshot %d", got, stale)
	}

	mark(stale2, evaluator.Semantics+1)
	if _, err := r.db.Exec("DELETE FROM events WHERE seq = 1"); err != nil {
		t.Fatal(err)
	}
	out, err = runCausewayCLI(t, "snapshots", "prune-stale", "--dsn", r.dsn, "--yes")
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "seq 1") {
		t.Fatalf("prune-stale with the log from seq 2: exit %d, %v; want a refusal\n%s", exitCode(err), err, out)
	}
	if got := list(); !isStale(got[stale2]) {
		t.Fatal("the refused prune deleted the stale snapshot")
	}
}
