package notifier_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/notifier/emit"
	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
)

// node follows the log as emit's call contract says: every node computes
// the rows of every record and keeps them pending until they are written.
type node struct {
	t       *testing.T
	g       *graph.Graph
	reg     *subscription.Registry
	pending outbox.Batch
	all     []string // every webhook id it computed, in order
}

func newNode(t *testing.T) *node {
	return &node{t: t, g: graph.New(nil), reg: subscription.NewRegistry()}
}

func (n *node) apply(rec event.Record) {
	n.t.Helper()
	changes, err := n.g.Apply(rec)
	if err != nil {
		n.t.Fatal(err)
	}
	if u, ok, err := n.reg.Apply(rec); err != nil {
		n.t.Fatal(err)
	} else if ok {
		n.pending.Subscriptions = append(n.pending.Subscriptions, u)
	}
	rows, err := emit.Rows(rec, changes, n.g, n.reg)
	if err != nil {
		n.t.Fatal(err)
	}
	for _, r := range rows {
		n.all = append(n.all, r.WebhookID)
	}
	n.pending.Rows = append(n.pending.Rows, rows...)
	n.pending.Seq = rec.Seq
}

// prune drops what the outbox head says is written (a standby's chore).
func (n *node) prune(head int64) {
	var keep []outbox.Row
	for _, r := range n.pending.Rows {
		if r.Seq > head {
			keep = append(keep, r)
		}
	}
	var subs []subscription.Update
	for _, u := range n.pending.Subscriptions {
		if u.Seq > head {
			subs = append(subs, u)
		}
	}
	n.pending.Rows, n.pending.Subscriptions = keep, subs
}

// A leader dies with records applied but their rows unwritten; the
// standby that takes over writes from the outbox head on: every
// notification is delivered once, none is missing, and the deposed
// leader's late write is fenced off.
func TestFailoverNoGapNoDouble(t *testing.T) {
	db, dsn := openDB(t)
	ctx := context.Background()
	rcv := newReceiver(t)
	old, standby := newNode(t), newNode(t)
	seq := int64(0)
	next := func(ev event.Event) {
		seq++
		rec := event.Record{Seq: seq, RecordedAt: time.Now().UTC(), Event: ev}
		old.apply(rec)
		standby.apply(rec)
	}
	spec := fmt.Sprintf(`{"url":%q,"secret_ref":"main"}`, rcv.srv.URL)
	next(event.Event{V: 1, EventID: "sub", Source: "cli", Kind: event.KindSubscriptionPut, ObservedAt: time.Now().UTC(),
		Subscription: &event.Subscription{ID: "ops", Spec: json.RawMessage(spec)}})
	alarm := func(i int, del bool) {
		ev := event.Event{V: 1, EventID: fmt.Sprintf("a%d-%v", i, del), Source: "test", Kind: event.KindEntityUpsert, ObservedAt: time.Now().UTC(),
			Entity: &event.Entity{Category: "ALARM", Type: "prometheus", ID: fmt.Sprintf("a%d", i), Name: "disk_full", Severity: "major"}}
		if del {
			ev.Kind = event.KindEntityDelete
		}
		next(ev)
	}
	write := func(n *node, term int64) error {
		_, err := outbox.Write(ctx, db, term, n.pending)
		if err == nil {
			n.pending = outbox.Batch{}
		}
		return err
	}
	// The old leader (term 1) writes after every 10 records; the standby
	// prunes what the head says is written now and then.
	for i := range 60 {
		if i%3 == 2 {
			alarm(i-1, true) // clear the alarm raised just before
		} else {
			alarm(i, false)
		}
		if (i+1)%10 == 0 && i < 40 {
			if err := write(old, 1); err != nil {
				t.Fatal(err)
			}
		}
		if i == 25 {
			head, err := outbox.Head(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			standby.prune(head)
		}
	}
	// Records 41-60 were applied by the old leader, which died before
	// writing them. The standby wins term 2 and writes what it holds.
	head, err := outbox.Head(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if head >= seq {
		t.Fatalf("head %d: the old leader wrote everything; nothing to take over", head)
	}
	if err := write(standby, 2); err != nil {
		t.Fatal(err)
	}
	// The old leader's late write fails.
	if err := write(old, 1); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("late write of term 1 = %v, want ErrFenced", err)
	}
	if len(standby.all) != 60 {
		t.Fatalf("%d notifications computed, want 60 (40 raised, 20 cleared)", len(standby.all))
	}
	if diff := cmp.Diff(old.all, standby.all); diff != "" {
		t.Fatalf("nodes computed different rows (-old +standby):\n%s", diff)
	}
	var rows int
	if err := db.QueryRow("SELECT COUNT(*) FROM notifier_outbox").Scan(&rows); err != nil || rows != len(standby.all) {
		t.Fatalf("outbox holds %d rows, want %d (err %v)", rows, len(standby.all), err)
	}
	start(t, testConfig(dsn, "n1"), db, prometheus.NewRegistry())
	waitFor(t, 30*time.Second, "every notification", func() bool { return len(rcv.delivered()) >= len(standby.all) })
	if diff := cmp.Diff(ids(rcv.delivered()), standby.all); diff != "" {
		t.Fatalf("delivered (-got +want):\n%s", diff)
	}
	if n := len(rcv.receipts()); n != len(standby.all) {
		t.Errorf("%d requests for %d notifications: a notification was sent twice", n, len(standby.all))
	}
}
