package processor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/processor/api"
)

// TestHistoryAPI: after a leader wrote the alarm history of a log, the GET
// /v1/history endpoints of a node answer from the database what the
// history package reads directly — pages joined, stats, a deduced alarm's
// causal links — including alarms cleared long before.
func TestHistoryAPI(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	n := dbNode(t, db)
	// The log is of March 2026: keep its ended alarms from the pruning.
	n.cfg.History.Retention = 20 * 365 * 24 * time.Hour
	evs := notifyLog()
	appendEvents(t, db, evs, 0)
	if err := n.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	leadOnce(t, n, db, 1, int64(len(evs)))

	serve := serveAPI(t, n, api.RoleReader, api.Deps{History: dbHistory{db: db}})
	get := func(path string, params url.Values, into any) int {
		t.Helper()
		code, b := serve(path + "?" + params.Encode())
		if code == http.StatusOK {
			if err := json.Unmarshal(b, into); err != nil {
				t.Fatalf("%s: %v\n%s", path, err, b)
			}
		}
		return code
	}

	from, to := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	want, err := history.List(ctx, db, history.Query{From: from, To: to, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Items) < 20 {
		t.Fatalf("the scenario left %d occurrences", len(want.Items))
	}
	// Through the API, 7 at a time.
	var got []history.Occurrence
	params := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "limit": {"7"}}
	for pages := 0; ; pages++ {
		var r api.HistoryResponse
		if code := get("/v1/history/alarms", params, &r); code != http.StatusOK {
			t.Fatalf("page %d: status %d", pages, code)
		}
		got = append(got, r.Items...)
		if r.Next == "" {
			break
		}
		params.Set("page", r.Next)
	}
	if diff := cmp.Diff(want.Items, got); diff != "" {
		t.Errorf("history through the API (-direct +api):\n%s", diff)
	}
	var cleared, deduced *history.Occurrence
	for i := range got {
		o := &got[i]
		if !o.Active() && cleared == nil {
			cleared = o
		}
		if o.Deduced && deduced == nil {
			deduced = o
		}
	}
	if cleared == nil || deduced == nil {
		t.Fatal("no cleared or no deduced occurrence in the history")
	}

	var filtered api.HistoryResponse
	get("/v1/history/alarms", url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "type": {"vitrage"}, "limit": {"10000"}}, &filtered)
	if len(filtered.Items) == 0 || len(filtered.Items) >= len(got) {
		t.Errorf("type=vitrage kept %d of %d", len(filtered.Items), len(got))
	}
	for _, o := range filtered.Items {
		if o.Type != "vitrage" {
			t.Errorf("type=vitrage returned a %s alarm", o.Type)
		}
	}

	wantStats, err := history.Stats(ctx, db, history.StatsQuery{From: from, To: to, Interval: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var stats api.StatsResponse
	if code := get("/v1/history/stats", url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "interval": {"24h"}}, &stats); code != http.StatusOK {
		t.Fatalf("stats: status %d", code)
	}
	if diff := cmp.Diff(wantStats, stats.Buckets); diff != "" || len(wantStats) == 0 {
		t.Errorf("stats through the API (-direct +api):\n%s", diff)
	}

	linksPage, err := history.Links(ctx, db, history.LinksQuery{Alarm: deduced.AlarmKey})
	if err != nil {
		t.Fatal(err)
	}
	wantLinks := linksPage.Links
	var links api.LinksResponse
	if code := get("/v1/history/links", url.Values{"alarm": {deduced.AlarmKey}}, &links); code != http.StatusOK {
		t.Fatalf("links: status %d", code)
	}
	if diff := cmp.Diff(wantLinks, links.Links); diff != "" || len(wantLinks) == 0 {
		t.Errorf("links of %s through the API (-direct +api):\n%s", deduced.AlarmKey, diff)
	}

	for _, bad := range []url.Values{
		{"from": {"yesterday"}},
		{"from": {to.Format(time.RFC3339)}, "to": {from.Format(time.RFC3339)}},
		{"limit": {"0"}},
		{"page": {"not-a-token"}},
	} {
		if code := get("/v1/history/alarms", bad, nil); code != http.StatusBadRequest {
			t.Errorf("history?%s: status %d; want 400", bad.Encode(), code)
		}
	}
	f, to2 := from.Format(time.RFC3339), to.Format(time.RFC3339)
	for _, bad := range []url.Values{
		{"from": {f}, "to": {f}},
		{"from": {f}, "to": {to2}, "interval": {"500ms"}},
		{"from": {f}, "to": {to2}, "interval": {"1s"}},
		{"from": {f}, "to": {to2}, "interval": {"an hour"}},
	} {
		if code := get("/v1/history/stats", bad, nil); code != http.StatusBadRequest {
			t.Errorf("stats?%s: status %d; want 400", bad.Encode(), code)
		}
	}
}

