package events

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, pat := range []string{"testdata/*.json", "testdata/bad/*.json"} {
		paths, _ := filepath.Glob(pat)
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	a := api(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := a.Decode(b)
		if err != nil {
			return
		}
		// Decode does not validate: the server does, and refuses with 400.
		// What must hold: exactly one event, of an alarm.
		if len(evs) != 1 || evs[0].Entity == nil || evs[0].Entity.Category != "ALARM" {
			t.Fatalf("accepted event gives %+v", evs)
		}
	})
}
