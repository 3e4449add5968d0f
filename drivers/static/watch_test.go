package static

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/causeway/causeway/drivers"
)

// TestWatchWaitsForTheWriteToEnd: a file rewritten in place in pieces (an
// editor, scp, cp) is read by no pull while it is half written. Its first
// piece alone is valid YAML here, as a prefix of a topology often is (cut
// in the last value of an entity, before the relationships): a pull of it
// would delete the entities and relationships still to come and report a
// switch of a made-up id. Watch reports a change once the files have
// stayed the same for a poll.
func TestWatchWaitsForTheWriteToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		full := "metadata:\n  name: rack 7\ndefinitions:\n  entities:\n" +
			"    - static_id: sw1\n      type: switch\n      id: sw-r7-1\n" +
			"    - static_id: sw2\n      type: switch\n      id: sw-r7-2\n" +
			"  relationships:\n    - {source: sw1, target: sw2, relationship_type: uplink}\n"
		partial := full[:strings.Index(full, "sw-r7-2")+len("sw-r")]
		if _, err := Parse([]byte(partial)); err != nil {
			t.Fatalf("the first piece must parse for this test to mean anything: %v", err)
		}
		path := filepath.Join(t.TempDir(), "rack7.yaml")
		write := func(s string) {
			t.Helper()
			if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(full)
		d, err := New(Config{Directory: filepath.Dir(path), PollInterval: 5 * time.Second}, Deps{})
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

		time.Sleep(4 * time.Second)
		write(partial) // the writer's first piece; the poll at 5s sees it
		time.Sleep(2 * time.Second)
		write(full) // the rest, a second later
		time.Sleep(30 * time.Second)
		write(strings.Replace(full, "rack 7", "rack seven", 1)) // an edit written at once
		time.Sleep(30 * time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}

		pulls := rec.pulls()
		want := []string{"switch/sw-r7-1", "switch/sw-r7-2"}
		for i, p := range pulls {
			if got := slices.Sorted(maps.Keys(p)); !slices.Equal(got, want) {
				t.Errorf("pull %d reported %v, want %v: it read the half-written file", i, got, want)
			}
		}
		if len(pulls) < 2 {
			t.Errorf("%d pulls, want the first and one after the edit at least", len(pulls))
		}
	})
}
