package alertmanager

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/causeway/causeway/drivers"
	"github.com/causeway/causeway/drivers/alertmap"
	"github.com/causeway/causeway/drivers/pull"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/golden"
)

var _ drivers.Driver = (*Driver)(nil)

func mapping(t testing.TB) alertmap.Config {
	t.Helper()
	b, err := os.ReadFile("testdata/mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := alertmap.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// server serves testdata/alerts.json like Alertmanager, checking the token
// and the query.
func server(t *testing.T, status int, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/alerts" {
			http.NotFound(w, r)
			return
		}
		if got := r.Header.Get("Authorization"); got != "Bearer s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		if q.Get("active") != "true" || q.Get("silenced") != "false" || q.Get("inhibited") != "false" {
			http.Error(w, "unexpected query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestGetAllGolden(t *testing.T) {
	body, err := os.ReadFile("testdata/alerts.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, http.StatusOK, body)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/token", []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	d, err := New(Config{URL: srv.URL, TokenFile: dir + "/token", Mapping: mapping(t)}, Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := d.GetAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slot := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)
	evs, err := pull.Events(d.Name(), slot, slot.Add(time.Second), ents)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if _, err := event.Encode(ev); err != nil {
			t.Errorf("event %s: %v", ev.EventID, err)
		}
	}
	golden.JSON(t, "testdata/alerts.golden.json", evs)
	var m dto.Metric
	if err := d.unmapped.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("unmapped alerts = %v, want 1 (the Watchdog)", got)
	}
}

func TestGetAllErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		token  string
		want   string
	}{
		{"server error", http.StatusInternalServerError, "boom", "s3cret", "HTTP 500: boom"},
		{"wrong token", http.StatusOK, "[]", "nope", "HTTP 401"},
		{"malformed JSON", http.StatusOK, `[{"labels":`, "s3cret", "decode alerts"},
		{"not a list", http.StatusOK, `{"alerts":[]}`, "s3cret", "decode alerts"},
		// null is no list of no alerts: taken as one, the pull would delete every alarm.
		{"null", http.StatusOK, `null`, "s3cret", "decode alerts"},
		{"null with spaces", http.StatusOK, " null\n", "s3cret", "decode alerts"},
		{"alert without labels", http.StatusOK, `[{"fingerprint":"x"}]`, "s3cret", "[0].labels: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, tc.status, []byte(tc.body))
			d, err := New(Config{URL: srv.URL, Token: tc.token, Mapping: mapping(t)}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.GetAll(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("GetAll: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestGetAllTooLarge(t *testing.T) {
	body, _ := os.ReadFile("testdata/alerts.json")
	srv := server(t, http.StatusOK, body)
	d, err := New(Config{URL: srv.URL, Token: "s3cret", MaxBodySize: 100, Mapping: mapping(t)}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetAll(context.Background()); err == nil || !strings.Contains(err.Error(), "max_body_size") {
		t.Errorf("GetAll: %v, want a max_body_size error", err)
	}
}

func TestConfig(t *testing.T) {
	err := Config{URL: "ftp://x", Token: "a", TokenFile: "b", Timeout: -1, StartupGrace: -1}.Validate()
	for _, want := range []string{"url: ", "token_file: token and token_file exclude each other", "timeout: must not be negative",
		"startup_grace: must not be negative", "mapping.rules: at least one rule is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
	// A source no event may carry: every event of every pull would be
	// refused, the begin left out with a log line alone.
	for _, src := range []string{"causeway.evaluator", strings.Repeat("s", 250), "am\n"} {
		err := Config{URL: "http://x", Source: src, Mapping: mapping(t)}.Validate()
		if err == nil || !strings.Contains(err.Error(), "source: ") {
			t.Errorf("Validate with source %q: %v, want a source error", src, err)
		}
	}
	// The address of Alertmanager's UI, copied from the browser: its
	// fragment would swallow the API path, every request would get the UI
	// page, and the pulls would fail on HTML for a reason hard to see.
	for _, u := range []string{"http://am:9093/#/alerts", "http://am:9093/?silenced=true"} {
		err := Config{URL: u, Mapping: mapping(t)}.Validate()
		if err == nil || !strings.Contains(err.Error(), "url: ") {
			t.Errorf("Validate with url %q: %v, want a url error", u, err)
		}
	}
	if err := (Config{URL: "https://am.example:9093/alertmanager/", Mapping: mapping(t)}).Validate(); err != nil {
		t.Errorf("Validate with a path prefix: %v", err)
	}
	if s := (Config{Token: "hunter2"}).String(); strings.Contains(s, "hunter2") {
		t.Errorf("String leaks the token: %s", s)
	}
	// Basic auth can only be given in the URL (Go's client sends its user
	// info): the password is as secret as the token.
	if s := (Config{URL: "https://causeway:hunter2@am:9093"}).String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "am:9093") {
		t.Errorf("String leaks the URL's password, or drops the URL: %s", s)
	}
	if err := (Config{URL: "htps://causeway:hunter2@am:9093", Mapping: mapping(t)}).Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate of a URL with a password and a wrong scheme: %v, want an error without the password", err)
	}
	if _, err := New(Config{URL: "http://x", TokenFile: "/nonexistent/token", Mapping: mapping(t)}, Deps{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New with a missing token file: %v", err)
	}
}

// acceptingPublisher takes every event.
type acceptingPublisher struct{}

func (acceptingPublisher) Publish(context.Context, ...event.Event) error { return nil }

// TestNeverAnsweringAlertmanagerIsNotStuck: an Alertmanager that accepts
// the connection and never answers fails each pull at pull_timeout, and
// the runner backs off and tries again: it stays alive throughout, for
// several times its stall limit (shortened here), since a watchdog
// restart would not bring the Alertmanager back.
func TestNeverAnsweringAlertmanagerIsNotStuck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; the client gives up
	}))
	t.Cleanup(srv.Close)
	d, err := New(Config{URL: srv.URL, Mapping: mapping(t), Schedule: drivers.Schedule{
		Interval: time.Hour, PullTimeout: 100 * time.Millisecond, BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	// Ten times pull_timeout: a pull that its timeout ends stays well
	// short of it on a loaded machine.
	const limit = time.Second
	r, err := drivers.New([]drivers.Job{d.Job()}, drivers.Deps{Publisher: acceptingPublisher{}, Registerer: reg, StallLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for end := time.Now().Add(3 * limit); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !r.Alive() {
			t.Fatal("not alive while the Alertmanager does not answer")
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var failed float64
	for _, mf := range mfs {
		if mf.GetName() != "causeway_driver_pulls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == drivers.ResultError {
					failed += m.GetCounter().GetValue()
				}
			}
		}
	}
	if failed < 3 {
		t.Errorf("%v pulls failed in %s; want the pull timed out and retried several times", failed, 3*limit)
	}
}

// amServer is an Alertmanager that started at started and lists the
// alerts of body.
func amServer(t *testing.T, started time.Time, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(amHandler(started, body))
	t.Cleanup(srv.Close)
	return srv
}

// amHandler answers as an Alertmanager that started at started and lists
// the alerts of body.
func amHandler(started time.Time, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v2/status":
			_, _ = w.Write([]byte(`{"cluster": {"status": "disabled", "peers": []}, "versionInfo": {"version": "0.28.1"},` +
				`"config": {"original": "route: {}"}, "uptime": "` + started.UTC().Format(time.RFC3339Nano) + `"}`))
		case "/api/v2/alerts":
			_, _ = w.Write([]byte(body))
		default:
			http.NotFound(w, r)
		}
	})
}

// TestCAFileTrustsAPrivateCA: an Alertmanager served over HTTPS with a
// certificate of the site's own CA could not be pulled at all (the
// driver trusted the system's roots only); ca_file names the CA bundle to
// trust instead. A file that holds no certificate is refused at start.
func TestCAFileTrustsAPrivateCA(t *testing.T) {
	alerts := `[{"fingerprint": "aa", "labels": {"alertname": "HostDown", "job": "node", "instance": "compute-1:9100"},` +
		`"startsAt": "2026-03-01T10:00:00Z", "status": {"state": "active"}}]`
	srv := httptest.NewTLSServer(amHandler(time.Now().Add(-time.Hour), alerts))
	t.Cleanup(srv.Close)
	d, err := New(Config{URL: srv.URL, Mapping: mapping(t)}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetAll(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("GetAll over TLS of a CA not trusted: %v; want a certificate error", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err = New(Config{URL: srv.URL, CAFile: ca, Mapping: mapping(t)}, Deps{}); err != nil {
		t.Fatal(err)
	}
	if ents, err := d.GetAll(context.Background()); err != nil || len(ents) != 1 {
		t.Errorf("GetAll with ca_file: %d entities, %v; want its one alert", len(ents), err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{URL: srv.URL, CAFile: bad, Mapping: mapping(t)}, Deps{}); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("New with a ca_file of no certificate: %v; want an error naming ca_file", err)
	}
}

// TestJustStartedAlertmanagerIsNoFullList: Alertmanager keeps its alerts
// in memory only, so one that has just (re)started lists only the alerts
// its clients sent again since (Prometheus re-sends each firing alert
// every resend_delay, a minute by default). Taken as a full pull, that
// list deleted every other alarm until the next pull: an Alertmanager
// upgrade cleared and raised again every alarm of the graph. Such a pull
// fails (ErrStarting) and is retried; an Alertmanager up for longer is
// pulled as ever.
func TestJustStartedAlertmanagerIsNoFullList(t *testing.T) {
	alerts := `[{"fingerprint": "aa", "labels": {"alertname": "HostDown", "job": "node", "instance": "compute-1:9100"},` +
		`"startsAt": "2026-03-01T10:00:00Z", "status": {"state": "active"}}]`
	srv := amServer(t, time.Now().Add(-10*time.Second), "[]")
	d, err := New(Config{URL: srv.URL, Mapping: mapping(t)}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if ents, err := d.GetAll(context.Background()); err == nil || !strings.Contains(err.Error(), "startup_grace") {
		t.Errorf("GetAll of an Alertmanager started 10s ago: %d entities, %v; want the pull refused as incomplete (startup_grace)", len(ents), err)
	}
	srv = amServer(t, time.Now().Add(-time.Hour), alerts)
	if d, err = New(Config{URL: srv.URL, Mapping: mapping(t)}, Deps{}); err != nil {
		t.Fatal(err)
	}
	if ents, err := d.GetAll(context.Background()); err != nil || len(ents) != 1 {
		t.Errorf("GetAll of an Alertmanager up for an hour: %d entities, %v; want its one alert", len(ents), err)
	}
}

// TestEmptyTokenFileIsRefused: a token_file that is empty (created, not
// yet written: the README's install recipe makes it so for a moment) is an
// error, as check-config says, not a driver that pulls without the token:
// a multi-tenant proxy answers an anonymous request with another tenant's
// alerts, none at all, and the pull deletes every alarm.
func TestEmptyTokenFileIsRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") == "" {
			_, _ = w.Write([]byte("[]")) // the anonymous tenant has no alerts
			return
		}
		_, _ = w.Write([]byte(`[{"fingerprint":"f1","labels":{"alertname":"A","job":"node","instance":"h1:9100"}}]`))
	}))
	t.Cleanup(srv.Close)
	for _, content := range []string{"", " \n"} {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := New(Config{URL: srv.URL, TokenFile: file, Mapping: mapping(t)}, Deps{})
		if err == nil {
			ents, err := d.GetAll(context.Background())
			t.Fatalf("token_file holding %q: New accepted it, and the pull gave %d alarms (err %v), want New to fail", content, len(ents), err)
		}
		if !strings.Contains(err.Error(), "token_file") || !strings.Contains(err.Error(), "empty") {
			t.Errorf("New: %v, want an error naming token_file as empty", err)
		}
	}
}

