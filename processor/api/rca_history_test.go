package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/history"
	"github.com/causeway/causeway/internal/logtest"
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

// failingBackend's reconstructions fail with err.
type failingBackend struct {
	*fakeBackend
	err error
}

func (b failingBackend) Reconstruct(context.Context, int64, time.Time) (Past, error) {
	return Past{}, b.err
}

// failingHistory's reads fail with err.
type failingHistory struct {
	fakeHistory
	err error
}

func (h failingHistory) AlarmHistory(context.Context, history.Query) (history.Page, error) {
	return history.Page{}, h.err
}

// TestTransientHistoricalFailures: a database failure that may pass during
// a historical RCA or a history query was a 500 without Retry-After, where
// the busy case is a 503 with it. A failure that may pass (ErrUnavailable,
// a deadline) is now a 503 with Retry-After; any other stays a 500.
func TestTransientHistoricalFailures(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("reconstruct at seq 3: %w: %w", ErrUnavailable, io.ErrUnexpectedEOF), 503},
		{fmt.Errorf("list snapshots: %w", context.DeadlineExceeded), 503},
		{errors.New("snapshot 3: checksum mismatch"), 500},
	} {
		s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "read-token", Role: RoleReader}}},
			failingBackend{&fakeBackend{g: sampleGraph(), seq: 9}, tc.err},
			Deps{NodeID: "n1", Now: func() time.Time { return t0 }, History: failingHistory{fakeHistory{head: 4}, tc.err}})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(s.Handler())
		for _, path := range []string{"/v1/rca/4?seq=3", "/v1/history/alarms"} {
			resp, body := do(t, ts, "GET", path, "read-token", "", "")
			retry := resp.Header.Get("Retry-After")
			if resp.StatusCode != tc.code || (retry != "") != (tc.code == 503) {
				t.Errorf("%s failing with %q: %d, Retry-After %q (%s); want %d", path, tc.err, resp.StatusCode, retry, body, tc.code)
			}
		}
		ts.Close()
	}
}

// zeroTimeBackend answers every reconstruction with the empty graph of
// seq 0, and counts them.
type zeroTimeBackend struct {
	*fakeBackend
	asked *int
}

func (b zeroTimeBackend) Reconstruct(context.Context, int64, time.Time) (Past, error) {
	*b.asked++
	return Past{Graph: &fakeGraph{}, Seq: 0}, nil
}

// TestHistoricalRCAAtTheZeroTime: ?at= the zero time of Go
// (0001-01-01T00:00:00Z, a time before every log) is a question about the
// past like any other; it was taken for "no ?at=" and answered with the
// live graph.
func TestHistoricalRCAAtTheZeroTime(t *testing.T) {
	asked := 0
	fb := &fakeBackend{g: sampleGraph(), seq: 9, recon: map[int64]*fakeGraph{}}
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "read-token", Role: RoleReader}}}, zeroTimeBackend{fb, &asked}, Deps{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, at := range []string{"0001-01-01T00:00:00Z", "0001-01-01T02:00:00%2B02:00"} {
		asked = 0
		resp, body := do(t, ts, "GET", "/v1/rca/4?at="+at, "read-token", "", "")
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("at=%s: %v", at, err)
		}
		if asked != 1 || resp.StatusCode != 404 || !e.Historical || !strings.Contains(e.Error, "before the first event") {
			t.Errorf("at=%s: %d reconstructions, %d %s; want one, and 404 before the first event", at, asked, resp.StatusCode, body)
		}
	}
}

// TestInternalErrorsAreNotShown: a 500 told any reader the server's own
// error, a database's message naming its tables and columns included. It
// now says only that the request failed, with a request id, and the node
// logs the error in full with that id; a 4xx keeps its message, which is
// the client's to read.
func TestInternalErrorsAreNotShown(t *testing.T) {
	internal := errors.New("Error 1054 (42S22): Unknown column 'ah.raised_seq' in 'field list'")
	var logs logtest.Buffer
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "read-token", Role: RoleReader}}},
		failingBackend{&fakeBackend{g: sampleGraph(), seq: 9}, internal},
		Deps{NodeID: "n1", Now: func() time.Time { return t0 }, History: failingHistory{fakeHistory{head: 4}, internal},
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	ids := map[string]bool{}
	for _, path := range []string{"/v1/rca/4?seq=3", "/v1/history/alarms"} {
		resp, body := do(t, ts, "GET", path, "read-token", "", "")
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
		msg, _ := e["error"].(string)
		id, _ := e["request_id"].(string)
		if resp.StatusCode != http.StatusInternalServerError || strings.Contains(string(body), "Unknown column") ||
			id == "" || !strings.Contains(msg, id) || ids[id] {
			t.Errorf("%s: %d %s; want 500 with a request id of its own, and not the server's error", path, resp.StatusCode, body)
			continue
		}
		ids[id] = true
		logged := false
		for line := range strings.Lines(logs.String()) {
			var l map[string]any
			if json.Unmarshal([]byte(line), &l) == nil && l["request_id"] == id {
				logErr, _ := l["err"].(string)
				logged = l["level"] == "ERROR" && strings.Contains(logErr, internal.Error())
			}
		}
		if !logged {
			t.Errorf("%s: no ERROR line with request_id %s and the error in full:\n%s", path, id, logs.String())
		}
	}
	resp, body := do(t, ts, "GET", "/v1/history/alarms?from=nonsense", "read-token", "", "")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "nonsense") {
		t.Errorf("a 400: %d %s; want its own message", resp.StatusCode, body)
	}
}

