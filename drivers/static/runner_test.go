package static

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/drivers"
	"github.com/causeway/causeway/internal/event"
)

type recorder struct {
	mu  sync.Mutex
	evs []event.Event
}

func (r *recorder) Publish(_ context.Context, evs ...event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, evs...)
	return nil
}

// ends returns the entity states of the completed pulls, one map per pull.
func (r *recorder) pulls() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	var cur map[string]string
	for _, ev := range r.evs {
		switch ev.Kind {
		case event.KindSyncBegin:
			cur = map[string]string{}
		case event.KindEntityUpsert:
			cur[ev.Entity.Type+"/"+ev.Entity.ID] = ev.Entity.State
		case event.KindSyncEnd:
			out = append(out, cur)
		}
	}
	return out
}

// TestRunnerRereadsOnChange drives the static driver with the real runner:
// a full pull at start, another as soon as a file changes.
func TestRunnerRereadsOnChange(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(state string) {
		t.Helper()
		n++ // a new comment each time: the file changes even if the state does not
		body := fmt.Sprintf("# write %d\n", n) + "metadata: {name: t}\ndefinitions:\n  entities:\n    - {static_id: s, type: switch, id: s1, state: " + state + "}\n"
		if err := os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("active")
	d, err := New(Config{Directory: dir, PollInterval: 20 * time.Millisecond}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r, err := drivers.New([]drivers.Job{{Driver: d, Schedule: drivers.Schedule{Interval: time.Hour}}}, drivers.Deps{Publisher: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	wait := func(what string, cond func([]map[string]string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond(rec.pulls()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; pulls %v", what, rec.pulls())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait("the first pull", func(p []map[string]string) bool { return len(p) >= 1 && p[0]["switch/s1"] == "active" })
	// The watcher's first look may come after this write: write again
	// until a pull shows it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		write("down")
		p := rec.pulls()
		if p[len(p)-1]["switch/s1"] == "down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change was never pulled; pulls %v", p)
		}
		wait("a pull", func(q []map[string]string) bool { return len(q) > len(p) || time.Now().After(deadline) })
	}
}
