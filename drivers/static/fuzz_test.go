package static

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/causeway/causeway/drivers/pull"
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
		evs, err := pull.Body("static", time.Unix(1, 0), time.Unix(1, 0), Entities(top))
		if err != nil {
			t.Fatalf("accepted topology gives invalid entities: %v", err)
		}
		for _, ev := range evs {
			if _, err := event.Encode(ev); err != nil {
				t.Fatalf("accepted topology gives an invalid event: %v", err)
			}
		}
		// With referenced types: nothing of those types is reported, and
		// what is reported is valid.
		refs := []string{"nova.host", "nova.instance"}
		ents, err := Resolve(refs, top)
		if err != nil {
			return
		}
		for _, e := range ents {
			if e.Type == refs[0] || e.Type == refs[1] {
				t.Fatalf("referenced type %s reported: %+v", e.Type, e)
			}
			ev := event.Event{V: event.Version, EventID: "f", Source: "static", Kind: event.KindEntityUpsert, ObservedAt: time.Unix(1, 0), Entity: &e}
			if _, err := event.Encode(ev); err != nil {
				t.Fatalf("accepted topology gives an invalid event with references: %v", err)
			}
		}
	})
}
