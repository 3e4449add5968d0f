package static

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFilesSkipDirectoriesAndReadUpperCase: an entry named *.yaml that is
// a directory, or a symlink to one (a configuration management tool's
// staging folder, a mount point), was opened as a file and failed every
// pull with "is a directory", keeping the whole topology stale; and a
// file named *.YAML or *.Yml was ignored without a word, its entities
// deleted at the next full pull. Directories are now skipped (with a
// warning) and the extension is matched whatever its case.
func TestFilesSkipDirectoriesAndReadUpperCase(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "metadata: {name: a}\ndefinitions:\n  entities:\n    - {static_id: a, type: rack, id: ra}\n")
	write("b.YAML", "metadata: {name: b}\ndefinitions:\n  entities:\n    - {static_id: b, type: rack, id: rb}\n")
	write("c.Yml", "metadata: {name: c}\ndefinitions:\n  entities:\n    - {static_id: c, type: rack, id: rc}\n")
	if err := os.Mkdir(filepath.Join(dir, "staging.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := os.Symlink(target, filepath.Join(dir, "linked.yml")); err != nil {
		t.Fatal(err)
	}
	// A symlink to a file is read as the file.
	other := filepath.Join(t.TempDir(), "d.yaml")
	if err := os.WriteFile(other, []byte("metadata: {name: d}\ndefinitions:\n  entities:\n    - {static_id: d, type: rack, id: rd}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(dir, "d.yaml")); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	d, err := New(Config{Directory: dir, Settle: time.Millisecond}, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := d.GetAll(context.Background())
	if err != nil {
		t.Fatalf("GetAll: %v", err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.ID)
	}
	if len(got) != 4 {
		t.Errorf("GetAll read entities %q, want ra, rb, rc and rd", got)
	}
	for _, skipped := range []string{"staging.yaml", "linked.yml"} {
		if !bytes.Contains(logs.Bytes(), []byte(skipped)) {
			t.Errorf("no warning names %s: %s", skipped, logs.Bytes())
		}
	}
	if _, err := d.fingerprint(); err != nil {
		t.Errorf("fingerprint (Watch): %v", err)
	}
}
