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
func (h dbReader) AlarmLinks(ctx context.Context, key string, from, to time.Time) ([]history.Link, error) {
	return history.Links(ctx, h.db, key, from, to)
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
