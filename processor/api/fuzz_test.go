package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRequest sends arbitrary requests (an endpoint, its path's last
// segment, a query string, a body and its content type) to the API as an
// administrator: every query parameter, path id and body is parsed here.
// Whatever comes in, the server must not panic, and with a healthy backend
// bad input is a 4xx, never a 500; what it publishes is valid.
func FuzzRequest(f *testing.F) {
	f.Add(uint8(0), "", "depth=2&root=1&graph_type=graph", "", "")
	f.Add(uint8(1), "", "depth=x&limit=-1", `{"query":{"==":{"vitrage_type":"nova.host"}}}`, "application/json")
	f.Add(uint8(2), "", "type=nova.host&all_tenants=true&limit=2&marker=1", "", "")
	f.Add(uint8(4), "3", "at=2026-01-02T03:04:10Z&all_tenants=1", "", "")
	f.Add(uint8(4), "3", "seq=88", "", "")
	f.Add(uint8(5), "", "from=2026-01-01T00:00:00Z&to=-1h&limit=10&page_token=abc", "", "")
	f.Add(uint8(8), "", "", "metadata:\n  version: 3\n  name: t\n", "application/yaml")
	f.Add(uint8(9), "", "", `{"body":"metadata: {version: 3, name: t}"}`, "application/json")
	f.Add(uint8(11), "ops", "", `{"url":"http://127.0.0.1:9/hook","max_age":"1h"}`, "application/json")
	f.Add(uint8(13), "", "", `[{"v":1,"event_id":"e1","source":"test","kind":"tick","observed_at":"2026-01-01T00:00:00Z"}]`, "application/json")
	f.Add(uint8(14), "", "", `{"id":"n4","address":"127.0.0.1:7000"}`, "application/json")

	routes := []struct{ method, path string }{
		{"GET", "/v1/topology"}, {"POST", "/v1/topology"},
		{"GET", "/v1/resources"}, {"GET", "/v1/resources/"},
		{"GET", "/v1/rca/"}, {"GET", "/v1/history/alarms"}, {"GET", "/v1/alarms/"},
		{"GET", "/v1/alarms"}, {"POST", "/v1/templates/validate"}, {"POST", "/v1/templates"},
		{"GET", "/v1/templates/"}, {"PUT", "/v1/subscriptions/"}, {"DELETE", "/v1/subscriptions/"},
		{"POST", "/v1/events"}, {"POST", "/v1/cluster/join"}, {"GET", "/v1/alarms/count"},
	}
	f.Fuzz(func(t *testing.T, which uint8, id, query, body, ctype string) {
		b := &fakeBackend{g: sampleGraph(), seq: 9, leader: true, recon: map[int64]*fakeGraph{5: sampleGraph()}}
		s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Name: "a", Token: "admin-token", Role: RoleAdmin}}},
			b, Deps{NodeID: "n1", Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		rt := routes[int(which)%len(routes)]
		target := rt.path
		if strings.HasSuffix(target, "/") {
			target += escapeSegment(id)
		}
		req, err := http.NewRequest(rt.method, "http://causeway"+target+"?"+query, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Authorization", "Bearer admin-token")
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		// 501: the fake has no history; 503: its reconstruction at seq 88
		// is busy.
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s: %d %s", rt.method, req.URL, rec.Code, rec.Body.Bytes())
		}
		for _, ev := range b.published {
			if err := ev.Validate(); err != nil {
				t.Fatalf("%s %s published an invalid event: %v", rt.method, req.URL, err)
			}
		}
	})
}

// escapeSegment escapes s as one path segment, so that it reaches the
// handler as its {id} whatever it holds.
func escapeSegment(s string) string {
	var sb strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			sb.WriteByte(c)
		} else {
			sb.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return sb.String()
}
