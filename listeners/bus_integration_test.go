package listeners_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/listeners"
	"github.com/causeway/causeway/listeners/alertmanager"
	"github.com/causeway/causeway/listeners/events"
)

// realWebhook is the Alertmanager endpoint served over a real
// bus.Publisher on a test vhost, the publisher not running yet (it spools).
type realWebhook struct {
	url, srv string
	pub      *bus.Publisher
	wh       *alertmanager.Webhook
	calls    *atomic.Int64 // Publish calls the server made
}

// countingPublisher counts the Publish calls to a Publisher.
type countingPublisher struct {
	listeners.Publisher
	calls *atomic.Int64
}

func (p countingPublisher) Publish(ctx context.Context, evs ...event.Event) error {
	p.calls.Add(1)
	return p.Publisher.Publish(ctx, evs...)
}

func newRealWebhook(t *testing.T, spoolMax int, maxBody int64) realWebhook {
	t.Helper()
	r := realWebhook{url: bustest.VHost(t), calls: new(atomic.Int64)}
	var err error
	r.pub, err = bus.NewPublisher(bus.PublisherConfig{
		Conn:      bus.Conn{URL: r.url, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond},
		SpoolPath: filepath.Join(t.TempDir(), "spool.db"), SpoolMaxEvents: spoolMax,
	}, bus.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.pub.Close() })
	if r.wh, err = alertmanager.New(alertmanager.Config{Mapping: mapping(t)}); err != nil {
		t.Fatal(err)
	}
	s, err := listeners.New(listeners.Config{MaxBodyBytes: maxBody, Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}}},
		listeners.Deps{Publisher: countingPublisher{r.pub, r.calls}, Endpoints: []listeners.Endpoint{r.wh.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = newHTTPTest(t, s)
	return r
}

// persisted runs the publisher until the test ends. The topology is
// declared as the publisher declares it, so the persist queue is there to
// consume whether or not the publisher got there first.
func (r realWebhook) persisted(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.pub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if _, err := bus.DeclareTopology(bustest.Conn(t, r.url)); err != nil {
		t.Fatal(err)
	}
}

// TestOversizedAlertIsRefusedAlone: an alert whose event is over the size
// limit once encoded (the real publisher refuses it) is listed as refused,
// and the others of its group are published: Alertmanager does not retry a
// 4xx, so refusing the request whole would lose them.
func TestOversizedAlertIsRefusedAlone(t *testing.T) {
	rw := newRealWebhook(t, 0, 4<<20)
	// One alert that maps, then three whose annotation is over the limit
	// once encoded.
	alert := func(host, fp, description string) string {
		return `{"status": "firing", "labels": {"alertname": "HostDown", "job": "node", "instance": "` + host + `:9100"}, "annotations": {"description": "` +
			description + `"}, "startsAt": "2026-03-01T10:00:00Z", "fingerprint": "` + fp + `"}`
	}
	huge := strings.Repeat("d", event.MaxEventBytes+100)
	group := []byte(`{"version": "4", "status": "firing", "alerts": [` + alert("compute-1", "aa", "") + `,` +
		alert("compute-2", "bb", huge) + `,` + alert("compute-3", "cc", huge) + `,` + alert("compute-4", "dd", huge) + `]}`)
	r := post(t, rw.srv+"/v1/alertmanager", "application/json", group, bearer("tok-1"))
	refused, _ := r.body["refused"].([]any)
	if r.code != http.StatusOK || r.body["accepted"] != float64(1) || len(refused) != 3 || !strings.Contains(fmt.Sprint(refused[0]), "limit") {
		t.Fatalf("group with oversized alerts: %d %.300v; want 200, 1 accepted, the 3 oversized ones refused", r.code, r.body)
	}
	// Every refused one found at once: not a publish call per refusal.
	if n := rw.calls.Load(); n != 2 {
		t.Errorf("%d publish calls for one request; want 2", n)
	}
	rw.persisted(t)
	ev, err := event.Decode(bustest.Take(t, rw.url, bus.PersistQueue, 1)[0].Body)
	if err != nil || !strings.Contains(ev.Entity.Name+ev.Entity.ID+fmt.Sprint(ev.Entity.Relations), "compute-1") {
		t.Fatalf("published %+v, %v; want compute-1's alert", ev, err)
	}
	// A group of only oversized alerts is refused whole.
	only := []byte(`{"version": "4", "status": "firing", "alerts": [` + alert("compute-2", "bb", huge) + `]}`)
	if r := post(t, rw.srv+"/v1/alertmanager", "application/json", only, bearer("tok-1")); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("group of the oversized alert alone: %d; want 413", r.code)
	}
}