// TestHistoryAPISaysWhenPruned: once retention pruned the history before
// a boundary, an answer for a window that starts before it says it is
// incomplete and from when it is complete (the alarms that ended before
// the boundary are gone from it); one that starts at the boundary does not.
func TestHistoryAPISaysWhenPruned(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	n := dbNode(t, db)
	n.cfg.History.Retention = 20 * 365 * 24 * time.Hour
	evs := notifyLog()
	appendEvents(t, db, evs, 0)
	if err := n.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	leadOnce(t, n, db, 1, int64(len(evs)))
	all, err := history.List(ctx, db, history.Query{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var cleared *history.Occurrence
	for i := range all.Items {
		if o := &all.Items[i]; !o.Active() && !o.ClearedApprox {
			cleared = o
			break
		}
	}
	if cleared == nil {
		t.Fatal("no cleared occurrence in the history")
	}
	boundary := cleared.ClearedAt.Add(time.Second)
	if _, err := history.Prune(ctx, db, 1, boundary); err != nil {
		t.Fatal(err)
	}

	serve := serveAPI(t, n, api.RoleReader, api.Deps{History: dbHistory{db: db}})
	// get returns the answer's JSON object, as any client reads it.
	get := func(path string, params url.Values) map[string]any {
		t.Helper()
		code, b := serve(path + "?" + params.Encode())
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || code != http.StatusOK {
			t.Fatalf("%s: %d %v\n%s", path, code, err, b)
		}
		return m
	}
	before := url.Values{"from": {cleared.RaisedAt.Format(time.RFC3339Nano)}, "to": {cleared.ClearedAt.Format(time.RFC3339Nano)}}
	after := url.Values{"from": {boundary.Format(time.RFC3339Nano)}, "to": {boundary.Add(time.Hour).Format(time.RFC3339Nano)}}
	for _, c := range []struct {
		path   string
		params url.Values
		want   bool
	}{
		{"/v1/history/alarms", before, true},
		{"/v1/history/stats", before, true},
		{"/v1/history/links", url.Values{"alarm": {cleared.AlarmKey}}, true},
		{"/v1/history/links", url.Values{"alarm": {cleared.AlarmKey}, "from": before["from"], "to": before["to"]}, true},
		{"/v1/history/alarms", after, false},
		{"/v1/history/stats", after, false},
		{"/v1/history/links", url.Values{"alarm": {cleared.AlarmKey}, "from": after["from"], "to": after["to"]}, false},
	} {
		m := get(c.path, c.params)
		if got, _ := m["incomplete"].(bool); got != c.want {
			t.Errorf("%s?%s: incomplete %v, want %v", c.path, c.params.Encode(), m["incomplete"], c.want)
		}
		if got, _ := m["complete_from"].(string); got != boundary.UTC().Format(time.RFC3339Nano) {
			t.Errorf("%s?%s: complete_from %v, want %s", c.path, c.params.Encode(), m["complete_from"], boundary.UTC().Format(time.RFC3339Nano))
		}
	}
	// The occurrence is indeed gone: the window lists only what was
	// active across the boundary.
	m := get("/v1/history/alarms", before)
	for _, it := range m["items"].([]any) {
		if it.(map[string]any)["id"] == cleared.ID {
			t.Errorf("occurrence %s, cleared before the boundary, survived retention", cleared.ID)
		}
	}
}

// TestSubscriptionsAPI: GET /v1/subscriptions of a node that followed a
// log with subscriptions put, changed and deleted lists what the log left.
func TestSubscriptionsAPI(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	n := dbNode(t, db)
	evs := notifyLog()
	appendEvents(t, db, evs, 0)
	if err := n.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	code, b := serveAPI(t, n, api.RoleAdmin, api.Deps{})("/v1/subscriptions")
	var r api.SubscriptionsResponse
	if err := json.Unmarshal(b, &r); err != nil || code != http.StatusOK {
		t.Fatalf("status %d: %v", code, err)
	}
	var ids []string
	for _, s := range r.Items {
		ids = append(ids, s.ID)
	}
	// notifyLog puts all, crit and deduced, then deletes all.
	if diff := cmp.Diff([]string{"crit", "deduced"}, ids); diff != "" || r.Seq != int64(len(evs)) {
		t.Errorf("subscriptions at seq %d (-want +got):\n%s", r.Seq, diff)
	}
	if !strings.Contains(string(r.Items[0].Spec), "hooks.example/crit") {
		t.Errorf("crit's spec: %s", r.Items[0].Spec)
	}
}

// serveAPI serves n's API until the test ends, with deps and one token
// "tok" of role, and returns a GET of it: the answer's status and body.
func serveAPI(t *testing.T, n *node, role string, deps api.Deps) func(path string) (int, []byte) {
	t.Helper()
	deps.NodeID = "t"
	srv, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Name: "r", Token: "tok", Role: role}}}, n, deps)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return func(path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s: read the answer: %v", path, err)
		}
		return resp.StatusCode, b
	}
}
