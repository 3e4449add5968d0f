package processor

import (
	"bytes"
	"context"
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
	"github.com/causeway/causeway/snapshot"
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

// BenchmarkFollowerProduce is BenchmarkFollowerApply on the processor's
// real machine (engine + subscriptions) with ProduceNode: what deriving
// the outbox rows (two subscriptions) and the alarm history costs the
// apply path, on top of applying.
func BenchmarkFollowerProduce(b *testing.B) {
	subs := []event.Record{
		{Seq: 1, Event: event.Event{Kind: event.KindSubscriptionPut, Subscription: &event.Subscription{ID: "all", Spec: []byte(`{"url":"http://a/"}`)}}},
		{Seq: 2, Event: event.Event{Kind: event.KindSubscriptionPut, Subscription: &event.Subscription{ID: "crit", Spec: []byte(`{"url":"http://c/","filter":{"severities":["critical"]}}`)}}},
	}
	for _, n := range []int{1000, 10000} {
		recs := benchRecords(n)
		for i := range recs {
			recs[i].Seq += 2
		}
		recs = append(subs, recs...)
		for _, mode := range []string{"apply", "produce"} {
			b.Run(fmt.Sprintf("records=%d/%s", n, mode), func(b *testing.B) {
				b.ReportAllocs()
				rows := 0
				for range b.N {
					f := newFollower(nil, DefaultPageSize, slog.New(slog.DiscardHandler))
					if mode == "produce" {
						f.produce, f.pend = ProduceNode, newPending(0)
					}
					m, _ := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}.New()
					f.load(m, 0, time.Time{})
					for i := 0; i < len(recs); i += applySlice {
						if _, err := f.applyRecords(recs[i:min(i+applySlice, len(recs))]); err != nil {
							b.Fatal(err)
						}
					}
					if f.pend != nil {
						rows, _ = f.pend.size()
					}
				}
				b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(rows), "outbox_rows")
			})
		}
	}
}

// BenchmarkLiveCapturePause is the pause a snapshot would impose on event
// processing if the leader captured the live machine under its lock
// (Writer.Take with CaptureEngine, snapshot_capture_live: true): the deep
// copy of a node of 10k and 100k entities. The default, TakeFromLog on a
// shadow, holds the live lock for no time at all; its cost is measured in
// snapshot's BenchmarkProcessingStall (CPU contention only).
func BenchmarkLiveCapturePause(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
			m, _ := snapshot.NodeFactory{Normalizer: graph.DefaultNormalizer()}.New()
			for _, r := range benchRecords(n) {
				_ = m.Apply(r)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := CaptureEngine(m, int64(n), time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "pause_ms")
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
		for _, path := range []string{"/v1/alarms", "/v1/alarms/count", fmt.Sprintf("/v1/topology?root=%d&depth=2&category=all", host), fmt.Sprint("/v1/rca/", alarm),
			"/v1/resources", "/v1/topology?category=all"} {
			b.Run(fmt.Sprintf("entities=%d%s", n, path), func(b *testing.B) {
				b.ReportAllocs()
				var size int64
				for range b.N {
					req := httptest.NewRequest(http.MethodGet, path, nil)
					req.Header.Set("Authorization", "Bearer t")
					// The answer dropped as written: the handler's memory, not
					// a recorder's.
					w := &discardResponse{h: http.Header{}}
					h.ServeHTTP(w, req)
					if w.code != http.StatusOK {
						b.Fatalf("%s: %d", path, w.code)
					}
					size = w.n
				}
				b.ReportMetric(float64(size), "answer_bytes")
			})
		}
	}
}

// BenchmarkDumpLockHold is how long GET /v1/debug/dump holds the
// follower's lock (and so holds back the application of the log), on a
// node of 10k and 100k entities: held=whole, as it was, the whole dump
// written under the lock; held=capture, as now, the copy of the state
// (CaptureDump), the dump then being written from it outside the lock.
func BenchmarkDumpLockHold(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		m := dumpMachines(b, n)["node"].(*snapshot.Node)
		for _, mode := range []string{"whole", "capture"} {
			b.Run(fmt.Sprintf("entities=%d/held=%s", n, mode), func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					if mode == "capture" {
						_ = m.CaptureDump()
						continue
					}
					var buf bytes.Buffer
					if err := m.Dump(&buf); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "held_ms")
			})
		}
	}
}

// discardResponse is a ResponseWriter that drops the body, so that a
// benchmark counts the memory of the handler, not of a recorder.
type discardResponse struct {
	h    http.Header
	code int
	n    int64
}

func (d *discardResponse) Header() http.Header { return d.h }
func (d *discardResponse) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}
func (d *discardResponse) Write(p []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	d.n += int64(len(p))
	return len(p), nil
}

// servedNode serves a node's Dump and Reconstruct through the API, and
// apitest's answers for the rest.
type servedNode struct {
	*node
	b apitest.Backend
}

func newServedNode(n *node) *servedNode {
	return &servedNode{node: n, b: apitest.Backend{Leader: "p1"}}
}

func (d *servedNode) View(fn func(api.View, int64) error) error { return d.b.View(fn) }
func (d *servedNode) Status(ctx context.Context) api.Status     { return d.b.Status(ctx) }
func (d *servedNode) Publish(ctx context.Context, evs ...event.Event) error {
	return d.b.Publish(ctx, evs...)
}
func (d *servedNode) Cluster() ([]api.Member, error) { return d.b.Cluster() }
func (d *servedNode) Join(id, addr string) error     { return d.b.Join(id, addr) }
func (d *servedNode) Remove(id string) error         { return d.b.Remove(id) }

// BenchmarkDumpRequest is the memory one GET /v1/debug/dump takes, the
// whole handler (capture, rendering, writing), on a node of 10k and 100k
// entities, the response's body dropped as written.
func BenchmarkDumpRequest(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		m := dumpMachines(b, n)["node"]
		f := newFollower(nil, DefaultPageSize, slog.New(slog.DiscardHandler))
		f.load(m, int64(n+1), time.Time{})
		s, err := api.New(api.Config{Listen: "127.0.0.1:0", Tokens: []api.Token{{Token: "t", Role: api.RoleAdmin}}},
			newServedNode(&node{f: f}), api.Deps{})
		if err != nil {
			b.Fatal(err)
		}
		h := s.Handler()
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var size int64
			for range b.N {
				req := httptest.NewRequest(http.MethodGet, "/v1/debug/dump", nil)
				req.Header.Set("Authorization", "Bearer t")
				w := &discardResponse{h: http.Header{}}
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("dump: %d", w.code)
				}
				size = w.n
			}
			b.ReportMetric(float64(size), "dump_bytes")
		})
	}
}
