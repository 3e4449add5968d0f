package processor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/freeport"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/processor/api"
)

// gate holds a part of the stop until the test releases it, and says
// when the part reached it.
type gate struct{ reached, release chan struct{} }

func newGate() gate { return gate{reached: make(chan struct{}), release: make(chan struct{})} }

// hold says the gate is reached and waits for its release.
func (g gate) hold() {
	close(g.reached)
	<-g.release
}

// wait waits until the gate is reached.
func (g gate) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// drainingElector is raft whose stop (leaving leadership, shutting down)
// lasts until its gate is released.
type drainingElector struct {
	fakeElector
	stop gate
}

func (e *drainingElector) Run(ctx context.Context) error {
	<-ctx.Done()
	e.stop.hold()
	return nil
}

// recPublisher records what the API publishes; with block set, each
// publish waits on it (or its context) first.
type recPublisher struct {
	mu      sync.Mutex
	evs     []event.Event
	block   chan struct{}
	entered chan struct{}
	// drainedAt holds, for each Drain, how many events were published.
	drainedAt []int
}

func (p *recPublisher) Publish(ctx context.Context, evs ...event.Event) error {
	if p.block != nil {
		p.entered <- struct{}{}
		select {
		case <-p.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, evs...)
	return nil
}

// Drain records that the stop asked the publisher to send its spool, and
// how many events it had then.
func (p *recPublisher) Drain(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drainedAt = append(p.drainedAt, len(p.evs))
	return nil
}

func (p *recPublisher) published() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.evs)
}

// stoppingNode is a processor run on fakes whose stop can be held at each
// of its stages: the extra part (the follower's and the parts' drain),
// raft's stop and the presence's end.
type stoppingNode struct {
	addr                 string
	part, raft, presence gate
	pub                  *recPublisher
	elect                *drainingElector
	state                chan func() store.NodeState // what the presence row would say
	cancel               context.CancelFunc
	done                 chan error
}

func startStoppingNode(t *testing.T, grace time.Duration, pub *recPublisher) *stoppingNode {
	t.Helper()
	cfg := validConfig()
	cfg.API.Listen = freeport.Addr(t)
	cfg.API.ShutdownGrace = grace
	cfg.PollInterval = 20 * time.Millisecond
	p, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	s := &stoppingNode{addr: cfg.API.Listen, part: newGate(), raft: newGate(), presence: newGate(), pub: pub, done: make(chan error, 1),
		state: make(chan func() store.NodeState, 1)}
	s.elect = &drainingElector{fakeElector: fakeElector{leader: "p1"}, stop: s.raft}
	parts := Parts{
		Log: &fakeLog{head: 3}, Stream: &fakeStream{ch: make(chan bus.Update)}, Reconstructor: &fakeRecon{seq: 3, m: &recMachine{}},
		Election: s.elect, Publisher: pub,
		Presence: func(ctx context.Context, state func() store.NodeState) error {
			s.state <- state
			<-ctx.Done()
			s.presence.hold()
			return nil
		},
	}
	extra := []func(context.Context) error{func(ctx context.Context) error {
		<-ctx.Done()
		s.part.hold()
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- p.run(ctx, parts, extra) }()
	t.Cleanup(func() {
		cancel()
		for _, g := range []gate{s.part, s.raft, s.presence} {
			select {
			case <-g.release:
			default:
				close(g.release)
			}
		}
		<-s.done
	})
	waitFor(t, "the node ready", func() bool {
		code, _, err := s.get("/readyz", "")
		return err == nil && code == http.StatusOK
	})
	state := <-s.state
	s.state <- state
	if !state().Ready {
		t.Fatal("the presence row of a ready node says not ready")
	}
	return s
}

// get asks the node's API (no token: "").
func (s *stoppingNode) get(path, token string) (int, string, error) {
	return s.do("GET", path, token, "")
}

func (s *stoppingNode) do(method, path, token, body string) (int, string, error) {
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" && path != "/readyz" {
		return resp.StatusCode, string(b), errors.New("a 503 without Retry-After")
	}
	return resp.StatusCode, string(b), err
}

