package alertmanager

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecode measures a webhook of n firing alerts into events.
func BenchmarkDecode(b *testing.B) {
	w := webhook(b)
	for _, n := range []int{1, 100, 1000} {
		p := Payload{Version: Version, Status: StatusFiring, Receiver: "causeway"}
		for i := range n {
			p.Alerts = append(p.Alerts, Alert{
				Status:      StatusFiring,
				Labels:      map[string]string{"alertname": "HostDown", "job": "node", "instance": fmt.Sprintf("compute-%d:9100", i), "severity": "critical"},
				Annotations: map[string]string{"summary": "Host down", "description": "unreachable for 5 minutes"},
				StartsAt:    time.Unix(1_700_000_000, 0).UTC(), Fingerprint: fmt.Sprintf("%016x", i),
				GeneratorURL: "http://prometheus:9090/graph?g0.expr=up%3D%3D0",
			})
		}
		body, err := json.Marshal(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("alerts=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := w.Decode(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
		})
	}
}
