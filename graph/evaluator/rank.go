package evaluator

import "strings"

// The dominant value among the supports of an effect is the one with the
// highest priority in the graph's Normalizer (Vitrage's datasource values);
// these ranks only break its ties (and order values it does not list).

// severityRank orders alarm severities; higher is more severe. Unknown
// severities rank lowest but are still raised.
func severityRank(s string) int {
	switch strings.ToLower(s) {
	case "critical":
		return 60
	case "severe":
		return 50
	case "major":
		return 40
	case "warning":
		return 30
	case "minor":
		return 20
	case "info", "informational":
		return 10
	}
	return 0
}

// stateRank orders resource states; higher is worse.
func stateRank(s string) int {
	switch strings.ToLower(s) {
	case "error", "down", "failed", "failure":
		return 50
	case "suboptimal", "degraded":
		return 30
	case "ok", "available", "active", "running", "up":
		return 10
	}
	return 20
}
