package listeners

import (
	"crypto/sha256"
	"net/http"
	"testing"
)

// TestSecretsAreComparedAsDigests: the token check compared the token
// given with each configured one by subtle.ConstantTimeCompare, which
// returns at once when the lengths differ: the time of a refusal told
// a prober each token's length (and the basic auth user's and
// password's). The credentials are kept as sha256 digests and a given
// secret is compared by its digest, so every comparison is of 32 bytes
// whatever the lengths. A timing test is not made (no timed assertions):
// this checks the property the constant time rests on, that no kept
// secret has a length of its own, and that the digests still tell the
// right secret from its prefixes and extensions.
func TestSecretsAreComparedAsDigests(t *testing.T) {
	a := Auth{Tokens: []Token{{Token: "abc"}, {Token: "a-token-of-forty-characters-0123456789ab"}}, Username: "am", Password: "pw"}
	c, err := a.load()
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range c.tokens {
		if len(tok) != sha256.Size {
			t.Errorf("token %d kept in %d bytes; want a digest of %d whatever its length", i, len(tok), sha256.Size)
		}
	}
	if len(c.user) != sha256.Size || len(c.password) != sha256.Size {
		t.Errorf("basic auth kept in %d and %d bytes; want digests of %d", len(c.user), len(c.password), sha256.Size)
	}
	s := &Server{creds: c}
	for _, x := range []struct {
		auth func(*http.Request)
		want bool
	}{
		{func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, true},
		{func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer a-token-of-forty-characters-0123456789ab")
		}, true},
		{func(r *http.Request) { r.Header.Set("Authorization", "Bearer ab") }, false},
		{func(r *http.Request) { r.Header.Set("Authorization", "Bearer abcd") }, false},
		{func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, false},
		{func(r *http.Request) { r.SetBasicAuth("am", "pw") }, true},
		{func(r *http.Request) { r.SetBasicAuth("am", "p") }, false},
		{func(r *http.Request) { r.SetBasicAuth("a", "pw") }, false},
		{func(r *http.Request) { r.SetBasicAuth("am", "pw2") }, false},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		x.auth(r)
		if got := s.authorized(r); got != x.want {
			t.Errorf("authorized(%q) = %t; want %t", r.Header.Get("Authorization"), got, x.want)
		}
	}
}
