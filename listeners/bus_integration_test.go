package listeners_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	reg      *prometheus.Registry
}

func newRealWebhook(t *testing.T, spoolMax int, maxBody int64) realWebhook {
	t.Helper()
	r := realWebhook{url: bustest.VHost(t), reg: prometheus.NewRegistry()}
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
		listeners.Deps{Publisher: r.pub, Registerer: r.reg, Endpoints: []listeners.Endpoint{r.wh.Endpoint()}})
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

// TestOversizedAlertsAreShortenedOrDeadLettered: Alertmanager does not
// retry a 4xx, so no alert of a group is refused for its size. An alert
// whose event is over the size limit once encoded because of its
// annotations is published with them shortened (and marked); one over it
// because of its labels, which identify it, is dead-lettered with the
// reason; the others are published; the answer is 200 once all of it is
// spooled, and the same group sent again gives the same events.
func TestOversizedAlertsAreShortenedOrDeadLettered(t *testing.T) {
	rw := newRealWebhook(t, 0, 8<<20)
	alert := func(host, fp, description, label string) string {
		return `{"status": "firing", "labels": {"alertname": "HostDown", "job": "node", "instance": "` + host + `:9100", "big": "` + label +
			`"}, "annotations": {"summary": "host down", "description": "` + description + `", "runbook": "` + description +
			`"}, "startsAt": "2026-03-01T10:00:00Z", "fingerprint": "` + fp + `"}`
	}
	huge := strings.Repeat("d", event.MaxEventBytes+100)
	// Two alerts whose annotations differ only past where they are cut:
	// two reports, two event ids.
	huge2 := huge[:len(huge)-1] + "e"
	group := []byte(`{"version": "4", "status": "firing", "alerts": [` + alert("compute-1", "aa", "", "") + `,` +
		alert("compute-2", "bb", huge, "") + `,` + alert("compute-3", "cc", "", huge) + `,` + alert("compute-2", "bb", huge2, "") + `]}`)
	want, _ := rw.wh.Decode(group)
	r := post(t, rw.srv+"/v1/alertmanager", "application/json", group, bearer("tok-1"))
	if r.code != http.StatusOK || r.body["accepted"] != float64(3) || r.body["shortened"] != float64(2) || r.body["refused"] != nil {
		t.Fatalf("group with oversized alerts: %d %.300v; want 200, 3 accepted (2 shortened), none refused", r.code, r.body)
	}
	dead, _ := r.body["dead_lettered"].([]any)
	if len(dead) != 1 || !strings.Contains(fmt.Sprint(dead[0]), "label") {
		t.Fatalf("dead_lettered %.300v; want compute-3's alert, too large by its labels", r.body["dead_lettered"])
	}
	// Sent again (as Alertmanager does on every group_interval): the same.
	if r := post(t, rw.srv+"/v1/alertmanager", "application/json", group, bearer("tok-1")); r.code != http.StatusOK {
		t.Fatalf("group sent again: %d %.300v", r.code, r.body)
	}
	rw.persisted(t)
	got := map[string][]string{} // event id -> shortened_annotations, per copy
	bodies := map[string]string{}
	for _, m := range bustest.Take(t, rw.url, bus.PersistQueue, 6) {
		ev, err := event.Decode(m.Body)
		if err != nil {
			t.Fatalf("published %s: %v", m.MessageId, err)
		}
		got[ev.EventID] = append(got[ev.EventID], ev.Entity.Properties["shortened_annotations"])
		if b, ok := bodies[ev.EventID]; ok && b != string(m.Body) {
			t.Errorf("event %s sent twice with two bodies", ev.EventID)
		}
		bodies[ev.EventID] = string(m.Body)
		if ev.Entity.Properties["label.big"] == "" && ev.Entity.Properties["annotation.summary"] != "host down" {
			t.Errorf("event %s: the summary, short, was cut: %q", ev.EventID, ev.Entity.Properties["annotation.summary"])
		}
	}
	for _, i := range []int{0, 1, 3} { // the ids Decode derives, from the whole alerts
		if want[i].EventID == want[(i+2)%4].EventID {
			t.Fatalf("alerts %d and %d share event id %s", i, (i+2)%4, want[i].EventID)
		}
		wantMark := "description,runbook"
		if i == 0 {
			wantMark = ""
		}
		if g := got[want[i].EventID]; len(g) != 2 || g[0] != wantMark || g[1] != wantMark {
			t.Errorf("alert %d (event %s): shortened_annotations of its copies %q; want %q twice", i, want[i].EventID, g, wantMark)
		}
	}
	dl := bustest.Take(t, rw.url, bus.DeadLetterQueue, 2)
	for _, m := range dl {
		if m.MessageId != want[2].EventID || !strings.Contains(fmt.Sprint(m.Headers[bus.ReasonHeader]), "limit") {
			t.Errorf("dead letter %s reason %q; want event %s, over the limit", m.MessageId, m.Headers[bus.ReasonHeader], want[2].EventID)
		}
	}
	// A group of only an alert too large by its labels is taken too.
	only := []byte(`{"version": "4", "status": "firing", "alerts": [` + alert("compute-3", "cc", "", huge) + `]}`)
	if r := post(t, rw.srv+"/v1/alertmanager", "application/json", only, bearer("tok-1")); r.code != http.StatusOK {
		t.Errorf("group of the oversized alert alone: %d %.300v; want 200", r.code, r.body)
	}
	if n := len(bustest.Take(t, rw.url, bus.DeadLetterQueue, 1)); n != 1 {
		t.Errorf("%d dead letters of the lone alert", n)
	}
	mfs, err := rw.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got2 := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got2[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	if s, d := got2["causeway_listener_events_shortened_total"], got2["causeway_listener_events_dead_lettered_total"]; s != 4 || d != 3 {
		t.Errorf("counted %v shortened and %v dead-lettered; want 4 and 3", s, d)
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
