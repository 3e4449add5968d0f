package event

import (
	"fmt"
	"testing"
	"time"
)

// benchUpsert is a realistic upsert of about 600 bytes: a nova instance
// with relations to its host and volumes and a few properties.
func benchUpsert() Event {
	return Event{
		V: Version, EventID: "3f2c9a1e-6b7d-4c1a-9e8f-0a1b2c3d4e5f", Source: "nova", Kind: KindEntityUpsert,
		ObservedAt: time.Date(2026, 11, 1, 10, 0, 0, 123456789, time.UTC),
		Entity: &Entity{
			Category: CategoryResource, Type: "nova.instance", ID: "0c8f2d7e-1a2b-4c3d-8e9f-aabbccddeeff",
			Name: "web-frontend-07", State: "ACTIVE", ProjectID: "8d1e4b2a9c7f4e6d",
			Properties: map[string]string{"flavor": "m1.large", "image": "ubuntu-24.04", "az": "nova-az1", "host_aggregate": "ssd"},
			Relations: []Relation{
				{Relationship: "contains", Type: "nova.host", ID: "compute-0042.dc1.example.net", Direction: In},
				{Relationship: "attached", Type: "cinder.volume", ID: "vol-5e6f7a8b-9c0d", Direction: Out},
				{Relationship: "attached", Type: "neutron.port", ID: "port-1a2b3c4d-5e6f", Direction: Out},
			},
		},
	}
}

// BenchmarkDecode measures Decode of a ~600-byte upsert with relations and
// properties, and of a small delete.
func BenchmarkDecode(b *testing.B) {
	del := Event{V: Version, EventID: "e-2", Source: "am", Kind: KindEntityDelete, ObservedAt: time.Unix(5, 0).UTC(),
		Entity: &Entity{Category: CategoryAlarm, Type: "prometheus", ID: "fp1"}}
	for _, c := range []struct {
		name string
		ev   Event
	}{{"upsert", benchUpsert()}, {"delete", del}} {
		raw, err := Encode(c.ev)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%s/%dB", c.name, len(raw)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
