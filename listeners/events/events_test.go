package events

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/golden"
)

func api(t testing.TB) *API {
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestGolden(t *testing.T) {
	a := api(t)
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
			evs, err := a.Decode(b)
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
	if n < 3 {
		t.Fatalf("%d cases under testdata; want the 3 there are", n)
	}
}

func TestDownThenUpSameAlarm(t *testing.T) {
	a := api(t)
	down, _ := os.ReadFile("testdata/host_down.json")
	up, _ := os.ReadFile("testdata/host_up.json")
	d, err := a.Decode(down)
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Decode(up)
	if err != nil {
		t.Fatal(err)
	}
	if d[0].Entity.ID != u[0].Entity.ID || d[0].Kind != event.KindEntityUpsert || u[0].Kind != event.KindEntityDelete {
		t.Errorf("down %+v then up %+v: want an upsert and a delete of the same alarm", d[0].Entity, u[0].Entity)
	}
	again, _ := a.Decode(down)
	if again[0].EventID != d[0].EventID {
		t.Error("the same event posted twice got two ids")
	}
	// The same moment reported with other details is another report.
	changed, err := a.Decode(bytes.Replace(down, []byte(`"details": {`), []byte(`"details": {"note": "changed", `), 1))
	if err != nil {
		t.Fatal(err)
	}
	if changed[0].EventID == d[0].EventID {
		t.Error("an event with other details got the same id")
	}
}

func TestBad(t *testing.T) {
	a := api(t)
	for _, tc := range []struct{ file, want string }{
		{"malformed.json", "malformed JSON"},
		{"bad_time.json", `time: "yesterday" is not an ISO 8601 timestamp`},
		{"no_resource.json", "details.hostname: is required"},
		{"bad_status.json", `details.status: must be "down" or "up", not "flapping"`},
		{"unknown_field.json", `unknown field "colour"`},
		{"missing_fields.json", "type: is required"},
		{"missing_fields.json", "details: is required"},
		{"hostname_not_string.json", "details.hostname: must be a string"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "bad", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Decode(b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestConfigPath: a path http.ServeMux cannot take as it is written is
// refused by Validate, so check-config sees it, not the start with a panic.
func TestConfigPath(t *testing.T) {
	for _, p := range []string{"v1", "/v1/my events", "/v1/{x}"} {
		if err := (Config{Path: p}).Validate(); err == nil || !strings.Contains(err.Error(), "path: ") {
			t.Errorf("Validate of path %q: %v, want it refused", p, err)
		}
	}
	if err := (Config{Path: "/v1/doctor-events"}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// TestConfigNames: a source or an alarm type no event may carry passed
// Validate (only the length, 255, and control characters were checked),
// and then every event posted was refused with 400.
func TestConfigNames(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Source: "causeway.evaluator"}, "source: "},
		{Config{Source: strings.Repeat("s", 250)}, "source: "},
		{Config{AlarmType: event.DeducedType}, "alarm_type: "},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v): %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
