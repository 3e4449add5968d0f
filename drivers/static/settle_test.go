package static

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// rack7 is a topology whose prefix, cut inside the second switch's id, is
// still a valid topology of one switch and a switch of a made-up id, and
// no relationship.
const rack7 = "metadata:\n  name: rack 7\ndefinitions:\n  entities:\n" +
	"    - static_id: sw1\n      type: switch\n      id: sw-r7-1\n" +
	"    - static_id: sw2\n      type: switch\n      id: sw-r7-2\n" +
	"  relationships:\n    - {source: sw1, target: sw2, relationship_type: uplink}\n"

func rack7Partial(t *testing.T) string {
	t.Helper()
	partial := rack7[:strings.Index(rack7, "sw-r7-2")+len("sw-r")]
	if _, err := Parse([]byte(partial)); err != nil {
		t.Fatalf("the first piece must parse for this test to mean anything: %v", err)
	}
	return partial
}

func keysOf(t *testing.T, d *Driver) ([]string, error) {
	t.Helper()
	ents, err := d.GetAll(context.Background())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Type+"/"+e.ID)
	}
	return out, nil
}

// TestGetAllWaitsForTheWriteToEnd: a scheduled pull (not the watch) that
// lands while a file is rewritten in place reads a prefix of it, valid
// YAML here. Published, it would delete sw-r7-2 and the uplink and report
// a switch "sw-r". GetAll reads the files again after Settle and takes
// them only once two reads agree.
func TestGetAllWaitsForTheWriteToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		partial := rack7Partial(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "rack7.yaml")
		if err := os.WriteFile(path, []byte(partial), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := New(Config{Directory: dir}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		wrote := make(chan error, 1)
		go func() {
			// The writer's second piece, a moment after the first:
			// after the pull's first read (the pull blocks on its
			// settle timer before this goroutine's sleep ends).
			time.Sleep(DefaultSettle / 2)
			wrote <- os.WriteFile(path, []byte(rack7), 0o644)
		}()
		got, err := keysOf(t, d)
		if err != nil {
			t.Fatalf("GetAll: %v", err)
		}
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		if want := []string{"switch/sw-r7-1", "switch/sw-r7-2"}; !slices.Equal(got, want) {
			t.Errorf("GetAll reported %v, want %v: it read the half-written file", got, want)
		}
	})
}

// TestGetAllRefusesAFileThatKeepsChanging: a file that changes between
// every two reads is never taken: after settleTries reads GetAll fails
// (the runner retries the pull with backoff) and says which file moved.
func TestGetAllRefusesAFileThatKeepsChanging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "rack7.yaml")
		if err := os.WriteFile(path, []byte(rack7), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := New(Config{Directory: dir, Settle: time.Second}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		writer := make(chan struct{})
		go func() {
			defer close(writer)
			for i := 0; ; i++ {
				body := rack7 + strings.Repeat("#", i%7+1) + "\n"
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Error(err)
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(400 * time.Millisecond):
				}
			}
		}()
		_, err = d.GetAll(context.Background())
		stop()
		<-writer
		if !errors.Is(err, ErrChanging) || !strings.Contains(err.Error(), "rack7.yaml") {
			t.Errorf("GetAll: %v, want an error wrapping ErrChanging naming rack7.yaml", err)
		}
	})
}

// TestGetAllSettleEndsWithContext: a pull cancelled while it waits for
// the files to settle returns the context's error when it ends.
func TestGetAllSettleEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "rack7.yaml"), []byte(rack7), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := New(Config{Directory: dir, Settle: time.Hour}, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := d.GetAll(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("GetAll: %v, want the context's deadline (not the settle's hour)", err)
		}
	})
}
