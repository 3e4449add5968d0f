package snapshot

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/emit"
)

// nodeLog is randomLog with subscriptions put and deleted along the way.
func nodeLog(n int) []event.Event {
	evs := randomLog(rand.New(rand.NewPCG(7, 11)), n)
	at := evs[0].ObservedAt
	sub := func(i int, id string, kind event.Kind, spec string) event.Event {
		ev := event.Event{V: event.Version, EventID: "sub" + string(rune('a'+i)), Source: "cli", Kind: kind, ObservedAt: at,
			Subscription: &event.Subscription{ID: id}}
		if spec != "" {
			ev.Subscription.Spec = []byte(spec)
		}
		return ev
	}
	out := append([]event.Event{}, evs[:n/4]...)
	out = append(out, sub(0, "all", event.KindSubscriptionPut, `{"url":"http://a.example/"}`),
		sub(1, "crit", event.KindSubscriptionPut, `{"url":"http://c.example/","filter":{"severities":["critical"]}}`))
	out = append(out, evs[n/4:n/2]...)
	out = append(out, sub(2, "all", event.KindSubscriptionDelete, ""), sub(3, "bad", event.KindSubscriptionPut, `{"url":"ftp://x/"}`))
	return append(out, evs[n/2:]...)
}

func applyNode(t *testing.T, n *Node, evs []event.Event, from int64) {
	t.Helper()
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i, ev := range evs {
		seq := from + int64(i) + 1
		_ = n.Apply(event.Record{Seq: seq, RecordedAt: at.Add(time.Duration(seq) * time.Millisecond), Event: ev})
	}
}

