package alertmanager

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/causeway/causeway/internal/logtest"
)

// TestUnmappedAlertsAreLoggedOncePerPull: an Alertmanager that lists
// alerts no mapping rule maps (a team's alerts the site has no rule for,
// thousands of them) logged a warning per alert at every pull: 5000 lines
// a minute for ever. A pull logs one warning that counts them and names a
// few; the counter still counts each one.
func TestUnmappedAlertsAreLoggedOncePerPull(t *testing.T) {
	const n = 5000
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"fingerprint": "f%d", "labels": {"alertname": "QueueLong", "job": "billing", "queue": "q%d"},`+
			`"startsAt": "2026-03-01T10:00:00Z", "status": {"state": "active"}}`, i, i)
	}
	b.WriteString("]")
	srv := amServer(t, time.Now().Add(-time.Hour), b.String())
	h := logtest.NewHandler()
	reg := prometheus.NewPedanticRegistry()
	d, err := New(Config{URL: srv.URL, Mapping: mapping(t)}, Deps{Logger: slog.New(h), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	const pulls = 3
	for range pulls {
		if _, err := d.GetAll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var m dto.Metric
	if err := d.unmapped.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != n*pulls {
		t.Errorf("unmapped alerts counted = %v, want %d", got, n*pulls)
	}
	warned := h.Count(func(r slog.Record) bool { return r.Level >= slog.LevelWarn })
	if warned > pulls {
		t.Errorf("%d pulls of %d unmapped alerts logged %d warnings or worse; want at most one a pull", pulls, n, warned)
	}
	named := h.Count(func(r slog.Record) bool {
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if strings.Contains(a.Value.String(), "f0") && a.Key != "count" {
				found = true
			}
			return !found
		})
		return r.Level >= slog.LevelWarn && found
	})
	if named == 0 {
		t.Error("no warning names an unmapped alert: the operator cannot tell which alerts to write a rule for")
	}
}
