package bus

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
)

// TestCorruptRecordDoesNotSkipTheMarkerBeforeIt: a corrupt spool record
// right after a sync marker, read while an earlier event awaits its
// confirm, is moved aside without the sender losing its place: the marker
// (held back until the earlier event is confirmed) still goes out, before
// the event after it, in the same broker session.
func TestCorruptRecordDoesNotSkipTheMarkerBeforeIt(t *testing.T) {
	u := bustest.VHost(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, parsed.Host)
	parsed.Host = f.addr
	p := newTestPublisher(t, parsed.String(), "", prometheus.NewRegistry())
	var (
		mu    sync.Mutex
		sends []string
	)
	p.sent = func(id string, _ int) {
		mu.Lock()
		defer mu.Unlock()
		sends = append(sends, id)
	}
	sent := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(sends)
	}
	start(t, p.Run)
	t.Cleanup(func() { f.set(false) }) // before Run stops, if the test fails frozen
	ctx := context.Background()
	if err := p.Publish(ctx, testEvent(0)); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, p, 30*time.Second)

	// ev-000001 goes out and its confirm is held up.
	f.set(true)
	if err := p.Publish(ctx, testEvent(1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return slices.Contains(sent(), testEvent(1).EventID) })

	// Then a marker, a corrupt record and an event are spooled at once:
	// the sender reads them while ev-000001 is in flight, so the marker
	// waits.
	marker := testEvent(2)
	marker.Kind, marker.Sync = event.KindSyncBegin, &event.Sync{ID: "pull-1"}
	rec := func(ev event.Event) []byte {
		body, err := event.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		return encodeRecord(record{messageID: ev.EventID, routingKey: RoutingKey(ev.Source, string(ev.Kind)), body: body, enqueued: time.Now().UnixNano()})
	}
	if err := p.spool.append(ctx, [][]byte{rec(marker), []byte("garbage"), rec(testEvent(3))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return metricValue(t, p.corrupt) == 1 })
	time.Sleep(200 * time.Millisecond)
	f.set(false)

	waitEmpty(t, p, 10*time.Second)
	want := []string{testEvent(0).EventID, testEvent(1).EventID, marker.EventID, testEvent(3).EventID}
	if got := sent(); !slices.Equal(got, want) {
		t.Fatalf("sent %v; want %v (spool order, the corrupt record left out)", got, want)
	}
}
