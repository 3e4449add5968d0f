package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/notifier/outbox"
	"github.com/causeway/causeway/notifier/subscription"
)

// BenchmarkWrite measures the leader's fenced write of a batch of rows of
// about 1 KiB (a payload with a short causal chain).
func BenchmarkWrite(b *testing.B) {
	for _, rows := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			b.ReportAllocs()
			db := openDBB(b)
			ctx := context.Background()
			payload := make([]byte, 1024)
			for i := range payload {
				payload[i] = 'x'
			}
			sub := subscription.Update{ID: "ops", Seq: 1, Spec: json.RawMessage(`{"url":"http://a/"}`)}
			if _, err := outbox.Write(ctx, db, 1, outbox.Batch{Seq: 1, Subscriptions: []subscription.Update{sub}}); err != nil {
				b.Fatal(err)
			}
			seq := int64(1)
			b.ResetTimer()
			for range b.N {
				batch := outbox.Batch{}
				for range rows {
					seq++
					batch.Rows = append(batch.Rows, outbox.Row{SubscriptionID: "ops", Seq: seq, WebhookID: outbox.WebhookID("ops", seq, "k", "raised"),
						RecordedAt: time.Now(), Payload: payload})
				}
				batch.Seq = seq
				if _, err := outbox.Write(ctx, db, 1, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
