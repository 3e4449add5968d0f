package listeners_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/causeway/causeway/listeners"
)

// FuzzServe sends arbitrary requests (endpoint, content type,
// authorization, body) to the listener's handler. Whatever comes in, the
// answer is one of the documented ones, as JSON, never a 500 (a decoder
// that panics): bad input is refused with a clear error (DESIGN.md,
// invariant 1). A 200 means every event it accepted was published, and
// each one is valid.
func FuzzServe(f *testing.F) {
	// Each seed goes to its endpoint (which: an index into paths below).
	for _, seed := range []struct {
		which uint8
		glob  string
	}{
		{0, "alertmanager/testdata/*.json"}, {0, "alertmanager/testdata/bad/*.json"},
		{1, "events/testdata/*.json"}, {1, "events/testdata/bad/*.json"},
	} {
		paths, err := filepath.Glob(seed.glob)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(seed.which, "application/json", "Bearer tok-1", b)
		}
	}
	f.Add(uint8(0), "application/json; charset=utf-8", "Basic YW06cHc=", []byte(`{"version":"4","alerts":[]}`))
	f.Add(uint8(1), "text/plain", "", []byte(`{}`))
	f.Add(uint8(2), "application/json", "bearer tok-1", []byte(`[`))

	// The endpoints of newServer, without its panicking one (a 500 there
	// is what it is for).
	var eps []listeners.Endpoint
	for _, ep := range endpoints(f) {
		if ep.Name != "panicky" {
			eps = append(eps, ep)
		}
	}
	paths := []string{"/v1/alertmanager", "/v1/events", "/v1/nope", "/"}
	f.Fuzz(func(t *testing.T, which uint8, ctype, auth string, body []byte) {
		pub := &fakePublisher{}
		s, err := listeners.New(listeners.Config{
			MaxBodyBytes: 8 << 10,
			RetryAfter:   time.Second,
			Auth:         listeners.Auth{Tokens: []listeners.Token{{Token: "tok-1"}}, Username: "am", Password: "pw"},
		}, listeners.Deps{Publisher: pub, Endpoints: eps})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, paths[int(which)%len(paths)], bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound,
			http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("answered %d: %s", rec.Code, rec.Body.Bytes())
		}
		var ans struct {
			Accepted *int   `json:"accepted"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body.Bytes())
		}
		if rec.Code != http.StatusOK {
			if n := pub.count(); n != 0 {
				t.Fatalf("answered %d after publishing %d events", rec.Code, n)
			}
			if ans.Error == "" {
				t.Fatalf("answered %d without saying why: %s", rec.Code, rec.Body.Bytes())
			}
			return
		}
		if ans.Accepted == nil || *ans.Accepted != pub.count() {
			t.Fatalf("answered 200 %s; published %d events", rec.Body.Bytes(), pub.count())
		}
		for _, ev := range pub.evs {
			if err := ev.Validate(); err != nil {
				t.Fatalf("published an invalid event: %v", err)
			}
		}
	})
}
