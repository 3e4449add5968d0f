package persister_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/bus"
	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/persister"
)

var benchSeq atomic.Int64

// benchEvents returns n fresh events (ids never repeat within the process,
// so dedup drops nothing) and their encoded bodies.
func benchEvents(b *testing.B, n int) ([]event.Event, [][]byte) {
	b.Helper()
	now := time.Now().UTC()
	evs := make([]event.Event, n)
	bodies := make([][]byte, n)
	for i := range evs {
		id := fmt.Sprintf("bench-%09d", benchSeq.Add(1))
		evs[i] = event.Event{V: event.Version, EventID: id, Source: "bench", Kind: event.KindEntityUpsert, ObservedAt: now,
			Entity: &event.Entity{Category: event.CategoryResource, Type: "nova.instance", ID: id, Name: "instance " + id,
				State: "ACTIVE", ProjectID: "p1", Properties: map[string]string{"host": "compute-1", "flavor": "m1.small"},
				Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: "compute-1", Direction: event.In}}}}
		var err error
		if bodies[i], err = event.Encode(evs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return evs, bodies
}

// BenchmarkPipeline measures, side by side on one broker and one database:
// the raw batched insert of the same rows into a bare table, the raw
// confirmed publish through bus.Publisher, and Causeway's end-to-end rate
// (Publisher -> RabbitMQ -> persister -> committed in the log) with
// its publish-to-commit latency (p50/p99, measured when the persister's Append
// returns). Publish time is when the event is handed to Publisher.Publish.
func BenchmarkPipeline(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()

	b.Run("raw_insert/rows_per_commit=100", func(b *testing.B) {
		b.ReportAllocs()
		if _, err := e.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS bench_raw (
    seq BIGINT NOT NULL, recorded_at DATETIME(6) NOT NULL,
    event_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    source VARCHAR(255) NOT NULL, kind VARCHAR(64) NOT NULL, body MEDIUMBLOB NOT NULL,
    PRIMARY KEY (seq), KEY (event_id)) ENGINE=InnoDB`); err != nil {
			b.Fatal(err)
		}
		var base int64
		if err := e.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM bench_raw").Scan(&base); err != nil {
			b.Fatal(err)
		}
		evs, bodies := benchEvents(b, b.N)
		q := "INSERT INTO bench_raw (seq, recorded_at, event_id, source, kind, body) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?),", 100), ",")
		b.ResetTimer()
		for start := 0; start < b.N; start += 100 {
			end := min(start+100, b.N)
			stmt := q
			if end-start < 100 {
				stmt = "INSERT INTO bench_raw (seq, recorded_at, event_id, source, kind, body) VALUES " +
					strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?),", end-start), ",")
			}
			args := make([]any, 0, 6*(end-start))
			now := time.Now().UTC()
			for i := start; i < end; i++ {
				args = append(args, base+int64(i)+1, now, evs[i].EventID, evs[i].Source, string(evs[i].Kind), bodies[i])
			}
			tx, err := e.db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})

	b.Run("raw_publish", func(b *testing.B) {
		b.ReportAllocs()
		pub := e.startPublisher(b)
		evs, _ := benchEvents(b, b.N)
		b.ResetTimer()
		for start := 0; start < b.N; start += 100 {
			if err := pub.Publish(ctx, evs[start:min(start+100, b.N)]...); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, "every event confirmed", 5*time.Minute, func() (bool, string) {
			n, _ := pub.Spooled()
			return n == 0, fmt.Sprintf("%d spooled", n)
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		purge(b, e.url)
	})

	for _, tc := range []struct {
		batch int
		rate  int // events/s offered; 0: as fast as the publisher goes
	}{{100, 0}, {500, 0}, {500, 2000}} {
		batch := tc.batch
		name := fmt.Sprintf("end_to_end/batch=%d", batch)
		if tc.rate > 0 {
			// At a rate the pipeline sustains, latency is the pipeline's
			// own; flat out, it is mostly time queued behind the burst.
			name = fmt.Sprintf("end_to_end_paced/batch=%d/rate=%d", batch, tc.rate)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			lat := newLatencies()
			p := e.startPersisterWrapped(b, persister.Config{BatchSize: batch, BatchWait: 5 * time.Millisecond},
				func(l persister.Log) persister.Log { lat.Log = l; return lat })
			pub := e.startPublisher(b)
			evs, _ := benchEvents(b, b.N)
			b.ResetTimer()
			began := time.Now()
			for start := 0; start < b.N; start += 100 {
				if tc.rate > 0 {
					// Offer 100 events every 100/rate seconds.
					time.Sleep(time.Until(began.Add(time.Duration(start) * time.Second / time.Duration(tc.rate))))
				}
				chunk := evs[start:min(start+100, b.N)]
				lat.published(chunk, time.Now())
				if err := pub.Publish(ctx, chunk...); err != nil {
					b.Fatal(err)
				}
			}
			waitFor(b, "every event committed", 5*time.Minute, func() (bool, string) {
				_, _, n := lat.quantiles()
				return n >= b.N, fmt.Sprintf("%d of %d committed", n, b.N)
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			p50, p99, n := lat.quantiles()
			b.ReportMetric(p50.Seconds()*1000, "p50_ms")
			b.ReportMetric(p99.Seconds()*1000, "p99_ms")
			if c, sum := p.histogram(b, "causeway_persister_batch_size"); c > 0 {
				b.ReportMetric(sum/float64(c), "events/commit")
			}
			if c, sum := p.histogram(b, "causeway_persister_commit_seconds"); c > 0 {
				b.ReportMetric(sum/float64(c)*1000, "commit_ms")
			}
			if n != b.N {
				b.Fatalf("latency measured for %d of %d events", n, b.N)
			}
			if err := p.stop(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// purge empties the persist queue of what raw_publish left there.
func purge(b *testing.B, url string) {
	b.Helper()
	ch := bustest.Channel(b, url)
	if _, err := ch.QueuePurge(bus.PersistQueue, false); err != nil {
		b.Fatal(err)
	}
}

// latencies pairs publish times with commit times: it wraps the real
// store.Log and notes when each event's Append returned (committed).
type latencies struct {
	persister.Log
	mu   sync.Mutex
	sent map[string]time.Time
	got  []time.Duration
}

func newLatencies() *latencies { return &latencies{sent: map[string]time.Time{}} }

func (l *latencies) Append(ctx context.Context, entries []store.Entry) (store.Appended, error) {
	res, err := l.Log.Append(ctx, entries)
	if err != nil {
		return res, err
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range res.Batch.Records {
		if t, ok := l.sent[r.Event.EventID]; ok {
			l.got = append(l.got, now.Sub(t))
		}
	}
	return res, nil
}

func (l *latencies) published(evs []event.Event, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		l.sent[ev.EventID] = at
	}
}

// quantiles returns p50, p99 and the number of samples.
func (l *latencies) quantiles() (p50, p99 time.Duration, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(l.got)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)], len(s)
}
