package processor

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
)

// heldView is a reconstructed graph whose RCA waits for release, telling
// entered first.
type heldView struct {
	*apitest.Graph
	entered, release chan struct{}
}

func (v *heldView) RCA(graph.VertexID) (*graph.RCA, error) {
	v.entered <- struct{}{}
	<-v.release
	return &graph.RCA{}, nil
}

// TestHistoricalSlotCoversTheAnswer: a historical RCA holds its slot
// (processor.max_historical_queries) until it has computed its answer from
// the graph it rebuilt, not only while it rebuilds it: the slot was given
// back as the reconstruction returned, and the next query rebuilt another
// graph (hundreds of MB at 100k entities) while the first was still in
// use, past the bound.
func TestHistoricalSlotCoversTheAnswer(t *testing.T) {
	v := &heldView{Graph: &apitest.Graph{}, entered: make(chan struct{}, 2), release: make(chan struct{})}
	n := &node{
		cfg: Config{ReadyLag: new(int64(0))}, log: slog.New(slog.DiscardHandler),
		parts: Parts{Log: &fakeLog{head: 10}, Reconstructor: &fakeRecon{seq: 3, m: &recMachine{}},
			Inspect: func(Machine) (api.View, error) { return v, nil }},
		historical: make(chan struct{}, 1),
	}
	s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "t", Role: api.RoleReader}}}, newServedNode(n), api.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	get := func() int {
		req := httptest.NewRequest(http.MethodGet, "/v1/rca/1?seq=3", nil)
		req.Header.Set("Authorization", "Bearer t")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		return w.Code
	}
	first := make(chan int, 1)
	go func() { first <- get() }()
	select {
	case <-v.entered: // the first answers from its graph
	case code := <-first:
		t.Fatalf("the first historical RCA answered %d without its graph's RCA", code)
	}
	second := make(chan int, 1)
	go func() { second <- get() }()
	select {
	case code := <-second:
		if code != http.StatusServiceUnavailable {
			t.Errorf("a historical RCA while another answers from its graph: %d; want 503 busy", code)
		}
	case <-v.entered:
		t.Error("a second graph was rebuilt while the only slot's was in use")
		close(v.release)
		<-first
		<-second
		return
	case <-time.After(10 * time.Second):
		t.Fatal("the second query neither answered nor rebuilt")
	}
	close(v.release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("the first historical RCA: %d", code)
	}
	if len(n.historical) != 0 {
		t.Error("the slot was not given back")
	}
}
