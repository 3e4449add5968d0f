package drivers

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/causeway/causeway/"

// forbidden are the packages intake must never depend on (STYLE.md:
// drivers and listeners never import the processor; only cmd wires).
var forbidden = []string{"processor", "persister", "snapshot", "notifier", "graph", "internal/store", "cmd"}

// TestForbiddenImports follows the module-internal imports of every
// package under drivers/ and listeners/, transitively.
func TestForbiddenImports(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var start []string
	for _, tree := range []string{"drivers", "listeners"} {
		dirs, _ := filepath.Glob(filepath.Join(root, tree, "*"))
		start = append(start, tree)
		for _, d := range dirs {
			if p, err := build.ImportDir(d, 0); err == nil && p.Name != "" && !strings.HasSuffix(d, "testdata") {
				start = append(start, tree+"/"+filepath.Base(d))
			}
		}
	}
	seen := map[string]string{} // package -> who imported it
	queue := start
	for _, s := range start {
		seen[s] = "(root)"
	}
	for len(queue) > 0 {
		rel := queue[0]
		queue = queue[1:]
		p, err := build.ImportDir(filepath.Join(root, rel), 0)
		if err != nil {
			continue // a directory without Go files
		}
		for _, imp := range p.Imports {
			r, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			for _, f := range forbidden {
				if r == f || strings.HasPrefix(r, f+"/") {
					t.Errorf("%s imports %s (reached from %s)", rel, imp, seen[rel])
				}
			}
			if _, ok := seen[r]; !ok {
				seen[r] = rel
				queue = append(queue, r)
			}
		}
	}
	if len(seen) < 8 {
		t.Fatalf("only %d packages walked: %v", len(seen), seen)
	}
}
