package processor

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/notifier/subscription"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
	"github.com/causeway/causeway/snapshot"
	"github.com/google/go-cmp/cmp"
)

// TestSubscriptionShowsFollowedAlarms: an operator asking why a
// critical-only subscription is still sent an alarm's updates sees, in
// GET /v1/subscriptions/{id}, that it follows the alarm (it was told the
// alarm was raised critical), paged; asking changes neither the state nor
// what the next record sends.
func TestSubscriptionShowsFollowedAlarms(t *testing.T) {
	n := &snapshot.Node{Engine: evaluator.New(evaluator.Config{}, graph.DefaultNormalizer()), Subscriptions: subscription.NewRegistry()}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	alarm := func(id, sev string) event.Event {
		return event.Event{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: id, Name: "alarm " + id, Severity: sev,
			Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h1", Direction: event.Out}}}}
	}
	evs := []event.Event{
		{Kind: event.KindSubscriptionPut, Subscription: &event.Subscription{ID: "pager", Spec: []byte(`{"url":"http://p.example/","filter":{"severities":["critical"]}}`)}},
		{Kind: event.KindSubscriptionPut, Subscription: &event.Subscription{ID: "quiet", Spec: []byte(`{"url":"http://q.example/","filter":{"alarm_types":["zabbix"]}}`)}},
		{Kind: event.KindEntityUpsert, Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: "h1", Name: "h1", State: "available"}},
		alarm("a1", "critical"), alarm("a2", "critical"), alarm("a3", "critical"), alarm("w1", "warning"),
		alarm("a1", "warning"), // dropped: still followed
	}
	for i, ev := range evs {
		ev.V, ev.EventID, ev.Source, ev.ObservedAt = event.Version, "e"+string(rune('a'+i)), "test", t0
		if err := n.Apply(event.Record{Seq: int64(i + 1), RecordedAt: t0, Event: ev}); err != nil {
			t.Fatalf("apply %d: %v", i+1, err)
		}
	}
	var before bytes.Buffer
	if err := n.Dump(&before); err != nil {
		t.Fatal(err)
	}

	b := &engineBackend{Backend: apitest.Backend{Seq: int64(len(evs)), Leader: "p1"}, e: n}
	s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "t", Role: api.RoleAdmin}}}, b, api.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	get := func(path string, out any) {
		t.Helper()
		getJSON(t, ts, path, out)
	}
	type page struct {
		Count  int
		Alarms []string
		Next   string
	}
	show := func(path string) page {
		t.Helper()
		var r api.SubscriptionResponse
		get(path, &r)
		return page{r.Item.Following, r.Following.Alarms, r.Following.Next}
	}
	for _, tc := range []struct {
		path string
		want page
	}{
		{"/v1/subscriptions/pager", page{3, []string{"ALARM/prometheus/a1", "ALARM/prometheus/a2", "ALARM/prometheus/a3"}, ""}},
		{"/v1/subscriptions/pager?following_limit=2", page{3, []string{"ALARM/prometheus/a1", "ALARM/prometheus/a2"}, "ALARM/prometheus/a2"}},
		{"/v1/subscriptions/pager?following_limit=2&following_after=ALARM/prometheus/a2", page{3, []string{"ALARM/prometheus/a3"}, ""}},
		{"/v1/subscriptions/quiet", page{0, []string{}, ""}},
	} {
		if got := show(tc.path); !cmp.Equal(got, tc.want) {
			t.Errorf("%s: %s", tc.path, cmp.Diff(tc.want, got))
		}
	}
	var list api.SubscriptionsResponse
	get("/v1/subscriptions", &list)
	if len(list.Items) != 2 || list.Items[0].Following != 3 || list.Items[1].Following != 0 {
		t.Errorf("list = %+v; want pager following 3, quiet 0", list.Items)
	}

	var after bytes.Buffer
	if err := n.Dump(&after); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Errorf("showing the subscriptions changed the node's state")
	}
}
