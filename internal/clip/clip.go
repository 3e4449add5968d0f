// Package clip cuts text from outside (a receiver's answer, a rejected
// input quoted in an error) to a size that a header or a column takes.
package clip

import (
	"strings"
	"unicode/utf8"
)

// String returns s as valid UTF-8 (invalid bytes become U+FFFD) and at
// most n bytes long, cut between characters.
func String(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
