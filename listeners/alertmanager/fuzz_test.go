package alertmanager

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/causeway/causeway/listeners"
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
		var refused *listeners.Refused
		if err != nil && !errors.As(err, &refused) {
			if len(evs) != 0 {
				t.Fatalf("%d events beside an error refusing the whole payload: %v", len(evs), err)
			}
			return
		}
		for _, ev := range evs {
			if err := ev.Validate(); err != nil {
				t.Fatalf("accepted payload gives an invalid event: %v", err)
			}
		}
	})
}
