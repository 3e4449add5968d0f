package evaluator

import "strings"

// The dominant value among the supports of an effect is the one with the
// highest priority in the graph's Normalizer (Vitrage's datasource values);
// these ranks only break its ties (and order values it does not list).

// severityRank orders alarm severities; higher is more severe. Unknown
// severities rank lowest but are still raised.
func severityRank(s string) int {
	var buf [16]byte
	b, ok := lowerASCII(s, &buf)
	if !ok {
		b = []byte(strings.ToLower(s))
	}
	switch string(b) {
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
	var buf [16]byte
	b, ok := lowerASCII(s, &buf)
	if !ok {
		b = []byte(strings.ToLower(s))
	}
	switch string(b) {
	case "error", "down", "failed", "failure":
		return 50
	case "suboptimal", "degraded":
		return 30
	case "ok", "available", "active", "running", "up":
		return 10
	}
	return 20
}

// lowerASCII is strings.ToLower(s) in buf when s is ASCII and fits (ok
// false otherwise): the ranks compare the values of every settle with a
// few constants, and ToLower allocates for every value with an upper-case
// letter (they mostly have).
func lowerASCII(s string, buf *[16]byte) ([]byte, bool) {
	if len(s) > len(buf) {
		return nil, false
	}
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			return nil, false
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return b, true
}