func dumpOf(t *testing.T, m Machine) string {
	t.Helper()
	var b bytes.Buffer
	if err := m.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A node captured mid-log, restored and fed the rest of the log equals
// the node fed the whole log, byte for byte, in every encoding; the
// subscriptions are part of the state.
func TestNodeSnapshotRoundTrip(t *testing.T) {
	evs := nodeLog(400)
	f := NodeFactory{Normalizer: graph.DefaultNormalizer()}
	whole, _ := f.New()
	applyNode(t, whole.(*Node), evs, 0)
	want := dumpOf(t, whole)
	if !strings.Contains(want, `"id":"crit"`) || strings.Contains(want, `"id":"all"`) || strings.Contains(want, `"id":"bad"`) {
		t.Fatalf("dump's subscriptions are not those in force: %s", want[strings.LastIndex(want, `"subscriptions"`):])
	}
	for _, enc := range []string{NodeBin, NodeGob, NodeJSON} {
		t.Run(enc, func(t *testing.T) {
			half, _ := f.New()
			k := len(evs) * 3 / 8 // after "all" and "crit" were put
			applyNode(t, half.(*Node), evs[:k], 0)
			c, err := CaptureNode(half.(*Node), int64(k), time.Time{}, enc)
			if err != nil {
				t.Fatal(err)
			}
			var payload bytes.Buffer
			if err := c.Encode(&payload); err != nil {
				t.Fatal(err)
			}
			m, err := f.Restore(context.Background(), enc, &payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := dumpOf(t, m); got != dumpOf(t, half) {
				t.Fatal("restored dump differs from the captured node's")
			}
			if m.(*Node).Subscriptions.Len() != 2 {
				t.Fatalf("restored %d subscriptions, want 2", m.(*Node).Subscriptions.Len())
			}
			applyNode(t, m.(*Node), evs[k:], int64(k))
			if got := dumpOf(t, m); got != want {
				t.Fatal("snapshot + replay differs from a replay of the whole log")
			}
		})
	}
}

// An engine-only snapshot lacks the subscriptions: a NodeFactory refuses
// it as an unknown encoding (Reconstruct then uses an older snapshot or
// replays), while an EngineFactory reads both kinds.
func TestNodeAndEngineEncodings(t *testing.T) {
	evs := nodeLog(120)
	nf := NodeFactory{Normalizer: graph.DefaultNormalizer()}
	ef := EngineFactory{Normalizer: graph.DefaultNormalizer()}
	m, _ := nf.New()
	applyNode(t, m.(*Node), evs, 0)

	for _, enc := range []string{EngineBin, EngineGob, EngineJSON} {
		ec, err := CaptureEngine(m.(*Node).Engine, 120, time.Time{}, enc)
		if err != nil {
			t.Fatal(err)
		}
		var eb bytes.Buffer
		if err := ec.Encode(&eb); err != nil {
			t.Fatal(err)
		}
		if _, err := nf.Restore(context.Background(), enc, bytes.NewReader(eb.Bytes())); !errors.Is(err, ErrUnknownEncoding) {
			t.Fatalf("node factory on an engine-only %s payload: %v, want ErrUnknownEncoding", enc, err)
		}
	}
	if ec, err := ef.Capture(m.(*Node).Engine, 120, time.Time{}); err != nil || ec.Encoding != EngineBin {
		t.Fatalf("engine factory's default encoding %q (%v), want %q", ec.Encoding, err, EngineBin)
	}

	nc, err := nf.Capture(m, 120, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if nc.Encoding != NodeBin {
		t.Fatalf("node factory's default encoding %q, want %q", nc.Encoding, NodeBin)
	}
	var e Machine
	for _, enc := range []string{NodeBin, NodeGob, NodeJSON} {
		c, err := CaptureNode(m.(*Node), 120, time.Time{}, enc)
		if err != nil {
			t.Fatal(err)
		}
		var nb bytes.Buffer
		if err := c.Encode(&nb); err != nil {
			t.Fatal(err)
		}
		if e, err = ef.Restore(context.Background(), enc, &nb); err != nil {
			t.Fatalf("engine factory on a %s payload: %v", enc, err)
		}
		if got, want := dumpOf(t, e), dumpOf(t, m.(*Node).Engine); got != want {
			t.Fatalf("engine restored from a %s node snapshot differs", enc)
		}
	}
	if _, err := nf.Capture(e, 1, time.Time{}); err == nil {
		t.Fatal("node factory captured a bare engine")
	}
	if _, err := RestoreNode(NodeState{Version: 99}, evaluator.Config{}, nil); err == nil {
		t.Fatal("restored an unknown node state version")
	}
}

// Both parts are applied even when one refuses the record.
func TestNodeApplyResult(t *testing.T) {
	f := NodeFactory{}
	m, _ := f.New()
	n := m.(*Node)
	res, err := n.ApplyResult(event.Record{Seq: 1, Event: event.Event{Kind: event.KindSubscriptionPut, Subscription: &event.Subscription{ID: "s", Spec: []byte(`{"url":"http://x/"}`)}}})
	if err != nil || !res.IsSub || res.Subscription.ID != "s" || res.Subscription.Seq != 1 {
		t.Fatalf("put: %+v, %v", res, err)
	}
	res, err = n.ApplyResult(event.Record{Seq: 2, Event: event.Event{Kind: event.KindSubscriptionPut, Subscription: &event.Subscription{ID: "t", Spec: []byte(`{}`)}}})
	if err == nil || res.IsSub || n.Subscriptions.Len() != 1 {
		t.Fatalf("invalid put: %+v, %v, %d subscriptions", res, err, n.Subscriptions.Len())
	}
}

// toldLog: a pager subscription fed critical alarms only, another fed the
// clears of critical alarms only, an alarm raised critical, then dropping
// to warning and clearing.
func toldLog() []event.Event {
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	n := 0
	ev := func(kind event.Kind, e *event.Entity, s *event.Subscription) event.Event {
		n++
		return event.Event{V: event.Version, EventID: "told" + string(rune('a'+n)), Source: "test", Kind: kind,
			ObservedAt: at.Add(time.Duration(n) * time.Second), Entity: e, Subscription: s}
	}
	alarm := func(sev string) *event.Entity {
		return &event.Entity{Category: "ALARM", Type: "prometheus", ID: "a", Name: "disk_full", Severity: sev,
			Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out}}}
	}
	return []event.Event{
		ev(event.KindSubscriptionPut, nil, &event.Subscription{ID: "pager",
			Spec: []byte(`{"url":"http://p.example/","format":"alertmanager","filter":{"severities":["critical"]}}`)}),
		ev(event.KindSubscriptionPut, nil, &event.Subscription{ID: "resolver",
			Spec: []byte(`{"url":"http://r.example/","format":"alertmanager","filter":{"severities":["critical"],"transitions":["cleared"]}}`)}),
		ev(event.KindEntityUpsert, &event.Entity{Category: "RESOURCE", Type: "nova.host", ID: "h1", Name: "host-1"}, nil),
		ev(event.KindEntityUpsert, alarm("critical"), nil),
		ev(event.KindEntityUpsert, alarm("warning"), nil),
		ev(event.KindEntityDelete, alarm(""), nil),
	}
}

// produce applies evs after seq from as the processor's leader does
// (ApplyResult, then emit.Build; records as applyNode makes them) and
// returns the webhook ids of the rows.
func produce(t *testing.T, n *Node, evs []event.Event, from int64) []string {
	t.Helper()
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i, ev := range evs {
		seq := from + int64(i) + 1
		rec := event.Record{Seq: seq, RecordedAt: at.Add(time.Duration(seq) * time.Millisecond), Event: ev}
		res, err := n.ApplyResult(rec)
		if err != nil {
			t.Fatalf("apply seq %d: %v", rec.Seq, err)
		}
		rows, err := emit.Build(rec, res.Notices, n.Engine.Graph())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			ids = append(ids, r.WebhookID)
		}
	}
	return ids
}

