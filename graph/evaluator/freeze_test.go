package evaluator

import (
	"bytes"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
)

// TestPropertyFreeze checks that a Frozen copy keeps the state of its
// moment while the engine goes on: its Dump and State are what the engine's
// were at Freeze, and an engine restored from its State and run to the end
// of the log ends where a straight run does.
func TestPropertyFreeze(t *testing.T) {
	n := 1500
	if testing.Short() {
		n = 500
	}
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (replay with CAUSEWAY_EVALUATOR_SEED=%d)", seed, seed)
			recs := genLog(t, seed, n)
			straight := New(Config{}, nil)
			applyAll(t, straight, recs)
			want := dump(t, straight)

			rng := rand.New(rand.NewSource(seed))
			e := New(Config{}, nil)
			type frozen struct {
				f     *Frozen
				at    int
				dump  []byte
				state State
			}
			var fs []frozen
			for i := range recs {
				if rng.Intn(150) == 0 {
					fs = append(fs, frozen{e.Freeze(), i, dump(t, e), e.State()})
				}
				applyAll(t, e, recs[i:i+1])
			}
			if got := dump(t, e); !bytes.Equal(got, want) {
				t.Fatalf("an engine frozen along the way differs from a straight run:\n%s", firstDiff(got, want))
			}
			if len(fs) == 0 {
				t.Fatal("no freeze in the run")
			}
			for _, f := range fs {
				var b bytes.Buffer
				if err := f.f.Dump(&b); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b.Bytes(), f.dump) {
					t.Fatalf("frozen at %d: dump changed since:\n%s", f.at, firstDiff(b.Bytes(), f.dump))
				}
				st := f.f.State()
				if !reflect.DeepEqual(st, f.state) {
					t.Fatalf("frozen at %d: State differs from the engine's State at the freeze", f.at)
				}
				r, err := Restore(st, Config{}, nil)
				if err != nil {
					t.Fatalf("restore frozen at %d: %v", f.at, err)
				}
				applyAll(t, r, recs[f.at:])
				if got := dump(t, r); !bytes.Equal(got, want) {
					t.Fatalf("restored from the freeze at %d, run to the end, differs:\n%s", f.at, firstDiff(got, want))
				}
			}
		})
	}
}

// TestRestoreSupportsAnyOrder checks that Restore takes supports in any
// order, a repeated id keeping its last value, as State would write them.
func TestRestoreSupportsAnyOrder(t *testing.T) {
	recs := genLog(t, 1, 600)
	e := New(Config{}, nil)
	applyAll(t, e, recs)
	st := e.State()
	i := -1
	for j, ef := range st.Effects {
		if len(ef.Supports) > 0 {
			i = j
			break
		}
	}
	if i < 0 {
		t.Fatal("no effect with supports in the run")
	}
	want := append([]Support(nil), st.Effects[i].Supports...)
	first := want[0]
	// Reversed, with the first support repeated twice: a stale value, then
	// the right one last.
	var sp []Support
	sp = append(sp, Support{ID: first.ID, Value: first.Value + "-stale"})
	for k := len(want) - 1; k >= 0; k-- {
		sp = append(sp, want[k])
	}
	st.Effects[i].Supports = sp
	r, err := Restore(st, Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := r.State().Effects[i].Supports
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("restored supports %v, want %v", got, want)
	}
}
