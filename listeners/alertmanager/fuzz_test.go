package alertmanager

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
	w := webhook(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := w.Decode(b)
		if err != nil {
			return
		}
		for _, ev := range evs {
			if err := ev.Validate(); err != nil {
				t.Fatalf("accepted payload gives an invalid event: %v", err)
			}
		}
	})
}