// downHistory's every read fails with err, the head's included.
type downHistory struct{ err error }

func (h downHistory) Head(context.Context) (int64, error) { return 0, h.err }
func (h downHistory) AlarmHistory(context.Context, history.Query) (history.Page, error) {
	return history.Page{}, h.err
}
func (h downHistory) AlarmStats(context.Context, history.StatsQuery) ([]history.Bucket, error) {
	return nil, h.err
}
func (h downHistory) AlarmLinks(context.Context, history.LinksQuery) (history.LinksPage, error) {
	return history.LinksPage{}, h.err
}
func (h downHistory) Coverage(context.Context, time.Time, time.Time) (history.Coverage, error) {
	return history.Coverage{}, h.err
}

// downCluster's raft cannot list its members.
type downCluster struct {
	failingBackend
	err error
}

func (b downCluster) Cluster() ([]Member, error) { return nil, b.err }

// TestDependencyFailuresAreNotShown: a 503 for a dependency that failed
// (the database under a historical RCA or the alarm history, the bus under
// a publish, raft under the membership) told any reader the dependency's
// own error text: a database's address and user, the driver's message. It
// now says only what is unavailable, with a request id, and the node logs
// the cause in full with that id. The busy 503s (slot limits) keep their
// message, which says which limit and when to retry.
func TestDependencyFailuresAreNotShown(t *testing.T) {
	const secret = "dial tcp 10.9.8.7:3306: connect: connection refused (user causeway_ro)"
	cause := errors.New(secret)
	down := fmt.Errorf("reconstruct at seq 3: %w: %w", ErrUnavailable, cause)
	var logs logtest.Buffer
	fb := &fakeBackend{g: sampleGraph(), seq: 9, pubErr: fmt.Errorf("publish 1 events: %w", cause)}
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "admin-token", Role: RoleAdmin}}},
		downCluster{failingBackend{fb, down}, cause},
		Deps{NodeID: "n1", Now: func() time.Time { return t0 }, History: downHistory{fmt.Errorf("read history head: %w: %w", ErrUnavailable, cause)},
			Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	ev := `{"v":1,"event_id":"e1","source":"api","kind":"tick","observed_at":"2026-01-02T03:04:05Z"}`
	for _, tc := range []struct{ method, path, body, says string }{
		{"GET", "/v1/rca/4?seq=3", "", "event log database unavailable"},
		{"GET", "/v1/rca/4?at=2026-01-02T03:00:00Z", "", "event log database unavailable"},
		{"GET", "/v1/history/alarms", "", "alarm history database unavailable"},
		{"GET", "/v1/history/stats", "", "alarm history database unavailable"},
		{"GET", "/v1/history/links?alarm=x", "", "alarm history database unavailable"},
		{"POST", "/v1/events", ev, "event bus unavailable"},
		{"GET", "/v1/cluster", "", "raft membership unavailable"},
	} {
		resp, body := do(t, ts, tc.method, tc.path, "admin-token", "application/json", tc.body)
		var e ErrorResponse
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s %s: %v: %s", tc.method, tc.path, err, body)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || strings.Contains(string(body), "10.9.8.7") ||
			!strings.Contains(e.Error, tc.says) || e.RequestID == "" || !strings.Contains(e.Error, e.RequestID) {
			t.Errorf("%s %s: %d, Retry-After %q, %s; want 503 with Retry-After saying %q and a request id, not the cause",
				tc.method, tc.path, resp.StatusCode, resp.Header.Get("Retry-After"), body, tc.says)
			continue
		}
		logged := false
		for line := range strings.Lines(logs.String()) {
			var l map[string]any
			if json.Unmarshal([]byte(line), &l) == nil && l["request_id"] == e.RequestID {
				logErr, _ := l["err"].(string)
				logged = strings.Contains(logErr, secret)
			}
		}
		if !logged {
			t.Errorf("%s %s: no log line with request_id %s and the cause in full:\n%s", tc.method, tc.path, e.RequestID, logs.String())
		}
	}
	// Busy is no failure of a dependency: its 503 says which limit.
	busy := failingBackend{fb, fmt.Errorf("%w: 2 historical queries are running (processor.max_historical_queries); retry later", ErrBusy)}
	s, err = New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "read-token", Role: RoleReader}}}, busy, Deps{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := httptest.NewServer(s.Handler())
	t.Cleanup(ts2.Close)
	resp, body := do(t, ts2, "GET", "/v1/rca/4?seq=3", "read-token", "", "")
	var e ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(e.Error, "processor.max_historical_queries") || e.RequestID != "" {
		t.Errorf("busy: %d %s (%v); want 503 naming the limit, no request id", resp.StatusCode, body, err)
	}
}

