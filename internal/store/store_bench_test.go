package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/causeway/causeway/internal/store"
	"github.com/causeway/causeway/internal/store/storetest"
)

var benchID atomic.Int64

// BenchmarkAppend measures Log.Append (counter lock, dedup lookup,
// multi-row insert, counter update, commit) by events per call.
func BenchmarkAppend(b *testing.B) {
	db, err := store.Open(context.Background(), storetest.NewDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	log := store.NewLog(db, nil)
	for _, size := range []int{100, 500} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			batches := make([][]store.Entry, 0, b.N/size+1)
			for start := 0; start < b.N; start += size {
				var es []store.Entry
				for range min(size, b.N-start) {
					es = append(es, entry(b, fmt.Sprintf("bench-%09d", benchID.Add(1))))
				}
				batches = append(batches, es)
			}
			b.ResetTimer()
			for _, es := range batches {
				if _, err := log.Append(context.Background(), es); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
