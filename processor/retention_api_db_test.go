package processor

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/snapshot"
)

// TestHistoricalRCAPastRetentionSaysWhereToAsk: GET /v1/rca/{id}?at= (or
// ?seq=) of a moment the log no longer rebuilds answered 404 with the
// reconstruction's chain of errors ("not found: reconstruct at time T:
// find its seq: seq at T: before the retained log (oldest stored seq
// 11)", or "gap in the event log: seq 11 follows 0"), which names no time
// a client could ask instead. It now says the moment is past retention,
// the oldest stored event with its time, and the earliest moment that can
// be rebuilt (?at=), which is answered.
func TestHistoricalRCAPastRetentionSaysWhereToAsk(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	n := dbNode(t, db)
	n.parts.SnapshotIndex = snapshot.NewStore(db, nil)
	evs := notifyLog()
	appendEvents(t, db, evs[:30], 0)
	if err := n.f.catchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// A snapshot at seq 20 (recorded at 00:00:19, as appendEvents dates
	// seq i+1 at second i), then retention drops seqs 1..10.
	snapAt := time.Date(2026, 3, 1, 0, 0, 19, 0, time.UTC)
	w, err := snapshot.NewWriter(snapshot.Config{Policy: snapshot.Policy{EveryEvents: 1000}}, snapshot.WriterDeps{DB: db, Fence: snapshot.FenceFunc(store.CheckFence), Now: func() time.Time { return snapAt }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	past, err := n.parts.Reconstructor.Reconstruct(ctx, snapshot.AtSeq(20))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Take(ctx, 1, func() (snapshot.Capture, error) { return CaptureEngine(past.Machine, 20, snapAt) }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM events WHERE seq <= 10"); err != nil {
		t.Fatal(err)
	}
	serve := serveAPI(t, n, api.RoleReader, api.Deps{})
	get := func(path string) (int, api.ErrorResponse, string) {
		t.Helper()
		code, b := serve(path)
		var e api.ErrorResponse
		_ = json.Unmarshal(b, &e)
		return code, e, string(b)
	}
	earliest := snapAt.Format(time.RFC3339Nano)
	for _, path := range []string{"/v1/rca/1?at=2026-03-01T00:00:03Z", "/v1/rca/1?seq=3", "/v1/rca/1?at=2026-03-01T00:00:15Z", "/v1/rca/1?seq=15"} {
		code, e, body := get(path)
		if code != http.StatusNotFound || !e.Historical || !strings.Contains(e.Error, "past retention") ||
			!strings.Contains(e.Error, "oldest stored event: seq 11, recorded at 2026-03-01T00:00:10Z") ||
			!strings.Contains(e.Error, "?at="+earliest) || strings.Contains(e.Error, "not found:") {
			t.Errorf("%s: %d %s; want 404 saying past retention, the oldest stored event and its time, and ?at=%s", path, code, body, earliest)
		}
	}
	// The moment named is answered (the alarm may not be in it: a 404 of
	// its own, not past retention).
	if code, e, body := get("/v1/rca/1?at=" + earliest); (code != http.StatusOK && code != http.StatusNotFound) || strings.Contains(e.Error, "retention") {
		t.Errorf("?at=%s, the earliest moment named: %d %s", earliest, code, body)
	}
}
