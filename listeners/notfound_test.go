package listeners_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/internal/logtest"
	"github.com/causeway/causeway/listeners"
)

// TestUnknownPathIsLogged: a sender posting to a path no endpoint serves
// (an Alertmanager url with a trailing slash, a typo) gets 404, which
// Alertmanager does not retry: its alerts are lost. Every other refusal
// is logged; this one was only counted, so the listener's log showed
// nothing of alerts that never arrived.
func TestUnknownPathIsLogged(t *testing.T) {
	var logs logtest.Buffer
	reg := prometheus.NewPedanticRegistry()
	s, err := listeners.New(listeners.Config{Auth: listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}}},
		listeners.Deps{Publisher: &fakePublisher{}, Endpoints: endpoints(t), Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPTest(t, s)
	r := post(t, srv+"/v1/alertmanager/", "application/json", file(t, "alertmanager/testdata/firing.json"), bearer("tok-1"))
	if r.code != http.StatusNotFound {
		t.Fatalf("unknown path: %d %v, want 404", r.code, r.body)
	}
	if got := logs.String(); !strings.Contains(got, "request refused") || !strings.Contains(got, "/v1/alertmanager/") || !strings.Contains(got, "code=404") {
		t.Errorf("log %q; want the refusal, its code and its path", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "causeway_listener_requests_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	if got["endpoint=unknown,reason=not_found,"] != 1 {
		t.Errorf("rejected %v; want endpoint=unknown,reason=not_found counted once", got)
	}
}