// erringStatus is a node whose status carries its last error.
type erringStatus struct {
	*fakeBackend
	err string
}

func (b erringStatus) Status(ctx context.Context) Status {
	st := b.fakeBackend.Status(ctx)
	st.Error = b.err
	return st
}

// TestStatusErrorIsForAdmins: the status's last error (a follow loop's or a
// leader write's, with a database's address and user in it) was shown to
// any reader token, as 500s and dependency 503s no longer are; a reader
// now learns that there is one, an admin what it says.
func TestStatusErrorIsForAdmins(t *testing.T) {
	const secret = "follow: read events: dial tcp 10.9.8.7:3306: connect: connection refused"
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "read-token", Role: RoleReader}, {Token: "admin-token", Role: RoleAdmin}}},
		erringStatus{&fakeBackend{g: sampleGraph(), seq: 9}, secret}, Deps{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		token string
		shown bool
	}{{"read-token", false}, {"admin-token", true}} {
		resp, body := do(t, ts, "GET", "/v1/status", tc.token, "", "")
		var st StatusResponse
		if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s (%v)", tc.token, resp.StatusCode, body, err)
		}
		if got := st.Status.Error == secret; got != tc.shown || st.Status.Error == "" {
			t.Errorf("%s: error %q; want it shown %v, and something said either way", tc.token, st.Status.Error, tc.shown)
		}
	}
}

// refusingCluster refuses every membership change with err.
type refusingCluster struct {
	*fakeBackend
	err error
}

func (b refusingCluster) Join(string, string) error { return b.err }
func (b refusingCluster) Remove(string) error       { return b.err }

// TestMembershipRefusalsAreTheCallersFault: a join or removal the leader
// refuses because of what it asks (no quorum would answer, no such member)
// was a 500, a failure of the node's own with the cause hidden behind a
// request id; it is 422 or 404 with the reason, which the CLI exits 2 on.
func TestMembershipRefusalsAreTheCallersFault(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("join p4 at 10.0.0.4:7000: %w: election: the change would leave no quorum of voters that answer", ErrRefused), http.StatusUnprocessableEntity},
		{fmt.Errorf("remove p9: %w: election: no such member", ErrNotFound), http.StatusNotFound},
	} {
		s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "admin-token", Role: RoleAdmin}}},
			refusingCluster{&fakeBackend{g: sampleGraph(), seq: 9, leader: true}, tc.err}, Deps{NodeID: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(s.Handler())
		for _, path := range []string{"/v1/cluster/join", "/v1/cluster/remove"} {
			resp, body := do(t, ts, "POST", path, "admin-token", "application/json", `{"id":"p4","address":"10.0.0.4:7000"}`)
			if resp.StatusCode != tc.code || !strings.Contains(string(body), "election:") {
				t.Errorf("%s refused with %v: %d %s; want %d with the reason", path, tc.err, resp.StatusCode, body, tc.code)
			}
		}
		ts.Close()
	}
}

// TestJSONBodiesEndAfterTheirValue: a JSON body with more after its value
// (two objects where one was meant, a stray brace) had its first value
// taken and the rest ignored, as the template bodies no longer are.
func TestJSONBodiesEndAfterTheirValue(t *testing.T) {
	b := &fakeBackend{g: sampleGraph(), seq: 9, leader: true}
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Token: "admin-token", Role: RoleAdmin}}}, b, Deps{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	resp, body := do(t, ts, "POST", "/v1/cluster/join", "admin-token", "application/json", `{"id":"p2","address":"10.0.0.2:7000"} {"id":"p3","address":"10.0.0.3:7000"}`)
	if resp.StatusCode != http.StatusBadRequest || len(b.members) != 0 {
		t.Errorf("join with two objects: %d %s, members %v; want 400 and none joined", resp.StatusCode, body, b.members)
	}
	resp, body = do(t, ts, "POST", "/v1/cluster/join", "admin-token", "application/json", "{\"id\":\"p2\",\"address\":\"10.0.0.2:7000\"}\n")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("join with one object and a line break: %d %s; want 200", resp.StatusCode, body)
	}
}
