package listeners_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestContentEncodingIsRefused: the server does not decode a compressed
// body (nor risk a decompression bomb): one sent with Content-Encoding gzip
// was read as JSON and refused with 400 "malformed JSON: invalid character
// '\x1f'", which points the sender at its payload, not at its compression.
// It is refused with 415 naming the coding, and Accept-Encoding saying
// what is taken (RFC 9110, 15.5.16); identity is no compression.
func TestContentEncodingIsRefused(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub, prometheus.NewPedanticRegistry())
	firing := file(t, "alertmanager/testdata/firing.json")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(firing); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ce := range []string{"gzip", "br", "gzip, identity"} {
		r := post(t, srv.URL+"/v1/alertmanager", "application/json", gz.Bytes(), func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer tok-1")
			r.Header.Set("Content-Encoding", ce)
		})
		msg, _ := r.body["error"].(string)
		if r.code != http.StatusUnsupportedMediaType || !strings.Contains(msg, "content encoding") || r.hdr.Get("Accept-Encoding") != "identity" {
			t.Errorf("Content-Encoding %s: %d %v, Accept-Encoding %q; want 415 naming the content encoding, Accept-Encoding identity",
				ce, r.code, r.body, r.hdr.Get("Accept-Encoding"))
		}
	}
	if pub.count() != 0 {
		t.Errorf("published %d events of refused requests", pub.count())
	}
	r := post(t, srv.URL+"/v1/alertmanager", "application/json", firing, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer tok-1")
		r.Header.Set("Content-Encoding", "Identity")
	})
	if r.code != http.StatusOK {
		t.Errorf("Content-Encoding identity: %d %v, want 200", r.code, r.body)
	}
}
