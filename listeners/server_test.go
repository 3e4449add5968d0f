package listeners_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/drivers/alertmap"
	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/listeners"
	"github.com/causeway/causeway/listeners/alertmanager"
	"github.com/causeway/causeway/listeners/events"
)

// fakePublisher is the consumer-side Publisher: it records, or fails with
// err, or blocks until release is closed.
type fakePublisher struct {
	mu      sync.Mutex
	evs     []event.Event
	err     error
	entered chan struct{}
	release chan struct{}
}

func (p *fakePublisher) Publish(ctx context.Context, evs ...event.Event) error {
	if p.entered != nil {
		p.entered <- struct{}{}
	}
	if p.release != nil {
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.evs = append(p.evs, evs...)
	return nil
}

func (p *fakePublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.evs)
}

func mapping(t testing.TB) alertmap.Config {
	t.Helper()
	b, err := os.ReadFile("alertmanager/testdata/mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := alertmap.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func endpoints(t testing.TB) []listeners.Endpoint {
	t.Helper()
	// The webhook's bound is the server's 8 KiB, to test it with small
	// bodies.
	wh, err := alertmanager.New(alertmanager.Config{Mapping: mapping(t), MaxBodyBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.New(events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	panicky := listeners.Endpoint{Name: "panicky", Path: "/v1/panic", Decoder: listeners.DecoderFunc(func([]byte) ([]event.Event, error) {
		var evs []event.Event
		_ = evs[len(evs)] // index out of range: a decoder bug
		return nil, nil
	})}
	return []listeners.Endpoint{wh.Endpoint(), ev.Endpoint(), panicky}
}

func newServer(t *testing.T, pub listeners.Publisher, reg prometheus.Registerer) *httptest.Server {
	t.Helper()
	return newServerRetryAfter(t, pub, reg, 7*time.Second)
}

func newServerRetryAfter(t *testing.T, pub listeners.Publisher, reg prometheus.Registerer, retryAfter time.Duration) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/token", []byte("tok-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := listeners.New(listeners.Config{
		MaxBodyBytes: 8 << 10,
		RetryAfter:   retryAfter,
		Auth: listeners.Auth{
			Tokens:   []listeners.Token{{Token: "tok-1"}, {TokenFile: dir + "/token"}},
			Username: "am", Password: "pw",
		},
	}, listeners.Deps{Publisher: pub, Endpoints: endpoints(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func newHTTPTest(t *testing.T, s *listeners.Server) string {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

type reply struct {
	code int
	hdr  http.Header
	body map[string]any
}

func post(t *testing.T, url, ctype string, body []byte, auth func(*http.Request)) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return reply{code: resp.StatusCode, hdr: resp.Header, body: m}
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func file(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEndToEnd(t *testing.T) {
	pub := &fakePublisher{}
	reg := prometheus.NewPedanticRegistry()
	srv := newServer(t, pub, reg)
	firing := file(t, "alertmanager/testdata/firing.json")
	am := srv.URL + "/v1/alertmanager"

	// Accepted, by each kind of credential.
	for _, auth := range []func(*http.Request){bearer("tok-1"), bearer("tok-2"), func(r *http.Request) { r.SetBasicAuth("am", "pw") }} {
		r := post(t, am, "application/json; charset=utf-8", firing, auth)
		if r.code != http.StatusOK || r.body["accepted"] != float64(2) {
			t.Fatalf("firing webhook: %d %v, want 200 accepted 2", r.code, r.body)
		}
	}
	if n := pub.count(); n != 6 {
		t.Errorf("published %d events, want 6", n)
	}
	r := post(t, srv.URL+"/v1/events", "application/json", file(t, "events/testdata/host_down.json"), bearer("tok-1"))
	if r.code != http.StatusOK || r.body["accepted"] != float64(1) {
		t.Errorf("generic event: %d %v", r.code, r.body)
	}

	big := append([]byte(`{"version":"4","alerts":[],"pad":"`), bytes.Repeat([]byte("x"), 9<<10)...)
	big = append(big, `"}`...)
	for _, tc := range []struct {
		name    string
		path    string
		ctype   string
		body    []byte
		auth    func(*http.Request)
		code    int
		inError string
		problem string
	}{
		{"no credentials", am, "application/json", firing, nil, 401, "credentials", ""},
		{"wrong token", am, "application/json", firing, bearer("tok-3"), 401, "credentials", ""},
		{"wrong password", am, "application/json", firing, func(r *http.Request) { r.SetBasicAuth("am", "nope") }, 401, "credentials", ""},
		{"wrong content type", am, "text/plain", firing, bearer("tok-1"), 415, `"text/plain" is not application/json`, ""},
		{"no content type", am, "", firing, bearer("tok-1"), 415, "is not application/json", ""},
		{"too large", am, "application/json", big, bearer("tok-1"), 413, "over the limit of 8192", ""},
		{"malformed JSON", am, "application/json", file(t, "alertmanager/testdata/bad/malformed.json"), bearer("tok-1"), 400, "invalid alertmanager payload", "malformed JSON"},
		{"unknown version", am, "application/json", file(t, "alertmanager/testdata/bad/unknown_version.json"), bearer("tok-1"), 400, "invalid alertmanager payload", `unsupported webhook payload version "3"`},
		{"missing labels", am, "application/json", file(t, "alertmanager/testdata/bad/missing_labels.json"), bearer("tok-1"), 400, "invalid alertmanager payload", `alerts[0] (fingerprint "aa")`},
		{"bad generic event", srv.URL + "/v1/events", "application/json", file(t, "events/testdata/bad/no_resource.json"), bearer("tok-1"), 400, "invalid events payload", "details.hostname: is required"},
		{"decoder panic", srv.URL + "/v1/panic", "application/json", []byte("{}"), bearer("tok-1"), 500, "internal error", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := pub.count()
			r := post(t, tc.path, tc.ctype, tc.body, tc.auth)
			if r.code != tc.code {
				t.Fatalf("code %d %v, want %d", r.code, r.body, tc.code)
			}
			if msg, _ := r.body["error"].(string); !strings.Contains(msg, tc.inError) {
				t.Errorf("error %q, want it to contain %q", msg, tc.inError)
			}
			if tc.problem != "" {
				probs, _ := r.body["problems"].([]any)
				if !strings.Contains(fmt.Sprint(probs), tc.problem) {
					t.Errorf("problems %v, want one containing %q", probs, tc.problem)
				}
			}
			if tc.code == 401 && r.hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if pub.count() != before {
				t.Error("a refused request published events")
			}
		})
	}

	// Chunked body over the limit (no Content-Length): 413 as well.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(big)
		_ = pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, am, pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer tok-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized body: %d, want 413", resp.StatusCode)
	}

	// GET: 405.
	resp, err = http.Get(am)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// Unknown path: a JSON 404.
	if r := post(t, srv.URL+"/v1/nothing", "application/json", []byte("{}"), bearer("tok-1")); r.code != http.StatusNotFound {
		t.Errorf("unknown path: %d %v", r.code, r.body)
	}

	// Metrics per endpoint.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"causeway_listener_requests_total,code=200,endpoint=alertmanager":                     3,
		"causeway_listener_requests_total,code=401,endpoint=alertmanager":                     3,
		"causeway_listener_requests_total,code=413,endpoint=alertmanager":                     2,
		"causeway_listener_events_accepted_total,endpoint=alertmanager":                       6,
		"causeway_listener_events_accepted_total,endpoint=events":                             1,
		"causeway_listener_requests_rejected_total,endpoint=alertmanager,reason=bad_input":    3,
		"causeway_listener_requests_rejected_total,endpoint=alertmanager,reason=content_type": 2,
		"causeway_listener_requests_rejected_total,endpoint=panicky,reason=internal":          1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}

// TestAuthSchemeIsCaseInsensitive: the scheme of an Authorization header
// is case-insensitive (RFC 9110, 11.1); Prometheus' and Alertmanager's
// http_config send "<authorization.type> <credentials>" as configured, so
// "type: bearer" gives "bearer <token>". The credentials themselves stay
// case-sensitive.
func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub, prometheus.NewPedanticRegistry())
	firing := file(t, "alertmanager/testdata/firing.json")
	for _, tc := range []struct {
		header string
		code   int
	}{
		{"bearer tok-1", 200}, {"BEARER tok-2", 200}, {"Bearer  tok-1", 200},
		{"bearer TOK-1", 401}, {"Bearertok-1", 401}, {"bearer", 401}, {"Token tok-1", 401},
		{"basic " + base64.StdEncoding.EncodeToString([]byte("am:pw")), 200},
	} {
		r := post(t, srv.URL+"/v1/alertmanager", "application/json", firing, func(r *http.Request) { r.Header.Set("Authorization", tc.header) })
		if r.code != tc.code {
			t.Errorf("Authorization %q: %d %v, want %d", tc.header, r.code, r.body, tc.code)
		}
	}
}

// TestFutureEventsAreDatedNowPlusTheSkew: an event dated further ahead
// of the listener's clock than max_clock_skew (a sender whose clock is
// ahead) is taken, dated now plus the skew, and counted; one within the
// skew keeps its time. Dated in the future, it would make the graph pass
// over every later report of its entity, dated right.
func TestFutureEventsAreDatedNowPlusTheSkew(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	pub := &fakePublisher{}
	reg := prometheus.NewRegistry()
	api, err := events.New(events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := listeners.New(listeners.Config{MaxClockSkew: time.Minute, Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}}},
		listeners.Deps{Publisher: pub, Endpoints: []listeners.Endpoint{api.Endpoint()}, Registerer: reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPTest(t, s)
	for _, at := range []time.Time{now.Add(30 * time.Second), now.Add(time.Hour), now.Add(-time.Hour)} {
		b, err := json.Marshal(map[string]any{"type": "compute.host.down", "time": at.Format(time.RFC3339),
			"details": map[string]any{"hostname": "compute-1", "source": "m", "status": "down"}})
		if err != nil {
			t.Fatal(err)
		}
		if r := post(t, srv+"/v1/events", "application/json", b, bearer("tok-1")); r.code != http.StatusOK {
			t.Fatalf("event at %v: %d %v", at, r.code, r.body)
		}
	}
	pub.mu.Lock()
	var got []time.Time
	for _, ev := range pub.evs {
		got = append(got, ev.ObservedAt.UTC())
	}
	pub.mu.Unlock()
	want := []time.Time{now.Add(30 * time.Second), now.Add(time.Minute), now.Add(-time.Hour)}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("observed at %v; want %v", got, want)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "causeway_listener_future_events_total" && len(mf.GetMetric()) == 1 {
			counted = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if counted != 1 {
		t.Errorf("future events counted %v; want 1", counted)
	}
}

// TestRetryAfterRoundsUp: a retry_after under a second is sent as 1, not
// as 0, which would ask for a retry at once.
func TestRetryAfterRoundsUp(t *testing.T) {
	pub := &fakePublisher{err: fmt.Errorf("publish 2 events: %w", bus.ErrSpoolFull)}
	for d, want := range map[time.Duration]string{300 * time.Millisecond: "1", 1500 * time.Millisecond: "2", 2 * time.Second: "2"} {
		srv := newServerRetryAfter(t, pub, nil, d)
		r := post(t, srv.URL+"/v1/alertmanager", "application/json", file(t, "alertmanager/testdata/firing.json"), bearer("tok-1"))
		if got := r.hdr.Get("Retry-After"); r.code != http.StatusServiceUnavailable || got != want {
			t.Errorf("retry_after %v: %d, Retry-After %q; want 503 with %s", d, r.code, got, want)
		}
	}
}

func TestSpoolFull(t *testing.T) {
	pub := &fakePublisher{err: fmt.Errorf("publish 2 events: %w", bus.ErrSpoolFull)}
	srv := newServer(t, pub, nil)
	r := post(t, srv.URL+"/v1/alertmanager", "application/json", file(t, "alertmanager/testdata/firing.json"), bearer("tok-1"))
	if r.code != http.StatusServiceUnavailable || r.hdr.Get("Retry-After") != "7" {
		t.Fatalf("spool full: %d Retry-After %q %v, want 503 with Retry-After 7", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	if msg, _ := r.body["error"].(string); !strings.Contains(msg, "spool full") {
		t.Errorf("error %q does not say the spool is full", msg)
	}
	pub.err = errors.New("disk on fire")
	r = post(t, srv.URL+"/v1/alertmanager", "application/json", file(t, "alertmanager/testdata/firing.json"), bearer("tok-1"))
	if r.code != http.StatusServiceUnavailable {
		t.Errorf("publish error: %d, want 503", r.code)
	}
}

// TestGracefulShutdown: a request in flight when ctx ends is finished
// (published and answered 200) before Run returns; new connections are
// refused after.
func TestGracefulShutdown(t *testing.T) {
	pub := &fakePublisher{entered: make(chan struct{}, 1), release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := listeners.New(listeners.Config{Auth: listeners.Auth{InsecureNoAuth: true}},
		listeners.Deps{Publisher: pub, Endpoints: endpoints(t), Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	url := "http://" + ln.Addr().String() + "/v1/events"
	got := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/json", bytes.NewReader(file(t, "events/testdata/host_down.json")))
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-pub.entered // the request is publishing
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(pub.release)
	if code := <-got; code != http.StatusOK {
		t.Errorf("in-flight request: %d, want 200", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the in-flight request")
	}
	if pub.count() != 1 {
		t.Errorf("published %d events, want 1", pub.count())
	}
	if _, err := http.Post(url, "application/json", strings.NewReader("{}")); err == nil {
		t.Error("a request after shutdown was served")
	}
}

// TestShutdownTimeoutIsACleanStop: a request still in flight when
// shutdown_timeout passes is cut, its client left unanswered (it sends the
// request again), and Run returns nil, a clean stop, as the persister's
// and the processor's do when their grace runs out, with a warning saying
// so: `systemctl stop` must not leave the unit failed.
func TestShutdownTimeoutIsACleanStop(t *testing.T) {
	pub := &fakePublisher{entered: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(pub.release)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	s, err := listeners.New(listeners.Config{Auth: listeners.Auth{InsecureNoAuth: true}, ShutdownTimeout: time.Millisecond},
		listeners.Deps{Publisher: pub, Endpoints: endpoints(t), Listener: ln, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/v1/events", "application/json", bytes.NewReader(file(t, "events/testdata/host_down.json")))
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	<-pub.entered // the request is publishing, and stays so
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after shutdown_timeout passed: %v; want nil, a clean stop", err)
	}
	if err := <-answered; err == nil {
		t.Error("the request cut by the stop was answered")
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "shutdown_timeout") {
		t.Errorf("no warning about the requests cut:\n%s", out)
	}
}

func TestConfigValidate(t *testing.T) {
	err := listeners.Config{Listen: "8091", ReadTimeout: -1, Auth: listeners.Auth{Tokens: []listeners.Token{{}}, Password: "x"}}.Validate()
	for _, want := range []string{`listen: "8091" is not host:port`, "read_timeout: must not be negative", "auth.tokens[0]: one of token and token_file is required", "auth.username: is required with a password"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
	open := listeners.Auth{InsecureNoAuth: true}
	if err := (listeners.Config{MaxBodyBytes: 2 << 20, MaxInflightBytes: 1 << 20, Auth: open}).Validate(); err == nil || !strings.Contains(err.Error(), "max_inflight_bytes: 1048576 is under max_body_bytes") {
		t.Errorf("max_inflight_bytes under max_body_bytes: %v", err)
	}
	if err := (listeners.Config{MaxBodyBytes: 128 << 20, Auth: open}).Validate(); err == nil || !strings.Contains(err.Error(), "max_inflight_bytes") {
		t.Errorf("max_body_bytes over the default max_inflight_bytes: %v", err)
	}
	wh, err := alertmanager.New(alertmanager.Config{Mapping: mapping(t), MaxBodyBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listeners.New(listeners.Config{MaxInflightBytes: 1 << 20, MaxBodyBytes: 1 << 10, Auth: open},
		listeners.Deps{Publisher: &fakePublisher{}, Endpoints: []listeners.Endpoint{wh.Endpoint()}}); err == nil || !strings.Contains(err.Error(), "alertmanager endpoint's max_body_bytes") {
		t.Errorf("an endpoint's bound over max_inflight_bytes: %v", err)
	}
	if err := (listeners.Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "no credential configured") {
		t.Errorf("no auth: %v", err)
	}
	c := listeners.Config{Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "hunter2"}}, Username: "u", Password: "swordfish"}}
	if s := c.String(); strings.Contains(s, "hunter2") || strings.Contains(s, "swordfish") {
		t.Errorf("String leaks a secret: %s", s)
	}
}

// TestPartlyMappablePayload: an Alertmanager group holding an alert no
// mapping rule maps is taken but for that alert (200, the refusal listed,
// logged and counted), since Alertmanager does not retry a 4xx and the
// group's other alerts would be lost with it; a group of only unmappable
// alerts is refused whole (400).
func TestPartlyMappablePayload(t *testing.T) {
	pub := &fakePublisher{}
	reg := prometheus.NewPedanticRegistry()
	srv := newServer(t, pub, reg)
	am := srv.URL + "/v1/alertmanager"
	mixed := []byte(`{"version": "4", "status": "firing", "alerts": [
  {"status": "firing", "labels": {"alertname": "HostDown", "job": "node", "instance": "compute-1:9100"}, "startsAt": "2026-03-01T10:00:00Z", "fingerprint": "aa"},
  {"status": "firing", "labels": {"alertname": "Watchdog", "job": "prometheus"}, "startsAt": "2026-03-01T10:00:00Z", "fingerprint": "bb"}
]}`)
	r := post(t, am, "application/json", mixed, bearer("tok-1"))
	refused, _ := r.body["refused"].([]any)
	if r.code != http.StatusOK || r.body["accepted"] != float64(1) || len(refused) != 1 ||
		!strings.Contains(fmt.Sprint(refused[0]), `fingerprint "bb"`) {
		t.Fatalf("mixed group: %d %v; want 200, 1 accepted, bb refused", r.code, r.body)
	}
	if n := pub.count(); n != 1 {
		t.Errorf("published %d events; want the mappable one", n)
	}
	if r := post(t, am, "application/json", file(t, "alertmanager/testdata/bad/missing_labels.json"), bearer("tok-1")); r.code != http.StatusBadRequest {
		t.Errorf("group of unmappable alerts: %d %v; want 400", r.code, r.body)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var partial float64
	for _, mf := range mfs {
		if mf.GetName() != "causeway_listener_requests_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == listeners.ReasonPartial {
					partial += m.GetCounter().GetValue()
				}
			}
		}
	}
	if partial != 1 {
		t.Errorf("requests counted as partly refused: %v; want 1", partial)
	}
}

// TestServerNotAliveWhileAPublishHangs: a request whose Publish has run
// past StallLimit makes the server stuck (here the publisher blocks, as a
// spool whose disk stopped answering would); serving nothing, or refusing
// requests while the spool is full, is not stuck.
func TestServerNotAliveWhileAPublishHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &fakePublisher{release: make(chan struct{})}
		release := sync.OnceFunc(func() { close(pub.release) })
		defer release()
		s, err := listeners.New(listeners.Config{Auth: listeners.Auth{InsecureNoAuth: true}},
			listeners.Deps{Publisher: pub, Endpoints: endpoints(t)})
		if err != nil {
			t.Fatal(err)
		}
		send := func() *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, "/v1/alertmanager", bytes.NewReader(file(t, "alertmanager/testdata/firing.json")))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			return rec
		}
		time.Sleep(time.Hour)
		if !s.Alive() {
			t.Fatal("an idle server is not alive")
		}
		answered := make(chan int, 1)
		go func() { answered <- send().Code }()
		synctest.Wait() // the request's Publish blocks
		time.Sleep(listeners.StallLimit - time.Second)
		if !s.Alive() {
			t.Fatal("not alive with a Publish in flight short of the limit")
		}
		time.Sleep(2 * time.Second)
		if s.Alive() {
			t.Fatal("alive with a Publish in flight past the limit")
		}
		release()
		if code := <-answered; code != http.StatusOK {
			t.Fatalf("the request was answered %d once its Publish returned, want 200", code)
		}
		if !s.Alive() {
			t.Fatal("not alive once the Publish returned")
		}

		pub.mu.Lock()
		pub.err = fmt.Errorf("publish 2 events: %w", bus.ErrSpoolFull)
		pub.mu.Unlock()
		for range 60 {
			if code := send().Code; code != http.StatusServiceUnavailable {
				t.Fatalf("spool full: answered %d, want 503", code)
			}
			time.Sleep(10 * time.Second)
			if !s.Alive() {
				t.Fatal("not alive while refusing requests with a full spool")
			}
		}
	})
}

// panickingPublisher panics on its first Publish, as a publisher with a
// bug would, and publishes every later call.
type panickingPublisher struct {
	fakePublisher
	panicked bool
}

func (p *panickingPublisher) Publish(ctx context.Context, evs ...event.Event) error {
	p.mu.Lock()
	first := !p.panicked
	p.panicked = true
	p.mu.Unlock()
	if first {
		panic("publisher bug")
	}
	return p.fakePublisher.Publish(ctx, evs...)
}

// TestServerAliveAfterAPublishPanicked: a Publish that panics is
// recovered by the handler (500) and its operation ends with it, so the
// server stays alive long past StallLimit and takes the next request;
// before, the operation stayed in flight for good and the listener was
// restarted two minutes later.
func TestServerAliveAfterAPublishPanicked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub := &panickingPublisher{}
		s, err := listeners.New(listeners.Config{Auth: listeners.Auth{InsecureNoAuth: true}},
			listeners.Deps{Publisher: pub, Endpoints: endpoints(t)})
		if err != nil {
			t.Fatal(err)
		}
		send := func() int {
			req := httptest.NewRequest(http.MethodPost, "/v1/alertmanager", bytes.NewReader(file(t, "alertmanager/testdata/firing.json")))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			return rec.Code
		}
		if code := send(); code != http.StatusInternalServerError {
			t.Fatalf("the request whose Publish panicked was answered %d, want 500", code)
		}
		time.Sleep(listeners.StallLimit + time.Second)
		if !s.Alive() {
			t.Fatal("not alive past the stall limit after a Publish panicked and was recovered")
		}
		if code := send(); code != http.StatusOK {
			t.Fatalf("the next request was answered %d, want 200", code)
		}
		if n := pub.count(); n != 2 {
			t.Errorf("published %d events, want the 2 of the next request", n)
		}
	})
}

// largeGroup is an Alertmanager webhook of n firing alerts that map, each
// on its own host.
func largeGroup(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version": "4", "groupKey": "{}:{alertname=\"HostDown\"}", "status": "firing", "receiver": "causeway", "alerts": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"status": "firing", "labels": {"alertname": "HostDown", "instance": "compute-%d:9100", "job": "node", "severity": "critical"}, `+
			`"annotations": {"summary": "Host down", "description": "compute-%d does not answer its node exporter's scrapes"}, "startsAt": "2026-03-01T10:00:00Z", `+
			`"endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph?g0.expr=up%%3D%%3D0", "fingerprint": "%016x"}`, i, i, i)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// TestLargeAlertmanagerGroupIsTaken: an Alertmanager group over the
// server's max_body_bytes (the default 4 MiB) is taken whole, under the
// webhook's own bound: Alertmanager sends a group in one request and does
// not retry a 413, so such a group, sent in a large outage, was lost.
func TestLargeAlertmanagerGroupIsTaken(t *testing.T) {
	wh, err := alertmanager.New(alertmanager.Config{Mapping: mapping(t)})
	if err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	s, err := listeners.New(listeners.Config{Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}}},
		listeners.Deps{Publisher: pub, Endpoints: []listeners.Endpoint{wh.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	n := 12000
	body := largeGroup(n)
	if len(body) <= listeners.DefaultMaxBodyBytes {
		t.Fatalf("a group of %d bytes is not over max_body_bytes", len(body))
	}
	r := post(t, newHTTPTest(t, s)+"/v1/alertmanager", "application/json", body, bearer("tok-1"))
	if r.code != http.StatusOK || r.body["accepted"] != float64(n) {
		t.Fatalf("group of %d alerts, %d bytes: %d %.300v; want 200 with every alert accepted", n, len(body), r.code, r.body)
	}
	if pub.count() != n {
		t.Errorf("%d events published, want %d", pub.count(), n)
	}
}

// TestBodiesInFlightAreBounded: a request whose body does not fit in
// max_inflight_bytes beside the bodies being taken gets 503 with
// Retry-After, which Alertmanager retries, and is taken once the others
// are done: memory stays bounded however many large groups come at once.
func TestBodiesInFlightAreBounded(t *testing.T) {
	pub := &fakePublisher{entered: make(chan struct{}, 1), release: make(chan struct{})}
	reg := prometheus.NewPedanticRegistry()
	s, err := listeners.New(listeners.Config{MaxBodyBytes: 8 << 10, MaxInflightBytes: 8 << 10, RetryAfter: 3 * time.Second,
		Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}}},
		listeners.Deps{Publisher: pub, Endpoints: endpoints(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	am := newHTTPTest(t, s) + "/v1/alertmanager"
	var once sync.Once
	release := func() { once.Do(func() { close(pub.release) }) }
	t.Cleanup(release) // before the server closes: a failed test leaves no request blocked
	first := file(t, "alertmanager/testdata/firing.json")
	// The second is one byte more than what the first leaves.
	second := append(bytes.Repeat([]byte(" "), 8<<10-2*len(first)+1), first...)
	answered := make(chan reply, 1)
	go func() { answered <- post(t, am, "application/json", first, bearer("tok-1")) }()
	<-pub.entered // the first is publishing, its body held
	refused := make(chan reply, 1)
	go func() { refused <- post(t, am, "application/json", second, bearer("tok-1")) }()
	var r reply
	select {
	case r = <-refused:
	case <-pub.entered:
		release()
		<-refused
		<-answered
		t.Fatal("the second body was taken beside the first, over max_inflight_bytes")
	}
	if r.code != http.StatusServiceUnavailable || r.hdr.Get("Retry-After") != "3" {
		t.Fatalf("second body beside the first: %d Retry-After %q %v; want 503 with Retry-After 3", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	busy := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "causeway_listener_requests_rejected_total" && l.GetName() == "reason" && l.GetValue() == listeners.ReasonBusy {
					busy += m.GetCounter().GetValue()
				}
			}
		}
	}
	if busy != 1 {
		t.Errorf("rejected{reason=busy} %v, want 1", busy)
	}
	release()
	if r := <-answered; r.code != http.StatusOK {
		t.Fatalf("first: %d %v", r.code, r.body)
	}
	if r := post(t, am, "application/json", second, bearer("tok-1")); r.code != http.StatusOK {
		t.Errorf("second, retried alone: %d %v; want 200", r.code, r.body)
	}
}

// TestWebhookShortensAsThePullDoes: an alert whose alarm is over
// alertmap.MaxEntityBytes once encoded, yet whose event fits under
// event.MaxEventBytes, is taken with its annotations shortened, as the
// Alertmanager driver's pull takes it: were the webhook to shorten only
// what the publisher refuses, the two would report the alarm with two
// descriptions, and every pull and webhook would change it back.
func TestWebhookShortensAsThePullDoes(t *testing.T) {
	wh, err := alertmanager.New(alertmanager.Config{Mapping: mapping(t), MaxBodyBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	reg := prometheus.NewPedanticRegistry()
	s, err := listeners.New(listeners.Config{MaxBodyBytes: 4 << 20, Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}}},
		listeners.Deps{Publisher: pub, Endpoints: []listeners.Endpoint{wh.Endpoint()}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	desc := strings.Repeat("d", alertmap.MaxEntityBytes-100)
	body := []byte(`{"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "HostDown", "job": "node", ` +
		`"instance": "compute-1:9100"}, "annotations": {"summary": "down", "description": "` + desc + `"}, "startsAt": "2026-03-01T10:00:00Z", "fingerprint": "aa"}]}`)
	evs, err := wh.Decode(body)
	if err != nil || len(evs) != 1 {
		t.Fatalf("decode: %d events, %v", len(evs), err)
	}
	want, cut, err := alertmap.ShortenAnnotations(*evs[0].Entity)
	if err != nil || !cut {
		t.Fatalf("the test's alarm is not one the pull shortens: cut %v, %v", cut, err)
	}
	if _, err := event.Encode(evs[0]); err != nil {
		t.Fatalf("the test's event does not fit whole: %v", err)
	}
	if r := post(t, newHTTPTest(t, s)+"/v1/alertmanager", "application/json", body, bearer("tok-1")); r.code != http.StatusOK || r.body["shortened"] != float64(1) {
		t.Fatalf("answer %d %v; want 200, 1 shortened", r.code, r.body)
	}
	if len(pub.evs) != 1 || !maps.Equal(pub.evs[0].Entity.Properties, want.Properties) || pub.evs[0].EventID != evs[0].EventID {
		t.Errorf("published %d events; want the alarm as the pull shortens it, under its event id", len(pub.evs))
	}
}

// TestOpenServerSaysSo: a server with auth.insecure_no_auth took anyone's
// events without a word in its log: a configuration copied from a
// test, or a credential section lost in an edit, went unseen. It warns,
// when it starts listening, that it accepts unauthenticated requests; a
// server with credentials does not.
func TestOpenServerSaysSo(t *testing.T) {
	for _, c := range []struct {
		name string
		auth listeners.Auth
		want int
	}{
		{"open", listeners.Auth{InsecureNoAuth: true}, 1},
		{"token", listeners.Auth{Tokens: []listeners.Token{{Token: "t"}}}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			h := logtest.NewHandler()
			s, err := listeners.New(listeners.Config{Auth: c.auth},
				listeners.Deps{Publisher: &fakePublisher{}, Endpoints: endpoints(t), Listener: ln, Logger: slog.New(h)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			deadline := time.Now().Add(10 * time.Second)
			for h.Count(func(r slog.Record) bool { return r.Message == "listening" }) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no \"listening\" record")
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := h.Count(func(r slog.Record) bool {
				return r.Level >= slog.LevelWarn && strings.Contains(r.Message, "unauthenticated")
			})
			if got != c.want {
				t.Errorf("%d warnings of unauthenticated requests accepted; want %d", got, c.want)
			}
		})
	}
}

// TestSmallChunkedBodiesDoNotFillTheBudget: bodies sent without
// Content-Length (chunked) count against max_inflight_bytes by what is
// read of them, not as large as their endpoint's bound: a few small
// chunked requests held at once used to fill the budget, and every other
// request got 503 while they were taken.
func TestSmallChunkedBodiesDoNotFillTheBudget(t *testing.T) {
	const n = 4
	pub := &fakePublisher{entered: make(chan struct{}, n), release: make(chan struct{})}
	// The budget would hold two bodies as large as the bound, not n.
	s, err := listeners.New(listeners.Config{MaxBodyBytes: 8 << 10, MaxInflightBytes: 16 << 10,
		Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}}},
		listeners.Deps{Publisher: pub, Endpoints: endpoints(t)})
	if err != nil {
		t.Fatal(err)
	}
	am := newHTTPTest(t, s) + "/v1/alertmanager"
	var once sync.Once
	release := func() { once.Do(func() { close(pub.release) }) }
	t.Cleanup(release)
	body := file(t, "alertmanager/testdata/firing.json")
	answered := make(chan reply, n)
	for range n {
		go func() { answered <- postChunked(t, am, body, bearer("tok-1")) }()
	}
	for i := range n {
		select {
		case <-pub.entered:
		case r := <-answered:
			release()
			t.Fatalf("%d small chunked bodies held, the next answered %d %v; want every one taken", i, r.code, r.body)
		}
	}
	release()
	for range n {
		if r := <-answered; r.code != http.StatusOK {
			t.Errorf("chunked body: %d %v; want 200", r.code, r.body)
		}
	}
}

// postChunked posts body without Content-Length, as chunks.
func postChunked(t *testing.T, url string, body []byte, auth func(*http.Request)) reply {
	t.Helper()
	// A reader of unknown length: the client sends it chunked.
	req, err := http.NewRequest(http.MethodPost, url, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Error(err)
		return reply{}
	}
	req.Header.Set("Content-Type", "application/json")
	auth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return reply{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Errorf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return reply{code: resp.StatusCode, hdr: resp.Header, body: m}
}
