package alertmanager

import (
	"os"
	"testing"
	"time"

	"github.com/causeway/causeway/drivers/alertmap"
	"github.com/causeway/causeway/drivers/pull"
)

func FuzzParseAlerts(f *testing.F) {
	if b, err := os.ReadFile("testdata/alerts.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`[{"labels":{"job":"node","alertname":"A","instance":"h:1"}}]`))
	m, err := alertmap.New(mapping(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		alerts, err := ParseAlerts(b)
		if err != nil {
			return
		}
		ents, _ := Entities(m, alerts)
		// Entities keeps only alarms that make valid events, so the pull
		// of what it returns is never refused.
		if _, err := pull.Events("alertmanager", time.Unix(0, 0), time.Unix(1, 0), ents); err != nil {
			t.Fatalf("mapped alerts give an invalid pull: %v", err)
		}
	})
}