// What a subscription was told is part of the node's state: a node
// restored from a snapshot taken while the pager holds an alarm open sends
// it the drop to warning and the clear, and the resolver (never sent the
// raise, which its transitions filter left out) the clear, as the node
// that never stopped does, and both end with the same dump. Apply (replay, shadows) and
// ApplyResult (the leader) record it alike.
func TestNodeToldAlarmsSnapshot(t *testing.T) {
	evs := toldLog()
	f := NodeFactory{Normalizer: graph.DefaultNormalizer()}
	whole, _ := f.New()
	wantRows := produce(t, whole.(*Node), evs, 0)
	if len(wantRows) != 4 {
		t.Fatalf("the subscriptions were sent %d notifications, want 4 (the pager's raised, severity_changed and cleared, the resolver's cleared)", len(wantRows))
	}
	want := dumpOf(t, whole)
	replayed, _ := f.New()
	applyNode(t, replayed.(*Node), evs, 0)
	if got := dumpOf(t, replayed); got != want {
		t.Fatalf("Apply and ApplyResult give other states:\n%s\n%s", got, want)
	}
	if strings.Contains(want, `"told"`) {
		t.Fatalf("a cleared alarm is still told: %s", want[strings.LastIndex(want, `"subscriptions"`):])
	}
	for _, enc := range []string{NodeBin, NodeGob, NodeJSON} {
		t.Run(enc, func(t *testing.T) {
			half, _ := f.New()
			k := 4 // the alarm raised critical, and sent to the pager
			applyNode(t, half.(*Node), evs[:k], 0)
			st := half.(*Node).State()
			if st.Version != NodeStateVersion || len(st.Subscriptions) != 2 ||
				!slices.Equal(st.Subscriptions[0].Told, []string{"ALARM/prometheus/a"}) || !slices.Equal(st.Subscriptions[1].Told, []string{"ALARM/prometheus/a"}) {
				t.Fatalf("state version %d, subscriptions %+v; want version %d, the alarm followed by both", st.Version, st.Subscriptions, NodeStateVersion)
			}
			c, err := CaptureNode(half.(*Node), int64(k), time.Time{}, enc)
			if err != nil {
				t.Fatal(err)
			}
			var payload bytes.Buffer
			if err := c.Encode(&payload); err != nil {
				t.Fatal(err)
			}
			m, err := f.Restore(context.Background(), enc, &payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := dumpOf(t, m); got != dumpOf(t, half) {
				t.Fatalf("restored dump differs from the captured node's:\n%s\n%s", got, dumpOf(t, half))
			}
			if got := produce(t, m.(*Node), evs[k:], int64(k)); !slices.Equal(got, wantRows[1:]) {
				t.Fatalf("after the restore the subscriptions were sent %q, want %q", got, wantRows[1:])
			}
			if got := dumpOf(t, m); got != want {
				t.Fatal("snapshot + replay differs from a replay of the whole log")
			}
		})
	}
}
