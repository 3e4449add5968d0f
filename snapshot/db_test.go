package snapshot

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// testDB is a fresh migrated database with its event log, whose clock the
// test moves.
type testDB struct {
	db    *sql.DB
	log   *store.Log
	clock time.Time
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	dsn := storetest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	td := &testDB{db: db, clock: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
	td.log = store.NewLog(db, func() time.Time { return td.clock })
	return td
}

// appendEvents appends evs, one Append call per batch of size (all of a
// batch share a recorded_at), advancing the clock by step per batch.
func (td *testDB) appendEvents(t testing.TB, evs []event.Event, batch int, step time.Duration) []event.Record {
	t.Helper()
	ctx := context.Background()
	var out []event.Record
	for start := 0; start < len(evs); start += batch {
		end := min(start+batch, len(evs))
		entries := make([]store.Entry, 0, end-start)
		for _, ev := range evs[start:end] {
			body, err := event.Encode(ev)
			if err != nil {
				t.Fatalf("encode event %s: %v", ev.EventID, err)
			}
			entries = append(entries, store.Entry{Event: ev, Body: body})
		}
		res, err := td.log.Append(ctx, entries)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Batch.Records...)
		td.clock = td.clock.Add(step)
	}
	return out
}

func tickEvents(from, n int, source func(i int) string) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		src := "test"
		if source != nil {
			src = source(from + i)
		}
		evs[i] = event.Event{
			V: event.Version, EventID: fmt.Sprintf("ev-%d", from+i), Source: src, Kind: event.KindEntityUpsert,
			ObservedAt: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).Add(time.Duration(from+i) * time.Second),
			Entity:     &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: fmt.Sprintf("h%d", (from+i)%37)},
		}
	}
	return evs
}

// replayFrom applies recs[:n] to a fresh kv machine.
func kvReplay(recs []event.Record, n int64) string {
	m := newKV()
	for _, r := range recs[:n] {
		_ = m.Apply(r)
	}
	return dump(m)
}
