package processor

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/causeway/causeway/graph"
	"github.com/causeway/causeway/graph/evaluator"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/api/apitest"
)

// benchRecords is a log of n entity upserts: hosts, instances on them, and
// an alarm on every tenth host.
func benchRecords(n int) []event.Record {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]event.Record, 0, n)
	hosts := max(n/20, 1)
	for i := range n {
		ev := event.Event{V: event.Version, EventID: fmt.Sprint("b", i), Source: "bench", Kind: event.KindEntityUpsert, ObservedAt: t0}
		h := fmt.Sprint("host-", i%hosts)
		switch {
		case i < hosts:
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.host", ID: h, Name: h, State: "available"}
		case i%10 == 0:
			ev.Entity = &event.Entity{Category: event.CategoryAlarm, Type: "prometheus", ID: fmt.Sprint("alarm-", i), Name: "nic down", Severity: "critical",
				Relations: []event.Relation{{Relationship: "on", Type: "nova.host", ID: h, Direction: event.Out}}}
		default:
			vm := fmt.Sprint("vm-", i)
			ev.Entity = &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: vm, Name: vm, State: "ACTIVE",
				Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: h, Direction: event.In}}}
		}
		recs = append(recs, event.Record{Seq: int64(i + 1), RecordedAt: t0, Event: ev})
	}
	return recs
}

// BenchmarkFollowerApply measures the follower's apply path (seq checks,
// lock, evaluator engine without templates) in records per second.
func BenchmarkFollowerApply(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		recs := benchRecords(n)
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				f := newFollower(nil, DefaultPageSize, slog.New(slog.DiscardHandler))
				f.load(evaluator.New(evaluator.Config{}, graph.DefaultNormalizer()), 0, time.Time{})
				for i := 0; i < len(recs); i += applySlice {
					if _, err := f.applyRecords(recs[i:min(i+applySlice, len(recs))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAPI measures live reads over graphs of 1k, 10k and 100k entities.
func BenchmarkAPI(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		e := evaluator.New(evaluator.Config{}, graph.DefaultNormalizer())
		for _, r := range benchRecords(n) {
			if err := e.Apply(r); err != nil {
				b.Fatal(err)
			}
		}
		be := &engineBackend{Backend: apitest.Backend{Seq: int64(n), Leader: "p1"}, e: e}
		s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "t", Role: api.RoleReader}}}, be, api.Deps{})
		if err != nil {
			b.Fatal(err)
		}
		h := s.Handler()
		hosts := max(n/20, 1)
		firstAlarm := (hosts + 9) / 10 * 10
		alarm, ok1 := e.Graph().Lookup(graph.CategoryAlarm, "prometheus", fmt.Sprint("alarm-", firstAlarm))
		host, ok2 := e.Graph().Lookup(graph.CategoryResource, "nova.host", "host-0")
		if !ok1 || !ok2 {
			b.Fatal("bench graph lacks its first alarm or host")
		}
		for _, path := range []string{"/v1/alarms", "/v1/alarms/count", fmt.Sprintf("/v1/topology?root=%d&depth=2&category=all", host), fmt.Sprint("/v1/rca/", alarm)} {
			b.Run(fmt.Sprintf("entities=%d%s", n, path), func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					req := httptest.NewRequest(http.MethodGet, path, nil)
					req.Header.Set("Authorization", "Bearer t")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
					}
				}
			})
		}
	}
}
