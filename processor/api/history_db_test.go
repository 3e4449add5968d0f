package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// dbReader is the HistoryReader of a database, as the processor's.
type dbReader struct{ db *sql.DB }

func (h dbReader) Head(ctx context.Context) (int64, error) { return history.Head(ctx, h.db) }
func (h dbReader) AlarmHistory(ctx context.Context, q history.Query) (history.Page, error) {
	return history.List(ctx, h.db, q)
}
func (h dbReader) AlarmStats(ctx context.Context, q history.StatsQuery) ([]history.Bucket, error) {
	return history.Stats(ctx, h.db, q)
}
func (h dbReader) AlarmLinks(ctx context.Context, q history.LinksQuery) (history.LinksPage, error) {
	return history.Links(ctx, h.db, q)
}
func (h dbReader) Coverage(ctx context.Context, from, to time.Time) (history.Coverage, error) {
	return history.CoverageOf(ctx, h.db, from, to)
}

// TestHistoryPagesKeepTheirWindow: a client that follows `next` with
// ?page= alone (the window defaulted: the 24 hours before now) is given
// the rest of the window its first page was of, not that of a later now,
// which would skip the alarms that cleared in between.
func TestHistoryPagesKeepTheirWindow(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := t0.Add(48 * time.Hour)
	alarm := func(id string) history.Alarm {
		return history.Alarm{Key: "ALARM/nic/" + id, VitrageID: 1, Type: "nic", ID: id, Name: id, Severity: "WARNING"}
	}
	// a is active; b cleared 23h30m before now: both in the default window.
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 3, Items: []history.Item{
		{Kind: history.Raised, Seq: 1, RecordedAt: now.Add(-25 * time.Hour), Alarm: alarm("a")},
		{Kind: history.Raised, Seq: 2, RecordedAt: now.Add(-24*time.Hour - 30*time.Minute), Alarm: alarm("b")},
		{Kind: history.Cleared, Seq: 3, RecordedAt: now.Add(-23*time.Hour - 30*time.Minute), Alarm: alarm("b")},
	}}); err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}},
		&fakeBackend{g: sampleGraph(), seq: 3}, Deps{NodeID: "n1", Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }, History: dbReader{db}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	var keys []string
	params := url.Values{"limit": {"1"}}
	for pages := 0; pages < 5; pages++ {
		resp, body := do(t, ts, "GET", "/v1/history/alarms?"+params.Encode(), "read-token", "", "")
		var r HistoryResponse
		if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %s", pages, resp.StatusCode, body)
		}
		for _, o := range r.Items {
			keys = append(keys, o.AlarmKey)
		}
		if r.Next == "" {
			break
		}
		params.Set("page", r.Next)
		clock.Add(int64(time.Hour)) // the client reads on an hour later
	}
	if len(keys) != 2 || keys[0] != "ALARM/nic/a" || keys[1] != "ALARM/nic/b" {
		t.Errorf("pages gave %v, want a then b", keys)
	}
	// A token asked with another window is refused, not followed.
	p, err := history.List(ctx, db, history.Query{From: now.Add(-24 * time.Hour), To: now, Limit: 1})
	if err != nil || p.Next == "" {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	params = url.Values{"page": {p.Next}, "from": {now.Add(-23 * time.Hour).Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}}
	if resp, body := do(t, ts, "GET", "/v1/history/alarms?"+params.Encode(), "read-token", "", ""); resp.StatusCode != 400 {
		t.Errorf("a token of another window: %d %s, want 400", resp.StatusCode, body)
	}
}

// TestHistoryLinksPaged: the causal links of an alarm come a page at a
// time (?limit=, then ?page= with the token of `next`), as the
// occurrences do; they came all in one answer, however many an alarm
// with a long history had. A token is of its alarm and its window.
func TestHistoryLinksPaged(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const effect = "ALARM/vitrage/d"
	var items []history.Item
	var want []string
	for i, c := range []string{"a", "b", "c", "d", "e"} {
		items = append(items, history.Item{Kind: history.LinkStarted, Seq: int64(i + 1), RecordedAt: t0.Add(time.Duration(i) * time.Minute),
			From: "ALARM/nic/" + c, To: effect})
		want = append(want, "ALARM/nic/"+c)
	}
	// Two periods of one link: the first ended, the second open.
	items = append(items,
		history.Item{Kind: history.LinkEnded, Seq: 6, RecordedAt: t0.Add(5 * time.Minute), From: "ALARM/nic/a", To: effect},
		history.Item{Kind: history.LinkStarted, Seq: 7, RecordedAt: t0.Add(6 * time.Minute), From: "ALARM/nic/a", To: effect})
	want = append(want, "ALARM/nic/a")
	if _, err := history.Write(ctx, db, 1, history.Batch{Seq: 7, Items: items}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}},
		&fakeBackend{g: sampleGraph(), seq: 7}, Deps{NodeID: "n1", Now: func() time.Time { return t0.Add(time.Hour) }, History: dbReader{db}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	var got []string
	var first string
	params := url.Values{"alarm": {effect}, "limit": {"2"}}
	for pages := 0; ; pages++ {
		if pages == 5 {
			t.Fatalf("more than 4 pages of 2 for 6 periods: %q", got)
		}
		resp, body := do(t, ts, "GET", "/v1/history/links?"+params.Encode(), "read-token", "", "")
		var r struct {
			Links []history.Link `json:"links"`
			Next  string         `json:"next"`
		}
		if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %s", pages, resp.StatusCode, body)
		}
		if len(r.Links) > 2 {
			t.Fatalf("page %d: %d links, over the limit of 2: %s", pages, len(r.Links), body)
		}
		for _, l := range r.Links {
			got = append(got, l.From)
		}
		if r.Next == "" {
			break
		}
		if first == "" {
			first = r.Next
		}
		params.Set("page", r.Next)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("links by start seq over the pages (-got +want):\n%s", diff)
	}
	// Another alarm's, or another window's, next page skips or repeats.
	for _, p := range []url.Values{
		{"alarm": {"ALARM/nic/a"}, "limit": {"2"}, "page": {first}},
		{"alarm": {effect}, "limit": {"2"}, "page": {first}, "from": {t0.Format(time.RFC3339)}},
	} {
		if resp, body := do(t, ts, "GET", "/v1/history/links?"+p.Encode(), "read-token", "", ""); resp.StatusCode != 400 {
			t.Errorf("%s: %d %s; want 400", p.Encode(), resp.StatusCode, body)
		}
	}
}
