package redirect

import (
	"net/http"
	"net/url"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{"http://am:9093/api/v2/alerts", "http://am:9093/x/api/v2/alerts", true},
		{"http://am/api", "http://AM:80/x", true},
		{"https://am/api", "https://am:443/x", true},
		{"https://am:9093/api", "http://am:9093/api", false},
		{"http://am:9093/api", "http://am:9094/api", false},
		{"http://example.com/api", "http://sub.example.com/api", false},
		{"http://am/api", "http://other/api", false},
	} {
		req := &http.Request{URL: must(t, c.to)}
		err := SameOrigin(req, []*http.Request{{URL: must(t, c.from)}})
		if (err == nil) != c.ok {
			t.Errorf("%s -> %s: %v; want followed %t", c.from, c.to, err, c.ok)
		}
	}
	via := make([]*http.Request, MaxRedirects)
	for i := range via {
		via[i] = &http.Request{URL: must(t, "http://am/")}
	}
	if err := SameOrigin(&http.Request{URL: must(t, "http://am/")}, via); err == nil {
		t.Errorf("redirect %d followed; want stopped", MaxRedirects+1)
	}
}

func must(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
