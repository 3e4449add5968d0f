package history_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/history"
)

// BenchmarkWrite measures the leader's fenced history write: batches of
// raised alarms, then of their clearing, each batch one transaction.
func BenchmarkWrite(b *testing.B) {
	for _, size := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("items=%d", size), func(b *testing.B) {
			ctx := context.Background()
			db := openDB(b)
			b.ReportAllocs()
			seq := int64(0)
			n := 0
			for b.Loop() {
				raise := history.Batch{}
				clear := history.Batch{}
				for i := 0; i < size/2; i++ {
					seq++
					key := fmt.Sprintf("ALARM/prometheus/a%d", n)
					n++
					a := history.Alarm{Key: key, Type: "prometheus", ID: key, Name: "A", Severity: "WARNING",
						Resource: history.Resource{Key: "RESOURCE/nova.host/h", Type: "nova.host", ID: "h"}}
					at := t0.Add(time.Duration(seq) * time.Millisecond)
					raise.Items = append(raise.Items, history.Item{Kind: history.Raised, Seq: seq, RecordedAt: at, Alarm: a})
					clear.Items = append(clear.Items, history.Item{Kind: history.Cleared, Seq: seq + int64(size), RecordedAt: at, Alarm: a})
				}
				raise.Seq = seq
				seq += int64(size)
				clear.Seq = seq
				if _, err := history.Write(ctx, db, 1, raise); err != nil {
					b.Fatal(err)
				}
				if _, err := history.Write(ctx, db, 1, clear); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "items/s")
		})
	}
}