// TestWebhookThroughRealPublisher: the listener answers 200 once the real
// bus.Publisher spooled the events, and they reach causeway.persist with
// their event ids; with the spool at its limit the answer is 503.
func TestWebhookThroughRealPublisher(t *testing.T) {
	rw := newRealWebhook(t, 3, 0)
	srv, wh := rw.srv, rw.wh
	firing := file(t, "alertmanager/testdata/firing.json")

	// The broker is not being fed yet (Publisher.Run not started): two
	// events fit in the spool, the next two do not.
	if r := post(t, srv+"/v1/alertmanager", "application/json", firing, bearer("tok-1")); r.code != http.StatusOK {
		t.Fatalf("first webhook: %d %v", r.code, r.body)
	}
	want, err := wh.Decode(firing)
	if err != nil {
		t.Fatal(err)
	}
	other := file(t, "alertmanager/testdata/newer.json")
	if r := post(t, srv+"/v1/alertmanager", "application/json", other, bearer("tok-1")); r.code != http.StatusServiceUnavailable || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("webhook over the spool limit: %d %v, want 503 with Retry-After", r.code, r.body)
	}

	rw.persisted(t)
	var got []string
	for _, m := range bustest.Take(t, rw.url, bus.PersistQueue, len(want)) {
		ev, err := event.Decode(m.Body)
		if err != nil {
			t.Fatalf("message %s: %v", m.MessageId, err)
		}
		if ev.EventID != m.MessageId {
			t.Errorf("message id %s carries event %s", m.MessageId, ev.EventID)
		}
		got = append(got, ev.EventID)
	}
	var wantIDs []string
	for _, ev := range want {
		wantIDs = append(wantIDs, ev.EventID)
	}
	sort.Strings(got)
	sort.Strings(wantIDs)
	for i := range got {
		if got[i] != wantIDs[i] {
			t.Errorf("persisted ids %v, want %v", got, wantIDs)
			break
		}
	}
}

// TestRefusesWhatThePersisterWouldDeadLetter: the listener answers 2xx only
// for events the persister can take. An event whose encoding is over
// event.MaxEventBytes gets 413 and a time that is before year 0 in UTC
// gets 400, and neither is spooled; a good event after them is. The real
// bus.Publisher spools without a broker, so none is needed.
func TestRefusesWhatThePersisterWouldDeadLetter(t *testing.T) {
	pub, err := bus.NewPublisher(bus.PublisherConfig{
		Conn:      bus.Conn{URL: "amqp://guest:guest@127.0.0.1:1/"},
		SpoolPath: filepath.Join(t.TempDir(), "spool.db"),
	}, bus.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	api, err := events.New(events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := listeners.New(listeners.Config{Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}}},
		listeners.Deps{Publisher: pub, Endpoints: []listeners.Endpoint{api.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPTest(t, s)
	body := func(at, cause string) []byte {
		b, err := json.Marshal(map[string]any{"type": "compute.host.down", "time": at,
			"details": map[string]any{"hostname": "compute-1", "source": "m", "status": "down", "cause": cause}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Under the body limit (4 MiB) but, with its other fields, over 1 MiB
	// once encoded.
	if r := post(t, srv+"/v1/events", "application/json", body("2026-01-01T00:00:00Z", strings.Repeat("<&>", event.MaxEventBytes/3)), bearer("tok-1")); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized event: %d %v; want 413", r.code, r.body)
	}
	// (One in year 10000 is taken dated now plus max_clock_skew.)
	if r := post(t, srv+"/v1/events", "application/json", body("0000-01-01T00:30:00+01:00", "x"), bearer("tok-1")); r.code != http.StatusBadRequest {
		t.Errorf("event in year -1 (UTC): %d %v; want 400", r.code, r.body)
	}
	if n, _ := pub.Spooled(); n != 0 {
		t.Fatalf("%d refused events spooled", n)
	}
	if r := post(t, srv+"/v1/events", "application/json", body("2026-01-01T00:00:00Z", "link <down> & out"), bearer("tok-1")); r.code != http.StatusOK {
		t.Fatalf("good event: %d %v", r.code, r.body)
	}
	if n, _ := pub.Spooled(); n != 1 {
		t.Errorf("%d events spooled; want the good one", n)
	}
}