// TestTokenFileIsReadAtEachPull: a token rotated in token_file (a secret
// manager writes the new one) was not used until the driver restarted: it
// was read at start only, and the pulls failed with 401 once the old one
// was revoked. Each pull reads it; emptied, the pull fails rather than go
// without the token.
func TestTokenFileIsReadAtEachPull(t *testing.T) {
	var want atomic.Value
	want.Store("old")
	handler := amHandler(time.Now().Add(-time.Hour), "[]")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+want.Load().(string) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{URL: srv.URL, TokenFile: file, Mapping: mapping(t)}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetAll(context.Background()); err != nil {
		t.Fatalf("pull with the token of the file: %v", err)
	}
	want.Store("new")
	if err := os.WriteFile(file, []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetAll(context.Background()); err != nil {
		t.Errorf("pull after the token was rotated in the file: %v; want it sent", err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetAll(context.Background()); err == nil || !strings.Contains(err.Error(), "token_file") {
		t.Errorf("pull with the file emptied: %v; want it to fail naming token_file", err)
	}
}

// TestStatusDoesNotStarveTheAlertList: a pull asked /api/v2/status, then
// /api/v2/alerts, both within one pull_timeout: a status answered slowly
// (it carries the Alertmanager's whole configuration) left the alert list
// what remained, less than its own timeout, and the pull failed although
// each request answered within its timeout. The two are now asked at
// once, each with the whole of timeout within pull_timeout. Here each
// answers only once the other has arrived: asked one after the other, the
// first waits until the pull's deadline.
func TestStatusDoesNotStarveTheAlertList(t *testing.T) {
	alerts := `[{"fingerprint": "aa", "labels": {"alertname": "HostDown", "job": "node", "instance": "compute-1:9100"},` +
		`"startsAt": "2026-03-01T10:00:00Z", "status": {"state": "active"}}]`
	am := amHandler(time.Now().Add(-time.Hour), alerts)
	statusIn, alertsIn := make(chan struct{}), make(chan struct{})
	var statusOnce, alertsOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mine, other := statusIn, alertsIn
		once := &statusOnce
		if r.URL.Path == "/api/v2/alerts" {
			mine, other, once = alertsIn, statusIn, &alertsOnce
		}
		once.Do(func() { close(mine) })
		select {
		case <-other:
		case <-r.Context().Done():
			return
		}
		am.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	d, err := New(Config{URL: srv.URL, Mapping: mapping(t), Timeout: 5 * time.Second}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // the runner's pull_timeout
	defer cancel()
	if ents, err := d.GetAll(ctx); err != nil || len(ents) != 1 {
		t.Errorf("GetAll: %d entities, %v; want the one alert", len(ents), err)
	}
}

// TestEntitiesShortensOversizedAnnotations: an alert whose alarm is over
// the event size limit because of its annotations is pulled shortened, as
// the webhook takes it (listeners/alertmanager), not refused by the
// publisher: left out of a full pull, the webhook's alarm of it would be
// deleted by the pull's sync.end.
func TestEntitiesShortensOversizedAnnotations(t *testing.T) {
	m, err := alertmap.New(mapping(t))
	if err != nil {
		t.Fatal(err)
	}
	a := GettableAlert{Fingerprint: "f1", StartsAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		Labels:      map[string]string{"alertname": "HostDown", "job": "node", "instance": "compute-1:9100"},
		Annotations: map[string]string{"summary": "down", "description": strings.Repeat("d", event.MaxEventBytes)}}
	ents, errs := Entities(m, []GettableAlert{a})
	if len(ents) != 1 || len(errs) != 0 {
		t.Fatalf("%d entities, errors %v", len(ents), errs)
	}
	ev := event.Event{V: event.Version, EventID: event.DeriveID("x"), Source: "alertmanager", Kind: event.KindEntityUpsert, ObservedAt: a.StartsAt, Entity: &ents[0]}
	if _, err := event.Encode(ev); err != nil {
		t.Fatalf("pulled alarm: %v", err)
	}
	if p := ents[0].Properties; p[alertmap.ShortenedProperty] != "description" || p["annotation.summary"] != "down" {
		t.Errorf("%s = %q, summary %q; want description cut, summary whole", alertmap.ShortenedProperty, p[alertmap.ShortenedProperty], p["annotation.summary"])
	}
}

// TestRedirectElsewhereKeepsTheToken: an Alertmanager (or a proxy before
// it) that redirects to another origin, here from https to plain http on
// another port of the same host, made the driver follow with its bearer
// token: Go's client keeps the Authorization header for the same host
// name whatever the scheme and port, so the token went in clear to
// whatever listens there. Such a redirect is not followed and the pull
// fails naming where it was sent; one to the same origin is followed.
func TestRedirectElsewhereKeepsTheToken(t *testing.T) {
	alerts := `[{"fingerprint": "aa", "labels": {"alertname": "HostDown", "job": "node", "instance": "compute-1:9100"},` +
		`"startsAt": "2026-03-01T10:00:00Z", "status": {"state": "active"}}]`
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		amHandler(time.Now().Add(-time.Hour), alerts).ServeHTTP(w, r)
	}))
	t.Cleanup(elsewhere.Close)
	am := amHandler(time.Now().Add(-time.Hour), alerts)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/moved/"):
			r.URL.Path = strings.TrimPrefix(r.URL.Path, "/moved")
			am.ServeHTTP(w, r)
		case r.URL.Path == "/api/v2/alerts" && r.URL.Query().Get("same") != "":
			http.Redirect(w, r, "/moved"+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		default:
			http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		}
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{URL: srv.URL, Token: "s3cret", CAFile: ca, Mapping: mapping(t)}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.GetAll(context.Background())
	if n := leaked.Load(); n > 0 {
		t.Errorf("the bearer token was sent %d times to the other origin a redirect named", n)
	}
	if err == nil || !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), elsewhere.URL) {
		t.Errorf("GetAll redirected to another origin: %v; want an error naming the redirect and %s", err, elsewhere.URL)
	}
	// A redirect within the origin is followed, with the token.
	d.endpoint += "&same=1"
	d.status = srv.URL + "/moved/api/v2/status"
	if ents, err := d.GetAll(context.Background()); err != nil || len(ents) != 1 {
		t.Errorf("GetAll redirected within the origin: %d entities, %v; want its one alert", len(ents), err)
	}
}
