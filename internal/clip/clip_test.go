package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"xé", 2, "x"}, // é is two bytes: not cut in half
		{"xé", 3, "xé"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"ééé", 0, ""},
	}
	for _, tc := range tests {
		if got := String(tc.in, tc.n); got != tc.want {
			t.Errorf("String(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add("x"+strings.Repeat("é", 200), 256)
	f.Add("a\xffb", 2)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		got := String(s, n)
		if !utf8.ValidString(got) || len(got) > n {
			t.Fatalf("String(%q, %d) = %q: invalid or too long", s, n, got)
		}
		if v := strings.ToValidUTF8(s, "\uFFFD"); !strings.HasPrefix(v, got) || len(v)-len(got) < 0 || (len(v) <= n && got != v) {
			t.Fatalf("String(%q, %d) = %q: not a prefix of the valid text, or cut when it fits", s, n, got)
		}
	})
}
