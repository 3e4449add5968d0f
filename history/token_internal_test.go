package history

import (
	"errors"
	"testing"
)

func FuzzPageToken(f *testing.F) {
	f.Add(encodeToken(42, "ALARM/prometheus/nic-h0"))
	f.Add(encodeToken(0, ""))
	f.Add("")
	f.Add("!!")
	f.Add("MTIz")
	f.Fuzz(func(t *testing.T, tok string) {
		seq, key, err := decodeToken(tok)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("decodeToken(%q): %v does not wrap ErrBadToken", tok, err)
			}
			return
		}
		s2, k2, err := decodeToken(encodeToken(seq, key))
		if err != nil || s2 != seq || k2 != key {
			t.Fatalf("token (%d, %q) does not round-trip: (%d, %q), %v", seq, key, s2, k2, err)
		}
	})
}
