package listeners_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/listeners"
	"github.com/causeway/causeway/listeners/events"
)

// TestFutureEventsAreNotLoggedPerRequest: a sender whose clock is ahead
// by more than max_clock_skew keeps being so; every request of it logged
// a warning, as many lines as requests for as long as its clock is wrong
// (hundreds a second from a busy sender). They are counted each
// (causeway_listener_future_events_total) and logged at most once a
// minute, with the count since the last line.
func TestFutureEventsAreNotLoggedPerRequest(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := logtest.NewHandler()
	api, err := events.New(events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := listeners.New(listeners.Config{MaxClockSkew: time.Minute, Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}}},
		listeners.Deps{Publisher: &fakePublisher{}, Endpoints: []listeners.Endpoint{api.Endpoint()}, Registerer: prometheus.NewRegistry(),
			Now: clock, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPTest(t, s)
	send := func() {
		t.Helper()
		b, err := json.Marshal(map[string]any{"type": "compute.host.down", "time": clock().Add(time.Hour).Format(time.RFC3339),
			"details": map[string]any{"hostname": "compute-1", "source": "m", "status": "down"}})
		if err != nil {
			t.Fatal(err)
		}
		if r := post(t, srv+"/v1/events", "application/json", b, bearer("tok-1")); r.code != http.StatusOK {
			t.Fatalf("%d %v", r.code, r.body)
		}
	}
	warned := func() int {
		return h.Count(func(r slog.Record) bool { return r.Level >= slog.LevelWarn })
	}
	for range 200 {
		send()
	}
	if n := warned(); n != 1 {
		t.Errorf("200 requests with future events within a second logged %d warnings; want 1", n)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	send()
	if n := warned(); n != 2 {
		t.Errorf("a minute later, %d warnings in all; want 2 (one more, with the count since)", n)
	}
}
