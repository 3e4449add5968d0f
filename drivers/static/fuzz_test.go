package static

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/event"
)

func FuzzParse(f *testing.F) {
	for _, pat := range []string{"testdata/*.yaml", "testdata/bad/*.yaml"} {
		paths, _ := filepath.Glob(pat)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		top, err := Parse(b)
		if err != nil {
			return
		}
		// What Parse accepts must become valid events.
		for _, ev := range Events("static", time.Unix(1, 0), top) {
			if _, err := event.Encode(ev); err != nil {
				t.Fatalf("accepted topology gives an invalid event: %v", err)
			}
		}
	})
}
