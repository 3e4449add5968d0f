package templatetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseSpec(f *testing.F) {
	specs, _ := filepath.Glob("../../testdata/scenarios/*/spec.yaml")
	for _, p := range specs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, ref := range s.References {
			if src, _, _ := strings.Cut(ref, "."); ref == "" || seen[ref] || src == "static" {
				t.Fatalf("accepted references %q", s.References)
			}
			seen[ref] = true
		}
		for _, st := range s.Steps {
			for _, ev := range st.Events {
				n := 0
				if ev.Alarm != nil {
					n++
				}
				if ev.Update != nil {
					n++
				}
				if ev.Sync != nil {
					n++
				}
				for _, x := range []string{ev.Clear, ev.Delete, ev.TemplateAdd.Path, ev.TemplateDelete} {
					if x != "" {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("accepted an event with %d kinds", n)
				}
			}
		}
	})
}
