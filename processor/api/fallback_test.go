package api

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSlotFallbackIsCounted: an answer over what max_unsent_bytes leaves
// is written holding its slot (TestUnsentAnswersAreBounded), which holds
// back every read of its kind while its client reads it. That was only
// logged, answer by answer; causeway_processor_api_answers_written_holding_slot_total
// counts it by kind of slot, so a bound set too low (or clients reading
// slowly) shows on a dashboard and can be alerted on.
func TestSlotFallbackIsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{Listen: "127.0.0.1:0", MaxGraphReads: 1, MaxUnsentBytes: 400,
		Tokens: []Token{{Name: "r", Token: "read-token", Role: RoleReader}}},
		&fakeBackend{g: sampleGraph(), seq: 7}, Deps{NodeID: "n1", Registerer: reg, Gatherer: reg, History: &fakeHistory{head: 42}})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	get := func(path string) {
		t.Helper()
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer read-token")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
	}
	get("/v1/resources")      // some 2 KB: over the bound
	get("/v1/resources")      // again
	get("/v1/alarms/count")   // 150 bytes: kept, the slot released
	get("/v1/history/alarms") // small
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "causeway_processor_api_answers_written_holding_slot_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				got[l.GetName()+"="+l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if want := map[string]float64{"slots=graph_reads": 2, "slots=history_queries": 0}; !maps.Equal(got, want) {
		t.Errorf("causeway_processor_api_answers_written_holding_slot_total = %v; want %v", got, want)
	}
}
