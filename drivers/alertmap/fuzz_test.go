package alertmap

import (
	"os"
	"testing"
)

func FuzzLoad(f *testing.F) {
	if b, err := os.ReadFile("testdata/mapping.yaml"); err == nil {
		f.Add(b, "node", "compute-1:9100")
	}
	f.Add([]byte("rules: [{resource_type: a, resource_id_labels: [x]}]"), "", "")
	f.Fuzz(func(t *testing.T, b []byte, job, instance string) {
		cfg, err := Load(b)
		if err != nil {
			return
		}
		m, err := New(cfg)
		if err != nil {
			t.Fatalf("Load accepted a config New refuses: %v", err)
		}
		// Mapping must never panic, whatever the labels.
		_, _ = m.Entity(Alert{Labels: map[string]string{"job": job, "instance": instance, "alertname": "A"}})
	})
}
