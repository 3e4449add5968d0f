package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
)

func openDB(t *testing.T) *sql.DB { return openDBB(t) }

func openDBB(t testing.TB) *sql.DB {
	t.Helper()
	dsn := storetest.NewDB(t)
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func row(seq int64, ord int) outbox.Row {
	return outbox.Row{SubscriptionID: "ops", Seq: seq, Ord: ord, WebhookID: outbox.WebhookID("ops", seq, "ALARM/x/a", "raised") + string(rune('a'+ord)),
		RecordedAt: time.Unix(1_800_000_000, 0), Payload: []byte(`{}`)}
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Write is fenced by the raft term, idempotent per seq, and keeps the head
// and the subscriptions moving forward only.
func TestWriteFencedAndIdempotent(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	put := subscription.Update{ID: "ops", Seq: 1, Spec: json.RawMessage(`{"url":"http://a/"}`)}
	b := outbox.Batch{Seq: 2, Subscriptions: []subscription.Update{put}, Rows: []outbox.Row{row(2, 0), row(2, 1)}}
	if n, err := outbox.Write(ctx, db, 5, b); err != nil || n != 2 {
		t.Fatalf("first write: %d, %v", n, err)
	}
	if c := count(t, db, "SELECT COUNT(*) FROM notifier_cursors WHERE subscription_id = 'ops'"); c != 1 {
		t.Fatalf("cursor rows = %d", c)
	}
	// A new leader rewriting the same seqs stores nothing new.
	if n, err := outbox.Write(ctx, db, 6, b); err != nil || n != 0 {
		t.Fatalf("rewrite: %d, %v", n, err)
	}
	// The deposed leader's late write fails and writes nothing.
	late := outbox.Batch{Seq: 3, Subscriptions: []subscription.Update{{ID: "ops", Seq: 3, Deleted: true}}, Rows: []outbox.Row{row(3, 0)}}
	if _, err := outbox.Write(ctx, db, 5, late); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("late write by term 5 = %v, want ErrFenced", err)
	}
	if head, err := outbox.Head(ctx, db); err != nil || head != 2 {
		t.Fatalf("head = %d, %v; want 2", head, err)
	}
	if c := count(t, db, "SELECT COUNT(*) FROM notifier_outbox"); c != 2 {
		t.Fatalf("outbox rows = %d, want 2", c)
	}
	// A batch straddling the head writes only what is above it.
	more := outbox.Batch{Seq: 4, Rows: []outbox.Row{row(2, 0), row(2, 1), row(3, 0), row(4, 0)}}
	if n, err := outbox.Write(ctx, db, 6, more); err != nil || n != 2 {
		t.Fatalf("straddling write: %d, %v; want 2", n, err)
	}
	// An older subscription change never overwrites a newer one.
	del := outbox.Batch{Seq: 6, Subscriptions: []subscription.Update{{ID: "ops", Seq: 6, Deleted: true}}}
	if _, err := outbox.Write(ctx, db, 6, del); err != nil {
		t.Fatal(err)
	}
	old := outbox.Batch{Seq: 7, Subscriptions: []subscription.Update{{ID: "ops", Seq: 5, Spec: json.RawMessage(`{"url":"http://old/"}`)}}}
	if _, err := outbox.Write(ctx, db, 6, old); err != nil {
		t.Fatal(err)
	}
	if c := count(t, db, "SELECT COUNT(*) FROM notifier_subscriptions WHERE id = 'ops' AND deleted AND seq = 6 AND spec IS NULL"); c != 1 {
		t.Fatal("an older subscription change overwrote a newer one")
	}
}

// TestIDsDifferingInTrailingSpaces: the registry keeps "ops" and "ops "
// apart, so must the tables (MariaDB's utf8mb4_bin would pad and merge
// them, and INSERT IGNORE drop one's rows).
func TestIDsDifferingInTrailingSpaces(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	var subs []subscription.Update
	var rows []outbox.Row
	for i, id := range []string{"ops", "ops "} {
		subs = append(subs, subscription.Update{ID: id, Seq: 1, Spec: json.RawMessage(`{"url":"http://a/"}`)})
		r := row(2, 0)
		r.SubscriptionID, r.WebhookID = id, outbox.WebhookID(id, 2, "ALARM/x/a", "raised")+string(rune('a'+i))
		rows = append(rows, r)
	}
	if n, err := outbox.Write(ctx, db, 1, outbox.Batch{Seq: 2, Subscriptions: subs, Rows: rows}); err != nil || n != 2 {
		t.Fatalf("write: %d, %v; want 2 rows", n, err)
	}
	for _, q := range []string{"SELECT COUNT(*) FROM notifier_outbox", "SELECT COUNT(*) FROM notifier_subscriptions", "SELECT COUNT(*) FROM notifier_cursors"} {
		if c := count(t, db, q); c != 2 {
			t.Errorf("%s = %d; want 2", q, c)
		}
	}
}

// TestResync: a resync replaces the stored subscriptions with the set it
// carries (kept ones updated, missing ones added with a cursor, others
// deleted at its seq), before the batch's own changes; at or below the
// head it is skipped like any change.
func TestResync(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	spec := func(u string) json.RawMessage { return json.RawMessage(`{"url":"http://` + u + `/"}`) }
	first := outbox.Batch{Seq: 3, Subscriptions: []subscription.Update{
		{ID: "keep", Seq: 1, Spec: spec("old")}, {ID: "gone", Seq: 2, Spec: spec("gone")}, {ID: "dead", Seq: 3, Deleted: true}}}
	if _, err := outbox.Write(ctx, db, 1, first); err != nil {
		t.Fatal(err)
	}
	b := outbox.Batch{Seq: 12,
		Resync:        &outbox.Resync{Seq: 10, Subscriptions: []subscription.Entry{{ID: "keep", Seq: 4, Spec: spec("new")}, {ID: "added", Seq: 7, Spec: spec("added")}}},
		Subscriptions: []subscription.Update{{ID: "later", Seq: 11, Spec: spec("later")}},
	}
	if _, err := outbox.Write(ctx, db, 1, b); err != nil {
		t.Fatal(err)
	}
	type sub struct {
		ID         string
		Seq        int64
		Deleted    bool
		DeletedSeq int64
		Spec       sql.NullString
	}
	rows, err := db.QueryContext(ctx, "SELECT id, seq, deleted, deleted_seq, spec FROM notifier_subscriptions ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]sub{}
	for rows.Next() {
		var s sub
		if err := rows.Scan(&s.ID, &s.Seq, &s.Deleted, &s.DeletedSeq, &s.Spec); err != nil {
			t.Fatal(err)
		}
		got[s.ID] = s
	}
	rows.Close()
	want := map[string]sub{
		"keep":  {ID: "keep", Seq: 10, Spec: sql.NullString{String: `{"url":"http://new/"}`, Valid: true}},
		"added": {ID: "added", Seq: 10, Spec: sql.NullString{String: `{"url":"http://added/"}`, Valid: true}},
		"gone":  {ID: "gone", Seq: 10, Deleted: true, DeletedSeq: 10},
		"dead":  {ID: "dead", Seq: 3, Deleted: true, DeletedSeq: 3},
		"later": {ID: "later", Seq: 11, Spec: sql.NullString{String: `{"url":"http://later/"}`, Valid: true}},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("subscription %q = %+v; want %+v", id, got[id], w)
		}
	}
	if c := count(t, db, "SELECT COUNT(*) FROM notifier_cursors WHERE subscription_id = 'added'"); c != 1 {
		t.Errorf("cursor of the added subscription: %d rows", c)
	}
	// At or below the head, a resync is skipped.
	stale := outbox.Batch{Seq: 13, Resync: &outbox.Resync{Seq: 12}}
	if _, err := outbox.Write(ctx, db, 1, stale); err != nil {
		t.Fatal(err)
	}
	if c := count(t, db, "SELECT COUNT(*) FROM notifier_subscriptions WHERE NOT deleted"); c != 3 {
		t.Errorf("%d live subscriptions after a resync at the head; want 3 (it is skipped)", c)
	}
}
