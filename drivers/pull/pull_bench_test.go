package pull

import (
	"fmt"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
)

// BenchmarkEvents measures turning a full pull into its events (sort,
// content hashes, sync id, validation).
func BenchmarkEvents(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		ents := make([]event.Entity, n)
		for i := range ents {
			ents[i] = event.Entity{
				Category: event.CategoryResource, Type: "nova.instance", ID: fmt.Sprintf("instance-%07d", i),
				Name: fmt.Sprintf("vm-%d", i), State: "ACTIVE", Properties: map[string]string{"flavor": "m1.small", "power_state": "running"},
				Relations: []event.Relation{{Relationship: "contains", Type: "nova.host", ID: fmt.Sprintf("compute-%d", i%100), Direction: event.In}},
			}
		}
		slot := time.Unix(1_700_000_000, 0)
		b.Run(fmt.Sprintf("entities=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Events("nova", slot, slot, ents); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entities/s")
		})
	}
}
