package graph

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPureImports keeps the graph free of I/O, clocks and randomness
// (DESIGN.md: graph knows nothing of AMQP, SQL, raft or HTTP; invariant 3):
// its non-test files may import only what is listed here.
func TestPureImports(t *testing.T) {
	allowed := map[string]bool{
		"bytes": true, "bufio": true, "embed": true, "encoding/json": true, "errors": true, "fmt": true,
		"io": true, "io/fs": true, "maps": true, "math": true, "path": true, "slices": true,
		"strconv": true, "strings": true, "time": true,
		"github.com/causeway/causeway/internal/event":       true,
		"github.com/causeway/causeway/graph/internal/paged": true,
		"gopkg.in/yaml.v3": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[p] && !strings.HasPrefix(p, "gonum.org/v1/gonum/graph") {
				t.Errorf("%s imports %s, which the pure graph package must not", f, p)
			}
		}
	}
}
