package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// beforeTheLog answers a time before the first event as the processor
// does: an empty graph at seq 0.
type beforeTheLog struct{ *fakeBackend }

func (b beforeTheLog) Reconstruct(ctx context.Context, seq int64, at time.Time) (Past, error) {
	if !at.IsZero() {
		return Past{Graph: &fakeGraph{}, Seq: 0}, nil
	}
	return b.fakeBackend.Reconstruct(ctx, seq, at)
}

// TestHistoricalRCAErrorSeq: a historical RCA that fails answered with the
// live seq (9 here) in header and body, as if the live graph lacked the
// alarm. It now carries the reconstructed seq, or none, and says it was
// historical.
func TestHistoricalRCAErrorSeq(t *testing.T) {
	fb := &fakeBackend{g: sampleGraph(), seq: 9, recon: map[int64]*fakeGraph{}}
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "read-token", Role: RoleReader}}}, beforeTheLog{fb}, Deps{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		path      string
		code      int
		header    string // "": absent
		bodySeq   int64
		errorSays string
	}{
		{"/v1/rca/4?at=2020-01-01T00:00:00Z", 404, "0", 0, "at seq 0, before the first event"},
		{"/v1/rca/4?seq=77", 404, "", 0, "historical rca at seq 77"},
		{"/v1/rca/4?seq=88", 503, "", 0, "historical rca at seq 88"},
	} {
		resp, body := do(t, ts, "GET", tc.path, "read-token", "", "")
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		_, hasSeq := resp.Header[HeaderSeq]
		if resp.StatusCode != tc.code || resp.Header.Get(HeaderSeq) != tc.header || hasSeq != (tc.header != "") ||
			e.Seq != tc.bodySeq || !e.Historical || !strings.Contains(e.Error, tc.errorSays) {
			t.Errorf("%s: %d, %s %q, body %s; want %d, header %q, seq %d, historical, saying %q",
				tc.path, resp.StatusCode, HeaderSeq, resp.Header.Get(HeaderSeq), body, tc.code, tc.header, tc.bodySeq, tc.errorSays)
		}
	}
	// Live errors keep the live seq.
	if resp, _ := do(t, ts, "GET", "/v1/rca/1", "read-token", "", ""); resp.Header.Get(HeaderSeq) != "9" {
		t.Errorf("live 404: %s %q", HeaderSeq, resp.Header.Get(HeaderSeq))
	}
}
