// Package when parses the points in time that operators type: RFC 3339,
// "now", or a duration relative to now ("-2h"). The CLI's --at/--from/--to
// and the API's ?from=/&to= read them the same way.
package when

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Parse reads a point in time: RFC 3339 (with or without fractional
// seconds), "now", or a duration relative to now ("-2h", "-90m", "+0s").
// The result is in UTC.
func Parse(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, errors.New("empty time")
	case s == "now":
		return now.UTC(), nil
	case s[0] == '-' || s[0] == '+':
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a relative duration like -2h", s)
		}
		return now.Add(d).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2006-01-02T15:04:05Z) nor a relative duration like -2h", s)
	}
	// An offset can carry "0000-12-31T23:00:00-02:00" into year 1, but
	// "0001-01-01T00:30:00+01:00" is in year 0 in UTC: no column or
	// format downstream holds such a time, and it prints back as another.
	if t = t.UTC(); t.Year() < 1 {
		return time.Time{}, fmt.Errorf("%q is before the year 1", s)
	}
	return t, nil
}
