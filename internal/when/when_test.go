package when

import (
	"testing"
	"time"
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Time{
		"now":                         now,
		" -2h ":                       now.Add(-2 * time.Hour),
		"+90m":                        now.Add(90 * time.Minute),
		"2026-04-30T10:00:00Z":        time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC),
		"2026-04-30T12:00:00.5+02:00": time.Date(2026, 4, 30, 10, 0, 0, 5e8, time.UTC),
	} {
		got, err := Parse(in, now)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Parse(%q) = %v, %v; want %v in UTC", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "  ", "yesterday", "-2x", "+", "2026-04-30", "2026-04-30 10:00:00", "-2", "--2h", "0000-06-01T00:00:00Z", "0001-01-01T00:30:00+01:00"} {
		if _, err := Parse(bad, now); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// FuzzParse: any input is either refused or gives a time in UTC that
// prints and parses back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"now", "-2h", "+0s", "2026-04-30T10:00:00Z", "2026-04-30T12:00:00.123456789-07:00", "", "-", "1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s, now)
		if err != nil {
			if !got.IsZero() {
				t.Fatalf("Parse(%q) failed with a time %v", s, got)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("Parse(%q) = %v, not in UTC", s, got)
		}
		// A parsed time prints and parses back to itself.
		again, err := Parse(got.Format(time.RFC3339Nano), now)
		if err != nil || !again.Equal(got) {
			t.Fatalf("Parse(%q) = %v does not round-trip: %v, %v", s, got, again, err)
		}
	})
}