const eventBody = `{"v":1,"event_id":"stop-1","source":"test","kind":"tick","observed_at":"2026-01-01T00:00:00Z"}`

// checkDraining checks what the API answers while the node drains: the
// probes and the metrics, and no work.
func (s *stoppingNode) checkDraining(t *testing.T, stage string) {
	t.Helper()
	code, body, err := s.get("/metrics", "")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "causeway_processor_applied_seq") {
		t.Errorf("%s: /metrics = %d, %v; want 200 with the processor's metrics", stage, code, err)
	}
	if code, body, err := s.get("/healthz", ""); err != nil || code != http.StatusOK {
		t.Errorf("%s: /healthz = %d %q, %v; want 200 (the process is alive)", stage, code, body, err)
	}
	code, body, err = s.get("/readyz", "")
	var ready api.ReadyResponse
	var stopping struct {
		Stopping bool `json:"stopping"`
	}
	if err != nil || code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &ready) != nil ||
		json.Unmarshal([]byte(body), &stopping) != nil || ready.Ready || !stopping.Stopping {
		t.Errorf("%s: /readyz = %d %s, %v; want 503 saying stopping", stage, code, body, err)
	}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/alarms", ""}, {"GET", "/v1/status", ""}, {"GET", "/v1/cluster", ""},
		{"POST", "/v1/events", eventBody}, {"POST", "/v1/cluster/join", `{"id":"p9","address":"127.0.0.1:1"}`},
	} {
		code, body, err := s.do(r.method, r.path, "x", r.body)
		var e api.ErrorResponse
		if err != nil || code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "stopping") {
			t.Errorf("%s: %s %s = %d %s, %v; want 503 stopping", stage, r.method, r.path, code, body, err)
		}
	}
	if n := s.pub.published(); n != 1 {
		t.Errorf("%s: %d events published; want only the one sent before the stop", stage, n)
	}
	// A leader handing over must not pick a node that is going.
	state := <-s.state
	s.state <- state
	if state().Ready {
		t.Errorf("%s: the presence row says ready; want not ready once the stop began", stage)
	}
}

// TestAPIAnswersWhileTheNodeDrains: once the stop begins, the API keeps
// its listener while the parts drain, raft leaves leadership and the
// presence ends: /metrics and /healthz answer, /readyz says stopping, and
// every route that reads or changes the state answers 503 (no event is
// published any more). Then the listener closes.
func TestAPIAnswersWhileTheNodeDrains(t *testing.T) {
	s := startStoppingNode(t, time.Minute, &recPublisher{})
	if code, body, err := s.do("POST", "/v1/events", "x", eventBody); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST /v1/events before the stop = %d %s, %v; want 202", code, body, err)
	}
	if code, body, err := s.get("/v1/status", "x"); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/status before the stop = %d %s, %v", code, body, err)
	}

	s.cancel()
	s.part.wait(t, "the parts to drain")
	// The API's drain begins beside the parts': wait for it to have begun.
	waitFor(t, "the API to say stopping", func() bool {
		code, body, err := s.get("/readyz", "")
		var r struct {
			Stopping bool `json:"stopping"`
		}
		return err == nil && code == http.StatusServiceUnavailable && json.Unmarshal([]byte(body), &r) == nil && r.Stopping
	})
	s.checkDraining(t, "parts draining")
	close(s.part.release)
	s.raft.wait(t, "raft to stop")
	s.checkDraining(t, "raft stopping")
	close(s.raft.release)
	s.presence.wait(t, "the presence to end")
	s.checkDraining(t, "presence ending")
	close(s.presence.release)
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the node did not stop")
	}
	if c, err := net.Dial("tcp", s.addr); err == nil {
		c.Close()
		t.Fatal("the API still listens after the node stopped")
	}
}

// stopped waits for the node's run to return and gives its error.
func (s *stoppingNode) stopped(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the node did not stop")
		return nil
	}
}

