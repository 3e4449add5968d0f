package history

import (
	"errors"
	"testing"
	"time"
)

func FuzzPageToken(f *testing.F) {
	from := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	f.Add(encodeToken(42, "ALARM/prometheus/nic-h0", from, from.Add(time.Hour)))
	f.Add(encodeToken(0, "", time.Time{}, time.Time{}))
	f.Add("NDIvQUxBUk0vcHJvbWV0aGV1cy9uaWMtaDA") // "42/ALARM/prometheus/nic-h0", an older token
	f.Add("")
	f.Add("!!")
	f.Add("MTIz")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := decodeToken(tok)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("decodeToken(%q): %v does not wrap ErrBadToken", tok, err)
			}
			return
		}
		if !p.windowed {
			return
		}
		p2, err := decodeToken(encodeToken(p.seq, p.key, p.from, p.to))
		if err != nil || p2 != p {
			t.Fatalf("token %+v does not round-trip: %+v, %v", p, p2, err)
		}
	})
}
