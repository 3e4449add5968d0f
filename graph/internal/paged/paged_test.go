package paged

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// check compares tb with model, the ids in use and their values, and
// checks the pages' bookkeeping. trimmed says Trim ran since the last Set.
func isNil(p *int) bool { return p == nil }

func check(t *testing.T, tb *Table[int], model map[int64]int, trimmed bool) {
	t.Helper()
	if tb.Len() != len(model) {
		t.Fatalf("Len %d, want %d", tb.Len(), len(model))
	}
	var got []int64
	for id, v := range tb.All {
		if want, ok := model[id]; !ok || v != want {
			t.Fatalf("All yields %d=%d, want %d (in use %v)", id, v, want, ok)
		}
		got = append(got, id)
	}
	if want := slices.Sorted(maps.Keys(model)); !slices.Equal(got, want) {
		t.Fatalf("All yields %v, want %v", got, want)
	}
	for id, v := range model {
		if g := tb.Get(id); g != v {
			t.Fatalf("Get(%d) = %d, want %d", id, g, v)
		}
	}
	perPage := map[int]int{}
	for id := range model {
		perPage[int(id>>pageBits)]++
	}
	thinIDs := 0
	for p, pg := range tb.pages {
		n := perPage[p]
		switch {
		case pg == tb.zero && n > 0:
			t.Fatalf("page %d released with %d ids in use", p, n)
		case pg == tb.zero:
		case pg == nil:
			m := tb.thin[p]
			if m == nil || m.n != n || n == 0 || n > sparseMax {
				t.Fatalf("thin page %d: bitmap %v for %d ids in use (at most %d)", p, m, n, sparseMax)
			}
			thinIDs += n
		case trimmed && (n == 0 || (n <= denseMin && p < tb.top-1)):
			t.Fatalf("dense page %d kept through Trim with %d ids in use", p, n)
		}
	}
	if len(tb.few) != thinIDs {
		t.Fatalf("few holds %d values for %d ids of thin pages", len(tb.few), thinIDs)
	}
	if trimmed && tb.Pages() != len(perPage) {
		t.Fatalf("Pages %d after Trim, want %d (the pages with an id in use)", tb.Pages(), len(perPage))
	}
}

// TestTableModel applies random Sets, in runs over neighbouring ids so that
// pages fill and drain, with Trims and Loads among them, and compares with
// a map.
func TestTableModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tb := Table[int]{Empty: func(v int) bool { return v == 0 }}
	model := map[int64]int{}
	for step := 0; step < 20_000; step++ {
		base := r.Int64N(12 * pageSize)
		used := r.IntN(3) > 0
		if step%2000 >= 1000 {
			used = r.IntN(4) == 0 // drain
		}
		n := r.Int64N(80)
		if step%97 == 0 && used {
			// Load a run, ascending, with gaps.
			var ids []int64
			for id := base; id < base+3*n; id += 1 + r.Int64N(3) {
				ids = append(ids, id)
			}
			tb.Load(func(yield func(int64, int) bool) {
				for _, id := range ids {
					if !yield(id, int(id)+step) {
						return
					}
				}
			})
			for _, id := range ids {
				model[id] = int(id) + step
			}
			check(t, &tb, model, false)
			continue
		}
		for i := int64(0); i < n; i++ {
			id := base + i
			v := step*100 + int(i) + 1
			if !used {
				v = 0
			}
			tb.Set(id, v)
			if used {
				model[id] = v
			} else {
				delete(model, id)
			}
		}
		if step%50 == 0 {
			tb.Trim()
			check(t, &tb, model, true)
		} else if step%7 == 0 {
			check(t, &tb, model, false)
		}
	}
	for id := range model {
		tb.Set(id, 0)
	}
	clear(model)
	tb.Trim()
	check(t, &tb, model, true)
}