// TestStopWaitsForRequestsInFlight: raft leaves leadership only after the
// API has stopped serving, as before the API kept its listener through
// the stop: a request accepted before the stop (an event being
// published) ends, and is answered, before raft begins to stop.
func TestStopWaitsForRequestsInFlight(t *testing.T) {
	pub := &recPublisher{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	s := startStoppingNode(t, time.Minute, pub)
	close(s.part.release)
	answered := make(chan int, 1)
	go func() {
		code, _, _ := s.do("POST", "/v1/events", "x", eventBody)
		answered <- code
	}()
	<-pub.entered
	s.cancel()
	select {
	case <-s.raft.reached:
		t.Fatal("raft began to stop while a request accepted before the stop was in flight")
	case <-time.After(300 * time.Millisecond):
	}
	close(pub.block)
	if code := <-answered; code != http.StatusAccepted {
		t.Errorf("the request in flight was answered %d; want 202", code)
	}
	s.raft.wait(t, "raft to stop")
	close(s.raft.release)
	close(s.presence.release)
	if err := s.stopped(t); err != nil {
		t.Fatal(err)
	}
}

// TestAPIPublisherOutlivesTheAPI: the API answers a write once its
// events are in the publisher's spool; the publisher (an extra part) was
// stopped as the stop began, beside the API's drain, so what the requests
// in flight published then stayed in the spool until the node's next
// start, a node taken out for good keeping it. The publisher runs until
// the API has answered them, is drained (Drain, after their events), and
// stops only then.
func TestAPIPublisherOutlivesTheAPI(t *testing.T) {
	pub := &recPublisher{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	s := startStoppingNode(t, time.Minute, pub)
	close(s.raft.release)
	close(s.presence.release)
	answered := make(chan int, 1)
	go func() {
		code, _, _ := s.do("POST", "/v1/events", "x", eventBody)
		answered <- code
	}()
	<-pub.entered
	s.cancel()
	select {
	case <-s.part.reached:
		t.Fatal("the publisher was stopped while a request it publishes for was in flight")
	case <-time.After(300 * time.Millisecond):
	}
	close(pub.block)
	if code := <-answered; code != http.StatusAccepted {
		t.Errorf("the request in flight was answered %d; want 202", code)
	}
	s.part.wait(t, "the publisher to stop")
	pub.mu.Lock()
	drainedAt := slices.Clone(pub.drainedAt)
	pub.mu.Unlock()
	if !slices.Equal(drainedAt, []int{1}) {
		t.Errorf("drains with the published counts %v; want one, after the request's event", drainedAt)
	}
	close(s.part.release)
	if err := s.stopped(t); err != nil {
		t.Fatal(err)
	}
}

// TestStopCutsRequestsPastTheGrace: a request still in flight when the
// shutdown grace has passed has its context cancelled and is answered;
// the stop goes on.
func TestStopCutsRequestsPastTheGrace(t *testing.T) {
	pub := &recPublisher{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	s := startStoppingNode(t, 100*time.Millisecond, pub)
	close(s.part.release)
	close(s.raft.release)
	close(s.presence.release)
	answered := make(chan int, 1)
	go func() {
		code, _, _ := s.do("POST", "/v1/events", "x", eventBody)
		answered <- code
	}()
	<-pub.entered
	s.cancel()
	if err := s.stopped(t); err != nil {
		t.Fatal(err)
	}
	if code := <-answered; code != http.StatusServiceUnavailable {
		t.Errorf("the request cut at the end of the grace was answered %d; want 503", code)
	}
	if n := pub.published(); n != 0 {
		t.Errorf("%d events published by the request cut", n)
	}
}

// TestAPIListenFailureFailsFast: a node whose API cannot listen fails at
// once, raft not started.
func TestAPIListenFailureFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := validConfig()
	cfg.API.Listen = ln.Addr().String()
	p, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	elect := &drainingElector{fakeElector: fakeElector{leader: "p1"}, stop: newGate()}
	close(elect.stop.release)
	parts := Parts{
		Log: &fakeLog{head: 3}, Stream: &fakeStream{ch: make(chan bus.Update)}, Reconstructor: &fakeRecon{seq: 3, m: &recMachine{}},
		Election: elect, Publisher: &recPublisher{},
	}
	done := make(chan error, 1)
	go func() { done <- p.run(context.Background(), parts, nil) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "listen api on "+cfg.API.Listen) {
			t.Fatalf("run = %v; want the listen failure", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a node whose API cannot listen keeps running")
	}
}
