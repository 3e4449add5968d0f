package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder captures failures without failing the outer test.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Helper()               {}

func TestJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.golden.json")
	if err := os.WriteFile(path, []byte("{\n  \"a\": 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	JSON(r, path, map[string]int{"a": 1})
	if r.failed {
		t.Error("equal content reported as different")
	}
	JSON(r, path, map[string]int{"a": 2})
	if !r.failed {
		t.Error("different content not reported")
	}
}