// TestTableReleasesDrainedPages: once every id of a page is unset, Trim
// releases the page, whatever order the ids went in; what is left is the
// page pointers.
func TestTableReleasesDrainedPages(t *testing.T) {
	const n = 100 * pageSize
	tb := Table[*int]{Empty: isNil}
	x := new(int)
	for id := int64(1); id <= n; id++ {
		tb.Set(id, x)
	}
	if got := tb.Pages(); got != n/pageSize+1 {
		t.Fatalf("Pages %d after %d ids, want %d", got, n, n/pageSize+1)
	}
	if full := tb.Bytes(); full < n*8 {
		t.Fatalf("Bytes %d for %d pointers", full, n)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, i := range r.Perm(n) {
		tb.Set(int64(i+1), nil)
	}
	tb.Trim()
	if tb.Pages() != 0 || tb.Len() != 0 {
		t.Fatalf("after unsetting every id: %d pages, %d ids in use", tb.Pages(), tb.Len())
	}
	// The page pointers and the one zero page they point to.
	if got, most := tb.Bytes(), cap(tb.pages)*8+pageSize*8+64; got > most {
		t.Fatalf("Bytes %d, more than the page pointers' and the zero page's %d", got, most)
	}
	for id := int64(0); id <= n+1; id++ {
		if tb.Get(id) != nil {
			t.Fatalf("Get(%d) after unsetting it", id)
		}
	}
}

// TestTableSurvivorsAreThin: one id in 97 kept out of many costs a few
// dozen bytes each once trimmed, not a share of a dense page.
func TestTableSurvivorsAreThin(t *testing.T) {
	const n = 1000 * pageSize
	tb := Table[*int]{Empty: isNil}
	x := new(int)
	for id := int64(1); id <= n; id++ {
		tb.Set(id, x)
	}
	kept := 0
	for id := int64(1); id <= n; id++ {
		if id%97 != 0 {
			tb.Set(id, nil)
		} else {
			kept++
		}
	}
	tb.Trim()
	if tb.Len() != kept {
		t.Fatalf("Len %d, want %d", tb.Len(), kept)
	}
	for id := int64(1); id <= n; id++ {
		if got := tb.Get(id); (got == x) != (id%97 == 0) {
			t.Fatalf("Get(%d) = %v", id, got)
		}
	}
	// Two or three survivors a page: their map entries and the page's
	// bitmap; dense, it would be 8*97 bytes a survivor.
	if per := (tb.Bytes() - cap(tb.pages)*8) / kept; per > 64 {
		t.Fatalf("%d bytes for each of %d survivors (%d in all)", per, kept, tb.Bytes())
	}
	// Refilled, a thin page turns dense again.
	for id := int64(1); id <= pageSize; id++ {
		tb.Set(id, x)
	}
	if tb.pages[0] == nil || tb.pages[0] == tb.zero {
		t.Fatal("a full page stayed thin")
	}
}

// TestTableLoad: Load makes dense pages for runs of ids and thin ones for
// scattered ids, with no dense page for those on the way.
func TestTableLoad(t *testing.T) {
	tb := Table[*int]{Empty: isNil}
	x := new(int)
	ids := func(from, to, step int64) func(func(int64, *int) bool) {
		return func(yield func(int64, *int) bool) {
			for id := from; id < to; id += step {
				if !yield(id, x) {
					return
				}
			}
		}
	}
	tb.Load(ids(1, 10*pageSize, 1))
	if tb.dense != 10 || len(tb.thin) != 0 {
		t.Fatalf("a run of ids: %d dense pages, %d thin", tb.dense, len(tb.thin))
	}
	sc := Table[*int]{Empty: isNil}
	sc.Load(ids(5, 1000*pageSize, 301))
	if want := (1000*pageSize - 5 + 300) / 301; sc.dense != 0 || sc.Len() != want || len(sc.thin) != 1000 {
		t.Fatalf("scattered ids: %d dense pages, %d thin for %d ids (want 0, 1000, %d)", sc.dense, len(sc.thin), sc.Len(), want)
	}
	for id := int64(5); id < 1000*pageSize; id++ {
		if got := sc.Get(id); (got == x) != ((id-5)%301 == 0) {
			t.Fatalf("Get(%d) = %v", id, got)
		}
	}
}

// TestTableKeepsEmptiedValue: a value set as not in use stays in its dense
// page (an emptied slice keeps its capacity), but All skips it, and Trim
// drops it.
func TestTableKeepsEmptiedValue(t *testing.T) {
	tb := Table[[]int]{Empty: func(s []int) bool { return len(s) == 0 }}
	for id := int64(0); id < pageSize; id++ {
		tb.Set(id, []int{int(id)})
	}
	s := tb.Get(7)[:0]
	tb.Set(7, s)
	if got := tb.Get(7); len(got) != 0 || cap(got) != cap(s) {
		t.Fatalf("Get(7) = %v (cap %d), want the emptied slice", got, cap(got))
	}
	for id := range tb.All {
		if id == 7 {
			t.Fatal("All yields an id not in use")
		}
	}
	if tb.Len() != pageSize-1 {
		t.Fatalf("Len %d", tb.Len())
	}
	for id := int64(8); id < pageSize; id++ {
		tb.Set(id, nil)
	}
	tb.Set(10*pageSize, []int{1}) // page 0 is no longer of the newest ids
	tb.Trim()
	if got := tb.Get(7); got != nil {
		t.Fatalf("Get(7) = %v after Trim", got)
	}
}

// TestTableHighID: an id near the largest vertex id a state may name costs
// one page and the page pointers below it, not a value per id.
func TestTableHighID(t *testing.T) {
	tb := Table[*int]{Empty: isNil}
	x := new(int)
	id := int64(math.MaxInt32)
	tb.Load(func(yield func(int64, *int) bool) { yield(id, x) })
	if tb.Get(id) != x || tb.Get(id-1) != nil || tb.Get(-1) != nil || tb.Get(math.MaxInt64) != nil {
		t.Fatal("Get around the high id")
	}
	if got, most := tb.Bytes(), (math.MaxInt32>>pageBits+1)*8+pageSize*8+1024; got > most {
		t.Fatalf("Bytes %d, more than the page pointers and a page (%d)", got, most)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Set(-1) did not panic")
		}
	}()
	tb.Set(-1, x)
}

