package alertmanager

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/drivers/alertmap"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/golden"
	"github.com/causeway/causeway/listeners"
)

func webhook(t testing.TB) *Webhook {
	t.Helper()
	b, err := os.ReadFile("testdata/mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := alertmap.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Mapping: m})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestGolden(t *testing.T) {
	w := webhook(t)
	paths, _ := filepath.Glob("testdata/*.json")
	var n int
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden.json") {
			continue
		}
		n++
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := w.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			for _, ev := range evs {
				if _, err := event.Encode(ev); err != nil {
					t.Errorf("event %s: %v", ev.EventID, err)
				}
			}
			golden.JSON(t, strings.TrimSuffix(p, ".json")+".golden.json", evs)
		})
	}
	if n < 2 {
		t.Fatalf("%d cases, want both payload generations", n)
	}
}

func TestBad(t *testing.T) {
	w := webhook(t)
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"malformed.json", []string{"malformed JSON"}},
		{"unknown_version.json", []string{`version: unsupported webhook payload version "3" (want "4")`}},
		{"missing_labels.json", []string{`alerts[0] (fingerprint "aa"): alert lacks a label the mapping needs: rules[0] needs one of the labels ["hostname" "instance"]`,
			`alerts[1] (fingerprint "bb"): no mapping rule matches the alert`}},
		{"bad_status.json", []string{`alerts[0].status: must be "firing" or "resolved", not "pending"`, "alerts[1].endsAt: is required for a resolved alert"}},
		{"wrong_type.json", []string{"alerts.labels: must be string, not number"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "bad", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := w.Decode(b)
			if err == nil {
				t.Fatalf("Decode gave %d events, want an error", len(evs))
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestResendDedups(t *testing.T) {
	w := webhook(t)
	b, err := os.ReadFile("testdata/firing.json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	// Alertmanager re-sends the group with another groupKey order and
	// changed common fields: same alerts, same ids.
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	p["receiver"] = "other"
	b2, _ := json.Marshal(p)
	c, err := w.Decode(b2)
	if err != nil {
		t.Fatal(err)
	}
	if a[0].EventID != c[0].EventID || a[1].EventID != c[1].EventID {
		t.Error("re-sent alerts got new event ids")
	}
	// A firing alert re-sent with other annotations (its properties) is
	// a new report: another id, or the log would drop it as a repeat.
	alerts := p["alerts"].([]any)
	first := alerts[0].(map[string]any)
	ann, _ := first["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		first["annotations"] = ann
	}
	ann["summary"] = "now something else"
	b3, _ := json.Marshal(p)
	d, err := w.Decode(b3)
	if err != nil {
		t.Fatal(err)
	}
	if d[0].EventID == a[0].EventID || d[1].EventID != a[1].EventID {
		t.Errorf("changed annotations: ids %s, %s; want the first changed, the second kept", d[0].EventID, d[1].EventID)
	}
	// The resolved notification of the same alert is another event on the
	// same alarm.
	nb, _ := os.ReadFile("testdata/newer.json")
	n, err := w.Decode(nb)
	if err != nil {
		t.Fatal(err)
	}
	if n[0].Kind != event.KindEntityDelete || n[0].Entity.ID != a[0].Entity.ID || n[0].EventID == a[0].EventID {
		t.Errorf("resolved alert: %+v, want a delete of alarm %s with a new event id", n[0], a[0].Entity.ID)
	}
}

// TestTruncatedAlertsAreNotSilent: Alertmanager leaves alerts out of a
// payload over the receiver's max_alerts and says how many in
// truncatedAlerts. They never reach the graph by this path: the alerts
// sent are taken, and the truncation is a refused part of the request
// (logged, counted and listed in the answer), not passed over in silence.
func TestTruncatedAlertsAreNotSilent(t *testing.T) {
	w := webhook(t)
	b, err := os.ReadFile("testdata/firing.json")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	p["truncatedAlerts"] = 3
	b, _ = json.Marshal(p)
	evs, err := w.Decode(b)
	var refused *listeners.Refused
	if !errors.As(err, &refused) || len(evs) != 2 {
		t.Fatalf("Decode: %d events, %v; want the 2 alerts sent and a partial refusal", len(evs), err)
	}
	if !strings.Contains(err.Error(), "truncatedAlerts: 3 alerts") {
		t.Errorf("refusal %q does not name the 3 truncated alerts", err)
	}
}

// TestResolvedNeedsNoMapping: a resolved alert clears its alarm, which
// its fingerprint and the alarm type name alone. One whose labels no rule
// maps any more (the mapping changed after it fired) was refused, and its
// alarm stayed active for ever.
func TestResolvedNeedsNoMapping(t *testing.T) {
	w := webhook(t)
	body := []byte(`{"version": "4", "status": "resolved", "alerts": [
  {"status": "resolved", "labels": {"alertname": "HostDown", "job": "renamed"}, "startsAt": "2026-03-01T10:00:00Z",
   "endsAt": "2026-03-01T10:30:00+01:00", "fingerprint": "aa"}]}`)
	evs, err := w.Decode(body)
	if err != nil {
		t.Fatalf("Decode: %v; want the resolved alert taken", err)
	}
	want := []event.Event{{V: event.Version, Source: DefaultSource, Kind: event.KindEntityDelete,
		ObservedAt: time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC),
		Entity:     &event.Entity{Category: event.CategoryAlarm, Type: alertmap.DefaultAlarmType, ID: "aa"}}}
	if len(evs) == 1 {
		want[0].EventID = evs[0].EventID
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	again, err := w.Decode(body)
	if err != nil || again[0].EventID != evs[0].EventID {
		t.Errorf("a re-sent resolved alert got another event id (%v)", err)
	}
	// A firing alert that maps to nothing is still refused.
	firing := strings.ReplaceAll(strings.Replace(string(body), `"endsAt": "2026-03-01T10:30:00+01:00", `, "", 1), "resolved", "firing")
	if evs, err := w.Decode([]byte(firing)); err == nil || len(evs) != 0 {
		t.Errorf("unmapped firing alert: %d events, %v; want it refused", len(evs), err)
	}
}

func TestConfig(t *testing.T) {
	err := Config{Path: "v1"}.Validate()
	for _, want := range []string{`path: "v1" must start with /`, "mapping.rules: at least one rule is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
	// A path http.ServeMux cannot take as it is written is refused here,
	// so check-config sees it, not at start with a panic.
	if err := (Config{Path: "/v1/alert manager", Mapping: webhook(t).cfg.Mapping}).Validate(); err == nil || !strings.Contains(err.Error(), "path: ") {
		t.Errorf("Validate of a path with a space: %v, want it refused", err)
	}
	if _, err := ParsePayload([]byte(`{"version":"4"} {}`)); !errors.Is(err, ErrPayload) {
		t.Errorf("trailing data: %v", err)
	}
}

// TestConfigSource: a source no event may carry (the evaluator's own, too
// long to route, a control character) passed Validate, and then every
// alert of every webhook was refused: each request answered 400, which
// Alertmanager does not retry, so every alert was lost while the listener
// looked healthy.
func TestConfigSource(t *testing.T) {
	m := webhook(t).cfg.Mapping
	for _, src := range []string{"causeway.evaluator", strings.Repeat("s", 250), "am\n"} {
		if err := (Config{Source: src, Mapping: m}).Validate(); err == nil || !strings.Contains(err.Error(), "source: ") {
			t.Errorf("Validate with source %q: %v, want a source error", src, err)
		}
	}
	if err := (Config{Source: "alertmanager-eu", Mapping: m}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestShorten: an alert's event too large once encoded because of its
// annotations fits once shortened, keeps what identifies it (event id,
// labels, short annotations) and marks what was cut; the same event gives
// the same result; one too large by its labels is not shortened.
func TestShorten(t *testing.T) {
	w := webhook(t)
	body := func(desc, runbook, label string) []byte {
		b, err := json.Marshal(map[string]any{"version": "4", "status": "firing", "alerts": []any{map[string]any{
			"status": "firing", "startsAt": "2026-03-01T10:00:00Z", "fingerprint": "f1",
			"labels":      map[string]string{"alertname": "HostDown", "job": "node", "instance": "compute-1:9100", "big": label},
			"annotations": map[string]string{"summary": "down", "description": desc, "runbook": runbook},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	decode := func(b []byte) event.Event {
		t.Helper()
		evs, err := w.Decode(b)
		if err != nil || len(evs) != 1 {
			t.Fatalf("decode: %d events, %v", len(evs), err)
		}
		return evs[0]
	}
	for name, tc := range map[string]struct{ desc, runbook string }{
		"one long":                {strings.Repeat("d", event.MaxEventBytes), "see the wiki"},
		"two long":                {strings.Repeat("d", event.MaxEventBytes), strings.Repeat("r", event.MaxEventBytes/2)},
		"escapes and multi-byte":  {strings.Repeat("\"\x01é€😀<&>", event.MaxEventBytes/8), strings.Repeat("\n", event.MaxEventBytes)},
		"just over, cut a little": {strings.Repeat("d", event.MaxEventBytes-500), "x"},
	} {
		t.Run(name, func(t *testing.T) {
			ev := decode(body(tc.desc, tc.runbook, ""))
			if _, err := event.Encode(ev); !errors.Is(err, event.ErrTooLarge) {
				t.Fatalf("the test's event is not too large: %v", err)
			}
			orig := maps.Clone(ev.Entity.Properties)
			got, cut, err := Shorten(ev)
			if err != nil || !cut {
				t.Fatalf("cut %v, %v", cut, err)
			}
			if !maps.Equal(orig, ev.Entity.Properties) {
				t.Error("Shorten changed the event it was given")
			}
			if _, err := event.Encode(got); err != nil {
				t.Fatalf("shortened event: %v", err)
			}
			again, _, _ := Shorten(ev)
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("shortened twice, two results (-first +second):\n%s", diff)
			}
			if got.EventID != ev.EventID || got.Entity.ID != ev.Entity.ID || !cmp.Equal(got.Entity.Relations, ev.Entity.Relations) {
				t.Errorf("identity changed: %s %s, want %s %s", got.EventID, got.Entity.ID, ev.EventID, ev.Entity.ID)
			}
			p := got.Entity.Properties
			for k, v := range orig {
				if strings.HasPrefix(k, "label.") && p[k] != v || k == "annotation.summary" && p[k] != v {
					t.Errorf("%s changed: %.40q", k, p[k])
				}
			}
			wantCut := []string{"description"}
			if len(tc.runbook) > 1000 {
				wantCut = append(wantCut, "runbook")
			}
			if p[ShortenedProperty] != strings.Join(wantCut, ",") {
				t.Errorf("%s = %q, want %q", ShortenedProperty, p[ShortenedProperty], strings.Join(wantCut, ","))
			}
			for _, a := range wantCut {
				if v := p["annotation."+a]; !strings.HasPrefix(orig["annotation."+a], strings.SplitN(v, " [... shortened", 2)[0]) ||
					!strings.Contains(v, "shortened by Causeway") {
					t.Errorf("annotation %s cut to %.60q...: not a prefix with a note", a, v)
				}
			}
		})
	}
	big := decode(body("d", "r", strings.Repeat("l", event.MaxEventBytes)))
	if got, _, err := Shorten(big); err == nil || !strings.Contains(err.Error(), "labels") {
		t.Errorf("Shorten of an alert too large by its labels: %v (%.60v); want an error naming the labels", err, got.Entity.Properties)
	}
}
