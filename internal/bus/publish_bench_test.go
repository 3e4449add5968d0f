package bus

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/internal/bus/bustest"
	"github.com/causeway/causeway/internal/event"
)

// kibEvent is an entity upsert whose encoding is about 1 KiB.
func kibEvent(i int) event.Event {
	return event.Event{
		V: event.Version, EventID: fmt.Sprintf("bench-%09d", i), Source: "bench", Kind: event.KindEntityUpsert,
		ObservedAt: time.Unix(1_700_000_000, 0).UTC(),
		Entity: &event.Entity{
			Category: event.CategoryResource, Type: "nova.instance", ID: fmt.Sprintf("instance-%d", i),
			Name: "bench instance", State: "ACTIVE",
			Properties: map[string]string{"pad": strings.Repeat("x", 780)},
		},
	}
}

func benchQueue(b *testing.B) (string, *amqp.Channel) {
	u := bustest.VHost(b)
	ch := declaredChannel(b, u)
	return u, ch
}

// BenchmarkConfirmedPublish compares, on the same quorum queue and with the
// same ~1 KiB persistent messages and 256 confirms outstanding, raw
// amqp091-go (the broker's ceiling) with Causeway's Publisher, which also
// writes every event to its fsynced spool first and deletes it on confirm.
// Sub-benchmarks of the Publisher vary how many events each Publish call
// carries (callers: 8 concurrent goroutines).
func BenchmarkConfirmedPublish(b *testing.B) {
	body, err := event.Encode(kibEvent(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("message body: %d bytes", len(body))

	b.Run("raw-amqp091", func(b *testing.B) {
		_, ch := benchQueue(b)
		if err := ch.Confirm(false); err != nil {
			b.Fatal(err)
		}
		returns := ch.NotifyReturn(make(chan amqp.Return, 1))
		go func() {
			for range returns {
			}
		}()
		ctx := context.Background()
		window := make([]*amqp.DeferredConfirmation, 0, DefaultMaxInFlight)
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if len(window) == DefaultMaxInFlight {
				if !window[0].Wait() {
					b.Fatal("nack")
				}
				window = window[1:]
			}
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, EventsExchange, "bench.entity.upsert", true, false, amqp.Publishing{
				ContentType: ContentType, DeliveryMode: amqp.Persistent, MessageId: fmt.Sprint(i), Body: body,
			})
			if err != nil {
				b.Fatal(err)
			}
			window = append(window, dc)
		}
		for _, dc := range window {
			if !dc.Wait() {
				b.Fatal("nack")
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})

	for _, per := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("publisher/events-per-call=%d", per), func(b *testing.B) {
			u, _ := benchQueue(b)
			p, err := NewPublisher(PublisherConfig{Conn: fastConn(u), SpoolPath: filepath.Join(b.TempDir(), "spool.db")}, Deps{})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = p.Close() }()
			evs := make([]event.Event, b.N)
			for i := range evs {
				evs[i] = kibEvent(i)
			}
			r := start(b, p.Run)
			defer r.stop(b)
			const callers = 8
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			begin := time.Now()
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					lo, hi := c*len(evs)/callers, (c+1)*len(evs)/callers
					for i := lo; i < hi; i += per {
						if err := p.Publish(ctx, evs[i:min(i+per, hi)]...); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			accepted := time.Since(begin)
			waitEmpty(b, p, 5*time.Minute)
			elapsed := time.Since(begin)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N)/accepted.Seconds(), "spooled/s")
		})
	}
}