// BenchmarkTableGet reads ids of dense pages and of thin ones.
func BenchmarkTableGet(b *testing.B) {
	const n = 100_000
	x := new(int)
	ids := make([]int64, 4096)
	for i := range ids {
		ids[i] = int64(i*7919%n + 1)
	}
	for _, bc := range []struct {
		name string
		keep int64 // one id in keep stays
	}{{"dense", 1}, {"thin", 97}} {
		tb := Table[*int]{Empty: isNil}
		for id := int64(1); id <= n; id++ {
			tb.Set(id, x)
		}
		for id := int64(1); id <= n; id++ {
			if id%bc.keep != 0 {
				tb.Set(id, nil)
			}
		}
		tb.Trim()
		b.Run(bc.name, func(b *testing.B) {
			var sink *int
			for i := 0; i < b.N; i++ {
				sink = tb.Get(ids[i&4095])
			}
			_ = sink
		})
	}
}

// TestTableCrowded: with Crowded set, Set starts a page thin where it says
// so, and dense elsewhere; Dense reports which.
func TestTableCrowded(t *testing.T) {
	tb := Table[*int]{Empty: isNil}
	tb.Crowded = func(id int64) bool { return id < 10*pageSize }
	x := new(int)
	tb.Set(3, x)
	tb.Set(20*pageSize+3, x)
	if !tb.Dense(3) || tb.Dense(20*pageSize+3) || tb.Dense(5*pageSize) || tb.Dense(-1) {
		t.Fatalf("Dense: %v %v %v", tb.Dense(3), tb.Dense(20*pageSize+3), tb.Dense(5*pageSize))
	}
	if tb.Get(3) != x || tb.Get(20*pageSize+3) != x || tb.Get(20*pageSize+4) != nil {
		t.Fatal("Get")
	}
}
