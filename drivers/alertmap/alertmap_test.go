package alertmap

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/causeway/causeway/internal/event"
)

func mapper(t *testing.T) *Mapper {
	t.Helper()
	b, err := os.ReadFile("testdata/mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMap(t *testing.T) {
	m := mapper(t)
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		want    Alarm
		wantErr error
		msg     string
	}{
		{"host by instance, port stripped",
			map[string]string{"job": "node", "alertname": "HostDown", "instance": "compute-1:9100", "severity": "critical"},
			Alarm{Name: "HostDown", Severity: "critical", ResourceType: "nova.host", ResourceID: "compute-1", Relationship: "on"}, nil, ""},
		{"hostname label wins over instance",
			map[string]string{"job": "node", "alertname": "DiskFull", "hostname": "compute-2", "instance": "10.0.0.2:9100"},
			Alarm{Name: "DiskFull", ResourceType: "nova.host", ResourceID: "compute-2", Relationship: "on"}, nil, ""},
		{"default severity",
			map[string]string{"job": "libvirt", "alertname": "VMStuck", "domain_uuid": "abc"},
			Alarm{Name: "VMStuck", Severity: "warning", ResourceType: "nova.instance", ResourceID: "abc", Relationship: "on"}, nil, ""},
		{"type from a label, custom name and severity labels",
			map[string]string{"alarm": "LinkDown", "resource_type": "switch", "resource_id": "s1", "level": "major"},
			Alarm{Name: "LinkDown", Severity: "major", ResourceType: "switch", ResourceID: "s1", Relationship: "on"}, nil, ""},
		{"missing id labels",
			map[string]string{"job": "node", "alertname": "HostDown"},
			Alarm{}, ErrMissingLabel, `rules[0] needs one of the labels ["hostname" "instance"]`},
		{"missing alarm name",
			map[string]string{"job": "node", "instance": "h"},
			Alarm{}, ErrMissingLabel, `rules[0] needs label "alertname"`},
		{"no rule",
			map[string]string{"alertname": "X"},
			Alarm{}, ErrMissingLabel, `rules[2] needs label "alarm"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.Map(tc.labels)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("Map: %v, want %v containing %q", err, tc.wantErr, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestNoRule(t *testing.T) {
	m, err := New(Config{Rules: []Rule{{Match: map[string]string{"job": "node"}, ResourceType: "nova.host", ResourceIDLabels: []string{"instance"}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Map(map[string]string{"job": "other", "alertname": "A"})
	if !errors.Is(err, ErrNoRule) || !strings.Contains(err.Error(), `job="other"`) {
		t.Errorf("Map: %v, want ErrNoRule naming the labels", err)
	}
}

func TestEntity(t *testing.T) {
	m := mapper(t)
	a := Alert{
		Fingerprint: "f00d", StartsAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), GeneratorURL: "http://prom/graph",
		Labels:      map[string]string{"job": "node", "alertname": "HostDown", "instance": "compute-1:9100", "severity": "critical"},
		Annotations: map[string]string{"summary": "down"},
	}
	got, err := m.Entity(a)
	if err != nil {
		t.Fatal(err)
	}
	want := event.Entity{
		Category: "ALARM", Type: "prometheus", ID: "f00d", Name: "HostDown", State: "ACTIVE", Severity: "critical",
		Properties: map[string]string{
			"label.job": "node", "label.alertname": "HostDown", "label.instance": "compute-1:9100", "label.severity": "critical",
			"annotation.summary": "down", "starts_at": "2026-01-01T00:00:00Z", "generator_url": "http://prom/graph",
		},
		Relations: []event.Relation{{Relationship: "on", Category: "RESOURCE", Type: "nova.host", ID: "compute-1", Direction: event.Out}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	a.Fingerprint = ""
	id1 := AlarmID(a)
	a.Annotations = nil
	if id2 := AlarmID(a); id1 != id2 || id1 == "" {
		t.Errorf("AlarmID without fingerprint: %q then %q, want equal and non-empty", id1, id2)
	}
}

func TestLoadBad(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"rules: []\n", "rules: at least one rule is required"},
		{"rules:\n  - resource_id_labels: [a]\n", "rules[0]: one of resource_type and resource_type_label is required"},
		{"rules:\n  - {resource_type: a, resource_type_label: b, resource_id_labels: [a]}\n", "rules[0]: resource_type and resource_type_label exclude each other"},
		{"rules:\n  - {resource_type: a}\n", "rules[0].resource_id_labels: at least one label is required"},
		{"rules:\n  - {resource_type: a, resource_id_labels: [x], colour: red}\n", "field colour not found"},
		{"alarm_type: [x]\n", "decode mapping"},
		// Deduced alarms are the evaluator's: every alarm of this type is
		// refused as input, so every alert would go unmapped.
		{"alarm_type: vitrage\nrules: [{resource_type: a, resource_id_labels: [x]}]\n", `alarm_type: "vitrage" is the type of deduced alarms`},
	} {
		if _, err := Load([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q): %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// TestShortenAnnotationsBounds: an alarm under MaxEntityBytes is returned
// as it is, however close (escapes counted); one over it with no
// annotation to cut, or over it by its labels, is refused with the reason.
func TestShortenAnnotationsBounds(t *testing.T) {
	ent := func(label, annotation string) event.Entity {
		return event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: "f1",
			Properties: map[string]string{"label.x": label, "annotation.description": annotation}}
	}
	for name, e := range map[string]event.Entity{
		"small":                  ent("a", "b"),
		"just under, no escapes": ent("a", strings.Repeat("d", MaxEntityBytes-200)),
		"under with escapes":     ent("a", strings.Repeat("\x01", (MaxEntityBytes-200)/6)),
	} {
		got, cut, err := ShortenAnnotations(e)
		if err != nil || cut || !cmp.Equal(got, e) {
			t.Errorf("%s: %v, cut %v, changed %v; want it as it is", name, err, cut, !cmp.Equal(got, e))
		}
	}
	for name, e := range map[string]event.Entity{
		"labels over":    ent(strings.Repeat("l", MaxEntityBytes), "b"),
		"no annotations": {Category: event.CategoryAlarm, Type: "prometheus", ID: "f1", Properties: map[string]string{"label.x": strings.Repeat("l", MaxEntityBytes)}},
	} {
		if _, _, err := ShortenAnnotations(e); err == nil || !strings.Contains(err.Error(), "labels") {
			t.Errorf("%s: %v; want an error naming the labels", name, err)
		}
	}
	e := ent("a", strings.Repeat("\x01", MaxEntityBytes/5))
	got, cut, err := ShortenAnnotations(e)
	if err != nil || !cut || got.Properties[ShortenedProperty] != "description" {
		t.Fatalf("over by escapes: %v, cut %v, %s %q", err, cut, ShortenedProperty, got.Properties[ShortenedProperty])
	}
	if n, _ := entityLen(got); n > MaxEntityBytes {
		t.Errorf("shortened to %d bytes, over %d", n, MaxEntityBytes)
	}
}
