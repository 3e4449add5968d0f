package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

// TestReadsKeepTheirEvents: the records ReadRange, AppendRange and Scan
// return are the events appended, read back once every row of the
// statement is done. The log scans each row's body as sql.RawBytes, which
// the driver reuses for the next row: the decoded event must hold copies
// of its bytes, whichever way the decoder reads them (the fast path, with
// and without escapes, and encoding/json's for a subscription's spec).
func TestReadsKeepTheirEvents(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, storetest.NewDB(t))
	log := store.NewLog(db, time.Now)
	t0 := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	var want [][]byte
	var batch []store.Entry
	for i := range 300 {
		ev := event.Event{V: event.Version, EventID: fmt.Sprintf("e%03d", i), Source: fmt.Sprintf("src-%d", i%7),
			ObservedAt: t0.Add(time.Duration(i) * time.Second)}
		pad := strings.Repeat(string(rune('a'+i%26)), 50+i%200)
		switch i % 5 {
		case 0, 1:
			ev.Kind = event.KindEntityUpsert
			ev.Entity = &event.Entity{Category: event.CategoryAlarm, Type: "nagios", ID: fmt.Sprintf("a-%d-%s", i, pad),
				Name: fmt.Sprintf("NIC \"down\" é %d\n%s", i, pad), Severity: "WARNING", ProjectID: "p" + pad[:i%9],
				Properties: map[string]string{"k" + pad[:3]: pad, "quoted": fmt.Sprintf("\t<%d>\\", i)},
				Relations:  []event.Relation{{Relationship: "on", Type: "nova.host", ID: "h" + pad[:1+i%40], Direction: event.Out}}}
		case 2:
			ev.Kind = event.KindTemplatePut
			ev.Template = &event.Template{Name: fmt.Sprintf("t%d", i), Body: "metadata:\n  name: " + pad + "\n",
				Params: map[string]string{"p": pad, "q": "é\u00e8"}}
		case 3:
			ev.Kind = event.KindSubscriptionPut
			ev.Subscription = &event.Subscription{ID: fmt.Sprintf("s%d", i), Spec: json.RawMessage(fmt.Sprintf(`{"url":"http://x/%s","n":%d}`, pad, i))}
		default:
			ev.Kind = event.KindSyncBegin
			ev.Sync = &event.Sync{ID: pad}
		}
		b, err := event.Encode(ev)
		if err != nil {
			t.Fatalf("encode event %d: %v", i, err)
		}
		want = append(want, b)
		batch = append(batch, store.Entry{Event: ev, Body: b})
		if len(batch) == 50 {
			if _, err := log.Append(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	check := func(how string, recs []event.Record) {
		t.Helper()
		if len(recs) != len(want) {
			t.Fatalf("%s: %d records; want %d", how, len(recs), len(want))
		}
		for i, r := range recs {
			got, err := event.EncodeStored(r.Event)
			if err != nil {
				t.Fatalf("%s: encode seq %d: %v", how, r.Seq, err)
			}
			if !bytes.Equal(got, want[i]) {
				t.Fatalf("%s: seq %d reads\n%s\nwant\n%s", how, r.Seq, got, want[i])
			}
		}
	}
	recs, err := log.ReadRange(ctx, 0, len(want))
	if err != nil {
		t.Fatal(err)
	}
	check("ReadRange", recs)
	var paged []event.Record
	for len(paged) < len(want) {
		page, err := log.AppendRange(ctx, make([]event.Record, 0, 64), int64(len(paged)), 64)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
	}
	check("AppendRange", paged)
	var scanned []event.Record
	for r, err := range log.Scan(ctx, 0, math.MaxInt64) {
		if err != nil {
			t.Fatal(err)
		}
		scanned = append(scanned, r)
	}
	check("Scan", scanned)
}
