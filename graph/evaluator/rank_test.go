package evaluator

import (
	"strings"
	"testing"
)

// TestRanksAsToLower checks that the ranks read a value as
// strings.ToLower does, on the ASCII fast path and off it (Unicode, and
// values longer than its buffer).
func TestRanksAsToLower(t *testing.T) {
	sevs := map[string]int{"critical": 60, "severe": 50, "major": 40, "warning": 30, "minor": 20, "info": 10, "informational": 10}
	states := map[string]int{"error": 50, "down": 50, "failed": 50, "failure": 50, "suboptimal": 30, "degraded": 30,
		"ok": 10, "available": 10, "active": 10, "running": 10, "up": 10}
	ref := func(m map[string]int, def int, s string) int {
		if r, ok := m[strings.ToLower(s)]; ok {
			return r
		}
		return def
	}
	values := []string{"", "WARNING", "Warning", "warning", "CRITICAL", "INFORMATIONAL", "InFo", "ERROR", "Ok", "OK",
		"O\u212a", "\u0130NFO", "ſevere", "SEVERE ", "unknown", "SUBOPTIMAL", "a-value-longer-than-sixteen-bytes",
		"INFORMATIONALXXXX", "ÉRROR", "error\x00", "DEGRADED"}
	for k := range sevs {
		values = append(values, k, strings.ToUpper(k))
	}
	for k := range states {
		values = append(values, k, strings.ToUpper(k))
	}
	for _, v := range values {
		if got, want := severityRank(v), ref(sevs, 0, v); got != want {
			t.Errorf("severityRank(%q) = %d, want %d", v, got, want)
		}
		if got, want := stateRank(v), ref(states, 20, v); got != want {
			t.Errorf("stateRank(%q) = %d, want %d", v, got, want)
		}
	}
}
