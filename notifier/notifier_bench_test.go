package notifier_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/notifier"
)

// BenchmarkHealthyLatency measures a healthy subscriber's delivery latency
// (from the leader's write to the receiver's 2xx) alone and next to dead
// subscribers whose receivers hang until the 1s timeout: a dead subscriber
// must block only itself. Reported: p50 and p99 in ms; the subscriber
// alone is the baseline make bench divides by (target: p99 within 20%).
func BenchmarkHealthyLatency(b *testing.B) {
	for _, dead := range []int{0, 1, 4} {
		name := fmt.Sprintf("dead=%d", dead)
		if dead == 0 {
			name = "baseline-alone"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			db, dsn := openDB(b)
			healthy := newReceiver(b)
			healthy.arrived = make(chan string, 16)
			l := newLeader(b, db)
			l.subscribe("healthy", healthy.srv.URL, "")
			for i := range dead {
				r := newReceiver(b)
				r.hang = true
				l.subscribe(fmt.Sprintf("dead-%d", i), r.srv.URL, "")
			}
			cfg := testConfig(dsn, "bench")
			cfg.Delivery.Timeout = time.Second
			cfg.LeaseTTL = 3 * time.Second
			cfg.Delivery.BackoffMax = 2 * time.Second
			start(b, cfg, db, prometheus.NewRegistry())
			// Let the dead subscribers start failing.
			l.raise("warmup", 1)
			<-healthy.arrived
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				l.raise(fmt.Sprintf("a%d", i), 1)
				<-healthy.arrived
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99_ms")
		})
	}
}

// BenchmarkDrain measures one healthy subscriber's delivery throughput
// from a backlog (signing, HTTP on loopback, cursor moves, deletes).
func BenchmarkDrain(b *testing.B) {
	for _, rows := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			b.ReportAllocs()
			var total time.Duration
			for range b.N {
				b.StopTimer()
				db, dsn := openDB(b)
				rcv := newReceiver(b)
				l := newLeader(b, db)
				l.subscribe("ops", rcv.srv.URL, "")
				l.raise("alarm", rows)
				b.StartTimer()
				t0 := time.Now()
				n, err := notifier.New(testConfig(dsn, "bench"), notifier.Deps{DB: db})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- n.Run(ctx) }()
				for rcv.requests() < rows {
					time.Sleep(5 * time.Millisecond)
				}
				total += time.Since(t0)
				cancel()
				<-done
			}
			b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
		})
	}
}
