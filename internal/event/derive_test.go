package event

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand"
	"strings"
	"testing"
)

// deriveIDStream is DeriveID as first written (streaming hash): ids are
// persisted (log dedup, deduced alarm keys in snapshots), so they must
// never change.
func deriveIDStream(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		l := uint64(len(p))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func TestDeriveIDStable(t *testing.T) {
	for _, c := range []struct {
		parts []string
		want  string
	}{
		{[]string{"deduced", "123", "instance_nic_degraded"}, "cdc04eeea693147dee9061a67465b388"},
		{nil, "e3b0c44298fc1c149afbf4c8996fb924"},
		{[]string{"", "x"}, "65094dcac6e080cfc5b7f72bbd21c768"},
	} {
		if got := DeriveID(c.parts...); got != c.want {
			t.Errorf("DeriveID(%q) = %s, want %s", c.parts, got, c.want)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		parts := make([]string, rng.Intn(5))
		for j := range parts {
			parts[j] = strings.Repeat(string(rune('a'+rng.Intn(26))), rng.Intn(200))
		}
		if got, want := DeriveID(parts...), deriveIDStream(parts...); got != want {
			t.Fatalf("DeriveID(%q) = %s, the streaming hash gives %s", parts, got, want)
		}
	}
}

func BenchmarkDeriveID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = DeriveID("deduced", "123456", "instance_nic_degraded")
	}
}
