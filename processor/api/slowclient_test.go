package api

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// stalledClient is a ResponseWriter whose client reads nothing: its first
// Write tells writing and blocks until release (as a write to a socket
// whose peer stopped reading blocks once the kernel's buffers are full).
type stalledClient struct {
	header           http.Header
	code             int
	writing, release chan struct{}
	once             sync.Once
	n                int
}

func newStalledClient() *stalledClient {
	return &stalledClient{header: http.Header{}, writing: make(chan struct{}), release: make(chan struct{})}
}

func (c *stalledClient) Header() http.Header { return c.header }
func (c *stalledClient) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}
func (c *stalledClient) Write(p []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	c.once.Do(func() {
		close(c.writing)
		<-c.release
	})
	c.n += len(p)
	return len(p), nil
}

// TestStalledClientHoldsNoSlot: a client that stops reading its answer
// (or reads it slowly) holds no slot of the graph reads or of the history
// queries while its answer is written: the slot covers the read of the
// graph (or the database) and the encoding, and the answer is written
// once it is released. It held the slot until the answer was written, so
// that a reader's max_graph_reads stalled requests answered every list,
// count and topology 503 busy, for as long as the server's write timeout.
func TestStalledClientHoldsNoSlot(t *testing.T) {
	for _, path := range []string{"/v1/resources", "/v1/topology", "/v1/alarms/count", "/v1/history/alarms"} {
		t.Run(path, func(t *testing.T) {
			s, err := New(Config{Listen: "127.0.0.1:0", MaxGraphReads: 1, MaxHistoryQueries: 1,
				Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}},
				&fakeBackend{g: sampleGraph(), seq: 7}, Deps{NodeID: "n1", History: &fakeHistory{head: 42}})
			if err != nil {
				t.Fatal(err)
			}
			s.slotWait = 0
			h := s.Handler()
			req := func() *http.Request {
				r := httptest.NewRequest("GET", path, nil)
				r.Header.Set("Authorization", "Bearer read-token")
				return r
			}
			stalled := newStalledClient()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(stalled, req())
			}()
			<-stalled.writing
			got := httptest.NewRecorder()
			h.ServeHTTP(got, req())
			close(stalled.release)
			<-done
			if got.Code != http.StatusOK {
				t.Errorf("%s while another's client reads nothing: %d %s; want 200", path, got.Code, got.Body)
			}
			if cl := stalled.header.Get("Content-Length"); stalled.code != http.StatusOK || cl != strconv.Itoa(stalled.n) || stalled.n == 0 {
				t.Errorf("the stalled client's answer: %d, %d bytes of Content-Length %s; want 200, whole", stalled.code, stalled.n, cl)
			}
		})
	}
}

// TestUnsentAnswersAreBounded: the answers kept for their clients are
// bounded by MaxUnsentBytes; one that would go over it is written holding
// its slot (a stalled client then holds back the reads of its kind, not
// the node's memory). The bound is given back once the answers are
// written.
func TestUnsentAnswersAreBounded(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", MaxGraphReads: 1, MaxUnsentBytes: 400,
		Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}},
		&fakeBackend{g: sampleGraph(), seq: 7}, Deps{NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	s.slotWait = 0
	h := s.Handler()
	req := func(path string) *http.Request {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer read-token")
		return r
	}
	serveStalled := func(path string) (*stalledClient, chan struct{}) {
		c := newStalledClient()
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(c, req(path))
		}()
		<-c.writing
		return c, done
	}
	// Over the bound alone (the list is some 2 KB, a count 150 bytes): written holding the slot.
	big, bigDone := serveStalled("/v1/resources")
	got := httptest.NewRecorder()
	h.ServeHTTP(got, req("/v1/alarms/count"))
	if got.Code != http.StatusServiceUnavailable {
		t.Errorf("a count while an answer over max_unsent_bytes waits for its client: %d %s; want 503 busy", got.Code, got.Body)
	}
	close(big.release)
	<-bigDone
	if n := s.unsent.Load(); n != 0 {
		t.Errorf("%d bytes unsent once every answer is written; want 0", n)
	}
	if big.code != http.StatusOK {
		t.Errorf("the answer over the bound: %d; want 200", big.code)
	}
	// Under it: the slot is free while the answer waits.
	small, smallDone := serveStalled("/v1/resources/count?group_by=")
	if small.n != 0 || s.unsent.Load() == 0 {
		t.Fatalf("the small answer is not kept: %d written, %d unsent", small.n, s.unsent.Load())
	}
	got = httptest.NewRecorder()
	h.ServeHTTP(got, req("/v1/alarms/count"))
	if got.Code != http.StatusOK {
		t.Errorf("a count while an answer under max_unsent_bytes waits for its client: %d %s; want 200", got.Code, got.Body)
	}
	close(small.release)
	<-smallDone
	if n := s.unsent.Load(); n != 0 {
		t.Errorf("%d bytes unsent once every answer is written; want 0", n)
	}
}
